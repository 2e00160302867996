package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// run executes the gatehouse command line and returns stdout, stderr and
// the exit code main would use.
func run(t *testing.T, args ...string) (string, string, int, error) {
	t.Helper()
	cmd := newRootCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), exitCode(err), err
}

func writeTestBundle(t *testing.T, path string) *bundle.Bundle {
	t.Helper()
	b := &bundle.Bundle{
		Manifest: bundle.Manifest{
			FormatVersion: bundle.FormatVersion,
			Revision:      "0123456789abcdef0123456789abcdef01234567",
			SourceDigest:  "sha256:" + strings.Repeat("ab", 32),
			Serial:        3,
			NotBefore:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Expires:       time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		},
		Policy: bundle.Policy{
			Resources: []bundle.Resource{{Name: "orders-db", Type: bundle.ResourcePostgres, Address: "127.0.0.1:5432"}},
			Rules: []bundle.Rule{
				{ID: "agents-read", Index: 0, Subjects: []string{"group:agents"}, Resources: []string{"orders-db"},
					ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectAllow, SQL: &bundle.SQLMatch{Statements: []string{"select"}}},
				{ID: "no-unbounded-writes", Index: 1, ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectDeny,
					SQL: &bundle.SQLMatch{Statements: []string{"delete", "update"}, WithoutWhere: true}},
			},
		},
	}
	d, err := bundle.PolicyDigest(&b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.PolicyDigest = d
	data, err := bundle.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBundleCommands runs keygen, sign, verify and inspect end to end. It
// sets the password environment variable, so it does not run in parallel.
func TestBundleCommands(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	t.Setenv(keyPasswordEnv, "s3cret")

	if _, _, code, err := run(t, "keygen", "--output-key-prefix", p("a")); code != exitOK {
		t.Fatalf("keygen a: %v", err)
	}
	out, _, code, err := run(t, "keygen", "--type", "ed25519", "--output-key-prefix", p("b"))
	if code != exitOK || !strings.Contains(out, "Key id: ") {
		t.Fatalf("keygen b: %v\n%s", err, out)
	}
	if _, _, code, _ := run(t, "keygen", "--output-key-prefix", p("a")); code != exitError {
		t.Fatalf("keygen over an existing key: exit %d, want %d", code, exitError)
	}
	if _, _, code, _ := run(t, "keygen", "--type", "rsa"); code != exitUsage {
		t.Fatalf("keygen --type rsa: exit %d, want %d", code, exitUsage)
	}
	if fi, err := os.Stat(p("a.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("a.key: %v, mode %v", err, fi.Mode())
	}

	writeTestBundle(t, p("bundle.json"))

	if _, _, code, err := run(t, "sign", "--key", p("a.key"), p("bundle.json")); code != exitOK {
		t.Fatalf("sign a: %v", err)
	}
	signed := p("bundle.signed.json")
	out, _, code, err = run(t, "verify", "--key", p("a.pub"), signed)
	if code != exitOK || !strings.Contains(out, "Verified") || !strings.Contains(out, "serial:       3") {
		t.Fatalf("verify a: exit %d, %v\n%s", code, err, out)
	}
	// Two of two after a second signature, added in place.
	if _, _, code, err := run(t, "sign", "--key", p("a.key"), signed); code != exitError || err == nil {
		t.Fatalf("second signature by the same key: exit %d", code)
	}
	if _, _, code, err := run(t, "sign", "--key", p("b.key"), signed); code != exitOK {
		t.Fatalf("sign b: %v", err)
	}
	if _, _, code, err := run(t, "verify", "--key", p("a.pub"), "--key", p("b.pub"), "--threshold", "2", signed); code != exitOK {
		t.Fatalf("verify 2 of 2: %v", err)
	}

	// Rejections exit with exitVerify and keep the reason.
	if _, _, code, err := run(t, "verify", "--key", p("a.pub"), p("bundle.json")); code != exitVerify || !errors.Is(err, bundle.ErrUnsigned) {
		t.Fatalf("verify unsigned: exit %d, %v", code, err)
	}
	if _, _, code, err := run(t, "verify", "--key", p("a.pub"), "--at", "2100-01-01T00:00:00Z", signed); code != exitVerify || !errors.Is(err, bundle.ErrExpired) {
		t.Fatalf("verify after expiry: exit %d, %v", code, err)
	}
	data, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	var env bundle.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	env.Signatures = env.Signatures[1:] // drop a's signature
	only, _ := env.Marshal()
	if err := os.WriteFile(p("only-b.json"), only, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code, err := run(t, "verify", "--key", p("a.pub"), "--key", p("b.pub"), "--threshold", "2", p("only-b.json")); code != exitVerify || !errors.Is(err, bundle.ErrThreshold) {
		t.Fatalf("verify below threshold: exit %d, %v", code, err)
	}
	tampered := bytes.Replace(data, []byte(`"payload":"ey`), []byte(`"payload":"eX`), 1)
	if err := os.WriteFile(p("tampered.json"), tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code, _ := run(t, "verify", "--key", p("a.pub"), p("tampered.json")); code != exitVerify {
		t.Fatalf("verify tampered: exit %d", code)
	}
	if _, _, code, _ := run(t, "verify", signed); code != exitUsage {
		t.Fatalf("verify without keys: exit %d, want %d", code, exitUsage)
	}

	// Inspect works on unsigned and signed files.
	out, _, code, err = run(t, "inspect", p("bundle.json"))
	if code != exitOK || !strings.Contains(out, "bare bundle (unsigned)") || !strings.Contains(out, "no-unbounded-writes") {
		t.Fatalf("inspect bundle.json: %v\n%s", err, out)
	}
	out, _, code, err = run(t, "inspect", "--json", signed)
	if code != exitOK {
		t.Fatalf("inspect --json: %v", err)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json output: %v\n%s", err, out)
	}
	if rep.Format != "envelope" || len(rep.SignatureKeyIDs) != 2 || len(rep.Rules) != 2 || rep.Rules[1].Subjects[0] != "*" {
		t.Fatalf("inspect --json: %+v", rep)
	}

	// A wrong password fails to load the key.
	t.Setenv(keyPasswordEnv, "wrong")
	if _, _, code, err := run(t, "sign", "--key", p("a.key"), "-o", p("x.json"), p("bundle.json")); code != exitError {
		t.Fatalf("sign with a wrong password: exit %d, %v", code, err)
	}
}
