package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/internal/rowcodec"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Interface guards.
var (
	_ record.Backend         = (*Store)(nil)
	_ record.Store           = (*Store)(nil)
	_ record.Reader          = (*Store)(nil)
	_ record.ApprovalStore   = (*Store)(nil)
	_ record.ApprovalWatcher = (*Store)(nil)
)

// Config configures a SQLite store. Validate fills defaults.
type Config struct {
	// Path of the database file; its directory is created if missing.
	Path string
	// ReadConns is the number of query-only connections (default 4).
	ReadConns int
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("%w: sqlite: path is required", record.ErrInvalid)
	}
	if strings.ContainsAny(c.Path, "?#\x00") {
		return fmt.Errorf("%w: sqlite: path %q contains '?', '#' or NUL", record.ErrInvalid, c.Path)
	}
	if c.ReadConns < 0 {
		return fmt.Errorf("%w: sqlite: negative read connections", record.ErrInvalid)
	}
	if c.ReadConns == 0 {
		c.ReadConns = 4
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Store is a record.Backend on one SQLite file. Safe for concurrent use.
type Store struct {
	w, r   *sql.DB
	log    *slog.Logger
	hub    *hub
	closed atomic.Bool

	// insFull and insOne insert insertChunk events and one event.
	insFull, insOne *sql.Stmt

	// known holds sessions found in the database by an earlier append, so
	// that later batches need not look them up again.
	knownMu sync.Mutex
	known   map[string]struct{}
}

const pragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)"

// Open opens (creating if needed) the database at cfg.Path and migrates
// its schema to the current version.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	w, err := sql.Open("sqlite", cfg.Path+"?"+pragmas)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", cfg.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, log: cfg.Logger.With("component", "record.sqlite"), hub: newHub()}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", cfg.Path, err)
	}
	if s.insFull, err = w.PrepareContext(ctx, insertSQL(insertChunk)); err == nil {
		s.insOne, err = w.PrepareContext(ctx, insertSQL(1))
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: prepare: %w", cfg.Path, err)
	}
	r, err := sql.Open("sqlite", cfg.Path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", cfg.Path, err)
	}
	r.SetMaxOpenConns(cfg.ReadConns)
	r.SetMaxIdleConns(cfg.ReadConns)
	s.r = r
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, i+1); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// DB returns the writer connection pool, for maintenance and tests.
func (s *Store) DB() *sql.DB { return s.w }

