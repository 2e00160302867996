package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/identity"
)

// adminBundle has an agent, an admin, and two DBAs.
func adminBundle(t *testing.T) *bundle.Bundle {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	b := testBundle(t, uint64(now.Unix()), now.Add(-time.Hour), now.Add(time.Hour))
	iss := identity.DefaultDevIssuerURL
	b.Policy.Identities = []bundle.Identity{
		{Name: "agent-a", Kind: "agent", Match: bundle.IdentityMatch{Issuer: iss, Subject: "a"}},
		{Name: "alice", Kind: "human", Groups: []string{"dba"}, Match: bundle.IdentityMatch{Issuer: iss, Subject: "alice"}},
		{Name: "bob", Kind: "human", Groups: []string{"dba"}, Match: bundle.IdentityMatch{Issuer: iss, Subject: "bob"}},
		{Name: "carol", Kind: "human", Roles: []string{"admin"}, Match: bundle.IdentityMatch{Issuer: iss, Subject: "carol"}},
	}
	b.Policy.Groups = []bundle.Group{{Name: "dba", Members: []string{"alice", "bob"}}}
	d, err := bundle.PolicyDigest(&b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.PolicyDigest = d
	return b
}

func startAdmin(t *testing.T) (*Server, string) {
	t.Helper()
	privPEM, pubPEMBytes, err := bundle.GenerateKey(bundle.KeyTypeECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.LoadPrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bundlePath := filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(bundlePath, signed(t, adminBundle(t), key), 0o600); err != nil {
		t.Fatal(err)
	}
	pubPEM := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(pubPEM, pubPEMBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Bundle.Source = bundlePath
	cfg.Bundle.Keys = []string{pubPEM}
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Postgres.Listen = ""
	srv, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		srv.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for !srv.Activator().Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("bundle not activated: %+v", srv.Activator().Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return srv, "http://" + srv.AdminAddr().String()
}

func token(t *testing.T, srv *Server, name string) string {
	t.Helper()
	for _, id := range srv.Activator().Engine().Bundle().Policy.Identities {
		if id.Name == name {
			tok, err := srv.DevIssuer().Issue(id, 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	t.Fatalf("no identity %s", name)
	return ""
}

func call(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	srv, base := startAdmin(t)

	if code, _ := call(t, "GET", base+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := call(t, "GET", base+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code, body := call(t, "GET", base+"/metrics", "", ""); code != 200 || !strings.Contains(body, "gatehouse_bundle_active_serial") {
		t.Fatalf("metrics %d", code)
	}
	if code, body := call(t, "GET", base+"/dev/jwks.json", "", ""); code != 200 || !strings.Contains(body, "keys") {
		t.Fatalf("dev jwks %d %s", code, body)
	}

	// Authentication and roles.
	if code, _ := call(t, "GET", base+"/api/v1/status", "", ""); code != 401 {
		t.Fatalf("status without token: %d", code)
	}
	if code, _ := call(t, "GET", base+"/api/v1/status", "not-a-token", ""); code != 401 {
		t.Fatalf("status with garbage token: %d", code)
	}
	if code, _ := call(t, "GET", base+"/api/v1/status", token(t, srv, "agent-a"), ""); code != 403 {
		t.Fatalf("status as agent: %d", code)
	}
	code, body := call(t, "GET", base+"/api/v1/status", token(t, srv, "carol"), "")
	if code != 200 {
		t.Fatalf("status as admin: %d %s", code, body)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || !st.Bundle.Active || st.Bundle.Revision == "" {
		t.Fatalf("status body %s (%v)", body, err)
	}

	// Approvals: the requester cannot vote, a non-member cannot, a member can.
	a, err := srv.Approvals().Create(context.Background(), approval.Request{
		Identity: "alice", Resource: "db-1", Command: "DROP TABLE t", RuleID: "r", Group: "dba", Count: 1, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	vote := base + "/api/v1/approvals/" + a.ID + "/approve"
	if code, body := call(t, "POST", vote, token(t, srv, "carol"), `{"reason":"ok"}`); code != 403 {
		t.Fatalf("non-member vote: %d %s", code, body)
	}
	if code, body := call(t, "POST", vote, token(t, srv, "alice"), `{"reason":"mine"}`); code != 403 {
		t.Fatalf("self approval: %d %s", code, body)
	}
	if code, body := call(t, "POST", vote, token(t, srv, "bob"), `{}`); code != 400 {
		t.Fatalf("vote without reason: %d %s", code, body)
	}
	if code, body := call(t, "POST", vote, token(t, srv, "bob"), `{"reason":"reviewed"}`); code != 200 || !strings.Contains(body, "approved") {
		t.Fatalf("member vote: %d %s", code, body)
	}
	if code, _ := call(t, "POST", vote, token(t, srv, "bob"), `{"reason":"again"}`); code != 409 {
		t.Fatalf("vote on a closed approval: %d", code)
	}
	code, body = call(t, "GET", base+"/api/v1/approvals?status=approved", token(t, srv, "alice"), "")
	if code != 200 || !strings.Contains(body, a.ID) {
		t.Fatalf("list approvals: %d %s", code, body)
	}
}
