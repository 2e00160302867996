package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
)

const approvalCols = `id, session_id, identity, resource, command, rule_id, group_name, count, status,
	created_at, expires_at, resolved_at`

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func scanApproval(row interface{ Scan(...any) error }) (record.Approval, error) {
	var (
		a                record.Approval
		created, expires int64
		resolved         sql.NullInt64
	)
	if err := row.Scan(&a.ID, &a.SessionID, &a.Identity, &a.Resource, &a.Command, &a.RuleID, &a.Group,
		&a.Count, &a.Status, &created, &expires, &resolved); err != nil {
		return a, err
	}
	a.CreatedAt = fromMicros(created)
	a.ExpiresAt = fromMicros(expires)
	a.ResolvedAt = fromNullMicros(resolved)
	return a, nil
}

func loadVotes(ctx context.Context, q querier, a *record.Approval) error {
	rows, err := q.QueryContext(ctx, `SELECT approver, decision, reason, ts FROM approval_votes
		WHERE approval_id = ? ORDER BY ord`, a.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	a.Votes = nil
	for rows.Next() {
		var v record.Vote
		var ts int64
		if err := rows.Scan(&v.Approver, &v.Decision, &v.Reason, &ts); err != nil {
			return err
		}
		v.Time = fromMicros(ts)
		a.Votes = append(a.Votes, v)
	}
	return rows.Err()
}

func getApproval(ctx context.Context, q querier, id string) (record.Approval, error) {
	a, err := scanApproval(q.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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

// CreateApproval implements record.ApprovalStore.
func (s *Store) CreateApproval(ctx context.Context, a *record.Approval) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := record.ValidateApproval(a); err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO approvals (`+approvalCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (id) DO NOTHING`,
		a.ID, a.SessionID, a.Identity, a.Resource, a.Command, a.RuleID, a.Group, a.Count, a.Status,
		micros(a.CreatedAt), micros(a.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create approval %s: %w", a.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("create approval %s: %w", a.ID, record.ErrAlreadyExists)
	}
	s.hub.publish(a.ID)
	return nil
}

// GetApproval implements record.ApprovalStore.
func (s *Store) GetApproval(ctx context.Context, id string) (record.Approval, error) {
	if err := s.check(); err != nil {
		return record.Approval{}, err
	}
	return getApproval(ctx, s.r, id)
}

// AddVote implements record.ApprovalStore. The single writer connection
// serialises concurrent votes.
func (s *Store) AddVote(ctx context.Context, approvalID string, v record.Vote) (record.Approval, error) {
	if err := s.check(); err != nil {
		return record.Approval{}, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return record.Approval{}, fmt.Errorf("add vote: %w", err)
	}
	defer tx.Rollback()
	a, err := getApproval(ctx, tx, approvalID)
	if err != nil {
		return a, err
	}
	before := a.Status
	verr := record.ApplyVote(&a, &v)
	if verr != nil && a.Status == before {
		return a, verr
	}
	if verr == nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO approval_votes (approval_id, ord, approver, decision, reason, ts)
			VALUES (?, ?, ?, ?, ?, ?)`, a.ID, len(a.Votes), v.Approver, v.Decision, v.Reason, micros(v.Time)); err != nil {
			return a, fmt.Errorf("add vote to %s: %w", a.ID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE approvals SET status = ?, resolved_at = ? WHERE id = ?`,
		a.Status, nullMicros(a.ResolvedAt), a.ID); err != nil {
		return a, fmt.Errorf("add vote to %s: %w", a.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return a, fmt.Errorf("add vote to %s: %w", a.ID, err)
	}
	s.hub.publish(a.ID)
	return a, verr
}

// ListApprovals implements record.ApprovalStore.
func (s *Store) ListApprovals(ctx context.Context, status string) ([]record.Approval, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	q := `SELECT ` + approvalCols + ` FROM approvals`
	var args []any
	if status != "" {
		q += ` WHERE status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, record.MaxLimit)
	rows, err := s.r.QueryContext(ctx, q, args...)
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
		if err := loadVotes(ctx, s.r, &out[i]); err != nil {
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("expire approvals: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE approvals SET status = 'expired', resolved_at = expires_at
		WHERE status = 'pending' AND expires_at <= ? RETURNING id`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("expire approvals: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("expire approvals: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("expire approvals: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("expire approvals: %w", err)
	}
	for _, id := range ids {
		s.hub.publish(id)
	}
	return int64(len(ids)), nil
}

// WatchApprovals implements record.ApprovalWatcher for changes made through
// this Store.
func (s *Store) WatchApprovals(ctx context.Context) (<-chan string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.hub.subscribe(ctx), nil
}

// hub broadcasts approval ids to in-process watchers. A watcher that falls
// more than its buffer behind has its channel closed (it then re-reads and
// watches again, per the ApprovalWatcher contract) rather than blocking
// the writer.
type hub struct {
	mu     sync.Mutex
	subs   map[chan string]struct{}
	closed bool
}

const watchBuffer = 1024

func newHub() *hub { return &hub{subs: make(map[chan string]struct{})} }

func (h *hub) subscribe(ctx context.Context) <-chan string {
	ch := make(chan string, watchBuffer)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(ch)
		return ch
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	context.AfterFunc(ctx, func() { h.drop(ch) })
	return ch
}

func (h *hub) drop(ch chan string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *hub) publish(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- id:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
