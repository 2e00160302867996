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

	"net/url"
	"os"
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

	name := "gh_test_" + randomSuffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testdb: parse %s: %v", redact(admin), err)
	}
	u.Path = "/" + name
	return u.String()
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
