package identity_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/identity"
)

const tenant = "https://login.example/tenant"

func testPolicy() *bundle.Policy {
	return &bundle.Policy{Identities: []bundle.Identity{
		{Name: "claude-coder", Kind: "agent", Match: bundle.IdentityMatch{Issuer: tenant, Subject: "app-123"}, Groups: []string{"agents"}, Roles: nil},
		{Name: "alice", Kind: "human", Match: bundle.IdentityMatch{Issuer: tenant, Email: "alice@example.com"}, Groups: []string{"dba", "oncall"}, Roles: []string{"admin"}},
		{Name: "ci-bot", Kind: "service", Match: bundle.IdentityMatch{Issuer: "https://ci.example", Claims: map[string]string{"repository": "org/app", "groups": "deployers"}}},
		{Name: "empty-match", Kind: "agent"},
		// Two identities that both match sub "twin": the policy is ambiguous.
		{Name: "twin-a", Kind: "agent", Match: bundle.IdentityMatch{Subject: "twin"}},
		{Name: "twin-b", Kind: "agent", Match: bundle.IdentityMatch{Issuer: tenant, Subject: "twin"}},
	}}
}

func claimsOf(raw map[string]any) *identity.Claims {
	// Round-trip through JSON with numbers kept as json.Number, as Verify does.
	b, _ := json.Marshal(raw)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	_ = dec.Decode(&m)
	c := &identity.Claims{Raw: m}
	c.Issuer, _ = m["iss"].(string)
	c.Subject, _ = m["sub"].(string)
	c.Email, _ = m["email"].(string)
	return c
}

func TestResolve(t *testing.T) {
	t.Parallel()
	p := testPolicy()
	cases := []struct {
		name    string
		claims  map[string]any
		want    string
		wantErr error
	}{
		{"by subject", map[string]any{"iss": tenant, "sub": "app-123", "exp": 1, "azp": "cli", "secret": "x"}, "claude-coder", nil},
		{"by email", map[string]any{"iss": tenant, "sub": "u-9", "email": "alice@example.com"}, "alice", nil},
		{"by email verified", map[string]any{"iss": tenant, "sub": "u-9", "email": "alice@example.com", "email_verified": true}, "alice", nil},
		{"email not verified", map[string]any{"iss": tenant, "sub": "u-9", "email": "alice@example.com", "email_verified": false}, "", identity.ErrUnknownIdentity},
		{"by claims array contains", map[string]any{"iss": "https://ci.example", "sub": "x", "repository": "org/app", "groups": []string{"readers", "deployers"}}, "ci-bot", nil},
		{"by claims string equal", map[string]any{"iss": "https://ci.example", "sub": "x", "repository": "org/app", "groups": "deployers"}, "ci-bot", nil},
		{"claims array lacks value", map[string]any{"iss": "https://ci.example", "sub": "x", "repository": "org/app", "groups": []string{"readers"}}, "", identity.ErrUnknownIdentity},
		{"claims missing one", map[string]any{"iss": "https://ci.example", "sub": "x", "groups": "deployers"}, "", identity.ErrUnknownIdentity},
		{"subject from other issuer", map[string]any{"iss": "https://other.example", "sub": "app-123"}, "", identity.ErrUnknownIdentity},
		{"unknown", map[string]any{"iss": tenant, "sub": "nobody"}, "", identity.ErrUnknownIdentity},
		{"ambiguous", map[string]any{"iss": tenant, "sub": "twin"}, "", identity.ErrAmbiguousIdentity},
		{"twin from other issuer is unique", map[string]any{"iss": "https://x.example", "sub": "twin"}, "twin-a", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pr, err := identity.Resolve(p, claimsOf(tc.claims))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if pr.Name != tc.want {
				t.Fatalf("Resolve = %q, want %q", pr.Name, tc.want)
			}
		})
	}
}

func TestResolvePrincipal(t *testing.T) {
	t.Parallel()
	p := testPolicy()
	pr, err := identity.Resolve(p, claimsOf(map[string]any{
		"iss": tenant, "sub": "u-9", "email": "alice@example.com", "aud": "gatehouse",
		"azp": "cli", "exp": 1700000000, "password": "hunter2", "groups": []string{"x"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Name != "alice" || pr.Kind != "human" || pr.Subject != "u-9" || pr.Issuer != tenant {
		t.Fatalf("principal = %+v", pr)
	}
	if len(pr.Groups) != 2 || pr.Groups[0] != "dba" || len(pr.Roles) != 1 || pr.Roles[0] != "admin" {
		t.Fatalf("groups/roles = %v %v", pr.Groups, pr.Roles)
	}
	// Only allow-listed claims are kept for recording.
	for _, k := range []string{"iss", "sub", "email", "aud", "azp", "exp"} {
		if _, ok := pr.Claims[k]; !ok {
			t.Errorf("claim %s missing from principal", k)
		}
	}
	for _, k := range []string{"password", "groups"} {
		if _, ok := pr.Claims[k]; ok {
			t.Errorf("claim %s must not be recorded", k)
		}
	}
	// The principal's groups are a copy.
	pr.Groups[0] = "mutated"
	if p.Identities[1].Groups[0] != "dba" {
		t.Fatal("Resolve aliases policy slices")
	}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "principal", pr)
	if !strings.Contains(sb.String(), "principal.name=alice") || strings.Contains(sb.String(), "hunter2") {
		t.Fatalf("log = %q", sb.String())
	}
}

func TestResolveNil(t *testing.T) {
	t.Parallel()
	if _, err := identity.Resolve(nil, &identity.Claims{}); !errors.Is(err, identity.ErrUnknownIdentity) {
		t.Fatalf("nil policy: %v", err)
	}
	if _, err := identity.Resolve(testPolicy(), nil); !errors.Is(err, identity.ErrUnknownIdentity) {
		t.Fatalf("nil claims: %v", err)
	}
}
