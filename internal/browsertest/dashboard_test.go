package browsertest

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/testclock"
	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/server"
)

// chromium finds Chromium: GATEHOUSE_CHROMIUM when set, else chromium or
// chromium-browser on PATH. Installing it is scripts/deps.sh's job (make
// test runs it); a missing browser fails the test, like a missing
// database, unless GATEHOUSE_SKIP_INTEGRATION=1 (checked before).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GATEHOUSE_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("GATEHOUSE_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: install the Debian package chromium (run scripts/deps.sh as root, " +
		"or apt-get install -y chromium), or set GATEHOUSE_CHROMIUM to a Chromium binary, " +
		"or set GATEHOUSE_SKIP_INTEGRATION=1 to skip the integration tests")
	return ""
}

// gateway starts the real gateway: the example policies, the PostgreSQL
// proxy in front of a fresh database holding the demo's sample data, and a
// SQLite store. It runs at testclock.Example, so the example grants have
// not expired and CI migrations wait for a DBA (business hours), whatever
// the date.
func gateway(t *testing.T, ctx context.Context) (*server.Server, string) {
	t.Helper()
	dsn := testdb.Postgres(t)
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, demo.SampleSQL); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	src, err := compiler.LoadDir("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Bundle
	clock := testclock.Start(testclock.Example)
	now := clock().UTC().Truncate(time.Second)
	b.Manifest.NotBefore, b.Manifest.Expires = now.Add(-time.Hour), now.Add(time.Hour)
	raw, err := bundle.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bundlePath := filepath.Join(dir, "policies.bundle.json")
	if err := os.WriteFile(bundlePath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := server.Defaults()
	cfg.StateDir = dir
	cfg.Bundle.Source = bundlePath
	cfg.Bundle.AllowUnsigned = true
	cfg.Postgres.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Recording.Store = "sqlite:" + filepath.Join(dir, "gatehouse.db")
	cfg.Recording.FlushInterval = 20 * time.Millisecond
	cfg.Resources = map[string]server.ResourceConfig{
		"orders-db": {Address: net.JoinHostPort(pc.Host, fmt.Sprint(pc.Port)), Database: pc.Database, User: pc.User},
	}
	cfg.ShutdownGrace = 2 * time.Second
	srv, err := server.New(ctx, cfg, nil, server.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Activator().Handle(ctx, fetch.Fetched{Data: raw, ETag: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("gateway: %v", err)
		}
	})
	return srv, dsn
}

// crossPortAttacker serves, on another loopback port than the dashboard at
// base, a page that plants a CSRF cookie for the dashboard's host and
// submits the approval form with the same value, as a hostile service on
// the same host could. It returns the page's origin.
func crossPortAttacker(t *testing.T, base string) string {
	t.Helper()
	const planted = "0123456789abcdef0123456789abcdef"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Host-only cookies are keyed by host name, not port: this one
		// reaches the dashboard, replacing a cookie of the same name and
		// path (the double-submit cookie of earlier versions).
		http.SetCookie(w, &http.Cookie{Name: "gatehouse_csrf", Value: planted, Path: "/ui/"})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body>
<form id="f" method="post" action="%s/ui/approvals/%s/vote">
<input type="hidden" name="csrf" value="%s">
<input type="hidden" name="decision" value="approve">
<input type="hidden" name="reason" value="looks fine">
</form>
<script>document.getElementById("f").submit()</script>
</body></html>`, base, template.HTMLEscapeString(r.URL.Query().Get("approval")), planted)
	})
	hs := httptest.NewServer(h) // 127.0.0.1, a port of its own
	t.Cleanup(hs.Close)
	if hs.URL == base {
		t.Fatal("the attacker page must be on another port")
	}
	return hs.URL
}

func token(t *testing.T, srv *server.Server, name string) string {
	t.Helper()
	for _, id := range srv.Activator().Engine().Bundle().Policy.Identities {
		if id.Name == name {
			tok, err := srv.DevIssuer().Issue(id, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	t.Fatalf("no identity %s", name)
	return ""
}

func connect(ctx context.Context, t *testing.T, srv *server.Server, identity string) *pgx.Conn {
	t.Helper()
	host, port, _ := net.SplitHostPort(srv.PostgresAddr().String())
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s dbname=orders-db user=%s sslmode=disable", host, port, identity))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = token(t, srv, identity)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as %s: %v", identity, err)
	}
	return conn
}

// eventually polls cond on a ticker until it holds or the bound passes.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

func TestDashboardInChromium(t *testing.T) {
	testdb.RequireIntegration(t)
	chrome := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, dsn := gateway(t, ctx)
	base := "http://" + srv.AdminAddr().String()
	shots := filepath.Join("..", "..", "testout", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	// A recorded session: one allowed read, one denied unbounded delete.
	agent := connect(ctx, t, srv, "claude-coder")
	var n int
	if err := agent.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 40 {
		t.Fatalf("allowed read: %d, %v", n, err)
	}
	var pe *pgconn.PgError
	if _, err := agent.Exec(ctx, "DELETE FROM orders"); !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("unbounded delete: %v, want SQLSTATE 42501", err)
	}
	agent.Close(ctx)
	var sessionID string
	eventually(ctx, t, "the agent's session to be recorded", func() bool {
		list, err := srv.Store().ListSessions(ctx, record.SessionFilter{Identity: "claude-coder"})
		if err != nil || len(list) != 1 || list[0].EndedAt.IsZero() {
			return false
		}
		sessionID = list[0].ID
		return true
	})

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()

	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) []byte {
		t.Helper()
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		return png
	}
	login := func(who string) {
		t.Helper()
		run("log in as "+who,
			chromedp.Navigate(base+"/ui/login"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SetValue(chromedp.CSS("#token"), token(t, srv, who)),
			chromedp.Click(chromedp.CSS("#login")),
			chromedp.WaitVisible(chromedp.CSS("#principal")),
		)
		if got := text("#principal"); got != who {
			t.Fatalf("signed in as %q, want %s", got, who)
		}
	}
	logout := func() {
		t.Helper()
		run("log out", chromedp.Click(chromedp.CSS("form.who button")), chromedp.WaitVisible(chromedp.CSS("#token")))
	}

	// carol (admin) reads the recorded session.
	login("carol")
	run("open the sessions list",
		chromedp.Navigate(base+"/ui/sessions?identity=claude-coder"),
		chromedp.WaitVisible(chromedp.CSS("#sessions")),
		chromedp.Click(chromedp.CSS(`#sessions a[href="/ui/sessions/`+sessionID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#events")),
	)
	if got := text("#chain"); !strings.Contains(got, "verified") {
		t.Errorf("chain status %q", got)
	}
	events := text("#events")
	for _, want := range []string{"SELECT count(*) FROM orders", "agents-read-orders", "DELETE FROM orders", "deny-unbounded-writes"} {
		if !strings.Contains(events, want) {
			t.Errorf("session replay lacks %q:\n%s", want, events)
		}
	}
	shot("session.png")
	logout()

	// A CI client sends a migration that needs a DBA; it waits.
	ci := connect(ctx, t, srv, "ci-deployer")
	defer ci.Close(ctx)
	migrated := make(chan error, 1)
	go func() {
		_, err := ci.Exec(ctx, "ALTER TABLE orders ADD COLUMN tracking_code text")
		migrated <- err
	}()
	var approvalID string
	eventually(ctx, t, "the pending approval", func() bool {
		list, err := srv.Approvals().List(ctx, record.StatusPending)
		if err != nil || len(list) != 1 {
			return false
		}
		approvalID = list[0].ID
		return true
	})
	select {
	case err := <-migrated:
		t.Fatalf("the migration finished before anyone approved it: %v", err)
	default:
	}

	// While alice (dba) is logged in, a page on another port of the same
	// host plants a CSRF cookie (cookies do not separate ports, and
	// SameSite counts another port as the same site) and submits the
	// approval form with the planted value. The vote must be refused.
	login("alice")
	attacker := crossPortAttacker(t, base)
	run("the cross-port page submits the approval form",
		chromedp.Navigate(attacker+"/vote?approval="+approvalID),
		chromedp.WaitVisible(chromedp.CSS("p.error, p.notice")),
	)
	shot("cross-port-refused.png")
	if a, err := srv.Store().GetApproval(ctx, approvalID); err != nil || a.Status != record.StatusPending || len(a.Votes) != 0 {
		t.Fatalf("the cross-port form cast a vote: %+v, %v", a, err)
	}
	if got := text("p.error"); !strings.Contains(got, "another origin") {
		t.Errorf("refusal of the cross-port form: %q", got)
	}

	// alice approves it in the queue herself; the client proceeds.
	run("approve the migration",
		chromedp.Navigate(base+"/ui/approvals"),
		chromedp.WaitVisible(chromedp.CSS("section.approval")),
	)
	if got := text("section.approval"); !strings.Contains(got, "ALTER TABLE orders ADD COLUMN tracking_code text") || !strings.Contains(got, approvalID) {
		t.Errorf("approval card: %q", got)
	}
	run("vote",
		chromedp.SetValue(chromedp.CSS("#reason-"+approvalID), "additive column, no lock risk"),
		chromedp.Click(chromedp.CSS("section.approval button.approve")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	)
	shot("approvals.png")
	select {
	case err := <-migrated:
		if err != nil {
			t.Fatalf("the approved migration failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the client did not proceed within 30s of the approval")
	}
	direct, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	var cols int
	if err := direct.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'tracking_code'").Scan(&cols); err != nil || cols != 1 {
		t.Errorf("tracking_code column: %d, %v", cols, err)
	}
	a, err := srv.Store().GetApproval(ctx, approvalID)
	if err != nil || a.Status != record.StatusApproved || a.Votes[0].Approver != "alice" {
		t.Errorf("approval after the vote: %+v, %v", a, err)
	}
	logout()

	// carol opens the agent's access review: the unused grants show.
	login("carol")
	run("open the review",
		chromedp.Navigate(base+"/ui/review?identity=claude-coder"),
		chromedp.WaitVisible(chromedp.CSS("#identity-claude-coder table.grants")),
	)
	grants := text("#identity-claude-coder table.grants")
	if !strings.Contains(grants, "agents-explain-orders") || !strings.Contains(grants, "UNUSED: removal candidate") {
		t.Errorf("review grants:\n%s", grants)
	}
	if used := text("#identity-claude-coder tr.used"); !strings.Contains(used, "agents-read-orders") {
		t.Errorf("the used grant row: %q", used)
	}
	if got := text("#identity-claude-coder tr.unused"); !strings.Contains(got, "UNUSED") {
		t.Errorf("first unused grant row: %q", got)
	}
	png := shot("review.png")
	if os.Getenv("GATEHOUSE_UPDATE_SCREENSHOTS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", "review.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
