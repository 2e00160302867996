package pg_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestQueryModesAndMasking(t *testing.T) {
	t.Parallel()
	e := startProxy(t, newHooks(), nil)
	testdb.Exec(t, e.backend,
		"CREATE TABLE users (id int PRIMARY KEY, name text, email text)",
		"INSERT INTO users VALUES (1, 'ann', 'ann@example.com'), (2, 'bob', NULL)")
	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol},
		{"cache_statement", pgx.QueryExecModeCacheStatement},
		{"cache_describe", pgx.QueryExecModeCacheDescribe},
		{"describe_exec", pgx.QueryExecModeDescribeExec},
		{"exec", pgx.QueryExecModeExec},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			c := connect(t, e.dsn(testToken))
			// Run three times: cached statements are not described again.
			for i := range 3 {
				rows, err := c.Query(ctx, "SELECT id, name, email FROM users WHERE id > $1 ORDER BY id", m.mode, 0)
				if err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				type row struct {
					id    int
					name  string
					email *string
				}
				var got []row
				for rows.Next() {
					var r row
					if err := rows.Scan(&r.id, &r.name, &r.email); err != nil {
						t.Fatal(err)
					}
					got = append(got, r)
				}
				if err := rows.Err(); err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				if len(got) != 2 || got[0].name != "ann" || got[0].email == nil || *got[0].email != "***" || got[1].email != nil {
					t.Fatalf("round %d: got %+v, want ann with masked email and bob with NULL", i, got)
				}
			}
		})
	}
}

func TestDoneReportsResults(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	c := connect(t, e.dsn(testToken))
	if _, err := c.Exec(ctx, "SELECT generate_series(1, 5)", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "SELECT 'DENYME'"); pgCode(err) != "42501" {
		t.Fatalf("denied: got %v, want 42501", err)
	}
	sess := e.hooks.Sessions()
	if len(sess) != 1 {
		t.Fatalf("sessions = %d", len(sess))
	}
	var sawSelect, sawDenied bool
	for _, r := range sess[0].Results() {
		if r.Text == "SELECT generate_series(1, 5)" && r.Tag == "SELECT 5" && r.Rows == 5 && r.Err == nil {
			sawSelect = true
		}
	}
	for _, d := range sess[0].Denied() {
		if d.Text == "SELECT 'DENYME'" && errors.Is(d.Err, pg.ErrDenied) {
			sawDenied = true
		}
	}
	if !sawSelect || !sawDenied {
		t.Fatalf("results %+v: want SELECT 5 with 5 rows and a denied result", sess[0].Results())
	}
	if sess[0].Req.User != "agent" || sess[0].Req.Database != e.db {
		t.Fatalf("auth request %+v", sess[0].Req)
	}
}

func TestDenyInTransaction(t *testing.T) {
	t.Parallel()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			e := startProxy(t, newHooks(), nil)
			testdb.Exec(t, e.backend, "CREATE TABLE t (v text)")
			c := connect(t, e.dsn(testToken))
			if _, err := c.Exec(ctx, "BEGIN", mode); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "INSERT INTO t VALUES ('kept?')", mode); err != nil {
				t.Fatal(err)
			}
			_, err := c.Exec(ctx, "INSERT INTO t VALUES ('DENYME')", mode)
			if pgCode(err) != "42501" || !strings.Contains(err.Error(), "denied by gatehouse policy") {
				t.Fatalf("denied insert: got %v", err)
			}
			if st := c.PgConn().TxStatus(); st != 'E' {
				t.Fatalf("tx status after deny = %q, want 'E' (aborted)", st)
			}
			// Like any failed statement: the transaction is aborted.
			if _, err := c.Exec(ctx, "SELECT 1", mode); pgCode(err) != "25P02" {
				t.Fatalf("statement in aborted transaction: got %v, want 25P02", err)
			}
			if _, err := c.Exec(ctx, "ROLLBACK", mode); err != nil {
				t.Fatal(err)
			}
			if st := c.PgConn().TxStatus(); st != 'I' {
				t.Fatalf("tx status after rollback = %q", st)
			}
			var n int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM t", mode).Scan(&n); err != nil || n != 0 {
				t.Fatalf("rows after rollback = %d, %v; want 0", n, err)
			}
			// COMMIT of an aborted transaction rolls back, as in PostgreSQL.
			for _, q := range []string{"BEGIN", "INSERT INTO t VALUES ('x')"} {
				if _, err := c.Exec(ctx, q, mode); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Exec(ctx, "DELETE FROM t -- DENYME", mode); pgCode(err) != "42501" {
				t.Fatalf("got %v", err)
			}
			if _, err := c.Exec(ctx, "COMMIT", mode); err != nil {
				t.Fatal(err)
			}
			if err := c.QueryRow(ctx, "SELECT count(*) FROM t", mode).Scan(&n); err != nil || n != 0 {
				t.Fatalf("rows after commit of aborted tx = %d, %v; want 0", n, err)
			}
		})
	}
}

