package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seal session %s: %w", seal.SessionID, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = ?`, seal.SessionID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("seal session %s: %w", seal.SessionID, record.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("seal session %s: %w", seal.SessionID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO seals (session_id, header_hash, last_seq, last_hash, ended_at,
		end_reason, key_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET header_hash = excluded.header_hash, last_seq = excluded.last_seq,
			last_hash = excluded.last_hash, ended_at = excluded.ended_at, end_reason = excluded.end_reason,
			key_id = excluded.key_id, signature = excluded.signature`,
		seal.SessionID, seal.HeaderHash, seal.LastSeq, seal.LastHash, micros(record.Timestamp(seal.EndedAt)),
		seal.EndReason, seal.KeyID, seal.Signature); err != nil {
		return fmt.Errorf("seal session %s: %w", seal.SessionID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seal session %s: %w", seal.SessionID, err)
	}
	return nil
}

// GetSeal implements record.EvidenceReader.
func (s *Store) GetSeal(ctx context.Context, sessionID string) (record.Seal, error) {
	if err := s.check(); err != nil {
		return record.Seal{}, err
	}
	var (
		seal  record.Seal
		ended int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT session_id, header_hash, last_seq, last_hash, ended_at, end_reason,
		key_id, signature FROM seals WHERE session_id = ?`, sessionID).Scan(&seal.SessionID, &seal.HeaderHash,
		&seal.LastSeq, &seal.LastHash, &ended, &seal.EndReason, &seal.KeyID, &seal.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return seal, fmt.Errorf("seal of session %s: %w", sessionID, record.ErrNotFound)
	}
	if err != nil {
		return seal, fmt.Errorf("seal of session %s: %w", sessionID, err)
	}
	seal.EndedAt = fromMicros(ended)
	return seal, nil
}

// entryChunk is the number of checkpoint entries per INSERT (6 parameters
// each).
const entryChunk = 128

// PutCheckpoint implements record.EvidenceStore.
func (s *Store) PutCheckpoint(ctx context.Context, c *record.Checkpoint) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := record.ValidateCheckpoint(c); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store checkpoint %s/%d: %w", c.GatewayID, c.Seq, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (gateway_id, seq, ts, prev_hash, retention_before, hash,
		key_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway_id, seq) DO NOTHING`,
		c.GatewayID, c.Seq, micros(record.Timestamp(c.Time)), c.PrevHash, nullMicros(record.Timestamp(c.RetentionBefore)),
		c.Hash, c.KeyID, c.Signature)
	if err != nil {
		return fmt.Errorf("store checkpoint %s/%d: %w", c.GatewayID, c.Seq, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var h string
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM checkpoints WHERE gateway_id = ? AND seq = ?`,
			c.GatewayID, c.Seq).Scan(&h); err != nil {
			return fmt.Errorf("store checkpoint %s/%d: %w", c.GatewayID, c.Seq, err)
		}
		if h != c.Hash {
			return fmt.Errorf("store checkpoint %s/%d: %w", c.GatewayID, c.Seq, record.ErrConflict)
		}
		return nil // stored before: a retry
	}
	for start := 0; start < len(c.Entries); start += entryChunk {
		chunk := c.Entries[start:min(start+entryChunk, len(c.Entries))]
		var b strings.Builder
		b.WriteString(`INSERT INTO checkpoint_entries (gateway_id, checkpoint_seq, session_id, last_seq, last_hash, ended_at) VALUES `)
		args := make([]any, 0, 6*len(chunk))
		for i := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?)")
			e := &chunk[i]
			args = append(args, c.GatewayID, c.Seq, e.SessionID, e.LastSeq, e.LastHash, nullMicros(record.Timestamp(e.EndedAt)))
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("store checkpoint %s/%d: entries: %w", c.GatewayID, c.Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store checkpoint %s/%d: %w", c.GatewayID, c.Seq, err)
	}
	return nil
}

const checkpointCols = `gateway_id, seq, ts, prev_hash, retention_before, hash, key_id, signature`

