package ui

import (
	"context"
	"crypto/rand"
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
	"github.com/gatehouse/gatehouse/runtime/identity"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

// testStatus has the shape of the gateway's status that the status page
// reads.
type testStatus struct {
	GatewayID string
	Bundle    struct {
		Active                                          bool
		Revision, LastRejection                         string
		Serial                                          uint64
		SignedBy                                        []string
		ActivatedAt, Expires, LastCheck, LastRejectedAt time.Time
	}
	Recorder string
}

// fixture is a dashboard over the example policies, a SQLite store with a
// few recorded commands and one pending approval, and tokens of the
// development issuer, served over HTTP.
type fixture struct {
	h          *Handler
	http       *httptest.Server
	store      *sqlite.Store
	dev        *identity.DevIssuer
	bundle     *bundle.Bundle
	sessionID  string
	approvalID string
}

func newFixture(t *testing.T) *fixture {
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
	dir := t.TempDir()
	f := &fixture{bundle: b}
	f.store, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "rec.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.dev, err = identity.OpenDevIssuer(identity.DevIssuerConfig{Dir: filepath.Join(dir, "dev-issuer")})
	if err != nil {
		t.Fatal(err)
	}
	issuers := []identity.IssuerConfig{f.dev.IssuerConfig("", "")}
	for _, iss := range identity.PolicyIssuers(&b.Policy) {
		if iss != f.dev.Issuer() {
			issuers = append(issuers, f.dev.IssuerConfig(iss, ""))
		}
	}
	verifier, err := identity.New(identity.Config{Issuers: issuers})
	if err != nil {
		t.Fatal(err)
	}
	approvals, err := approval.New(approval.Config{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	var st testStatus
	st.GatewayID, st.Recorder = "gw-test", "ok"
	st.Bundle.Active, st.Bundle.Revision, st.Bundle.Serial = true, b.Manifest.Revision, b.Manifest.Serial
	f.h, err = New(Config{
		Key: randomID(),
		Authenticate: func(ctx context.Context, tok string) (*identity.Principal, error) {
			claims, err := verifier.Verify(ctx, tok)
			if err != nil {
				return nil, err
			}
			return identity.Resolve(&b.Policy, claims)
		},
		Bundle:     func() *bundle.Bundle { return b },
		Recordings: f.store, ApprovalRecords: f.store, Approvals: approvals,
		Status: func() any { return st },
	})
	if err != nil {
		t.Fatal(err)
	}

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
	if err := f.store.CreateSession(ctx, &sess); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := f.store.EndSession(ctx, sess.ID, sess.EndedAt, sess.EndReason); err != nil {
		t.Fatal(err)
	}
	f.sessionID = sess.ID
	a, err := approvals.Create(ctx, approval.Request{SessionID: record.NewID(now), Identity: "ci-deployer", Resource: "orders-db",
		Command: "ALTER TABLE orders ADD COLUMN note text", RuleID: "ci-migrations-need-approval", Group: "dba", Count: 1, Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.approvalID = a.ID
	f.http = httptest.NewServer(f.h)
	t.Cleanup(f.http.Close)
	return f
}

func (f *fixture) token(t *testing.T, name string) string {
	t.Helper()
	for _, id := range f.bundle.Policy.Identities {
		if id.Name == name {
			tok, err := f.dev.Issue(id, 10*time.Minute)
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

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: f.http.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
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

// cookie returns the value of one of the browser's cookies for /ui/.
func (b *browser) cookie(name string) string {
	b.t.Helper()
	u, _ := url.Parse(b.base + "/ui/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	b.t.Fatalf("no cookie %s", name)
	return ""
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([A-Za-z0-9_-]{43})"`)

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

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.h.cfg
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"short key", func(c *Config) { c.Key = make([]byte, MinKeyLen-1) }, "key: 15 bytes"},
		{"no key", func(c *Config) { c.Key = nil }, "key: 0 bytes"},
		{"no authenticate", func(c *Config) { c.Authenticate = nil }, "Authenticate is required"},
		{"no bundle", func(c *Config) { c.Bundle = nil }, "Bundle is required"},
		{"no recordings", func(c *Config) { c.Recordings = nil }, "Recordings is required"},
		{"no approvals", func(c *Config) { c.Approvals = nil }, "Approvals is required"},
		{"no status", func(c *Config) { c.Status = nil }, "Status is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.edit(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want %q", err, tc.want)
			}
		})
	}
	c := good
	c.Clock, c.Logger, c.ApprovalRecords = nil, nil, nil
	if _, err := New(c); err != nil {
		t.Errorf("optional fields: %v", err)
	}
}

func TestUIAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := f.browser(t)

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
		{"no csrf", url.Values{"token": {f.token(t, "carol")}}, http.StatusForbidden, "CSRF"},
		{"wrong csrf", url.Values{"csrf": {strings.Repeat("A", 43)}, "token": {f.token(t, "carol")}}, http.StatusForbidden, "CSRF"},
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
	code, _, hdr = b.post("/ui/login", url.Values{"csrf": {csrf}, "token": {f.token(t, "carol")}, "next": {"//evil.example/"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/" {
		t.Errorf("next=//evil: %d %s", code, hdr.Get("Location"))
	}
	if code, _, hdr := b.get("/ui/"); code != http.StatusSeeOther || hdr.Get("Location") != "/ui/review" {
		t.Errorf("home for an admin: %d %s", code, hdr.Get("Location"))
	}
	// Log out needs the session's CSRF token (not the login form's), then
	// the cookie is gone.
	_, page, _ = b.get("/ui/status")
	sessionCSRF := csrfOf(t, page)
	if sessionCSRF == csrf {
		t.Error("the session's CSRF token equals the login form's")
	}
	if code, _, _ := b.post("/ui/logout", url.Values{}); code != http.StatusForbidden {
		t.Errorf("logout without csrf: %d", code)
	}
	if code, _, _ := b.post("/ui/logout", url.Values{"csrf": {csrf}}); code != http.StatusForbidden {
		t.Errorf("logout with the login form's csrf: %d", code)
	}
	if code, _, _ := b.post("/ui/logout", url.Values{"csrf": {sessionCSRF}}); code != http.StatusSeeOther {
		t.Errorf("logout: %d", code)
	}
	if code, _, _ := b.get("/ui/status"); code != http.StatusSeeOther {
		t.Errorf("after logout: %d", code)
	}

	// The Authorization header works without a cookie.
	req, _ := http.NewRequest("GET", f.http.URL+"/ui/status", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(t, "erin"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Bundle active") || !strings.Contains(string(body), "gw-test") {
		t.Errorf("bearer header: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	// A header that is not "Bearer TOKEN" is not a login.
	req.Header.Set("Authorization", "Basic Y2Fyb2w6eA==")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/login" || !strings.Contains(resp.Request.URL.RawQuery, "Bearer") {
		t.Errorf("Basic header ended at %s", resp.Request.URL)
	}
}

// TestLoginStartsANewSession: every login draws a new session id, so a
// session cookie planted before the login (fixation) is replaced and two
// logins of one identity have different CSRF tokens.
func TestLoginStartsANewSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, "carol")
	b := f.browser(t)
	u, _ := url.Parse(f.http.URL + "/ui/")
	planted := strings.Repeat("ab", idBytes) + "." + tok
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: planted, Path: "/ui/"}})
	b.login(tok)
	first := b.cookie(sessionCookie)
	if first == planted || !strings.HasSuffix(first, "."+tok) {
		t.Errorf("session cookie after login: %q (planted %q)", first, planted)
	}
	_, page, _ := b.get("/ui/status")
	csrf1 := csrfOf(t, page)
	b.login(tok)
	if b.cookie(sessionCookie) == first {
		t.Error("a second login kept the session id")
	}
	_, page, _ = b.get("/ui/status")
	if csrfOf(t, page) == csrf1 {
		t.Error("a second login kept the CSRF token")
	}
	if code, _, _ := b.post("/ui/logout", url.Values{"csrf": {csrf1}}); code != http.StatusForbidden {
		t.Errorf("logout with the first login's csrf: %d, want 403", code)
	}
}

func TestUIPagesForAnAdmin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := f.browser(t)
	b.login(f.token(t, "carol"))

	cases := []struct {
		path  string
		code  int
		wants []string
	}{
		{"/ui/review", 200, []string{"claude-coder", "copilot-agent", "agents-explain-orders", "UNUSED: removal candidate", "<svg role=\"img\"", "1/1 verified"}},
		{"/ui/review?identity=claude-coder&since=30d", 200, []string{"Least-privilege suggestion", "claude-coder-orders-db-allow-least-privilege", `tables: [&#34;customers&#34;]`, "DELETE FROM orders"}},
		{"/ui/review?identity=mallory", 400, []string{"unknown identity"}},
		{"/ui/review?since=soon", 400, []string{"Period"}},
		{"/ui/sessions", 200, []string{f.sessionID, "claude-coder", `<label for="f-identity">`}},
		{"/ui/sessions?decision=deny", 200, []string{f.sessionID}},
		{"/ui/sessions?identity=copilot-agent", 200, []string{"No sessions match."}},
		{"/ui/sessions?decision=allow&since=2000-01-01&until=2000-01-02", 200, []string{"No sessions match."}},
		{"/ui/sessions?since=yesterday", 400, []string{"want YYYY-MM-DD"}},
		{"/ui/sessions?decision=maybe", 400, []string{"Decision"}},
		{"/ui/sessions/" + f.sessionID, 200, []string{"verified", "SELECT id, email FROM customers", "masked", "agents-read-orders", "deny-unbounded-writes", "1.5ms"}},
		{"/ui/sessions/01ZZZZZZZZZZZZZZZZZZZZZZZZ", 404, nil},
		{"/ui/status", 200, []string{"Bundle active", "yes", f.bundle.Manifest.Revision, "gw-test"}},
		{"/ui/approvals", 200, []string{"ALTER TABLE orders ADD COLUMN note text", "ci-migrations-need-approval", f.approvalID}},
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
	f := newFixture(t)
	ctx := context.Background()

	alice := f.browser(t)
	alice.login(f.token(t, "alice"))
	if code, _, hdr := alice.get("/ui/"); hdr.Get("Location") != "/ui/approvals" {
		t.Errorf("home for a dba: %d %s", code, hdr.Get("Location"))
	}
	if code, _, _ := alice.get("/ui/review"); code != http.StatusForbidden {
		t.Errorf("review without a role: %d, want 403", code)
	}
	_, page, _ := alice.get("/ui/approvals")
	csrf := csrfOf(t, page)
	vote := "/ui/approvals/" + f.approvalID + "/vote"

	carol := f.browser(t)
	carol.login(f.token(t, "carol"))
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
	if a, _ := f.store.GetApproval(ctx, f.approvalID); a.Status != record.StatusPending || len(a.Votes) != 0 {
		t.Fatalf("rejected votes changed the approval: %+v", a)
	}
	code, _, hdr := alice.post(vote, url.Values{"csrf": {csrf}, "decision": {"approve"}, "reason": {"additive column, reviewed"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/approvals?done=approve" {
		t.Fatalf("vote: %d %s", code, hdr.Get("Location"))
	}
	a, err := f.store.GetApproval(ctx, f.approvalID)
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

// randomKey is a CSRF key of another gateway.
func randomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}
