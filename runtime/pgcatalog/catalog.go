package pgcatalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrUnavailable wraps every failure to read the backend's catalog
	// (unreachable server, failed query, cancelled context). The caller
	// fails closed: a statement that cannot be judged is denied.
	ErrUnavailable = errors.New("backend catalog unavailable")
	// ErrName reports a name in a Request that PostgreSQL could not accept
	// either (empty, or more than three dotted parts); the caller denies.
	ErrName = errors.New("invalid name")
	// ErrInvalid reports an invalid Config.
	ErrInvalid = errors.New("invalid catalog configuration")
)

// Querier is what the catalog needs from the backend: *pgxpool.Pool and
// *pgx.Conn satisfy it. A *pgx.Conn is not safe for concurrent use; give
// a Catalog a pool when Judge runs concurrently.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ConfigurePool prepares the configuration of a pool dedicated to a
// Catalog: its sessions plan the catalog's prepared queries once
// (plan_cache_mode=force_generic_plan). Left to choose, PostgreSQL replans
// them on every execution because their array parameters make each custom
// plan look cheaper; planning is most of their cost (a probe takes about
// 0.2 ms with a generic plan, 1.5 ms or more replanned, on the reference
// machine). Judge is correct on any pool; this only makes it cheaper.
func ConfigurePool(cfg *pgxpool.Config) {
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
}

// DefaultRefreshInterval is how often, at most, Judge checks whether the
// backend's catalog changed.
const DefaultRefreshInterval = 2 * time.Second

// DefaultMaxNames bounds each lazily filled name cache (relations, types).
// The fingerprint query probes every cached name, so its cost grows with
// this bound (about 15 µs per name on the development machine under load).
const DefaultMaxNames = 1000

// Config configures a Catalog.
type Config struct {
	// Querier reaches the backend (required). The catalog tables it reads
	// (pg_proc, pg_operator, pg_cast, pg_namespace, pg_class, pg_type) are
	// readable by every role.
	Querier Querier
	// Clock defaults to time.Now.
	Clock func() time.Time
	// RefreshInterval is the longest time a snapshot is used without
	// checking the backend's fingerprint (default DefaultRefreshInterval).
	RefreshInterval time.Duration
	// MaxNames bounds the relation and type name caches (default
	// DefaultMaxNames); a full cache is emptied and refilled on demand.
	MaxNames int
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Querier == nil {
		return fmt.Errorf("%w: querier is required", ErrInvalid)
	}
	if c.RefreshInterval < 0 || c.MaxNames < 0 {
		return fmt.Errorf("%w: negative refresh interval or cache size", ErrInvalid)
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxNames == 0 {
		c.MaxNames = DefaultMaxNames
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Catalog answers, for one PostgreSQL database, what the backend resolves
// the names of a statement to. It is safe for concurrent use.
type Catalog struct {
	cfg Config

	mu sync.Mutex
	// snap is the current snapshot; nil before the first load.
	snap *snapshot
	// snapGen is the invalidation generation snap was loaded in; snap is
	// usable only while snapGen == gen.
	snapGen, gen uint64
	// checkedAt and checkedSeq tell when and by which check snap was last
	// confirmed to match the backend.
	checkedAt  time.Time
	checkedSeq uint64
	// seq numbers checks in the order they start.
	seq uint64
	// flight is the check or load in progress, if any; one at a time.
	flight *flight
}

type flight struct {
	seq  uint64
	done chan struct{}
	err  error
}

// New validates cfg and returns a Catalog. It opens nothing and starts
// nothing: the first Judge loads the snapshot.
func New(cfg Config) (*Catalog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Logger = cfg.Logger.With("component", "pgcatalog")
	return &Catalog{cfg: cfg}, nil
}

// Invalidate makes the next Judge reload the snapshot without comparing
// fingerprints, and makes a load already in progress count as stale. The
// gateway calls it after forwarding DDL, so its own sessions' changes are
// seen by their next statement.
func (c *Catalog) Invalidate() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// nextSeq returns the sequence number the next check will get: a snapshot
// confirmed by a check numbered at least this reflects the backend as it
// was after this call.
func (c *Catalog) nextSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq + 1
}

// current returns a snapshot the caller may judge with. With need == 0 the
// snapshot is fresh when it was checked less than RefreshInterval ago; with
// need > 0 it must have been confirmed by a check numbered at least need,
// that is one that started after the caller asked for it. At most one
// check or load runs at a time; other callers wait for it (or their ctx).
func (c *Catalog) current(ctx context.Context, need uint64) (*snapshot, uint64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		c.mu.Lock()
		if s := c.snap; s != nil && c.snapGen == c.gen {
			fresh := c.checkedSeq >= need
			if need == 0 {
				fresh = c.cfg.Clock().Sub(c.checkedAt) < c.cfg.RefreshInterval
			}
			if fresh {
				seq := c.checkedSeq
				c.mu.Unlock()
				return s, seq, nil
			}
		}
		if f := c.flight; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, 0, fmt.Errorf("%w: wait for catalog load: %w", ErrUnavailable, ctx.Err())
			}
			// The leader's own context may have ended its work; ours
			// decides whether to try again.
			if f.err != nil && ctx.Err() == nil && !isContextError(f.err) {
				return nil, 0, f.err
			}
			continue
		}
		c.seq++
		f := &flight{seq: c.seq, done: make(chan struct{})}
		c.flight = f
		gen := c.gen
		var old *snapshot
		if c.snap != nil && c.snapGen == gen {
			old = c.snap
		}
		c.mu.Unlock()

		started := c.cfg.Clock()
		s, err := c.refresh(ctx, old)

		c.mu.Lock()
		c.flight = nil
		f.err = err
		if err == nil {
			if s != c.snap {
				c.snap, c.snapGen = s, gen
			}
			if c.snapGen == gen {
				c.checkedAt, c.checkedSeq = started, f.seq
			}
		}
		close(f.done)
		c.mu.Unlock()
		if err != nil {
			return nil, 0, err
		}
		if gen != c.generation() {
			// Invalidated while loading: what was read may predate the
			// DDL that caused it; load again.
			continue
		}
		return s, f.seq, nil
	}
}

