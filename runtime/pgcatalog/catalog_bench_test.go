package pgcatalog

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/testdb"
)

const (
	benchFunctions = 1000
	benchTables    = 10000
)

// benchDatabase returns a database with benchFunctions user functions and
// benchTables tables (each with a primary key index and a TOAST table, so
// pg_class holds four times as many rows). Building it takes minutes on a
// loaded machine; GATEHOUSE_PGCATALOG_BENCH_DSN names one built before
// (the same SQL) to skip that.
func benchDatabase(b *testing.B) string {
	if dsn := os.Getenv("GATEHOUSE_PGCATALOG_BENCH_DSN"); dsn != "" {
		return dsn
	}
	dsn := bigDatabase(b)
	start := time.Now()
	testdb.Exec(b, dsn, fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP
		EXECUTE format('CREATE FUNCTION public.uf_%%s(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS ''SELECT $1 + %%s''', i, i);
		END LOOP; END $$`, benchFunctions))
	// Batches of 100 tables, each its own transaction (within the lock
	// table's default size) and its own Exec (within its time bound).
	for lo := 1; lo <= benchTables; lo += 100 {
		testdb.Exec(b, dsn, fmt.Sprintf(`DO $$ BEGIN FOR i IN %d..%d LOOP
			EXECUTE format('CREATE TABLE public.t_%%s (id integer PRIMARY KEY, v text)', i);
			END LOOP; END $$`, lo, min(lo+99, benchTables)))
	}
	b.Logf("built %d functions and %d tables in %v", benchFunctions, benchTables, time.Since(start).Round(time.Second))
	return dsn
}

// bigDatabase is testdb.Postgres with more time to drop the database:
// dropping 40,000 relations can take longer than testdb allows.
func bigDatabase(b *testing.B) string {
	testdb.RequireIntegration(b)
	admin := testdb.AdminDSN()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		b.Fatalf("cannot reach the test PostgreSQL server: %v (install and start PostgreSQL, or set GATEHOUSE_TEST_PG_DSN)", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("gh_bench_pgcatalog_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			b.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			b.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func BenchmarkCatalog(b *testing.B) {
	dsn := benchDatabase(b)
	b.Run("pool=configured", func(b *testing.B) { benchCatalog(b, pool(b, dsn)) })
	b.Run("pool=default", func(b *testing.B) {
		p, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		benchCatalog(b, p)
	})
}

func benchCatalog(b *testing.B, q Querier) {
	ctx := context.Background()
	path := []string{"pg_catalog", "public"}

	// The cost of any query on this machine, for scale.
	b.Run("RoundTrip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var one int
			if err := q.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("Probe", func(b *testing.B) {
		c, err := New(Config{Querier: q})
		if err != nil {
			b.Fatal(err)
		}
		p := &probe{funcSchema: []string{""}, funcName: []string{"no_such_function"},
			typeSchema: []string{""}, typeName: []string{"no_such_function"}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.probe(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := load(ctx, q, DefaultMaxNames); err != nil {
				b.Fatal(err)
			}
		}
	})

	for _, cached := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("Fingerprint/cached=%d", cached), func(b *testing.B) {
			names := make([]string, cached)
			for i := range names {
				names[i] = fmt.Sprintf("t_%d", i+1)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := queryFingerprint(ctx, q, names, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	b.Run("LookupRelations/10", func(b *testing.B) {
		s, err := load(ctx, q, DefaultMaxNames)
		if err != nil {
			b.Fatal(err)
		}
		names := make([]string, 10)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			for j := range names {
				names[j] = fmt.Sprintf("t_%d", i%benchTables+1)
				i++
			}
			if _, _, err := s.lookupRelations(ctx, q, names); err != nil {
				b.Fatal(err)
			}
			s.rels = newNameCache(DefaultMaxNames)
		}
	})

	// Warm: the snapshot is fresh and the names cached; this is the cost
	// Judge adds to a statement in the steady state.
	warm := func(name string, req Request) {
		b.Run("JudgeWarm/"+name, func(b *testing.B) {
			c, err := New(Config{Querier: q, RefreshInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Judge(ctx, &req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Judge(ctx, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	warm("builtins", Request{
		Functions:  []string{"lower", "count", "now"},
		Operators:  []string{"=", ">"},
		Tables:     []string{"t_1", "t_2", "public.t_3"},
		SearchPath: path,
	})
	// A name the snapshot does not know costs a probe query per Judge.
	warm("unknown-function", Request{
		Functions:  []string{"lower", "no_such_function"},
		Tables:     []string{"t_1"},
		SearchPath: path,
	})
	warm("user-function", Request{
		Functions:  []string{"uf_42", "lower"},
		Operators:  []string{"="},
		Tables:     []string{"t_1"},
		SearchPath: path,
	})
}
