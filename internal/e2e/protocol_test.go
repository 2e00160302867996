package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/server"
)

func psqlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql not found: install the PostgreSQL client (Debian: apt-get install postgresql-client)")
	}
	return p
}

// psql runs the psql binary through the gateway as identity.
func (g *gateway) psql(t *testing.T, ctx context.Context, identity string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, psqlPath(t), append([]string{"-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"host=" + g.host + " port=" + g.port + " dbname=orders-db user=" + identity + " sslmode=disable"}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"PGPASSWORD=" + g.token(t, identity)}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestPsql drives the real psql binary (simple protocol, \copy in both
// directions) through the gateway.
func TestPsql(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	forms := forbidden()

	t.Run("agent reads masked", func(t *testing.T) {
		out, err := g.psql(t, ctx, "claude-coder", nil, "-c", "SELECT name, email, ssn, card_number FROM customers ORDER BY id")
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		if n := strings.Count(out, "\n"); n != 5 {
			t.Errorf("got %d lines, want 5:\n%s", n, out)
		}
		if !strings.Contains(out, "Ada Lovelace") {
			t.Errorf("unmasked column missing:\n%s", out)
		}
		if l := leaks(out, forms); len(l) > 0 {
			t.Errorf("LEAK %v:\n%s", l, out)
		}
	})
	t.Run("agent denied write", func(t *testing.T) {
		out, err := g.psql(t, ctx, "claude-coder", nil, "-c", "DELETE FROM orders WHERE id = 1")
		if err == nil || !strings.Contains(out, "gatehouse denied DELETE") {
			t.Fatalf("want a denial, got %v:\n%s", err, out)
		}
	})
	t.Run("agent copy out denied", func(t *testing.T) {
		out, err := g.psql(t, ctx, "claude-coder", nil, "-c", `\copy (SELECT email FROM customers) TO STDOUT`)
		if err == nil || !strings.Contains(out, "gatehouse denied") {
			t.Fatalf("want a denial, got %v:\n%s", err, out)
		}
		if l := leaks(out, forms); len(l) > 0 {
			t.Errorf("LEAK %v:\n%s", l, out)
		}
	})
	t.Run("client encoding with backslash trail bytes", func(t *testing.T) {
		// Shift_JIS: the gateway converts the text as the backend does, so
		// masking and classification work as in UTF-8.
		out, err := g.psql(t, ctx, "claude-coder", []string{"PGCLIENTENCODING=SJIS"}, "-c", "SELECT name, email, ssn FROM customers ORDER BY id")
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		if n := strings.Count(out, "\n"); n != 5 || !strings.Contains(out, "Ada Lovelace") {
			t.Errorf("got:\n%s", out)
		}
		if l := leaks(out, forms); len(l) > 0 {
			t.Errorf("LEAK %v:\n%s", l, out)
		}
	})
	t.Run("dba copy both ways", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "orders.csv")
		out, err := g.psql(t, ctx, "alice", nil, "-c", `\copy (SELECT customer_id, amount, status FROM orders ORDER BY id) TO '`+file+`' CSV`)
		if err != nil {
			t.Fatalf("copy out: %v\n%s", err, out)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(data, []byte("\n")); n != 40 {
			t.Fatalf("copied out %d lines, want 40", n)
		}
		out, err = g.psql(t, ctx, "alice", nil, "-c", `\copy orders (customer_id, amount, status) FROM '`+file+`' CSV`)
		if err != nil {
			t.Fatalf("copy in: %v\n%s", err, out)
		}
		out, err = g.psql(t, ctx, "alice", nil, "-c", "SELECT count(*) FROM orders")
		if err != nil || strings.TrimSpace(out) != "80" {
			t.Fatalf("after copy in: %v %q, want 80 rows", err, out)
		}
	})
}

// TestExtendedProtocol runs masked queries through pgx's statement cache
// and describe modes: the row description is not resent for cached
// statements, and the rows must stay masked.
func TestExtendedProtocol(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	forms := forbidden()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			conn := g.connect(t, ctx, "claude-coder", nil)
			for i := 1; i <= 5; i++ {
				var name, email string
				var ssn, card *string
				err := conn.QueryRow(ctx, "SELECT name, email, ssn, card_number FROM customers WHERE id = $1", mode, i).Scan(&name, &email, &ssn, &card)
				if err != nil {
					t.Fatalf("execution %d: %v", i, err)
				}
				all := name + " " + email
				if ssn != nil {
					all += " " + *ssn
				}
				if card != nil {
					all += " " + *card
				}
				if name == "" {
					t.Errorf("execution %d: name empty", i)
				}
				if l := leaks(all, forms); len(l) > 0 {
					t.Errorf("execution %d: LEAK %v in %q", i, l, all)
				}
			}
			// A denied statement in the same mode, then the cache still works.
			if _, err := conn.Exec(ctx, "UPDATE orders SET status = $1 WHERE id = 1", mode, "x"); !isDenial(err) {
				t.Fatalf("update: want a denial, got %v", err)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders WHERE customer_id = $1", mode, 1).Scan(&n); err != nil || n != 8 {
				t.Fatalf("after denial: %d, %v; want 8", n, err)
			}
		})
	}
}

