package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// uiServer is a gateway built from the example policies with a SQLite
// store, the development issuer, and a few recorded commands and one
// pending approval, serving the admin handler over HTTP.
type uiServer struct {
	srv        *Server
	http       *httptest.Server
	sessionID  string
	approvalID string
}

func newUIServer(t *testing.T) *uiServer {
	t.Helper()
	ctx := context.Background()
	src, err := compiler.LoadDir("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Bundle
	now := time.Now().UTC().Truncate(time.Second)
	b.Manifest.NotBefore, b.Manifest.Expires = now.Add(-time.Hour), now.Add(time.Hour)
	raw, err := bundle.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Defaults()
	cfg.StateDir = dir
	cfg.Bundle.Source = filepath.Join(dir, "unused.bundle.json")
	cfg.Bundle.AllowUnsigned = true
	cfg.Admin.Listen = ""
	cfg.Recording.Store = "sqlite:" + filepath.Join(dir, "rec.db")
	srv, err := New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.activator.Handle(ctx, fetch.Fetched{Data: raw, ETag: "t"}); err != nil {
		t.Fatal(err)
	}
	u := &uiServer{srv: srv}

	// One session of claude-coder: an allowed, masked read and a denied
	// delete, sealed into a hash chain as the recorder does.
	sess := record.Session{ID: record.NewID(now.Add(-time.Hour)), Identity: "claude-coder", IdentityKind: "agent",
		Groups: []string{"coding-agents"}, Resource: "orders-db", ResourceType: "postgres", ClientAddr: "127.0.0.1:50000",
		GatewayID: "gw", BundleRevision: b.Manifest.Revision, StartedAt: record.Timestamp(now.Add(-time.Hour))}
	evs := []record.Event{
		{Time: record.Timestamp(now.Add(-59 * time.Minute)), Kind: record.KindCommand, Protocol: "postgres",
			Command: "SELECT id, email FROM customers", Facts: json.RawMessage(`{"kind":"select","tables_read":["customers"]}`),
			Effect: "allow", RuleIDs: []string{"agents-read-orders", "mask-customer-pii"}, Masked: true, Rows: 3, DurationMicros: 1500},
		{Time: record.Timestamp(now.Add(-58 * time.Minute)), Kind: record.KindCommand, Protocol: "postgres",
			Command: "DELETE FROM orders", Facts: json.RawMessage(`{"kind":"delete","tables_written":["orders"]}`),
			Effect: "deny", RuleIDs: []string{"deny-unbounded-writes"}, Reason: "unbounded write"},
		{Time: record.Timestamp(now.Add(-57 * time.Minute)), Kind: record.KindEnd, Reason: "client closed"},
	}
	sess.EndedAt, sess.EndReason = evs[2].Time, "client closed"
	if err := record.SealChain(&sess, evs); err != nil {
		t.Fatal(err)
	}
	if err := srv.store.CreateSession(ctx, &sess); err != nil {
		t.Fatal(err)
	}
	if err := srv.store.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := srv.store.EndSession(ctx, sess.ID, sess.EndedAt, sess.EndReason); err != nil {
		t.Fatal(err)
	}
	u.sessionID = sess.ID
	a, err := srv.approvals.Create(ctx, approval.Request{SessionID: record.NewID(now), Identity: "ci-deployer", Resource: "orders-db",
		Command: "ALTER TABLE orders ADD COLUMN note text", RuleID: "ci-migrations-need-approval", Group: "dba", Count: 1, Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	u.approvalID = a.ID
	u.http = httptest.NewServer(srv.adminHandler())
	t.Cleanup(u.http.Close)
	return u
}

func (u *uiServer) token(t *testing.T, name string) string {
	t.Helper()
	for _, id := range u.srv.activator.Engine().Bundle().Policy.Identities {
		if id.Name == name {
			tok, err := u.srv.DevIssuer().Issue(id, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	t.Fatalf("no identity %s", name)
	return ""
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func (u *uiServer) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: u.http.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]{32})"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

func (b *browser) login(tok string) {
	b.t.Helper()
	_, page, _ := b.get("/ui/login")
	code, body, hdr := b.post("/ui/login", url.Values{"csrf": {csrfOf(b.t, page)}, "token": {tok}, "next": {"/ui/"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/" {
		b.t.Fatalf("login: %d %s\n%s", code, hdr.Get("Location"), body)
	}
}

func TestUIAuthentication(t *testing.T) {
	t.Parallel()
	u := newUIServer(t)
	b := u.browser(t)

	code, _, hdr := b.get("/ui/review?identity=claude-coder")
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/ui/login?next=%2Fui%2Freview") {
		t.Errorf("unauthenticated: %d %s", code, hdr.Get("Location"))
	}
	_, page, _ := b.get("/ui/login")
	for _, want := range []string{`<html lang="en">`, `<label for="token">`, `id="token"`} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	csrf := csrfOf(t, page)
	cases := []struct {
		name string
		form url.Values
		code int
		want string
	}{
		{"no csrf", url.Values{"token": {u.token(t, "carol")}}, http.StatusForbidden, "CSRF"},
		{"wrong csrf", url.Values{"csrf": {strings.Repeat("0", 32)}, "token": {u.token(t, "carol")}}, http.StatusForbidden, "CSRF"},
		{"no token", url.Values{"csrf": {csrf}}, http.StatusUnauthorized, "Paste a token"},
		{"bad token", url.Values{"csrf": {csrf}, "token": {"eyJhbGciOiJub25lIn0.e30."}}, http.StatusUnauthorized, "not accepted"},
	}
	for _, tc := range cases {
		code, body, _ := b.post("/ui/login", tc.form)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.name, code, tc.code, tc.want)
		}
	}
	// An open redirect is refused.
	code, _, hdr = b.post("/ui/login", url.Values{"csrf": {csrf}, "token": {u.token(t, "carol")}, "next": {"//evil.example/"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/" {
		t.Errorf("next=//evil: %d %s", code, hdr.Get("Location"))
	}
	if code, _, hdr := b.get("/ui/"); code != http.StatusSeeOther || hdr.Get("Location") != "/ui/review" {
		t.Errorf("home for an admin: %d %s", code, hdr.Get("Location"))
	}
	// Log out needs the CSRF token too, then the cookie is gone.
	if code, _, _ := b.post("/ui/logout", url.Values{}); code != http.StatusForbidden {
		t.Errorf("logout without csrf: %d", code)
	}
	if code, _, _ := b.post("/ui/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Errorf("logout: %d", code)
	}
	if code, _, _ := b.get("/ui/status"); code != http.StatusSeeOther {
		t.Errorf("after logout: %d", code)
	}

	// The Authorization header works without a cookie.
	req, _ := http.NewRequest("GET", u.http.URL+"/ui/status", nil)
	req.Header.Set("Authorization", "Bearer "+u.token(t, "erin"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Bundle active") {
		t.Errorf("bearer header: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
}

func TestUIPagesForAnAdmin(t *testing.T) {
	t.Parallel()
	u := newUIServer(t)
	b := u.browser(t)
	b.login(u.token(t, "carol"))

	cases := []struct {
		path  string
		code  int
		wants []string
	}{
		{"/ui/review", 200, []string{"claude-coder", "copilot-agent", "agents-explain-orders", "UNUSED: removal candidate", "<svg role=\"img\"", "1/1 verified"}},
		{"/ui/review?identity=claude-coder&since=30d", 200, []string{"Least-privilege suggestion", "claude-coder-orders-db-allow-least-privilege", `tables: [&#34;customers&#34;]`, "DELETE FROM orders"}},
		{"/ui/review?identity=mallory", 400, []string{"unknown identity"}},
		{"/ui/review?since=soon", 400, []string{"Period"}},
		{"/ui/sessions", 200, []string{u.sessionID, "claude-coder", `<label for="f-identity">`}},
		{"/ui/sessions?decision=deny", 200, []string{u.sessionID}},
		{"/ui/sessions?identity=copilot-agent", 200, []string{"No sessions match."}},
		{"/ui/sessions?decision=allow&since=2000-01-01&until=2000-01-02", 200, []string{"No sessions match."}},
		{"/ui/sessions?since=yesterday", 400, []string{"want YYYY-MM-DD"}},
		{"/ui/sessions?decision=maybe", 400, []string{"Decision"}},
		{"/ui/sessions/" + u.sessionID, 200, []string{"verified", "SELECT id, email FROM customers", "masked", "agents-read-orders", "deny-unbounded-writes", "1.5ms"}},
		{"/ui/sessions/01ZZZZZZZZZZZZZZZZZZZZZZZZ", 404, nil},
		{"/ui/status", 200, []string{"Bundle active", "yes", u.srv.activator.Status().Revision}},
		{"/ui/approvals", 200, []string{"ALTER TABLE orders ADD COLUMN note text", "ci-migrations-need-approval", u.approvalID}},
		{"/ui/static/style.css", 200, []string{"--accent"}},
	}
	for _, tc := range cases {
		code, body, _ := b.get(tc.path)
		if code != tc.code {
			t.Errorf("%s: %d, want %d\n%s", tc.path, code, tc.code, body)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", tc.path, w)
			}
		}
	}
}

func TestUIApprovalVotes(t *testing.T) {
	t.Parallel()
	u := newUIServer(t)
	ctx := context.Background()

	alice := u.browser(t)
	alice.login(u.token(t, "alice"))
	if code, _, hdr := alice.get("/ui/"); hdr.Get("Location") != "/ui/approvals" {
		t.Errorf("home for a dba: %d %s", code, hdr.Get("Location"))
	}
	if code, _, _ := alice.get("/ui/review"); code != http.StatusForbidden {
		t.Errorf("review without a role: %d, want 403", code)
	}
	_, page, _ := alice.get("/ui/approvals")
	csrf := csrfOf(t, page)
	vote := "/ui/approvals/" + u.approvalID + "/vote"

	carol := u.browser(t)
	carol.login(u.token(t, "carol"))
	_, cpage, _ := carol.get("/ui/approvals")

	cases := []struct {
		name string
		b    *browser
		form url.Values
		code int
		want string
	}{
		{"no csrf", alice, url.Values{"decision": {"approve"}, "reason": {"ok"}}, http.StatusForbidden, "CSRF"},
		{"other browser's csrf", alice, url.Values{"csrf": {csrfOf(t, cpage)}, "decision": {"approve"}, "reason": {"ok"}}, http.StatusForbidden, "CSRF"},
		{"no reason", alice, url.Values{"csrf": {csrf}, "decision": {"approve"}, "reason": {"  "}}, http.StatusBadRequest, "reason is required"},
		{"bad decision", alice, url.Values{"csrf": {csrf}, "decision": {"maybe"}, "reason": {"x"}}, http.StatusBadRequest, "approve or deny"},
		{"not in the approver group", carol, url.Values{"csrf": {csrfOf(t, cpage)}, "decision": {"approve"}, "reason": {"x"}}, http.StatusForbidden, "not a member"},
	}
	for _, tc := range cases {
		code, body, _ := tc.b.post(vote, tc.form)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want %d with %q\n%s", tc.name, code, tc.code, tc.want, body)
		}
	}
	if a, _ := u.srv.store.GetApproval(ctx, u.approvalID); a.Status != record.StatusPending || len(a.Votes) != 0 {
		t.Fatalf("rejected votes changed the approval: %+v", a)
	}
	code, _, hdr := alice.post(vote, url.Values{"csrf": {csrf}, "decision": {"approve"}, "reason": {"additive column, reviewed"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/approvals?done=approve" {
		t.Fatalf("vote: %d %s", code, hdr.Get("Location"))
	}
	a, err := u.srv.store.GetApproval(ctx, u.approvalID)
	if err != nil || a.Status != record.StatusApproved || a.Votes[0].Approver != "alice" || a.Votes[0].Reason != "additive column, reviewed" {
		t.Fatalf("approval after the vote: %+v %v", a, err)
	}
	_, page, _ = alice.get("/ui/approvals?done=approve")
	for _, w := range []string{"Your approval was recorded.", "No approvals are waiting.", "additive column, reviewed"} {
		if !strings.Contains(page, w) {
			t.Errorf("approvals page after the vote lacks %q", w)
		}
	}
	if code, body, _ := alice.post(vote, url.Values{"csrf": {csrf}, "decision": {"deny"}, "reason": {"again"}}); code != http.StatusConflict {
		t.Errorf("second vote: %d\n%s", code, body)
	}
}
