package e2e

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/server"
)

// TestRecorderFailureClosesTheDataPath: when the recording store fails
// (here a PostgreSQL store whose database stops accepting connections), the
// data path refuses commands with 57P03 instead of running them
// unrecorded, and serves again once the store is back.
func TestRecorderFailureClosesTheDataPath(t *testing.T) {
	storeDSN := testdb.Postgres(t)
	u, err := url.Parse(storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	storeDB := strings.TrimPrefix(u.Path, "/")
	g := startGateway(t, gatewayOptions{configure: func(cfg *server.Config) {
		cfg.Recording.Store = storeDSN
		cfg.Recording.FlushInterval = 5 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn := g.connect(t, ctx, "claude-coder", nil)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatalf("before the failure: %v", err)
	}

	admin, err := pgx.Connect(ctx, testdb.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	breakStore := func(broken bool) {
		t.Helper()
		allow := "true"
		if broken {
			allow = "false" // applies to superusers too, unlike CONNECTION LIMIT
		}
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{storeDB}.Sanitize()+" ALLOW_CONNECTIONS "+allow); err != nil {
			t.Fatal(err)
		}
		if broken {
			if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", storeDB); err != nil {
				t.Fatal(err)
			}
		}
	}
	breakStore(true)

	// Statements run (and queue their events) until the recorder has seen
	// its writes fail; from then on they are refused with 57P03.
	refused := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !refused; {
		err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n)
		var pe *pgconn.PgError
		switch {
		case err == nil:
			time.Sleep(20 * time.Millisecond)
		case errors.As(err, &pe) && pe.Code == "57P03":
			refused = true
		default:
			t.Fatalf("while the store fails: %v (want success until the failure is seen, then 57P03)", err)
		}
	}
	if !refused {
		t.Fatal("statements still ran a minute after the recording store stopped accepting connections")
	}
	// New sessions are refused too.
	cfg := g.connConfig(t, "claude-coder")
	if c, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		c.Close(ctx)
		t.Fatal("a new session was accepted while the recorder is unavailable")
	}

	breakStore(false)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the data path did not recover with the store: %v", err)
		}
	}
}