func isDenial(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" && strings.HasPrefix(pe.Message, "gatehouse denied")
}

// TestTransactionAfterDenial: a denied statement aborts the open
// transaction exactly as a failed statement would; ROLLBACK recovers it.
func TestTransactionAfterDenial(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			conn := g.connect(t, ctx, "claude-coder", nil)
			if _, err := conn.Exec(ctx, "BEGIN", mode); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders", mode).Scan(&n); err != nil || n != 40 {
				t.Fatalf("select in transaction: %d %v", n, err)
			}
			if _, err := conn.Exec(ctx, "DELETE FROM orders WHERE id = 1", mode); !isDenial(err) {
				t.Fatalf("want a denial, got %v", err)
			}
			if got := conn.PgConn().TxStatus(); got != 'E' {
				t.Errorf("transaction status %q after the denial, want E (failed)", got)
			}
			_, err := conn.Exec(ctx, "SELECT 1", mode)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "25P02" {
				t.Fatalf("statement in the failed transaction: %v, want 25P02", err)
			}
			if _, err := conn.Exec(ctx, "ROLLBACK", mode); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders", mode).Scan(&n); err != nil || n != 40 {
				t.Fatalf("after rollback: %d %v", n, err)
			}
		})
	}
}

// TestCancel cancels a running pg_sleep through the gateway's cancel key.
func TestCancel(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := g.connect(t, ctx, "alice", nil)
	admin := g.admin(t, ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(50) /* e2e-cancel */", pgx.QueryExecModeSimpleProtocol)
		errc <- err
	}()
	// Wait until the backend runs the statement (observed, not timed).
	for {
		var n int
		err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(50) /* e2e-cancel */%'").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("statement ended before it was cancelled: %v", err)
		default:
		}
	}
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	err := <-errc
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("want 57014 query_canceled, got %v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("connection unusable after cancel: %v", err)
	}
}

// TestTLS serves the listener with a certificate made by the test and
// require_tls: TLS clients work, plaintext ones are refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	g := startGateway(t, gatewayOptions{configure: func(cfg *server.Config) {
		cfg.Postgres.TLSCert, cfg.Postgres.TLSKey, cfg.Postgres.RequireTLS = certFile, keyFile, true
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cfg, err := pgx.ParseConfig("host=" + g.host + " port=" + g.port + " dbname=orders-db user=claude-coder sslmode=verify-full sslrootcert=" + certFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = g.token(t, "claude-coder")
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("TLS connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, ok := conn.PgConn().Conn().(interface{ ConnectionState() any }); ok {
		t.Log("TLS connection")
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 40 {
		t.Fatalf("query over TLS: %d %v", n, err)
	}

	plain := g.connConfig(t, "claude-coder")
	_, err = pgx.ConnectConfig(ctx, plain)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" {
		t.Fatalf("plaintext connect: want 28000, got %v", err)
	}

	out, err := g.psqlTLS(t, ctx, certFile, "SELECT count(*) FROM orders")
	if err != nil || strings.TrimSpace(out) != "40" {
		t.Fatalf("psql over TLS: %v %q", err, out)
	}
}

