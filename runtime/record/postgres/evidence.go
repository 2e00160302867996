package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/runtime/record"
)

// Interface guards.
var (
	_ record.EvidenceStore  = (*Store)(nil)
	_ record.EvidenceReader = (*Store)(nil)
)

// PutSeal implements record.EvidenceStore.
func (s *Store) PutSeal(ctx context.Context, seal *record.Seal) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := record.ValidateSeal(seal); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO seals (session_id, header_hash, last_seq, last_hash, ended_at,
		end_reason, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (session_id) DO UPDATE SET header_hash = excluded.header_hash, last_seq = excluded.last_seq,
			last_hash = excluded.last_hash, ended_at = excluded.ended_at, end_reason = excluded.end_reason,
			key_id = excluded.key_id, signature = excluded.signature`,
		seal.SessionID, seal.HeaderHash, seal.LastSeq, seal.LastHash, record.Timestamp(seal.EndedAt),
		seal.EndReason, seal.KeyID, seal.Signature)
	if pgCode(err) == "23503" {
		return fmt.Errorf("seal session %s: %w", seal.SessionID, record.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("seal session %s: %w", seal.SessionID, err)
	}
	return nil
}

// GetSeal implements record.EvidenceReader.
func (s *Store) GetSeal(ctx context.Context, sessionID string) (record.Seal, error) {
	if err := s.check(); err != nil {
		return record.Seal{}, err
	}
	var seal record.Seal
	err := s.pool.QueryRow(ctx, `SELECT session_id, header_hash, last_seq, last_hash, ended_at, end_reason,
		key_id, signature FROM seals WHERE session_id = $1`, sessionID).Scan(&seal.SessionID, &seal.HeaderHash,
		&seal.LastSeq, &seal.LastHash, &seal.EndedAt, &seal.EndReason, &seal.KeyID, &seal.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return seal, fmt.Errorf("seal of session %s: %w", sessionID, record.ErrNotFound)
	}
	if err != nil {
		return seal, fmt.Errorf("seal of session %s: %w", sessionID, err)
	}
	seal.EndedAt = seal.EndedAt.UTC()
	return seal, nil
}

// PutCheckpoint implements record.EvidenceStore.
func (s *Store) PutCheckpoint(ctx context.Context, c *record.Checkpoint) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := record.ValidateCheckpoint(c); err != nil {
		return err
	}
	n := len(c.Entries)
	sids, hashes := make([]string, n), make([]string, n)
	seqs := make([]int64, n)
	ended := make([]*time.Time, n)
	for i := range c.Entries {
		e := &c.Entries[i]
		sids[i], seqs[i], hashes[i], ended[i] = e.SessionID, e.LastSeq, e.LastHash, nullTime(e.EndedAt)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO checkpoints (gateway_id, seq, ts, prev_hash, retention_before, hash,
			key_id, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (gateway_id, seq) DO NOTHING`,
			c.GatewayID, c.Seq, record.Timestamp(c.Time), c.PrevHash, nullTime(c.RetentionBefore), c.Hash, c.KeyID, c.Signature)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var h string
			if err := tx.QueryRow(ctx, `SELECT hash FROM checkpoints WHERE gateway_id = $1 AND seq = $2`,
				c.GatewayID, c.Seq).Scan(&h); err != nil {
				return err
			}
			if h != c.Hash {
				return record.ErrConflict
			}
			return nil // stored before: a retry
		}
		if n == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO checkpoint_entries (gateway_id, checkpoint_seq, session_id, last_seq, last_hash, ended_at)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int8[], $5::text[], $6::timestamptz[])`,
			c.GatewayID, c.Seq, sids, seqs, hashes, ended)
		return err
	})
	if err != nil {
		return fmt.Errorf("store checkpoint %s/%d: %w", c.GatewayID, c.Seq, err)
	}
	return nil
}

const checkpointCols = `gateway_id, seq, ts, prev_hash, retention_before, hash, key_id, signature`

func scanCheckpoint(row pgx.Row) (record.Checkpoint, error) {
	var (
		c         record.Checkpoint
		retention *time.Time
	)
	if err := row.Scan(&c.GatewayID, &c.Seq, &c.Time, &c.PrevHash, &retention, &c.Hash, &c.KeyID, &c.Signature); err != nil {
		return c, err
	}
	c.Time, c.RetentionBefore = c.Time.UTC(), fromNull(retention)
	return c, nil
}

// LastCheckpoint implements record.EvidenceStore.
func (s *Store) LastCheckpoint(ctx context.Context, gatewayID string) (record.Checkpoint, error) {
	if err := s.check(); err != nil {
		return record.Checkpoint{}, err
	}
	c, err := scanCheckpoint(s.pool.QueryRow(ctx, `SELECT `+checkpointCols+` FROM checkpoints
		WHERE gateway_id = $1 ORDER BY seq DESC LIMIT 1`, gatewayID))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("last checkpoint of %s: %w", gatewayID, record.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("last checkpoint of %s: %w", gatewayID, err)
	}
	return c, nil
}

// CheckpointChains implements record.EvidenceReader.
func (s *Store) CheckpointChains(ctx context.Context) ([]record.ChainHead, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT gateway_id, MIN(seq), MAX(seq) FROM checkpoints
		GROUP BY gateway_id ORDER BY gateway_id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("checkpoint chains: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (record.ChainHead, error) {
		var h record.ChainHead
		err := row.Scan(&h.GatewayID, &h.First, &h.Last)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint chains: %w", err)
	}
	return out, nil
}

// ListCheckpoints implements record.EvidenceReader.
func (s *Store) ListCheckpoints(ctx context.Context, f record.CheckpointFilter) ([]record.Checkpoint, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var w where
	w.add("gateway_id = ?", f.GatewayID)
	w.add("seq >= ?", f.FromSeq)
	if !f.Since.IsZero() {
		w.add("ts >= ?", f.Since)
	}
	q := `SELECT ` + checkpointCols + ` FROM checkpoints` + w.sql() + ` ORDER BY seq LIMIT ` +
		w.next(record.EffectiveCheckpointLimit(f.Limit))
	rows, err := s.pool.Query(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (record.Checkpoint, error) { return scanCheckpoint(row) })
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	bySeq := make(map[int64]*record.Checkpoint, len(out))
	for i := range out {
		bySeq[out[i].Seq] = &out[i]
	}
	rows, err = s.pool.Query(ctx, `SELECT checkpoint_seq, session_id, last_seq, last_hash, ended_at
		FROM checkpoint_entries WHERE gateway_id = $1 AND checkpoint_seq BETWEEN $2 AND $3
		ORDER BY checkpoint_seq, session_id COLLATE "C"`, f.GatewayID, out[0].Seq, out[len(out)-1].Seq)
	if err != nil {
		return nil, fmt.Errorf("list checkpoint entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq   int64
			e     record.CheckpointEntry
			ended *time.Time
		)
		if err := rows.Scan(&seq, &e.SessionID, &e.LastSeq, &e.LastHash, &ended); err != nil {
			return nil, fmt.Errorf("list checkpoint entries: %w", err)
		}
		e.EndedAt = fromNull(ended)
		if c := bySeq[seq]; c != nil {
			c.Entries = append(c.Entries, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list checkpoint entries: %w", err)
	}
	return out, nil
}

// CheckpointsNaming implements record.EvidenceReader.
func (s *Store) CheckpointsNaming(ctx context.Context, sessionID string) ([]record.CheckpointRef, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT e.gateway_id, e.checkpoint_seq, c.hash FROM checkpoint_entries e
		JOIN checkpoints c ON c.gateway_id = e.gateway_id AND c.seq = e.checkpoint_seq
		WHERE e.session_id = $1 ORDER BY e.gateway_id COLLATE "C", e.checkpoint_seq`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("checkpoints naming %s: %w", sessionID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (record.CheckpointRef, error) {
		var r record.CheckpointRef
		err := row.Scan(&r.GatewayID, &r.Seq, &r.Hash)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoints naming %s: %w", sessionID, err)
	}
	return out, nil
}
