package pgcatalog

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/testdb"
)

// fixture returns the SQL of the named groups of testdata/fixture.sql.
func fixture(t testing.TB, groups ...string) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/fixture.sql")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, part := range strings.Split(string(b), "-- group: ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		byName[strings.TrimSpace(name)] = body
	}
	var out []string
	for _, g := range groups {
		body, ok := byName[g]
		if !ok {
			t.Fatalf("fixture group %q not found", g)
		}
		out = append(out, body)
	}
	return out
}

// clock is a settable clock for Config.Clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// counting wraps a real pool and counts the catalog's queries by kind.
type counting struct {
	Querier
	loads, fingerprints, lookups atomic.Int64
	// gate, when set, holds each load after its functions query has run
	// (the backend has taken that query's snapshot) until a value is
	// received or gate is closed; arrived, when set, is signalled (without
	// blocking) as a load reaches the gate.
	gate    chan struct{}
	arrived chan struct{}
}

func (c *counting) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	switch sql {
	case functionsSQL:
		c.loads.Add(1)
		rows, err := c.Querier.Query(ctx, sql, args...)
		if err != nil || c.gate == nil {
			return rows, err
		}
		select {
		case c.arrived <- struct{}{}:
		default:
		}
		select {
		case <-c.gate:
			return rows, nil
		case <-ctx.Done():
			rows.Close()
			return nil, ctx.Err()
		}
	case relationsSQL, typesSQL:
		c.lookups.Add(1)
	}
	return c.Querier.Query(ctx, sql, args...)
}

func (c *counting) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if sql == fingerprintSQL {
		c.fingerprints.Add(1)
	}
	return c.Querier.QueryRow(ctx, sql, args...)
}

func pool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ConfigurePool(cfg)
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// database creates a fresh database holding the named fixture groups.
func database(t testing.TB, groups ...string) string {
	t.Helper()
	dsn := testdb.Postgres(t)
	if len(groups) > 0 {
		testdb.Exec(t, dsn, fixture(t, groups...)...)
	}
	return dsn
}

func newCatalog(t testing.TB, q Querier, clk *clock) *Catalog {
	t.Helper()
	cfg := Config{Querier: q}
	if clk != nil {
		cfg.Clock = clk.Now
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sessionPath opens a session, runs setup on it, and returns its search
// path as SearchPath reads it. The session stays open for the test (its
// temporary schema lives as long as it does).
func sessionPath(t testing.TB, dsn string, setup ...string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, s := range setup {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	path, err := SearchPath(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
