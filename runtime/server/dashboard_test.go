package server

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
)

// dashboardServer is a gateway serving its admin handler over HTTP with
// adminBundle active. Files in seed are copied into its state directory
// first (keys it shares with another gateway).
func dashboardServer(t *testing.T, seed map[string]string) (*Server, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	for name, from := range seed {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(state, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(state, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := bundle.Encode(adminBundle(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.GatewayID = "gw-dashboard"
	cfg.StateDir = state
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
	hs := httptest.NewServer(srv.adminHandler())
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

var dashboardCSRF = regexp.MustCompile(`name="csrf" value="([A-Za-z0-9_-]+)"`)

// TestDashboardWiring: the admin server mounts the dashboard with the
// gateway's authentication and status, keeps its CSRF key in the state
// directory, and a form rendered by one gateway is accepted by another
// only when they share that key.
func TestDashboardWiring(t *testing.T) {
	t.Parallel()
	a, baseA := dashboardServer(t, nil)
	keyA := filepath.Join(a.cfg.StateDir, dashboardKeyFile)
	fi, err := os.Stat(keyA)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("dashboard key file: %v %v", fi, err)
	}
	devKey := filepath.Join(a.cfg.StateDir, "dev-issuer", "key.pem")
	_, baseB := dashboardServer(t, map[string]string{dashboardKeyFile: keyA, "dev-issuer/key.pem": devKey})
	_, baseC := dashboardServer(t, map[string]string{"dev-issuer/key.pem": devKey})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	_, page := get(baseA + "/ui/login")
	m := dashboardCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the login page:\n%s", page)
	}
	resp, err := c.PostForm(baseA+"/ui/login", url.Values{"csrf": {m[1]}, "token": {token(t, a, "carol")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log in: %d", resp.StatusCode)
	}
	code, page := get(baseA + "/ui/status")
	for _, want := range []string{"gw-dashboard", "Bundle active", a.activator.Status().Revision, "carol"} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("status page: %d, lacks %q", code, want)
		}
	}
	m = dashboardCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the status page:\n%s", page)
	}
	// The browser's cookie and form, sent to the other gateways (a load
	// balancer would do so): B shares the key, C does not.
	// Cookies do not separate ports: the jar would apply B's log out to C.
	uA, _ := url.Parse(baseA + "/ui/")
	cookies := jar.Cookies(uA)
	plain := &http.Client{CheckRedirect: c.CheckRedirect}
	for _, tc := range []struct {
		name, base string
		code       int
	}{{"same key", baseB, http.StatusSeeOther}, {"own key", baseC, http.StatusForbidden}} {
		req, _ := http.NewRequest("POST", tc.base+"/ui/logout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: log out through another gateway: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
}
