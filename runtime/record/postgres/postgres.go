package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/internal/rowcodec"
)

// Interface guards.
var (
	_ record.Backend         = (*Store)(nil)
	_ record.Store           = (*Store)(nil)
	_ record.Reader          = (*Store)(nil)
	_ record.ApprovalStore   = (*Store)(nil)
	_ record.ApprovalWatcher = (*Store)(nil)
)

// DefaultSchema is the schema used when Config.Schema is empty.
const DefaultSchema = "gatehouse"

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Config configures a PostgreSQL store. Validate fills defaults.
type Config struct {
	// DSN is a libpq-style URL or keyword/value string. Required.
	DSN string
	// Schema holds the tables (default "gatehouse"); created if missing.
	// Lowercase letters, digits and underscores, at most 40 characters.
	Schema string
	// MaxConns bounds the pool (default: pgxpool's default).
	MaxConns int32
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// LogValue keeps the DSN (which may hold a password) out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("dsn", "REDACTED"), slog.String("schema", c.Schema))
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.DSN == "" {
		return fmt.Errorf("%w: postgres: dsn is required", record.ErrInvalid)
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if !schemaRE.MatchString(c.Schema) {
		return fmt.Errorf("%w: postgres: schema %q (want [a-z_][a-z0-9_]*, at most 40 characters)", record.ErrInvalid, c.Schema)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("%w: postgres: negative max conns", record.ErrInvalid)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Store is a record.Backend on a PostgreSQL schema. Safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	channel string
	log     *slog.Logger
	closed  atomic.Bool

	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

// Open connects, creates the schema if needed and migrates it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// The parse error may quote the DSN; do not pass it on.
		return nil, fmt.Errorf("%w: postgres: cannot parse dsn", record.ErrInvalid)
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	s := &Store{
		pool: pool, schema: cfg.Schema, channel: cfg.Schema + "_approvals",
		log:      cfg.Logger.With("component", "record.postgres"),
		watchers: make(map[*watcher]struct{}),
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	schema := pgx.Identifier{s.schema}.Sanitize()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "gatehouse.record."+s.schema); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+schema); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
			return fmt.Errorf("migrate: read version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("migrate: database schema version %d is newer than this binary (%d)", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, i+1); err != nil {
				return fmt.Errorf("migrate to version %d: %w", i+1, err)
			}
		}
		return nil
	})
}

// Pool returns the connection pool (search_path set to the schema), for
// maintenance and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the watchers and closes the pool. It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	for w := range s.watchers {
		w.cancel()
	}
	s.mu.Unlock()
	s.pool.Close()
	return nil
}

func (s *Store) check() error {
	if s.closed.Load() {
		return record.ErrClosed
	}
	return nil
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = record.Timestamp(t)
	return &t
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
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
	tag, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, identity, identity_kind, groups_json, claims,
		resource, resource_type, client_addr, gateway_id, bundle_revision, started_at, ended_at, end_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING`,
		sess.ID, sess.Identity, sess.IdentityKind, rowcodec.Strings(sess.Groups), string(claims),
		sess.Resource, sess.ResourceType, sess.ClientAddr, sess.GatewayID, sess.BundleRevision,
		record.Timestamp(sess.StartedAt), nullTime(sess.EndedAt), sess.EndReason)
	if err != nil {
		return fmt.Errorf("create session %s: %w", sess.ID, err)
	}
	if tag.RowsAffected() == 0 {
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
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3`,
		record.Timestamp(endedAt), reason, id)
	if err != nil {
		return fmt.Errorf("end session %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("end session %s: %w", id, record.ErrNotFound)
	}
	return nil
}

const insertEvents = `INSERT INTO events (session_id, seq, ts, kind, protocol, command, facts, effect,
	rule_ids, bundle_revision, reason, approval_id, masked, duration_us, row_count, error_msg, results,
	prev_hash, hash)
	SELECT * FROM unnest($1::text[], $2::int8[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bool[], $14::int8[],
		$15::int8[], $16::text[], $17::text[], $18::text[], $19::text[])
	ON CONFLICT (session_id, seq) DO NOTHING`

const conflictingEvent = `SELECT x.sid, x.seq FROM unnest($1::text[], $2::int8[], $3::text[]) AS x(sid, seq, hash)
	JOIN events e ON e.session_id = x.sid AND e.seq = x.seq WHERE e.hash <> x.hash LIMIT 1`