func (g *gateway) psqlTLS(t *testing.T, ctx context.Context, rootCert, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, psqlPath(t), "-X", "-A", "-t", "-c", sql,
		"host="+g.host+" port="+g.port+" dbname=orders-db user=claude-coder sslmode=verify-full sslrootcert="+rootCert)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+g.token(t, "claude-coder"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestCredentialNeverLeaks runs allowed, masked, denied and failing
// statements, then searches the logs (debug level), every recorded event
// and every file of the state directory for the backend password.
func TestCredentialNeverLeaks(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pw := g.backendPassword
	for _, identity := range []string{"claude-coder", "alice"} {
		conn := g.connect(t, ctx, identity, nil)
		for _, sql := range []string{
			"SELECT name, email FROM customers", "DELETE FROM orders", "SELECT no_such_column FROM orders",
			"SELECT current_user, session_user", "SHOW ALL", "SELEC broken",
		} {
			rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
			if err == nil {
				for rows.Next() {
					for _, v := range rows.RawValues() {
						if bytes.Contains(v, []byte(pw)) {
							t.Errorf("%s: backend password in a result of %q", identity, sql)
						}
					}
				}
				err = rows.Err()
				rows.Close()
			}
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Errorf("%s: backend password in the error of %q", identity, sql)
			}
		}
		conn.Close(ctx)
	}
	// A bad token and an unknown database, which exercise the failure logs.
	bad := g.connConfig(t, "claude-coder")
	bad.Password = "not-a-token"
	if _, err := pgx.ConnectConfig(ctx, bad); err == nil {
		t.Error("bad token accepted")
	}
	unknown := g.connConfig(t, "claude-coder")
	unknown.Database = "no-such-resource"
	if _, err := pgx.ConnectConfig(ctx, unknown); err == nil {
		t.Error("unknown resource accepted")
	}

	g.stop() // flushes the recorder
	logs := g.logs.String()
	if !strings.Contains(logs, "Session started.") {
		t.Fatalf("logs look empty:\n%s", clip(logs, 2000))
	}
	if strings.Contains(logs, pw) {
		t.Error("backend password in the logs")
	}
	events := g.recordedEvents(t, ctx)
	for _, e := range events {
		if strings.Contains(e.Command+e.Reason+e.Error+string(e.Facts), pw) {
			t.Errorf("backend password in recorded event %+v", e)
		}
	}
	if len(events) < 12 {
		t.Errorf("recorded %d events, want at least 12", len(events))
	}
	files := 0
	err := filepath.WalkDir(g.stateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(pw)) {
			t.Errorf("backend password in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Errorf("state directory holds %d files, want at least 3 (bundle, store, keys)", files)
	}
}

// recordedEvents reads every event of every session from the gateway's
// SQLite store; call it after stop, which flushes the recorder.
func (g *gateway) recordedEvents(t *testing.T, ctx context.Context) []record.Event {
	t.Helper()
	st, sessions := g.recordedSessions(t, ctx)
	var all []record.Event
	for _, s := range sessions {
		evs, err := st.Events(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	return all
}

// recordedSessions opens the stopped gateway's recording (closed with the
// test) and lists its sessions, newest first.
func (g *gateway) recordedSessions(t *testing.T, ctx context.Context) (record.Backend, []record.Session) {
	t.Helper()
	st, err := server.OpenStore(ctx, "sqlite:"+filepath.Join(g.stateDir, "gatehouse.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sessions, err := st.ListSessions(ctx, record.SessionFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) == 0 {
		t.Fatal("no recorded sessions")
	}
	return st, sessions
}
