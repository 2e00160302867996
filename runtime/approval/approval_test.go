package approval

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/postgres"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

func sqliteStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "g.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeClock is advanced explicitly by tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T, st Store, clock func() time.Time, n ...Notifier) *Service {
	t.Helper()
	s, err := New(Config{Store: st, Clock: clock, Notifiers: n})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

var dba = []string{"dba"}

func TestQuorumSelfApprovalAndMembership(t *testing.T) {
	t.Parallel()
	s := newService(t, sqliteStore(t), time.Now)
	ctx := context.Background()
	a, err := s.Create(ctx, Request{SessionID: "s1", Identity: "ci-deployer", Resource: "orders-db",
		Command: "ALTER TABLE orders ADD COLUMN note text", RuleID: "migrations", Group: "dba", Count: 2, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() { _, err := s.Wait(ctx, a.ID); result <- err }()

	// Not a member of dba.
	if _, err := s.Vote(ctx, a.ID, Approver{Name: "mallory", Groups: []string{"platform"}}, record.DecisionApprove, "lgtm"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("non-member vote: %v, want ErrNotMember", err)
	}
	// The requester is (oddly) in dba: still refused.
	if _, err := s.Vote(ctx, a.ID, Approver{Name: "ci-deployer", Groups: dba}, record.DecisionApprove, "mine"); !errors.Is(err, record.ErrSelfApproval) {
		t.Fatalf("self approval: %v, want ErrSelfApproval", err)
	}
	if _, err := s.Vote(ctx, a.ID, Approver{Name: "alice", Groups: dba}, record.DecisionApprove, "ok"); err != nil {
		t.Fatal(err)
	}
	// Same approver twice counts once.
	if _, err := s.Vote(ctx, a.ID, Approver{Name: "alice", Groups: dba}, record.DecisionApprove, "again"); !errors.Is(err, record.ErrDuplicateVote) {
		t.Fatalf("duplicate vote: %v", err)
	}
	select {
	case err := <-result:
		t.Fatalf("released before quorum: %v", err)
	default:
	}
	got, err := s.Vote(ctx, a.ID, Approver{Name: "bob", Groups: dba}, record.DecisionApprove, "ok too")
	if err != nil || got.Status != record.StatusApproved {
		t.Fatalf("second vote: %+v %v", got, err)
	}
	if err := <-result; err != nil {
		t.Fatalf("wait after quorum: %v", err)
	}
}

func TestDenyAndTimeout(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	s := newService(t, sqliteStore(t), clock.Now)
	ctx := context.Background()

	denied, _ := s.Create(ctx, Request{Identity: "a", Resource: "r", Command: "DROP TABLE x", RuleID: "r1", Group: "dba", Count: 1, Timeout: time.Minute})
	done := make(chan error, 1)
	go func() { _, err := s.Wait(ctx, denied.ID); done <- err }()
	if _, err := s.Vote(ctx, denied.ID, Approver{Name: "alice", Groups: dba}, record.DecisionDeny, "not during freeze"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "not during freeze") {
		t.Fatalf("denied wait: %v", err)
	}

	// Timeout: the clock passes the deadline; Wait sees it at its next
	// wake-up (the waiter's timer uses the real clock, so wake it by
	// expiring through the store, as the Run loop does).
	exp, _ := s.Create(ctx, Request{Identity: "a", Resource: "r", Command: "DROP TABLE y", RuleID: "r1", Group: "dba", Count: 1, Timeout: time.Minute})
	go func() { _, err := s.Wait(ctx, exp.ID); done <- err }()
	clock.Add(2 * time.Minute)
	if n, err := s.cfg.Store.ExpireApprovals(ctx, clock.Now()); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	s.wake(exp.ID)
	if err := <-done; !errors.Is(err, ErrExpired) {
		t.Fatalf("expired wait: %v, want ErrExpired", err)
	}
	// A late vote is refused.
	if _, err := s.Vote(ctx, exp.ID, Approver{Name: "alice", Groups: dba}, record.DecisionApprove, "late"); !errors.Is(err, record.ErrApprovalClosed) {
		t.Fatalf("late vote: %v", err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	t.Parallel()
	s := newService(t, sqliteStore(t), time.Now)
	a, _ := s.Create(context.Background(), Request{Identity: "a", Resource: "r", Command: "x", RuleID: "r", Group: "dba", Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := s.Wait(ctx, a.ID); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait after cancel: %v", err)
	}
}

// Two gateways share one PostgreSQL store: a vote through one releases a
// waiter on the other through LISTEN/NOTIFY.
func TestCrossGatewayRelease(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	gw1 := newService(t, open(), time.Now)
	gw2 := newService(t, open(), time.Now)
	ctx := context.Background()
	a, err := gw1.Create(ctx, Request{Identity: "ci-deployer", Resource: "orders-db", Command: "ALTER TABLE t ADD c int", RuleID: "m", Group: "dba", Count: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := gw1.Wait(ctx, a.ID); done <- err }()
	if _, err := gw2.Vote(ctx, a.ID, Approver{Name: "alice", Groups: dba}, record.DecisionApprove, "ok"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waiter on gateway 1 not released by a vote on gateway 2")
	}
}

func TestWebhookFormats(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("decode: %v", err)
		}
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
	}))
	defer srv.Close()
	s := newService(t, sqliteStore(t), time.Now,
		&Webhook{URL: srv.URL, Format: "json", AdminURL: "https://gw.example"},
		&Webhook{URL: srv.URL, Format: "slack"})
	a, err := s.Create(context.Background(), Request{Identity: "ci-deployer", Resource: "orders-db", Command: "DROP TABLE x", RuleID: "m", Group: "dba", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("got %d webhook calls", len(bodies))
	}
	if bodies[0]["id"] != a.ID || bodies[0]["approver_group"] != "dba" || bodies[0]["url"] != "https://gw.example/ui/approvals#"+a.ID {
		t.Fatalf("json webhook: %v", bodies[0])
	}
	text, _ := bodies[1]["text"].(string)
	if !strings.Contains(text, a.ID) || !strings.Contains(text, "DROP TABLE x") {
		t.Fatalf("slack webhook text: %q", text)
	}
}
