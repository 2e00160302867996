package pg_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/internal/testdb"
)

func TestCopyBothWays(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	testdb.Exec(t, e.backend, "CREATE TABLE c (id int, note text)")
	c := connect(t, e.dsn(testToken))
	rows := [][]any{{1, "plain"}, {2, "has s3cr3t inside"}, {3, nil}}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "note"}, pgx.CopyFromRows(rows))
	if err != nil || n != 3 {
		t.Fatalf("CopyFrom: %d %v", n, err)
	}
	var buf bytes.Buffer
	tag, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT id, note FROM c ORDER BY id) TO STDOUT")
	if err != nil || tag.RowsAffected() != 3 {
		t.Fatalf("CopyTo: %v %v", tag, err)
	}
	want := "1\tplain\n2\thas *** inside\n3\t\\N\n"
	if buf.String() != want {
		t.Fatalf("COPY TO output %q, want %q", buf.String(), want)
	}
	// The backend really holds the secret: only the client view is rewritten.
	var note string
	direct := connect(t, e.backend)
	if err := direct.QueryRow(ctx, "SELECT note FROM c WHERE id = 2").Scan(&note); err != nil || note != "has s3cr3t inside" {
		t.Fatalf("stored %q %v", note, err)
	}
	// A denied COPY FROM never reaches the backend.
	_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("9\tx\n"), "COPY c FROM STDIN -- DENYME")
	if pgCode(err) != "42501" {
		t.Fatalf("denied COPY: %v", err)
	}
	var count int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM c").Scan(&count); err != nil || count != 3 {
		t.Fatalf("count %d %v", count, err)
	}
}

func psqlEnv(token string) []string {
	env := []string{"PGPASSWORD=" + token, "PGCONNECT_TIMEOUT=20"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func runPsql(t *testing.T, e *proxyEnv, args ...string) (string, error) {
	t.Helper()
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql not found: install the PostgreSQL client (Debian: apt-get install postgresql-client)")
	}
	host, port, _ := net.SplitHostPort(e.addr)
	conn := "host=" + host + " port=" + port + " user=agent dbname=" + e.db + " sslmode=disable"
	cmd := exec.CommandContext(testCtx(t), psql, append([]string{conn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)...)
	cmd.Env = psqlEnv(testToken)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPsql(t *testing.T) {
	t.Parallel()
	e := startProxy(t, newHooks(), nil)
	testdb.Exec(t, e.backend, "CREATE TABLE p (id int, email text)")
	out, err := runPsql(t, e, "-c", "SELECT 40 + 2")
	if err != nil || strings.TrimSpace(out) != "42" {
		t.Fatalf("psql select: %q %v", out, err)
	}
	out, err = runPsql(t, e, "-c", "SELECT 'DENYME'")
	if err == nil || !strings.Contains(out, "permission denied by gatehouse policy") {
		t.Fatalf("psql denied: %q %v", out, err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("1,a@example.com\n2,b@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runPsql(t, e, "-c", `\copy p FROM '`+in+`' WITH (FORMAT csv)`); err != nil {
		t.Fatalf("psql copy in: %q %v", out, err)
	}
	outFile := filepath.Join(dir, "out.csv")
	if out, err := runPsql(t, e, "-c", `\copy (SELECT id, email FROM p ORDER BY id) TO '`+outFile+`' WITH (FORMAT csv)`); err != nil {
		t.Fatalf("psql copy out: %q %v", out, err)
	}
	got, err := os.ReadFile(outFile)
	if err != nil || string(got) != "1,a@example.com\n2,b@example.com\n" {
		t.Fatalf("copy out file %q %v", got, err)
	}
	out, err = runPsql(t, e, "-c", "SELECT email FROM p ORDER BY id")
	if err != nil || strings.TrimSpace(out) != "***\n***" {
		t.Fatalf("psql masked select: %q %v", out, err)
	}
	// Wrong password: psql reports an authentication failure.
	host, port, _ := net.SplitHostPort(e.addr)
	cmd := exec.Command("psql", "host="+host+" port="+port+" user=agent dbname="+e.db+" sslmode=disable", "-X", "-c", "SELECT 1")
	cmd.Env = psqlEnv("bad-token")
	o, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(o), "password authentication failed") {
		t.Fatalf("psql bad token: %q %v", o, err)
	}
}

// rawCancel sends a CancelRequest to addr and waits until the gateway closes
// the connection, which it does after handling the request.
func rawCancel(t *testing.T, addr string, pid uint32, secret []byte) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatal(err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	c := connect(t, e.dsn(testToken))
	admin := connect(t, e.backend)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "SELECT pg_sleep(60) -- cancel me")
		done <- err
	}()
	active := func() bool {
		var n int
		err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%-- cancel me'").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	for !active() {
		if ctx.Err() != nil {
			t.Fatal("query never became active")
		}
		runtime.Gosched()
	}
	pid := c.PgConn().PID()
	key := c.PgConn().SecretKey()
	wrong := append([]byte(nil), key...)
	wrong[0] ^= 0xff
	rawCancel(t, e.addr, pid, wrong)
	rawCancel(t, e.addr, pid+1, key)
	if !active() {
		t.Fatal("a forged cancel request cancelled the query")
	}
	select {
	case err := <-done:
		t.Fatalf("query ended after forged cancels: %v", err)
	default:
	}
	if err := c.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; pgCode(err) != "57014" {
		t.Fatalf("cancelled query: got %v, want 57014", err)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestDeniedTextNeverReachesBackend(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	c := connect(t, e.dsn(testToken))
	admin := connect(t, e.backend)
	var backendPID int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backendPID); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		if _, err := c.Exec(ctx, "SELECT 'DENYME secret text'", mode); pgCode(err) != "42501" {
			t.Fatalf("%v: %v", mode, err)
		}
		var last string
		if err := admin.QueryRow(ctx, "SELECT query FROM pg_stat_activity WHERE pid = $1", backendPID).Scan(&last); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(last, "DENYME") || !strings.Contains(last, "statement denied by policy") {
			t.Fatalf("%v: backend's last statement %q", mode, last)
		}
	}
}

// rawStartup writes a startup message for user/database.
func rawStartup(db string) []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "agent", "database": db}}).Encode(nil)
	return b
}

