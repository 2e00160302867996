package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

func runSessionsCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	if err != nil {
		out.WriteString("error: " + err.Error())
	}
	return out.String(), exitCode(err)
}

// recordedStore records two sessions through the Recorder into a fresh
// SQLite file and returns its path and the session ids.
func recordedStore(t *testing.T) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rec.db")
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := record.New(record.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, who := range []string{"claude-coder", "ci-bot"} {
		sr, err := r.StartSession(t.Context(), &record.Session{Identity: who, Resource: "orders-db", ResourceType: "postgres"})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SELECT 1", "SELECT * FROM orders", "DELETE FROM orders"} {
			if err := sr.Record(record.Event{Protocol: "postgres", Command: q, Effect: "allow", RuleIDs: []string{"r1"}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := sr.End("client closed"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sr.ID())
	}
	if err := r.Close(); err != nil { // flushes without Run
		t.Fatal(err)
	}
	return path, ids
}

func TestSessionsCLI(t *testing.T) {
	t.Parallel()
	path, ids := recordedStore(t)
	store := "--store=sqlite:" + path

	out, code := runSessionsCLI(t, "sessions", "list", store)
	if code != 0 || !strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) {
		t.Fatalf("list (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "list", store, "--identity=ci-bot")
	if code != 0 || strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) {
		t.Fatalf("list --identity (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "show", ids[0], store)
	if code != 0 || !strings.Contains(out, "DELETE FROM orders") || !strings.Contains(out, "claude-coder") {
		t.Fatalf("show (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", ids[0], store)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("verify (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", "--all", "--since", "30d", store)
	if code != 0 || !strings.Contains(out, "2 sessions verified, 0 broken") {
		t.Fatalf("verify --all (exit %d):\n%s", code, out)
	}

	// Tamper with the second session's third statement.
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(t.Context(), `UPDATE events SET command = 'SELECT 1' WHERE session_id = ? AND seq = 3`, ids[1]); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, code = runSessionsCLI(t, "sessions", "verify", "--all", store)
	if code != exitVerify || !strings.Contains(out, "session "+ids[1]+": seq 3:") || !strings.Contains(out, "1 broken") {
		t.Fatalf("verify after tampering (exit %d):\n%s", code, out)
	}
}

func TestSessionsCLIUsage(t *testing.T) {
	t.Parallel()
	path, _ := recordedStore(t)
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"verify needs id or all", []string{"sessions", "verify", "--store=sqlite:" + path}, exitUsage},
		{"verify both", []string{"sessions", "verify", "X", "--all", "--store=sqlite:" + path}, exitUsage},
		{"bad since", []string{"sessions", "list", "--since=yesterday", "--store=sqlite:" + path}, exitUsage},
		{"bad store", []string{"sessions", "list", "--store=mysql://x"}, exitUsage},
		{"bad id", []string{"sessions", "show", "a b", "--store=sqlite:" + path}, exitUsage},
		{"missing db", []string{"sessions", "list", "--store=sqlite:" + filepath.Join(t.TempDir(), "none.db")}, exitError},
		{"unknown session", []string{"sessions", "show", "nope", "--store=sqlite:" + path}, exitError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, code := runSessionsCLI(t, tc.args...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.want, out)
			}
		})
	}
}

// signedStore records two sessions through a signing recorder (one ended,
// one open) into a fresh SQLite file, with a checkpoint covering both, and
// returns the store path, the public key file and the session ids.
func signedStore(t *testing.T) (string, string, []string, record.CheckpointRef) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	privPEM, pubPEM, err := bundle.GenerateKey(bundle.KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.LoadPrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "recording-keys.pem")
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rec.db")
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := record.New(record.Config{Store: st, Signer: key, GatewayID: "gw-1", CheckpointInterval: -1, CheckpointEvents: -1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, who := range []string{"claude-coder", "ci-bot"} {
		sr, err := r.StartSession(ctx, &record.Session{Identity: who, Resource: "orders-db", ResourceType: "postgres"})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SELECT 1", "SELECT * FROM orders"} {
			if err := sr.Record(record.Event{Protocol: "postgres", Command: q, Effect: "allow"}); err != nil {
				t.Fatal(err)
			}
		}
		if i == 0 {
			if err := sr.End("client closed"); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, sr.ID())
	}
	if err := r.Close(); err != nil { // flushes and takes the final checkpoint
		t.Fatal(err)
	}
	return path, pubPath, ids, r.LastCheckpoint()
}

func TestSessionsVerifySigned(t *testing.T) {
	t.Parallel()
	path, pub, ids, last := signedStore(t)
	store, key := "--store=sqlite:"+path, "--key="+pub

	out, code := runSessionsCLI(t, "sessions", "verify", "--all", store, key, "--require-signatures", "--checkpoint", last.String())
	if code != 0 || !strings.Contains(out, ids[0]+"  3 events  signed (key ") || !strings.Contains(out, ids[1]+"  2 events  open  checkpointed to seq 2") ||
		!strings.Contains(out, "checkpoints  gw-1  1..1") || !strings.Contains(out, "2 sessions verified, 0 broken") {
		t.Fatalf("verify --all (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", ids[0], store, key)
	if code != 0 || !strings.Contains(out, "checkpointed to seq 3") {
		t.Fatalf("verify ID (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", "--all", store)
	if code != 0 || !strings.Contains(out, "warning: no trusted keys") {
		t.Fatalf("verify without keys (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", "--all", store, key, "--json")
	if code != 0 || !strings.Contains(out, `"signatures_checked": true`) {
		t.Fatalf("verify --json (exit %d):\n%s", code, out)
	}

	// Another gateway's key is not trusted.
	_, otherPub, err := bundle.GenerateKey(bundle.KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(other, otherPub, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", "--all", store, "--key="+other)
	if code != exitVerify || !strings.Contains(out, "not trusted") {
		t.Fatalf("verify with an untrusted key (exit %d):\n%s", code, out)
	}

	// Delete the ended session, as a writer of the store could.
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(t.Context(), `DELETE FROM sessions WHERE id = ?`, ids[0]); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, code = runSessionsCLI(t, "sessions", "verify", "--all", store, key)
	if code != exitVerify || !strings.Contains(out, "BROKEN  session "+ids[0]) || !strings.Contains(out, "missing from the store") {
		t.Fatalf("verify after deletion (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", ids[0], store, key)
	if code != exitVerify || !strings.Contains(out, "missing from the store") {
		t.Fatalf("verify ID after deletion (exit %d):\n%s", code, out)
	}
}

func TestSessionsVerifyUnsigned(t *testing.T) {
	t.Parallel()
	path, _ := recordedStore(t)
	_, pub, _, _ := signedStore(t)
	store := "--store=sqlite:" + path
	out, code := runSessionsCLI(t, "sessions", "verify", "--all", store, "--key="+pub)
	if code != 0 || !strings.Contains(out, "unsigned  not checkpointed") || !strings.Contains(out, "2 unsigned") {
		t.Fatalf("unsigned sessions (exit %d):\n%s", code, out)
	}
	out, code = runSessionsCLI(t, "sessions", "verify", "--all", store, "--key="+pub, "--require-signatures")
	if code != exitVerify || !strings.Contains(out, "not signed") {
		t.Fatalf("unsigned sessions with --require-signatures (exit %d):\n%s", code, out)
	}
	cases := []struct {
		name string
		args []string
	}{
		{"require signatures without keys", []string{"--all", "--require-signatures"}},
		{"bad checkpoint", []string{"--all", "--checkpoint=gw:1:xyz"}},
		{"checkpoint with an id", []string{"X", "--checkpoint=gw:1:" + strings.Repeat("a", 64)}},
		{"missing key file", []string{"--all", "--key=" + filepath.Join(t.TempDir(), "none.pem")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, code := runSessionsCLI(t, append([]string{"sessions", "verify", store}, tc.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, out)
			}
		})
	}
}
