package pg_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg/pgtest"
)

const testToken = "tok-very-secret-123"

// proxyEnv is a proxy in front of a fresh test database.
type proxyEnv struct {
	addr    string
	backend string // DSN of the test database (direct)
	hooks   *pgtest.Hooks
	bc      pg.BackendConfig
	db      string

	mu     sync.Mutex
	served []error
	wg     sync.WaitGroup
	stop   func()
}

func newHooks() *pgtest.Hooks {
	return &pgtest.Hooks{Token: testToken, DenyMarker: "DENYME", MaskColumn: "email", CopySecret: "s3cr3t",
		ApproveMarker: "APPROVEME", Approvals: make(chan error, 1)}
}

// startProxy starts a proxy on a loopback port for a fresh database.
func startProxy(t testing.TB, hooks *pgtest.Hooks, mod func(*pg.Config)) *proxyEnv {
	t.Helper()
	dsn := testdb.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	e := &proxyEnv{backend: dsn, hooks: hooks, db: strings.TrimPrefix(u.Path, "/")}
	e.bc = pg.BackendConfig{Address: u.Host, User: u.User.Username(), Database: e.db}
	if p, ok := u.User.Password(); ok {
		e.bc.Password = p
	}
	cfg := pg.Config{
		Hooks: hooks,
		Backend: func(_ context.Context, database string) (pg.BackendConfig, error) {
			return e.bc, nil
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := pg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.serve(t, h)
	return e
}

func (e *proxyEnv) serve(t testing.TB, h *pg.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				err := h.ServeConn(ctx, c)
				e.mu.Lock()
				e.served = append(e.served, err)
				e.mu.Unlock()
			}()
		}
	}()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			ln.Close()
			e.wg.Wait()
		})
	}
	t.Cleanup(e.stop)
}

func (e *proxyEnv) dsn(token string) string {
	return fmt.Sprintf("postgres://agent:%s@%s/%s?sslmode=disable", url.QueryEscape(token), e.addr, e.db)
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// selfSignedTLS returns a server config with a fresh self-signed cert.
func selfSignedTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}