func TestStartupRefusals(t *testing.T) {
	t.Parallel()
	e := startProxy(t, newHooks(), nil)
	cases := []struct {
		name string
		send []byte
		want string // substring of the response
	}{
		{"protocol_2", func() []byte {
			b := make([]byte, 8)
			binary.BigEndian.PutUint32(b, 8)
			binary.BigEndian.PutUint32(b[4:], 2<<16)
			return b
		}(), "0A000"},
		{"replication", func() []byte {
			b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
				Parameters: map[string]string{"user": "agent", "replication": "database"}}).Encode(nil)
			return b
		}(), "replication connections are not supported"},
		{"ssl_then_gss_refused", func() []byte {
			b := make([]byte, 8)
			binary.BigEndian.PutUint32(b, 8)
			binary.BigEndian.PutUint32(b[4:], 80877104)
			return b
		}(), "N"},
		{"huge_length", []byte{0x7f, 0, 0, 0, 0, 3, 0, 0}, "08P01"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nc, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.name == "ssl_then_gss_refused" {
				var b [1]byte
				if _, err := io.ReadFull(nc, b[:]); err != nil || b[0] != 'N' {
					t.Fatalf("GSSENCRequest answer %q %v", b, err)
				}
				return
			}
			out, _ := io.ReadAll(nc)
			if !bytes.Contains(out, []byte(tc.want)) {
				t.Fatalf("response %q does not contain %q", out, tc.want)
			}
		})
	}
}

// TestTerminateNoLeaks is not parallel: it counts goroutines.
func TestTerminateNoLeaks(t *testing.T) {
	ctx := testCtx(t)
	before := runtime.NumGoroutine()
	func() {
		e := startProxy(t, newHooks(), nil)
		for range 5 {
			c, err := pgx.Connect(ctx, e.dsn(testToken))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(ctx); err != nil { // sends Terminate
				t.Fatal(err)
			}
		}
		// One connection still open is closed by the proxy's shutdown.
		open, err := pgx.Connect(ctx, e.dsn(testToken))
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close(ctx)
		e.stop()
		var nils, canceled int
		for _, err := range e.served {
			switch {
			case err == nil:
				nils++
			case errors.Is(err, context.Canceled):
				canceled++
			default:
				t.Fatalf("ServeConn returned %v", err)
			}
		}
		if nils != 5 || canceled != 1 {
			t.Fatalf("ServeConn results %v: want 5 nil (Terminate) and 1 context.Canceled (shutdown)", e.served)
		}
		for _, s := range e.hooks.Sessions() {
			if !s.Closed() {
				t.Fatal("session not closed")
			}
		}
	}()
	// A goroutine that has signalled its WaitGroup still has to return, and
	// closed client sockets may need a scheduling round; under the race
	// detector and parallel tests that can take a while. Poll, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines before %d after %d:\n%s", before, after, buf[:n])
	}
}