func TestDeniedParseInPipeline(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	c := connect(t, e.dsn(testToken))
	p := c.PgConn().StartPipeline(ctx)
	p.SendQueryParams("SELECT 1", nil, nil, nil, nil)
	p.SendPipelineSync()
	p.SendQueryParams("SELECT 'DENYME'", nil, nil, nil, nil)
	p.SendQueryParams("SELECT 2", nil, nil, nil, nil) // skipped until Sync
	p.SendPipelineSync()
	p.SendQueryParams("SELECT 3::text", nil, nil, nil, nil)
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		res, err := p.GetResults()
		if err != nil {
			got = append(got, "error:"+pgCode(err))
			continue
		}
		if res == nil {
			break
		}
		switch r := res.(type) {
		case *pgconn.ResultReader:
			rr := r.Read()
			if rr.Err != nil {
				got = append(got, "error:"+pgCode(rr.Err))
			} else {
				got = append(got, "rows:"+string(rr.Rows[0][0]))
			}
		case *pgconn.PipelineSync:
			got = append(got, "sync")
			if len(got) > 0 && strings.Count(strings.Join(got, ","), "sync") == 3 {
				goto done
			}
		}
	}
done:
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	want := "rows:1,sync,error:42501,sync,rows:3,sync"
	if strings.Join(got, ",") != want {
		t.Fatalf("pipeline results %v, want %s", got, want)
	}
	// pgx Batch (prepared, pipelined) through the same connection.
	b := &pgx.Batch{}
	b.Queue("SELECT 10")
	b.Queue("SELECT 'DENYME'")
	err := c.SendBatch(ctx, b).Close()
	if pgCode(err) != "42501" {
		t.Fatalf("batch: got %v, want 42501", err)
	}
	b = &pgx.Batch{}
	b.Queue("SELECT 10::int")
	b.Queue("SELECT 20::int")
	br := c.SendBatch(ctx, b)
	var x, y int
	if err := br.QueryRow().Scan(&x); err != nil {
		t.Fatal(err)
	}
	if err := br.QueryRow().Scan(&y); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != nil || x != 10 || y != 20 {
		t.Fatalf("batch after deny: %d %d %v", x, y, err)
	}
	if checked := e.hooks.Sessions()[0].Checked(); strings.Contains(strings.Join(checked, "|"), "SELECT 2|") {
		t.Fatalf("statement after a denied Parse was judged: %q", checked)
	}
}

func TestAuthFailureHidesToken(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	_, err := pgx.Connect(ctx, e.dsn("wrong-token-xyz"))
	if pgCode(err) != "28P01" {
		t.Fatalf("got %v, want 28P01", err)
	}
	if strings.Contains(err.Error(), "wrong-token-xyz") {
		t.Fatalf("error contains the token: %v", err)
	}
}