// Close closes the database. It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.hub.close()
	err := errors.Join(s.insFull.Close(), s.insOne.Close())
	err = errors.Join(err, s.w.Close())
	if s.r != nil {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

func (s *Store) check() error {
	if s.closed.Load() {
		return record.ErrClosed
	}
	return nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// CreateSession implements record.Store.
func (s *Store) CreateSession(ctx context.Context, sess *record.Session) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := record.ValidateSession(sess); err != nil {
		return err
	}
	claims, err := record.ClaimsJSON(sess.Claims)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO sessions (id, identity, identity_kind, groups_json, claims,
		resource, resource_type, client_addr, gateway_id, bundle_revision, started_at, ended_at, end_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		sess.ID, sess.Identity, sess.IdentityKind, rowcodec.Strings(sess.Groups), string(claims),
		sess.Resource, sess.ResourceType, sess.ClientAddr, sess.GatewayID, sess.BundleRevision,
		micros(record.Timestamp(sess.StartedAt)), nullMicros(record.Timestamp(sess.EndedAt)), sess.EndReason)
	if err != nil {
		return fmt.Errorf("create session %s: %w", sess.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("create session %s: %w", sess.ID, record.ErrAlreadyExists)
	}
	return nil
}

// EndSession implements record.Store.
func (s *Store) EndSession(ctx context.Context, id string, endedAt time.Time, reason string) error {
	if err := s.check(); err != nil {
		return err
	}
	if endedAt.IsZero() {
		return fmt.Errorf("%w: end session %s: zero time", record.ErrInvalid, id)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?`,
		micros(record.Timestamp(endedAt)), reason, id)
	if err != nil {
		return fmt.Errorf("end session %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("end session %s: %w", id, record.ErrNotFound)
	}
	return nil
}

// eventCols of one INSERT row, and rows per INSERT statement: one statement
// carries up to insertChunk events (19 parameters each, far below SQLite's
// limit of 32766), which costs much less per event than one Exec per row.
const (
	insertCols  = 19
	insertChunk = 32
)

// insertSQL returns the INSERT statement for n events.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (session_id, seq, ts, kind, protocol, command, facts,
		effect, rule_ids, bundle_revision, reason, approval_id, masked, duration_us, row_count, error_msg,
		results, prev_hash, hash) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	b.WriteString(` ON CONFLICT (session_id, seq) DO NOTHING`)
	return b.String()
}

// execStmt runs a store-level prepared statement in tx and returns the
// rows it affected.
func execStmt(ctx context.Context, tx *sql.Tx, st *sql.Stmt, args []any) (int64, error) {
	res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// AppendEvents implements record.Store.
func (s *Store) AppendEvents(ctx context.Context, events []record.Event) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	for i := range events {
		if err := record.ValidateEvent(&events[i]); err != nil {
			return err
		}
	}
	err := s.appendEvents(ctx, events, true)
	if err != nil && s.forgetSessions(events) {
		// A session this store had seen may be gone (deleted by another
		// writer of the file): check every session again.
		err = s.appendEvents(ctx, events, false)
	}
	return err
}

// appendEvents writes events in one transaction. With useKnown, sessions
// this store has already found are not looked up again.
func (s *Store) appendEvents(ctx context.Context, events []record.Event, useKnown bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer tx.Rollback()
	var found []string
	last := ""
	for i := range events {
		id := events[i].SessionID
		if id == last || (useKnown && s.knownSession(id)) || slices.Contains(found, id) {
			last = id
			continue
		}
		last = id
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("append events: session %s: %w", id, record.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("append events: %w", err)
		}
		found = append(found, id)
	}
	args := make([]any, 0, insertCols*min(len(events), insertChunk))
	for start := 0; start < len(events); start += insertChunk {
		chunk := events[start:min(start+insertChunk, len(events))]
		args = args[:0]
		for i := range chunk {
			e := &chunk[i]
			args = append(args, e.SessionID, e.Seq, micros(record.Timestamp(e.Time)), e.Kind,
				e.Protocol, e.Command, string(e.Facts), e.Effect, rowcodec.Strings(e.RuleIDs), e.BundleRevision,
				e.Reason, e.ApprovalID, e.Masked, e.DurationMicros, e.Rows, e.Error, string(e.Results),
				e.PrevHash, e.Hash)
		}
		// Full chunks use one statement prepared once per store; the rest
		// of a batch goes row by row, so no statement is parsed per batch.
		var n int64
		if len(chunk) == insertChunk {
			n, err = execStmt(ctx, tx, s.insFull, args)
		} else {
			for i := 0; i < len(args) && err == nil; i += insertCols {
				var one int64
				one, err = execStmt(ctx, tx, s.insOne, args[i:i+insertCols])
				n += one
			}
		}
		if err != nil {
			return fmt.Errorf("append events %s/%d..%s/%d: %w", chunk[0].SessionID, chunk[0].Seq,
				chunk[len(chunk)-1].SessionID, chunk[len(chunk)-1].Seq, err)
		}
		if n == int64(len(chunk)) {
			continue
		}
		// Some events were already stored: each must be stored exactly as
		// given (a retried batch), otherwise the chain was forked.
		for i := range chunk {
			e := &chunk[i]
			var h string
			if err := tx.QueryRowContext(ctx, `SELECT hash FROM events WHERE session_id = ? AND seq = ?`,
				e.SessionID, e.Seq).Scan(&h); err != nil {
				return fmt.Errorf("append event %s/%d: %w", e.SessionID, e.Seq, err)
			}
			if h != e.Hash {
				return fmt.Errorf("append event %s/%d: %w", e.SessionID, e.Seq, record.ErrConflict)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	s.rememberSessions(found)
	return nil
}

// maxKnownSessions bounds the set of sessions known to exist.
const maxKnownSessions = 1 << 14

func (s *Store) knownSession(id string) bool {
	s.knownMu.Lock()
	_, ok := s.known[id]
	s.knownMu.Unlock()
	return ok
}

func (s *Store) rememberSessions(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	if s.known == nil || len(s.known)+len(ids) > maxKnownSessions {
		s.known = make(map[string]struct{})
	}
	for _, id := range ids {
		s.known[id] = struct{}{}
	}
}

// forgetSessions drops the sessions of events from the known set and
// reports whether any was known.
func (s *Store) forgetSessions(events []record.Event) bool {
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	was := false
	for i := range events {
		if _, ok := s.known[events[i].SessionID]; ok {
			delete(s.known, events[i].SessionID)
			was = true
		}
	}
	return was
}

// forgetAllSessions empties the known set (sessions were deleted).
func (s *Store) forgetAllSessions() {
	s.knownMu.Lock()
	s.known = nil
	s.knownMu.Unlock()
}

const sessionCols = `id, identity, identity_kind, groups_json, claims, resource, resource_type, client_addr,
	gateway_id, bundle_revision, started_at, ended_at, end_reason`

func scanSession(row interface{ Scan(...any) error }) (record.Session, error) {
	var (
		sess           record.Session
		groups, claims string
		started        int64
		ended          sql.NullInt64
	)
	if err := row.Scan(&sess.ID, &sess.Identity, &sess.IdentityKind, &groups, &claims, &sess.Resource,
		&sess.ResourceType, &sess.ClientAddr, &sess.GatewayID, &sess.BundleRevision, &started, &ended,
		&sess.EndReason); err != nil {
		return sess, err
	}
	var err error
	if sess.Groups, err = rowcodec.ParseStrings(groups); err != nil {
		return sess, err
	}
	if sess.Claims, err = record.DecodeClaims([]byte(claims)); err != nil {
		return sess, err
	}
	sess.StartedAt = fromMicros(started)
	sess.EndedAt = fromNullMicros(ended)
	return sess, nil
}

// GetSession implements record.Reader.
func (s *Store) GetSession(ctx context.Context, id string) (record.Session, error) {
	if err := s.check(); err != nil {
		return record.Session{}, err
	}
	sess, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sess, fmt.Errorf("session %s: %w", id, record.ErrNotFound)
	}
	if err != nil {
		return sess, fmt.Errorf("session %s: %w", id, err)
	}
	return sess, nil
}

// ListSessions implements record.Reader.
func (s *Store) ListSessions(ctx context.Context, f record.SessionFilter) ([]record.Session, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if f.Offset < 0 {
		return nil, fmt.Errorf("%w: negative offset", record.ErrInvalid)
	}
	var where []string
	var args []any
	if f.Identity != "" {
		where = append(where, "identity = ?")
		args = append(args, f.Identity)
	}
	if f.Resource != "" {
		where = append(where, "resource = ?")
		args = append(args, f.Resource)
	}
	if !f.Since.IsZero() {
		where = append(where, "started_at >= ?")
		args = append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		where = append(where, "started_at < ?")
		args = append(args, f.Until.UnixMicro())
	}
	q := `SELECT ` + sessionCols + ` FROM sessions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
	args = append(args, record.EffectiveLimit(f.Limit), f.Offset)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []record.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

const eventCols = `e.session_id, e.seq, e.ts, e.kind, e.protocol, e.command, e.facts, e.effect, e.rule_ids,
	e.bundle_revision, e.reason, e.approval_id, e.masked, e.duration_us, e.row_count, e.error_msg, e.results,
	e.prev_hash, e.hash`

func scanEvents(rows *sql.Rows) ([]record.Event, error) {
	defer rows.Close()
	var out []record.Event
	for rows.Next() {
		var (
			e                       record.Event
			ts                      int64
			facts, ruleIDs, results string
		)
		if err := rows.Scan(&e.SessionID, &e.Seq, &ts, &e.Kind, &e.Protocol, &e.Command, &facts, &e.Effect,
			&ruleIDs, &e.BundleRevision, &e.Reason, &e.ApprovalID, &e.Masked, &e.DurationMicros, &e.Rows,
			&e.Error, &results, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		var err error
		if e.RuleIDs, err = rowcodec.ParseStrings(ruleIDs); err != nil {
			return nil, err
		}
		e.Time = fromMicros(ts)
		e.Facts = rowcodec.RawJSON(facts)
		e.Results = rowcodec.RawJSON(results)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Events implements record.Reader.
func (s *Store) Events(ctx context.Context, sessionID string) ([]record.Event, error) {
	if _, err := s.GetSession(ctx, sessionID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventCols+` FROM events e WHERE e.session_id = ? ORDER BY e.seq`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", sessionID, err)
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", sessionID, err)
	}
	return evs, nil
}

// QueryEvents implements record.Reader.
func (s *Store) QueryEvents(ctx context.Context, f record.EventFilter) ([]record.Event, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	join := false
	if f.Identity != "" {
		where = append(where, "s.identity = ?")
		args = append(args, f.Identity)
		join = true
	}
	if f.Resource != "" {
		where = append(where, "s.resource = ?")
		args = append(args, f.Resource)
		join = true
	}
	if !f.Since.IsZero() {
		where = append(where, "e.ts >= ?")
		args = append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		where = append(where, "e.ts < ?")
		args = append(args, f.Until.UnixMicro())
	}
	if f.Effect != "" {
		where = append(where, "e.effect = ?")
		args = append(args, f.Effect)
	}
	if f.RuleID != "" {
		where = append(where, "e.rule_ids <> '' AND EXISTS (SELECT 1 FROM json_each(e.rule_ids) WHERE json_each.value = ?)")
		args = append(args, f.RuleID)
	}
	q := `SELECT ` + eventCols + ` FROM events e`
	if join {
		q += ` JOIN sessions s ON s.id = e.session_id`
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY e.ts, e.session_id, e.seq LIMIT ?"
	args = append(args, record.EffectiveLimit(f.Limit))
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return evs, nil
}

// DeleteBefore implements record.Reader.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?`, t.UnixMicro())
	s.forgetAllSessions()
	if err != nil {
		return 0, fmt.Errorf("delete sessions before %s: %w", t.Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete sessions: %w", err)
	}
	return n, nil
}