func (c *Catalog) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// refresh confirms old against the backend's fingerprint, returning old
// when nothing changed, or loads a new snapshot.
func (c *Catalog) refresh(ctx context.Context, old *snapshot) (*snapshot, error) {
	if old != nil {
		relNames, relSum := old.rels.state()
		typNames, typSum := old.types.state()
		fp, err := queryFingerprint(ctx, c.cfg.Querier, relNames, typNames)
		if err != nil {
			return nil, err
		}
		if fp.catalog == old.fp && fp.rels == relSum && fp.types == typSum {
			return old, nil
		}
		c.cfg.Logger.DebugContext(ctx, "Catalog changed; reloading.")
	}
	s, err := load(ctx, c.cfg.Querier, c.cfg.MaxNames)
	if err != nil {
		return nil, err
	}
	c.cfg.Logger.DebugContext(ctx, "Catalog loaded.",
		"schemas", len(s.schemas), "functions", s.nfuncs, "operators", s.nops,
		"casts", len(s.casts), "builtin_functions", len(s.builtinFuncs))
	return s, nil
}

// SearchPath returns the effective search path of the session q is
// connected to, as PostgreSQL resolves it for that session: the schemas of
// current_schemas(true), in order, with "$user" expanded, schemas that do
// not exist left out, and the implicit pg_catalog and temporary schema at
// the places PostgreSQL searches them. Run it on the backend session whose
// statements are judged (its role and search_path matter), again after
// anything that may change it (SET search_path, SET ROLE, creating the
// first temporary object, DISCARD).
func SearchPath(ctx context.Context, q Querier) ([]string, error) {
	var path []string
	if err := q.QueryRow(ctx, searchPathSQL).Scan(&path); err != nil {
		return nil, fmt.Errorf("%w: current_schemas: %w", ErrUnavailable, err)
	}
	return path, nil
}
