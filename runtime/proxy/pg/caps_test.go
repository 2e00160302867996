package pg_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
)

// TestSessionCaps: a session cannot make the gateway keep unbounded state:
// named prepared statements and portals are capped with a clear error, and
// what a session kept is freed when it ends.
func TestSessionCaps(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), func(c *pg.Config) { c.MaxStatements = 50; c.MaxPortals = 5 })
	c := connect(t, e.dsn(testToken))
	pc := c.PgConn()
	for i := 0; i < 50; i++ {
		if _, err := pc.Prepare(ctx, fmt.Sprintf("s%d", i), "SELECT 1", nil); err != nil {
			t.Fatalf("statement %d: %v", i, err)
		}
	}
	_, err := pc.Prepare(ctx, "one_too_many", "SELECT 1", nil)
	if pgCode(err) != "53400" || !strings.Contains(err.Error(), "50 prepared statements") {
		t.Fatalf("51st statement: got %v, want 53400 naming the bound", err)
	}
	// SQL-level PREPARE counts too; releasing one makes room.
	if _, err := c.Exec(ctx, "PREPARE sql1 AS SELECT 1", pgx.QueryExecModeSimpleProtocol); pgCode(err) != "53400" {
		t.Fatalf("PREPARE over the bound: %v", err)
	}
	if _, err := c.Exec(ctx, "DEALLOCATE s0", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "PREPARE sql1 AS SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("PREPARE after DEALLOCATE: %v", err)
	}
	// Cursors.
	if _, err := c.Exec(ctx, "BEGIN", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.Exec(ctx, fmt.Sprintf("DECLARE c%d CURSOR FOR SELECT 1", i), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("cursor %d: %v", i, err)
		}
	}
	if _, err := c.Exec(ctx, "DECLARE c5 CURSOR FOR SELECT 1", pgx.QueryExecModeSimpleProtocol); pgCode(err) != "53400" {
		t.Fatalf("6th cursor: %v", err)
	}
}

// TestSessionStateFreed: the texts of many prepared statements are freed
// with the session.
func TestSessionStateFreed(t *testing.T) {
	ctx := testCtx(t)
	hooks := newHooks()
	hooks.NoHistory = true
	e := startProxy(t, hooks, func(c *pg.Config) { c.MaxStatements = 5000 })
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	pc, err := pgconn.Connect(ctx, e.dsn(testToken))
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 4000)
	for i := 0; i < 2000; i++ {
		if _, err := pc.Prepare(ctx, fmt.Sprintf("big%d", i), fmt.Sprintf("SELECT '%s%d'", pad, i), nil); err != nil {
			t.Fatalf("statement %d: %v", i, err)
		}
	}
	during := heap()
	if during < before+8<<20 {
		t.Logf("heap grew only %d bytes for 8 MB of statements", during-before)
	}
	if err := pc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e.stop() // waits for the connection to be served to its end
	after := heap()
	t.Logf("heap: before %d, with 2000 statements %d, after close %d", before, during, after)
	if after > before+4<<20 {
		t.Fatalf("heap after the session ended is %d bytes above the start (%d with the session open): session state was not freed", after-before, during-before)
	}
}