func scanCheckpoint(row interface{ Scan(...any) error }) (record.Checkpoint, error) {
	var (
		c         record.Checkpoint
		ts        int64
		retention sql.NullInt64
	)
	if err := row.Scan(&c.GatewayID, &c.Seq, &ts, &c.PrevHash, &retention, &c.Hash, &c.KeyID, &c.Signature); err != nil {
		return c, err
	}
	c.Time, c.RetentionBefore = fromMicros(ts), fromNullMicros(retention)
	return c, nil
}

// LastCheckpoint implements record.EvidenceStore.
func (s *Store) LastCheckpoint(ctx context.Context, gatewayID string) (record.Checkpoint, error) {
	if err := s.check(); err != nil {
		return record.Checkpoint{}, err
	}
	c, err := scanCheckpoint(s.w.QueryRowContext(ctx, `SELECT `+checkpointCols+` FROM checkpoints
		WHERE gateway_id = ? ORDER BY seq DESC LIMIT 1`, gatewayID))
	if errors.Is(err, sql.ErrNoRows) {
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
	rows, err := s.r.QueryContext(ctx, `SELECT gateway_id, MIN(seq), MAX(seq) FROM checkpoints GROUP BY gateway_id ORDER BY gateway_id`)
	if err != nil {
		return nil, fmt.Errorf("checkpoint chains: %w", err)
	}
	defer rows.Close()
	var out []record.ChainHead
	for rows.Next() {
		var h record.ChainHead
		if err := rows.Scan(&h.GatewayID, &h.First, &h.Last); err != nil {
			return nil, fmt.Errorf("checkpoint chains: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("checkpoint chains: %w", err)
	}
	return out, nil
}

// ListCheckpoints implements record.EvidenceReader.
func (s *Store) ListCheckpoints(ctx context.Context, f record.CheckpointFilter) ([]record.Checkpoint, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	q := `SELECT ` + checkpointCols + ` FROM checkpoints WHERE gateway_id = ? AND seq >= ?`
	args := []any{f.GatewayID, f.FromSeq}
	if !f.Since.IsZero() {
		q += ` AND ts >= ?`
		args = append(args, f.Since.UnixMicro())
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, record.EffectiveCheckpointLimit(f.Limit))
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var out []record.Checkpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	bySeq := make(map[int64]*record.Checkpoint, len(out))
	for i := range out {
		bySeq[out[i].Seq] = &out[i]
	}
	rows, err = s.r.QueryContext(ctx, `SELECT checkpoint_seq, session_id, last_seq, last_hash, ended_at
		FROM checkpoint_entries WHERE gateway_id = ? AND checkpoint_seq BETWEEN ? AND ?
		ORDER BY checkpoint_seq, session_id`, f.GatewayID, out[0].Seq, out[len(out)-1].Seq)
	if err != nil {
		return nil, fmt.Errorf("list checkpoint entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq   int64
			e     record.CheckpointEntry
			ended sql.NullInt64
		)
		if err := rows.Scan(&seq, &e.SessionID, &e.LastSeq, &e.LastHash, &ended); err != nil {
			return nil, fmt.Errorf("list checkpoint entries: %w", err)
		}
		e.EndedAt = fromNullMicros(ended)
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
	rows, err := s.r.QueryContext(ctx, `SELECT e.gateway_id, e.checkpoint_seq, c.hash FROM checkpoint_entries e
		JOIN checkpoints c ON c.gateway_id = e.gateway_id AND c.seq = e.checkpoint_seq
		WHERE e.session_id = ? ORDER BY e.gateway_id, e.checkpoint_seq`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("checkpoints naming %s: %w", sessionID, err)
	}
	defer rows.Close()
	var out []record.CheckpointRef
	for rows.Next() {
		var r record.CheckpointRef
		if err := rows.Scan(&r.GatewayID, &r.Seq, &r.Hash); err != nil {
			return nil, fmt.Errorf("checkpoints naming %s: %w", sessionID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("checkpoints naming %s: %w", sessionID, err)
	}
	return out, nil
}