// AppendEvents implements record.Store with one INSERT per batch.
func (s *Store) AppendEvents(ctx context.Context, events []record.Event) error {
	if err := s.check(); err != nil {
		return err
	}
	n := len(events)
	if n == 0 {
		return nil
	}
	var (
		sid, kind, proto, cmd, facts, effect, rules, rev, reason, appr, errs, results, prev, hash = make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n)
		seq, dur, rows = make([]int64, n), make([]int64, n), make([]int64, n)
		ts             = make([]time.Time, n)
		masked         = make([]bool, n)
	)
	for i := range events {
		e := &events[i]
		if err := record.ValidateEvent(e); err != nil {
			return err
		}
		sid[i], seq[i], ts[i], kind[i], proto[i], cmd[i] = e.SessionID, e.Seq, record.Timestamp(e.Time), e.Kind, e.Protocol, e.Command
		facts[i], effect[i], rules[i], rev[i], reason[i] = string(e.Facts), e.Effect, rowcodec.Strings(e.RuleIDs), e.BundleRevision, e.Reason
		appr[i], masked[i], dur[i], rows[i], errs[i] = e.ApprovalID, e.Masked, e.DurationMicros, e.Rows, e.Error
		results[i], prev[i], hash[i] = string(e.Results), e.PrevHash, e.Hash
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, insertEvents, sid, seq, ts, kind, proto, cmd, facts, effect, rules, rev,
			reason, appr, masked, dur, rows, errs, results, prev, hash)
		if err != nil {
			if pgCode(err) == "23503" {
				return fmt.Errorf("append events: session missing: %w", record.ErrNotFound)
			}
			return fmt.Errorf("append events: %w", err)
		}
		if tag.RowsAffected() == int64(n) {
			return nil
		}
		var bad string
		var badSeq int64
		err = tx.QueryRow(ctx, conflictingEvent, sid, seq, hash).Scan(&bad, &badSeq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // all skipped rows were identical retries
		}
		if err != nil {
			return fmt.Errorf("append events: %w", err)
		}
		return fmt.Errorf("append event %s/%d: %w", bad, badSeq, record.ErrConflict)
	})
	return err
}

const sessionCols = `id, identity, identity_kind, groups_json, claims, resource, resource_type, client_addr,
	gateway_id, bundle_revision, started_at, ended_at, end_reason`

func scanSession(row pgx.Row) (record.Session, error) {
	var (
		sess           record.Session
		groups, claims string
		ended          *time.Time
	)
	if err := row.Scan(&sess.ID, &sess.Identity, &sess.IdentityKind, &groups, &claims, &sess.Resource,
		&sess.ResourceType, &sess.ClientAddr, &sess.GatewayID, &sess.BundleRevision, &sess.StartedAt, &ended,
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
	sess.StartedAt = sess.StartedAt.UTC()
	sess.EndedAt = fromNull(ended)
	return sess, nil
}

// GetSession implements record.Reader.
func (s *Store) GetSession(ctx context.Context, id string) (record.Session, error) {
	if err := s.check(); err != nil {
		return record.Session{}, err
	}
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return sess, fmt.Errorf("session %s: %w", id, record.ErrNotFound)
	}
	if err != nil {
		return sess, fmt.Errorf("session %s: %w", id, err)
	}
	return sess, nil
}

type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(w.args))))
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func (w *where) next(arg any) string {
	w.args = append(w.args, arg)
	return fmt.Sprintf("$%d", len(w.args))
}

// ListSessions implements record.Reader.
func (s *Store) ListSessions(ctx context.Context, f record.SessionFilter) ([]record.Session, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if f.Offset < 0 {
		return nil, fmt.Errorf("%w: negative offset", record.ErrInvalid)
	}
	var w where
	if f.Identity != "" {
		w.add("identity = ?", f.Identity)
	}
	if f.Resource != "" {
		w.add("resource = ?", f.Resource)
	}
	if !f.Since.IsZero() {
		w.add("started_at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		w.add("started_at < ?", f.Until)
	}
	q := `SELECT ` + sessionCols + ` FROM sessions` + w.sql() + ` ORDER BY started_at DESC, id DESC`
	q += ` LIMIT ` + w.next(record.EffectiveLimit(f.Limit)) + ` OFFSET ` + w.next(f.Offset)
	rows, err := s.pool.Query(ctx, q, w.args...)
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

func scanEvents(rows pgx.Rows) ([]record.Event, error) {
	defer rows.Close()
	var out []record.Event
	for rows.Next() {
		var (
			e                       record.Event
			facts, ruleIDs, results string
		)
		if err := rows.Scan(&e.SessionID, &e.Seq, &e.Time, &e.Kind, &e.Protocol, &e.Command, &facts, &e.Effect,
			&ruleIDs, &e.BundleRevision, &e.Reason, &e.ApprovalID, &e.Masked, &e.DurationMicros, &e.Rows,
			&e.Error, &results, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		var err error
		if e.RuleIDs, err = rowcodec.ParseStrings(ruleIDs); err != nil {
			return nil, err
		}
		e.Time = e.Time.UTC()
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
	rows, err := s.pool.Query(ctx, `SELECT `+eventCols+` FROM events e WHERE e.session_id = $1 ORDER BY e.seq`, sessionID)
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
	var w where
	join := false
	if f.Identity != "" {
		w.add("s.identity = ?", f.Identity)
		join = true
	}
	if f.Resource != "" {
		w.add("s.resource = ?", f.Resource)
		join = true
	}
	if !f.Since.IsZero() {
		w.add("e.ts >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		w.add("e.ts < ?", f.Until)
	}
	if f.Effect != "" {
		w.add("e.effect = ?", f.Effect)
	}
	if f.RuleID != "" {
		w.add("e.rule_ids <> '' AND e.rule_ids::jsonb @> jsonb_build_array(?::text)", f.RuleID)
	}
	q := `SELECT ` + eventCols + ` FROM events e`
	if join {
		q += ` JOIN sessions s ON s.id = e.session_id`
	}
	q += w.sql() + ` ORDER BY e.ts, e.session_id, e.seq LIMIT ` + w.next(record.EffectiveLimit(f.Limit))
	rows, err := s.pool.Query(ctx, q, w.args...)
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("delete sessions before %s: %w", t.Format(time.RFC3339), err)
	}
	return tag.RowsAffected(), nil
}
