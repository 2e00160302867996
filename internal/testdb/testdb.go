// Package testdb gives each integration test its own database on a real
// server. It is only imported by tests.
//
// The server comes from GATEHOUSE_TEST_PG_DSN (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). When no
// server answers, the test fails with a message naming what to install or
// start; it is skipped only when GATEHOUSE_SKIP_INTEGRATION=1 is set
// explicitly.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresDSN is the local server used when GATEHOUSE_TEST_PG_DSN is unset.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminDSN returns the DSN of the PostgreSQL server used for tests.
func AdminDSN() string {
	if dsn := os.Getenv("GATEHOUSE_TEST_PG_DSN"); dsn != "" {
		return dsn
	}
	return DefaultPostgresDSN
}

// RequireIntegration skips the test only when the user opted out explicitly.
func RequireIntegration(t testing.TB) {
	t.Helper()
	if os.Getenv("GATEHOUSE_SKIP_INTEGRATION") == "1" {
		t.Skip("GATEHOUSE_SKIP_INTEGRATION=1: integration test skipped on request")
	}
}

// Postgres creates a fresh database for the calling test, drops it when the
// test ends, and returns a DSN that points at it.
func Postgres(t testing.TB) string {
	t.Helper()
	RequireIntegration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := AdminDSN()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testdb: cannot reach PostgreSQL at %s: %v\n"+
			"Install and start PostgreSQL (Debian: apt-get install postgresql; "+
			"pg_ctlcluster 15 main start) or set GATEHOUSE_TEST_PG_DSN.", redact(admin), err)
	}
	defer conn.Close(context.Background())

	sweepOnce.Do(func() { go sweepStale(admin) })
	name := "gh_test_" + randomSuffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// A busy server can take long to drop a database (DROP ... FORCE
		// waits for other backends to acknowledge a barrier, which a long
		// COPY elsewhere delays). That is not the test's failure: retry in
		// the background and leave what remains to the next run's sweep.
		if err := dropDatabase(admin, name, 20*time.Second); err != nil {
			t.Logf("testdb: drop database %s: %v (retrying in the background; the next run removes it if this process ends first)", name, err)
			go func() {
				for i := 0; i < 5; i++ {
					if dropDatabase(admin, name, time.Minute) == nil {
						return
					}
				}
			}()
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testdb: parse %s: %v", redact(admin), err)
	}
	u.Path = "/" + name
	return u.String()
}

// staleAfter is the age beyond which a test database is a leftover of an
// earlier run (no test runs this long).
const staleAfter = 2 * time.Hour

var sweepOnce sync.Once

// sweepStale drops test databases left by earlier runs, once per process.
// Their age is the modification time of their PG_VERSION file (written by
// CREATE DATABASE); databases of a run still going on are younger.
// Failures only mean the sweep waits for a later run.
func sweepStale(admin string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database
		WHERE datname LIKE 'gh\_test\_%'
		AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - $1::interval`,
		fmt.Sprintf("%d seconds", int(staleAfter.Seconds())))
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, n := range names {
		_ = dropDatabase(admin, n, time.Minute)
	}
}

// dropDatabase drops name with a timeout.
func dropDatabase(admin, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

func randomSuffix() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// redact hides the password of a DSN for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable DSN)"
	}
	return u.Redacted()
}

// Exec runs statements against dsn, failing the test on error.
func Exec(t testing.TB, dsn string, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testdb: connect %s: %v", redact(dsn), err)
	}
	defer conn.Close(context.Background())
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("testdb: %s: %v", s, err)
		}
	}
}

// DropRoleLater drops role (and what it owns in the server's default
// database) when the test ends. Like database cleanup, a slow server does
// not fail the test: the failure is logged.
func DropRoleLater(t testing.TB, role string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminDSN())
		if err != nil {
			t.Logf("testdb: drop role %s: %v", role, err)
			return
		}
		defer c.Close(context.Background())
		id := pgx.Identifier{role}.Sanitize()
		// Connections of the role may still be closing.
		_, _ = c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
		for _, q := range []string{"DROP OWNED BY " + id, "DROP ROLE IF EXISTS " + id} {
			if _, err := c.Exec(ctx, q); err != nil {
				t.Logf("testdb: %s: %v", q, err)
				return
			}
		}
	})
}
