package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/testclock"
	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
	"github.com/gatehouse/gatehouse/runtime/server"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gatewayOptions configure startGateway.
type gatewayOptions struct {
	// configure adjusts the server configuration before New.
	configure func(cfg *server.Config)
	// at is the instant the gateway's clock starts at (default
	// testclock.Example, business hours in Berlin).
	at time.Time
}

// gateway is a running Gatehouse in front of a fresh database.
type gateway struct {
	srv *server.Server
	// host and port of the PostgreSQL listener.
	host, port string
	// adminDSN is the test's superuser connection to the backing database.
	adminDSN string
	// backendUser and backendPassword are the role the gateway logs in as.
	backendUser, backendPassword string
	logs                         *syncBuffer
	stateDir                     string
	clock                        func() time.Time
	activations                  int
	// stop shuts the gateway down and flushes the recorder; idempotent.
	stop func()
}

// startGateway creates a database loaded with demo.SampleSQL, a backend
// role with a password, and a gateway serving the example policies with
// orders-db pointing at that database. Everything is torn down by cleanup.
// The gateway runs at testclock.Example, so the example grants have not
// expired and the DBAs are inside their business hours, whatever the date.
func startGateway(t *testing.T, opts gatewayOptions) *gateway {
	t.Helper()
	dsn := testdb.Postgres(t)
	testdb.Exec(t, dsn, demo.SampleSQL)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")

	// A dedicated backend role with a password: the gateway alone holds it.
	// It is a superuser so that only the policy stands between the agent
	// and the data (the worst case).
	g := &gateway{adminDSN: dsn, logs: &syncBuffer{}, stateDir: t.TempDir()}
	g.backendUser = "gh_be_" + randomHex(t, 6)
	g.backendPassword = "pw-" + randomHex(t, 16)
	testdb.Exec(t, testdb.AdminDSN(), fmt.Sprintf("CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s'", g.backendUser, g.backendPassword))
	testdb.DropRoleLater(t, g.backendUser)
	credFile := filepath.Join(t.TempDir(), "orders-db.password")
	if err := os.WriteFile(credFile, []byte(g.backendPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	at := testclock.Example
	if !opts.at.IsZero() {
		at = opts.at
	}
	clock := testclock.Start(at)
	g.clock = clock
	signed, pubPath := buildBundle(t, g.stateDir, clock())

	cfg := server.Defaults()
	cfg.StateDir = g.stateDir
	cfg.Bundle.Source = filepath.Join(g.stateDir, "bundle.json")
	cfg.Bundle.Keys = []string{pubPath}
	cfg.Bundle.PollInterval = time.Hour
	cfg.Admin.Listen = ""
	cfg.Postgres.Listen = "127.0.0.1:0"
	cfg.Recording.Store = "sqlite:" + filepath.Join(g.stateDir, "gatehouse.db")
	cfg.Resources = map[string]server.ResourceConfig{
		"orders-db": {Address: backendAddress(t, dsn), Database: dbName, User: g.backendUser, Credential: "file:" + credFile},
	}
	cfg.ShutdownGrace = 5 * time.Second
	cfg.Log.Level = "debug"
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	if err := os.WriteFile(cfg.Bundle.Source, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, logger, server.WithClock(clock))
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	// Activate synchronously, so the test never waits for the poller.
	if err := srv.Activator().Handle(ctx, fetch.Fetched{Data: signed, ETag: "e2e"}); err != nil {
		cancel()
		srv.Close()
		t.Fatalf("activate bundle: %v", err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		srv.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Errorf("server.Run: %v", err)
			}
			if err := srv.Close(); err != nil {
				t.Errorf("server.Close: %v", err)
			}
		})
	}
	t.Cleanup(g.stop)
	g.srv = srv
	g.host, g.port, _ = net.SplitHostPort(srv.PostgresAddr().String())
	return g
}

