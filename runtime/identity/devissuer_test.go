package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/identity"
)

func openDev(t *testing.T, cfg identity.DevIssuerConfig) *identity.DevIssuer {
	t.Helper()
	d, err := identity.OpenDevIssuer(cfg)
	if err != nil {
		t.Fatalf("OpenDevIssuer: %v", err)
	}
	return d
}

func TestDevIssuerRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			clock := newTestClock()
			dir := filepath.Join(t.TempDir(), "dev-issuer")
			d := openDev(t, identity.DevIssuerConfig{Dir: dir, Algorithm: alg, Clock: clock.Now})
			if d.Algorithm() != alg {
				t.Fatalf("algorithm = %s", d.Algorithm())
			}
			p := testPolicy()
			p.Identities = append(p.Identities, bundle.Identity{Name: "dev-agent", Kind: "agent", Match: bundle.IdentityMatch{Issuer: d.Issuer(), Subject: "dev-agent"}})

			v, err := identity.New(identity.Config{
				Issuers: []identity.IssuerConfig{d.IssuerConfig("", ""), d.IssuerConfig(tenant, ""), d.IssuerConfig("https://ci.example", "")},
				Clock:   clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"dev-agent", "claude-coder", "alice", "ci-bot"} {
				var id bundle.Identity
				for _, x := range p.Identities {
					if x.Name == name {
						id = x
					}
				}
				tok, err := d.Issue(id, 15*time.Minute)
				if err != nil {
					t.Fatalf("Issue %s: %v", name, err)
				}
				c, err := v.Verify(context.Background(), tok)
				if err != nil {
					t.Fatalf("Verify %s: %v", name, err)
				}
				pr, err := identity.Resolve(p, c)
				if err != nil {
					t.Fatalf("Resolve %s: %v", name, err)
				}
				if pr.Name != name {
					t.Fatalf("token for %s resolved to %s", name, pr.Name)
				}
			}
			// Issued tokens expire with the injected clock.
			tok, err := d.Issue(p.Identities[0], time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Minute)
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, identity.ErrExpired) {
				t.Fatalf("expired dev token: %v", err)
			}
		})
	}
}

func TestDevIssuerPersistence(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	dir := filepath.Join(t.TempDir(), "state", "dev-issuer")
	d1 := openDev(t, identity.DevIssuerConfig{Dir: dir, Clock: clock.Now})
	st, err := os.Stat(filepath.Join(dir, identity.DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %v, want 0600", st.Mode().Perm())
	}
	tok, err := d1.IssueToken(identity.TokenRequest{Subject: "s", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// A restart (new instance, same directory) has the same key.
	d2 := openDev(t, identity.DevIssuerConfig{Dir: dir, Clock: clock.Now, Algorithm: "EdDSA"})
	if d2.KeyID() != d1.KeyID() || string(d2.JWKS()) != string(d1.JWKS()) || d2.Algorithm() != "ES256" {
		t.Fatalf("key changed across restart: %s/%s %s", d1.KeyID(), d2.KeyID(), d2.Algorithm())
	}
	v, err := identity.New(identity.Config{Issuers: []identity.IssuerConfig{d2.IssuerConfig("", "")}, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("token from before restart: %v", err)
	}
	// A different directory means a different key: its tokens are refused.
	other := openDev(t, identity.DevIssuerConfig{Dir: t.TempDir(), Clock: clock.Now})
	tok2, err := other.IssueToken(identity.TokenRequest{Subject: "s", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok2); !errors.Is(err, identity.ErrUnknownKey) {
		t.Fatalf("foreign dev key: %v, want ErrUnknownKey", err)
	}
}

func TestDevIssuerBadKeyFiles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"world readable", "", 0o644},
		{"garbage", "not a pem file", 0o600},
		{"wrong pem type", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0o600},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			content := tc.content
			if content == "" {
				// A valid key with a bad mode.
				openDev(t, identity.DevIssuerConfig{Dir: dir})
			} else if err := os.WriteFile(filepath.Join(dir, identity.DevKeyFile), []byte(content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, identity.DevKeyFile), tc.mode); err != nil {
				t.Fatal(err)
			}
			if _, err := identity.OpenDevIssuer(identity.DevIssuerConfig{Dir: dir}); !errors.Is(err, identity.ErrDevIssuer) {
				t.Fatalf("OpenDevIssuer = %v, want ErrDevIssuer", err)
			}
		})
	}
}

func TestDevIssuerRefusals(t *testing.T) {
	t.Parallel()
	d := openDev(t, identity.DevIssuerConfig{Dir: t.TempDir(), MaxTTL: time.Hour})
	cases := []struct {
		name string
		req  identity.TokenRequest
	}{
		{"no subject", identity.TokenRequest{TTL: time.Minute}},
		{"zero ttl", identity.TokenRequest{Subject: "s"}},
		{"ttl beyond max", identity.TokenRequest{Subject: "s", TTL: 2 * time.Hour}},
		{"reserved claim", identity.TokenRequest{Subject: "s", TTL: time.Minute, Claims: map[string]any{"exp": 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := d.IssueToken(tc.req); !errors.Is(err, identity.ErrDevIssuer) {
				t.Fatalf("IssueToken = %v, want ErrDevIssuer", err)
			}
		})
	}
	if _, err := identity.OpenDevIssuer(identity.DevIssuerConfig{}); !errors.Is(err, identity.ErrInvalidConfig) {
		t.Fatalf("no dir: %v", err)
	}
	if _, err := identity.OpenDevIssuer(identity.DevIssuerConfig{Dir: t.TempDir(), Algorithm: "HS256"}); !errors.Is(err, identity.ErrInvalidConfig) {
		t.Fatalf("HS256: %v", err)
	}
}

// TestDevIssuerOverHTTP serves the dev issuer through a real HTTP server and
// verifies its tokens through discovery, as a gateway that is not in-process
// with the issuer would.
func TestDevIssuerOverHTTP(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	d := openDev(t, identity.DevIssuerConfig{Dir: t.TempDir(), Issuer: srv.URL + "/dev", Clock: clock.Now})
	mux.Handle("/dev/", http.StripPrefix("/dev", d.Handler()))

	resp, err := srv.Client().Get(srv.URL + "/dev/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc["issuer"] != d.Issuer() || doc["jwks_uri"] != d.Issuer()+"/jwks.json" {
		t.Fatalf("discovery = %v, %v", doc, err)
	}
	resp, err = srv.Client().Post(srv.URL+"/dev/jwks.json", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST jwks: %d", resp.StatusCode)
	}

	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: d.Issuer(), Audience: identity.DefaultAudience}},
		Clock:   clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := d.IssueToken(identity.TokenRequest{Subject: "agent-1", Email: "a@example.com", TTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify via discovery: %v", err)
	}
	if c.Subject != "agent-1" || c.Email != "a@example.com" || c.Raw["email_verified"] != true {
		t.Fatalf("claims = %+v", c)
	}
}

func TestPolicyIssuers(t *testing.T) {
	t.Parallel()
	got := identity.PolicyIssuers(testPolicy())
	if len(got) != 2 || got[0] != "https://ci.example" || got[1] != tenant {
		t.Fatalf("PolicyIssuers = %v", got)
	}
}
