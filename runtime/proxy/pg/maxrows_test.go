package pg_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A statement limited by max_rows delivers the rows up to the limit, then
// fails with SQLSTATE 54000; the session stays usable and the outcome is
// reported to the hooks as an error.
func TestMaxRowsCutsResult(t *testing.T) {
	t.Parallel()
	hooks := newHooks()
	hooks.MaxRows = 5
	e := startProxy(t, hooks, nil)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		conn := connect(t, e.dsn(testToken))
		rows, err := conn.Query(ctx, "SELECT g FROM generate_series(1, 20) AS g", mode)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		err = rows.Err()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "54000" {
			t.Fatalf("mode %v: err = %v, want SQLSTATE 54000", mode, err)
		}
		if n != 5 {
			t.Fatalf("mode %v: got %d rows before the cut, want 5", mode, n)
		}
		var one int
		if err := conn.QueryRow(ctx, "SELECT g FROM generate_series(1, 3) AS g LIMIT 1", mode).Scan(&one); err != nil || one != 1 {
			t.Fatalf("mode %v: session unusable after the cut: %v", mode, err)
		}
		conn.Close(ctx)
	}
}
