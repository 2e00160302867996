package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/runtime/record"
)

const approvalCols = `id, session_id, identity, resource, command, rule_id, group_name, count, status,
	created_at, expires_at, resolved_at`

type querier interface {
	Query(ctx context.Context, q string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) pgx.Row
}

func scanApproval(row pgx.Row) (record.Approval, error) {
	var (
		a        record.Approval
		resolved *time.Time
	)
	if err := row.Scan(&a.ID, &a.SessionID, &a.Identity, &a.Resource, &a.Command, &a.RuleID, &a.Group,
		&a.Count, &a.Status, &a.CreatedAt, &a.ExpiresAt, &resolved); err != nil {
		return a, err
	}
	a.CreatedAt = a.CreatedAt.UTC()
	a.ExpiresAt = a.ExpiresAt.UTC()
	a.ResolvedAt = fromNull(resolved)
	return a, nil
}

func loadVotes(ctx context.Context, q querier, a *record.Approval) error {
	rows, err := q.Query(ctx, `SELECT approver, decision, reason, ts FROM approval_votes
		WHERE approval_id = $1 ORDER BY ord`, a.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	a.Votes = nil
	for rows.Next() {
		var v record.Vote
		if err := rows.Scan(&v.Approver, &v.Decision, &v.Reason, &v.Time); err != nil {
			return err
		}
		v.Time = v.Time.UTC()
		a.Votes = append(a.Votes, v)
	}
	return rows.Err()
}

func getApproval(ctx context.Context, q querier, id string, forUpdate bool) (record.Approval, error) {
	sql := `SELECT ` + approvalCols + ` FROM approvals WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	a, err := scanApproval(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("approval %s: %w", id, record.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("approval %s: %w", id, err)
	}
	if err := loadVotes(ctx, q, &a); err != nil {
		return a, fmt.Errorf("approval %s votes: %w", id, err)
	}
	return a, nil
}

func (s *Store) notify(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, id); err != nil {
		return fmt.Errorf("notify %s: %w", id, err)
	}
	return nil
}

// CreateApproval implements record.ApprovalStore.
func (s *Store) CreateApproval(ctx context.Context, a *record.Approval) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := record.ValidateApproval(a); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO approvals (`+approvalCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL) ON CONFLICT (id) DO NOTHING`,
			a.ID, a.SessionID, a.Identity, a.Resource, a.Command, a.RuleID, a.Group, a.Count, a.Status,
			a.CreatedAt, a.ExpiresAt)
		if err != nil {
			return fmt.Errorf("create approval %s: %w", a.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("create approval %s: %w", a.ID, record.ErrAlreadyExists)
		}
		return s.notify(ctx, tx, a.ID)
	})
}

// GetApproval implements record.ApprovalStore.
func (s *Store) GetApproval(ctx context.Context, id string) (record.Approval, error) {
	if err := s.check(); err != nil {
		return record.Approval{}, err
	}
	return getApproval(ctx, s.pool, id, false)
}

// AddVote implements record.ApprovalStore. The approval row is locked
// (SELECT ... FOR UPDATE) so that votes from several gateways serialise.
func (s *Store) AddVote(ctx context.Context, approvalID string, v record.Vote) (record.Approval, error) {
	if err := s.check(); err != nil {
		return record.Approval{}, err
	}
	var out record.Approval
	var verr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := getApproval(ctx, tx, approvalID, true)
		if err != nil {
			return err
		}
		before := a.Status
		vote := v
		verr = record.ApplyVote(&a, &vote)
		out = a
		if verr != nil && a.Status == before {
			return nil // nothing to persist
		}
		if verr == nil {
			if _, err := tx.Exec(ctx, `INSERT INTO approval_votes (approval_id, ord, approver, decision, reason, ts)
				VALUES ($1, $2, $3, $4, $5, $6)`, a.ID, len(a.Votes), vote.Approver, vote.Decision, vote.Reason, vote.Time); err != nil {
				if pgCode(err) == "23505" {
					return fmt.Errorf("approval %s: %s: %w", a.ID, vote.Approver, record.ErrDuplicateVote)
				}
				return fmt.Errorf("add vote to %s: %w", a.ID, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE approvals SET status = $1, resolved_at = $2 WHERE id = $3`,
			a.Status, nullTime(a.ResolvedAt), a.ID); err != nil {
			return fmt.Errorf("add vote to %s: %w", a.ID, err)
		}
		return s.notify(ctx, tx, a.ID)
	})
	if err != nil {
		return out, err
	}
	return out, verr
}

// ListApprovals implements record.ApprovalStore.
func (s *Store) ListApprovals(ctx context.Context, status string) ([]record.Approval, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	q := `SELECT ` + approvalCols + ` FROM approvals`
	var args []any
	if status != "" {
		q += ` WHERE status = $1`
		args = append(args, status)
	}
	q += fmt.Sprintf(` ORDER BY created_at, id LIMIT %d`, record.MaxLimit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	var out []record.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list approvals: %w", err)
		}
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	for i := range out {
		if err := loadVotes(ctx, s.pool, &out[i]); err != nil {
			return nil, fmt.Errorf("list approvals: %w", err)
		}
	}
	return out, nil
}

// ExpireApprovals implements record.ApprovalStore.
func (s *Store) ExpireApprovals(ctx context.Context, now time.Time) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE approvals SET status = 'expired', resolved_at = expires_at
			WHERE status = 'pending' AND expires_at <= $1 RETURNING id`, now)
		if err != nil {
			return fmt.Errorf("expire approvals: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("expire approvals: %w", err)
		}
		for _, id := range ids {
			if err := s.notify(ctx, tx, id); err != nil {
				return err
			}
		}
		n = int64(len(ids))
		return nil
	})
	return n, err
}

type watcher struct {
	cancel context.CancelFunc
}

// WatchApprovals implements record.ApprovalWatcher with LISTEN on a
// dedicated connection. Changes committed by any gateway on the same
// schema are delivered. The channel is closed when ctx is done, the store
// is closed, or the connection fails.
func (s *Store) WatchApprovals(ctx context.Context) (<-chan string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("watch approvals: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("watch approvals: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		cancel()
		conn.Close(ctx)
		return nil, record.ErrClosed
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	out := make(chan string, 64)
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.watchers, w)
			s.mu.Unlock()
			cancel()
			closeCtx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			conn.Close(closeCtx)
			ccancel()
			close(out)
		}()
		for {
			n, err := conn.WaitForNotification(wctx)
			if err != nil {
				if wctx.Err() == nil {
					s.log.WarnContext(ctx, "Approval watch ended.", "error", err)
				}
				return
			}
			select {
			case out <- n.Payload:
			case <-wctx.Done():
				return
			}
		}
	}()
	return out, nil
}