func backendAddress(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// buildBundle compiles ../../policies, signs it with a key made for the
// test, valid around now, and returns the signed bundle and the public
// key's path. The key is kept in g for later activations.
func buildBundle(t *testing.T, dir string, now time.Time) ([]byte, string) {
	t.Helper()
	privPEM, pubPEM, err := bundle.GenerateKey(bundle.KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := signPolicies(t, privPEM, now, 0, nil)
	pub := filepath.Join(dir, "signing.pub")
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signing.key.pem"), privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return signed, pub
}

// signPolicies compiles ../../policies, lets mutate change the compiled
// bundle, and signs it; serialBump raises the serial above earlier builds.
func signPolicies(t *testing.T, privPEM []byte, now time.Time, serialBump uint64, mutate func(*bundle.Bundle)) []byte {
	t.Helper()
	src, err := compiler.LoadDir("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatalf("compile policies: %v", err)
	}
	b := res.Bundle
	now = now.UTC().Truncate(time.Second)
	b.Manifest.Serial = uint64(now.UnixNano()/1000) + serialBump
	b.Manifest.NotBefore = now.Add(-time.Hour)
	b.Manifest.Expires = now.Add(24 * time.Hour)
	if mutate != nil {
		mutate(b)
		b.Manifest.Revision += "-changed"
		if b.Manifest.PolicyDigest, err = bundle.PolicyDigest(&b.Policy); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := bundle.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.LoadPrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := bundle.Sign(raw, key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// activate hot-loads the example policies as changed by mutate, signed
// with the gateway's key.
func (g *gateway) activate(t *testing.T, ctx context.Context, mutate func(*bundle.Bundle)) {
	t.Helper()
	g.activations++
	priv, err := os.ReadFile(filepath.Join(g.stateDir, "signing.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signed := signPolicies(t, priv, g.clock(), uint64(g.activations)*1000, mutate)
	if err := g.srv.Activator().Handle(ctx, fetch.Fetched{Data: signed, ETag: fmt.Sprintf("e2e-%d", g.activations)}); err != nil {
		t.Fatalf("activate changed bundle: %v", err)
	}
}

// token issues a development token for a policy identity.
func (g *gateway) token(t *testing.T, identity string) string {
	t.Helper()
	for _, id := range g.srv.Activator().Engine().Bundle().Policy.Identities {
		if id.Name == identity {
			tok, err := g.srv.DevIssuer().Issue(id, 15*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	t.Fatalf("no identity %q in the policy", identity)
	return ""
}

// connConfig is a pgx configuration for identity through the gateway.
func (g *gateway) connConfig(t *testing.T, identity string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s dbname=orders-db user=%s sslmode=disable", g.host, g.port, identity))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = g.token(t, identity)
	return cfg
}

// connect opens a pgx connection as identity; notices are appended to
// *notices when it is not nil.
func (g *gateway) connect(t *testing.T, ctx context.Context, identity string, notices *[]string) *pgx.Conn {
	t.Helper()
	cfg := g.connConfig(t, identity)
	if notices != nil {
		var mu sync.Mutex
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			mu.Lock()
			*notices = append(*notices, n.Message, n.Detail, n.Hint, n.Where)
			mu.Unlock()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as %s: %v", identity, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// admin opens a superuser connection to the backing database, bypassing
// the gateway.
func (g *gateway) admin(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, g.adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// checksum summarises the content of every table and the set of relations
// and functions in the database, as the superuser sees them.
func (g *gateway) checksum(t *testing.T, ctx context.Context, conn *pgx.Conn) string {
	t.Helper()
	var sum string
	err := conn.QueryRow(ctx, `SELECT
		(SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY id), '')) FROM public.customers c) || '/' ||
		(SELECT md5(coalesce(string_agg(o::text, '|' ORDER BY id), '')) FROM public.orders o) || '/' ||
		(SELECT md5(coalesce(string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' ORDER BY 1), ''))
		   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) || '/' ||
		(SELECT count(*)::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public') || '/' ||
		(SELECT count(*)::text FROM pg_largeobject_metadata)`).Scan(&sum)
	if err != nil {
		t.Fatalf("checksum: %v", err)
	}
	return sum
}

// sampleSecrets are the sensitive values of demo.SampleSQL.
var sampleSecrets = []string{
	"ada@example.com", "alan@example.org", "grace@example.net", "edsger@example.com", "barbara@example.org",
	"123-45-6789", "234-56-7890", "345-67-8901", "456-78-9012", "567-89-0123",
	"4111111111111111", "5500005555555559", "340000000000009", "6011000000000004", "3530111333300000",
}

// forbidden returns every form of the secrets of demo.SampleSQL that must
// never reach an agent (see forbiddenForms).
func forbidden() map[string]string { return forbiddenForms(sampleSecrets) }

// forbiddenForms returns every form of secrets that must never reach an
// agent: the values, their case variants, reversals, hex (bytea output),
// base64, and MD5 digests as hex.
func forbiddenForms(secrets []string) map[string]string {
	out := map[string]string{}
	for _, s := range secrets {
		add := func(form, v string) { out[strings.ToLower(v)] = s + " (" + form + ")" }
		add("value", s)
		add("reversed", reverse(s))
		add("hex", hex.EncodeToString([]byte(s)))
		add("base64", strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(s)), "="))
		sum := md5.Sum([]byte(s))
		add("md5", hex.EncodeToString(sum[:]))
		// SSN and card digits without separators.
		if d := strings.ReplaceAll(s, "-", ""); d != s {
			add("digits", d)
		}
	}
	return out
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// leaks returns a description of every forbidden form found in text
// (compared case-insensitively; whitespace and JSON/XML escapes are
// removed first).
func leaks(text string, forms map[string]string) []string {
	norm := strings.ToLower(text)
	squashed := strings.NewReplacer(" ", "", "\n", "", "\t", "", `\`, "", `"`, "", ",", "", "{", "", "}", "").Replace(norm)
	var out []string
	for f, what := range forms {
		if strings.Contains(norm, f) || strings.Contains(squashed, f) {
			out = append(out, what)
		}
	}
	return out
}
