package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/identity"
)

// runTokenCLI executes the command line and returns stdout, stderr and the
// exit code main would use.
func runTokenCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRootCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), exitCode(err)
}

// TestTokenIssueIdentity issues a token for a policy identity of the example
// policies and checks that the gateway's verifier and resolver map it back
// to that identity.
func TestTokenIssueIdentity(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	policyDir := filepath.Join("..", "..", "policies")
	out, errOut, code := runTokenCLI(t, "", "token", "issue", "--identity", "claude-coder", "--ttl", "10m", "--policy-dir", policyDir, "--state-dir", state)
	if code != exitOK {
		t.Fatalf("token issue: exit %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)

	dev, err := identity.OpenDevIssuer(identity.DevIssuerConfig{Dir: filepath.Join(state, "dev-issuer")})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := loadPolicy(policyDir)
	if err != nil {
		t.Fatal(err)
	}
	var issuers []identity.IssuerConfig
	for _, iss := range identity.PolicyIssuers(pol) {
		issuers = append(issuers, dev.IssuerConfig(iss, pol.Settings.Audience))
	}
	v, err := identity.New(identity.Config{Issuers: issuers})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	p, err := identity.Resolve(pol, c)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if p.Name != "claude-coder" {
		t.Fatalf("resolved to %q, want claude-coder", p.Name)
	}
}

func TestTokenIssueAndInspect(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	out, errOut, code := runTokenCLI(t, "", "token", "issue", "--subject", "agent-7", "--email", "a@example.com", "--claim", "team=orders", "--state-dir", state)
	if code != exitOK {
		t.Fatalf("token issue: exit %d: %s", code, errOut)
	}
	out, errOut, code = runTokenCLI(t, out, "token", "inspect", "-")
	if code != exitOK {
		t.Fatalf("token inspect: exit %d: %s", code, errOut)
	}
	var doc struct {
		Verified *bool          `json:"verified"`
		Claims   map[string]any `json:"claims"`
		Header   map[string]any `json:"header"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect output: %v\n%s", err, out)
	}
	if doc.Verified == nil || *doc.Verified || !strings.Contains(errOut, "UNVERIFIED") {
		t.Fatalf("inspect output not labelled unverified: %s / %s", out, errOut)
	}
	if doc.Claims["sub"] != "agent-7" || doc.Claims["team"] != "orders" || doc.Claims["iss"] != identity.DefaultDevIssuerURL || doc.Header["alg"] != "ES256" {
		t.Fatalf("claims = %v header = %v", doc.Claims, doc.Header)
	}
}

func TestTokenUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"neither identity nor subject", []string{"token", "issue", "--state-dir", t.TempDir()}, exitUsage},
		{"both identity and subject", []string{"token", "issue", "--identity", "x", "--subject", "y", "--state-dir", t.TempDir()}, exitUsage},
		{"bad claim", []string{"token", "issue", "--subject", "y", "--claim", "novalue", "--state-dir", t.TempDir()}, exitUsage},
		{"unknown identity", []string{"token", "issue", "--identity", "nobody", "--policy-dir", filepath.Join("..", "..", "policies"), "--state-dir", t.TempDir()}, exitUsage},
		{"ttl too long", []string{"token", "issue", "--subject", "y", "--ttl", "48h", "--state-dir", t.TempDir()}, exitError},
		{"inspect malformed", []string{"token", "inspect", "not-a-token"}, exitError},
		{"inspect without argument", []string{"token", "inspect"}, exitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := runTokenCLI(t, "", tc.args...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d (%s)", code, tc.want, errOut)
			}
		})
	}
}

func TestTokenInspectNeverVerifies(t *testing.T) {
	t.Parallel()
	// A token with alg none is shown (labelled), never accepted.
	tok := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
	out, _, code := runTokenCLI(t, "", "token", "inspect", tok)
	if code != exitOK || !strings.Contains(out, `"verified": false`) {
		t.Fatalf("inspect: %d %s", code, out)
	}
	if _, _, _, err := identity.ParseUnverified(strings.Repeat("a", identity.MaxTokenSize+1)); !errors.Is(err, identity.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
}