func TestBackendErrorsHideCredential(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const secret = "backend-secret-pw-987"
	e := startProxy(t, newHooks(), nil)
	e.bc.Password = secret
	e.bc.Database = "no_such_database_gh"
	_, err := pgx.Connect(ctx, e.dsn(testToken))
	if pgCode(err) != "08001" {
		t.Fatalf("got %v, want 08001", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("client error contains the backend password: %v", err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && !strings.Contains(pe.Detail, "no_such_database_gh") {
		t.Fatalf("detail %q should carry the backend's message", pe.Detail)
	}
	e.stop()
	for _, serr := range e.served {
		if serr != nil && strings.Contains(serr.Error(), secret) {
			t.Fatalf("ServeConn error contains the backend password: %v", serr)
		}
	}
	if s := e.bc.String(); strings.Contains(s, secret) {
		t.Fatalf("BackendConfig.String leaks: %s", s)
	}
}

func TestBackendPasswordLogin(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	role := "gh_pw_" + strings.TrimPrefix(e.db, "gh_test_")
	testdb.Exec(t, e.backend, "CREATE ROLE "+role+" LOGIN PASSWORD 'p4ss-w0rd'", "GRANT CONNECT ON DATABASE "+e.db+" TO "+role)
	testdb.DropRoleLater(t, role)
	e.bc.User, e.bc.Password = role, "p4ss-w0rd"
	c := connect(t, e.dsn(testToken))
	var who string
	if err := c.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != role {
		t.Fatalf("current_user = %q, %v", who, err)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	tcfg := selfSignedTLS(t)
	e := startProxy(t, newHooks(), func(c *pg.Config) { c.TLSConfig, c.RequireTLS = tcfg, true })
	dsn := strings.Replace(e.dsn(testToken), "sslmode=disable", "sslmode=require", 1)
	c := connect(t, dsn)
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, want *tls.Conn", c.PgConn().Conn())
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Fatalf("query over TLS: %d %v", n, err)
	}
	_, err := pgx.Connect(ctx, e.dsn(testToken))
	if pgCode(err) != "28000" || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("plaintext with RequireTLS: got %v, want 28000", err)
	}
}

func TestListenNotify(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	l := connect(t, e.dsn(testToken))
	n := connect(t, e.dsn(testToken))
	if _, err := l.Exec(ctx, "LISTEN gh_chan"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Exec(ctx, "NOTIFY gh_chan, 'hello'"); err != nil {
		t.Fatal(err)
	}
	note, err := l.WaitForNotification(ctx)
	if err != nil || note.Channel != "gh_chan" || note.Payload != "hello" {
		t.Fatalf("notification %+v, %v", note, err)
	}
}

func TestFunctionCallDenied(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	c := connect(t, e.dsn(testToken))
	// Take over the raw connection and speak the protocol.
	hj, err := c.PgConn().Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hj.Conn.Close()
	f := hj.Frontend
	f.Send(&pgproto3.FunctionCall{Function: 1598 /* random() */, ResultFormatCode: 0})
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readUntilReady(t, f)
	if !strings.Contains(got, "ErrorResponse:42501") || !strings.HasSuffix(got, "ReadyForQuery:I") {
		t.Fatalf("FunctionCall response %s", got)
	}
	f.Send(&pgproto3.Query{String: "SELECT 1"})
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readUntilReady(t, f); !strings.Contains(got, "DataRow") {
		t.Fatalf("after FunctionCall: %s", got)
	}
	_ = ctx
}

// readUntilReady summarises backend messages up to ReadyForQuery.
func readUntilReady(t *testing.T, f *pgproto3.Frontend) string {
	t.Helper()
	var parts []string
	for {
		msg, err := f.Receive()
		if err != nil {
			t.Fatalf("receive: %v (so far %v)", err, parts)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			parts = append(parts, "ErrorResponse:"+m.Code)
		case *pgproto3.ReadyForQuery:
			parts = append(parts, "ReadyForQuery:"+string(m.TxStatus))
			return strings.Join(parts, ",")
		default:
			parts = append(parts, strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3."))
		}
	}
}

func TestDescribeFailureWithholdsRows(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := startProxy(t, newHooks(), nil)
	c := connect(t, e.dsn(testToken))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		var s string
		err := c.QueryRow(ctx, "SELECT 'raw' AS fail_describe", mode).Scan(&s)
		if pgCode(err) != "42501" || s == "raw" {
			t.Fatalf("%v: got %q, %v; want 42501 and no row", mode, s, err)
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT 7", mode).Scan(&n); err != nil || n != 7 {
			t.Fatalf("%v: session unusable after withheld result: %v", mode, err)
		}
	}
}

func TestApprovalWait(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	hooks := newHooks()
	e := startProxy(t, hooks, nil)
	notices := make(chan string, 4)
	cfg, err := pgx.ParseConfig(e.dsn(testToken))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n.Message }
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	done := make(chan error, 1)
	go func() {
		var n int
		err := c.QueryRow(ctx, "SELECT 5 /* APPROVEME */", pgx.QueryExecModeSimpleProtocol).Scan(&n)
		if err == nil && n != 5 {
			err = errors.New("wrong result")
		}
		done <- err
	}()
	if msg := <-notices; msg != "waiting for approval" {
		t.Fatalf("notice %q", msg)
	}
	hooks.Approvals <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := c.Exec(ctx, "SELECT 6 /* APPROVEME */", pgx.QueryExecModeSimpleProtocol)
		done <- err
	}()
	<-notices
	hooks.Approvals <- &pg.Error{Code: "42501", Message: "approval rejected", Hint: "ask the dba group"}
	if err := <-done; pgCode(err) != "42501" || !strings.Contains(err.Error(), "approval rejected") {
		t.Fatalf("rejected approval: %v", err)
	}
}
