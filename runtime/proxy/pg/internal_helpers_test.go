package pg

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// Helpers of the internal tests (package pg): a proxy that allows every
// statement, in front of a fresh database, whose connections the test can
// inspect through Config.onConn.

// internalToken is the only password allowHooks accepts.
const internalToken = "internal-test-token"

// allowHooks authenticates internalToken and allows every statement the
// real classifier accepts. Its verdicts carry a pass-through RowRewriter,
// so that the proxy's row-description bookkeeping (the Describe it injects
// before executing an undescribed portal) runs as it does under masking.
type allowHooks struct {
	cls sqlclass.Classifier
}

func newAllowHooks(t testing.TB) *allowHooks {
	t.Helper()
	cls, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &allowHooks{cls: cls}
}

func (h *allowHooks) Authenticate(_ context.Context, req AuthRequest) (Session, error) {
	if req.Token != internalToken {
		return nil, ErrAuthFailed
	}
	return allowSession{h}, nil
}

type allowSession struct{ h *allowHooks }

func (s allowSession) Classify(sql string) ([]sqlclass.Statement, error) {
	stmts, err := s.h.cls.Classify(sql)
	if err != nil {
		return nil, &Error{Code: "42601", Message: "gatehouse denied the command: " + err.Error()}
	}
	return stmts, nil
}

func (allowSession) Judge(context.Context, string, *sqlclass.Statement) Verdict {
	return Verdict{Allow: true, Rows: passRows{}}
}

func (allowSession) Approve(context.Context, []ApprovalItem) ([]string, func(context.Context) error, error) {
	return nil, nil, nil
}

func (allowSession) Reserve(context.Context, int, func() error) (Slots, error) {
	return noSlots{}, nil
}
func (allowSession) SetSearchPath([]string)                        {}
func (allowSession) Deny(context.Context, string, *Verdict, error) {}
func (allowSession) Close()                                        {}

// Ended never fires: the policy side never ends these sessions.
func (allowSession) Ended() <-chan struct{} { return nil }
func (allowSession) EndReason() error       { return nil }

type noSlots struct{}

func (noSlots) Record(*Verdict, CommandResult) {}
func (noSlots) Release()                       {}

// passRows rewrites nothing.
type passRows struct{}

func (passRows) Describe([]pgproto3.FieldDescription) error { return nil }
func (passRows) Rewrite(v [][]byte) [][]byte                { return v }
func (passRows) CopyData(d []byte) ([]byte, error)          { return d, nil }

// internalProxy is a Handler serving a loopback listener in front of a
// fresh database.
type internalProxy struct {
	addr string
	db   string

	// Relayed connections by client address (Config.onConn).
	mu    sync.Mutex
	cond  *sync.Cond
	conns map[string]*conn
}

// relayed returns the proxy's connection for the client whose local
// address is addr, waiting until the proxy has set it up (the client can
// see the startup answer a moment before).
func (p *internalProxy) relayed(addr net.Addr) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.conns[addr.String()] == nil {
		p.cond.Wait()
	}
	c := p.conns[addr.String()]
	delete(p.conns, addr.String())
	return c
}

// startInternalProxy starts a proxy with allowHooks for a fresh database;
// mod adjusts the configuration. Everything stops at cleanup.
func startInternalProxy(t testing.TB, mod func(*Config)) *internalProxy {
	t.Helper()
	dsn := testdb.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := &internalProxy{db: strings.TrimPrefix(u.Path, "/"), conns: map[string]*conn{}}
	p.cond = sync.NewCond(&p.mu)
	bc := BackendConfig{Address: u.Host, User: u.User.Username(), Database: p.db}
	if pw, ok := u.User.Password(); ok {
		bc.Password = pw
	}
	cfg := Config{
		Hooks:   newAllowHooks(t),
		Backend: func(context.Context, string) (BackendConfig, error) { return bc, nil },
		onConn: func(c *conn) {
			p.mu.Lock()
			p.conns[c.client.RemoteAddr().String()] = c
			p.cond.Broadcast()
			p.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = h.ServeConn(ctx, nc)
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return p
}

// dsn is a client connection string through the proxy.
func (p *internalProxy) dsn() string {
	return "postgres://agent:" + internalToken + "@" + p.addr + "/" + p.db + "?sslmode=disable"
}
