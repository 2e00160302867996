package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
)

func quietConfig(t *testing.T, dir string) Config {
	t.Helper()
	cfg := Defaults()
	cfg.StateDir = dir
	cfg.GatewayID = "gw-test"
	cfg.Bundle.Source = filepath.Join(dir, "unused.bundle.json")
	cfg.Bundle.AllowUnsigned = true
	cfg.Admin.Listen, cfg.Postgres.Listen = "", ""
	cfg.Recording.Store = "sqlite:" + filepath.Join(dir, "rec.db")
	return cfg
}

func publishedKeys(t *testing.T, dir string) *record.KeyRing {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, recordingKeysPublished))
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := record.ParsePublicKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := record.NewKeyRing(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// TestRecordingKeyLifecycle: the key is created on first start, reused on
// the next, rotated by configuration with the old public key still
// published, and what the gateway records verifies with the published
// keys.
func TestRecordingKeyLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := quietConfig(t, dir)

	srv, err := New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := srv.recordingKeys.signer.KeyID()
	st, err := os.Stat(filepath.Join(dir, recordingKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "recording.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := bundle.LoadPublicKey(pub); err != nil {
		t.Fatal(err)
	} else if id, _ := bundle.KeyID(k); id != first {
		t.Fatalf("recording.pub holds key %s, the gateway signs with %s", id, first)
	}

	// Record one session and apply retention to it through the server.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.recorder.Run(runCtx) }()
	sr, err := srv.recorder.StartSession(ctx, &record.Session{Identity: "agent-a", Resource: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sr.Record(record.Event{Command: "SELECT 1", Effect: "allow"}); err != nil {
		t.Fatal(err)
	}
	if err := sr.End("client closed"); err != nil {
		t.Fatal(err)
	}
	if err := srv.recorder.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.recorder.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	keep, err := srv.recorder.StartSession(ctx, &record.Session{Identity: "agent-a", Resource: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if err := keep.End("client closed"); err != nil {
		t.Fatal(err)
	}
	if err := srv.recorder.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ended, err := srv.Store().GetSession(ctx, sr.ID())
	if err != nil {
		t.Fatal(err)
	}
	n, err := srv.deleteRecordingsBefore(ctx, ended.EndedAt.Add(time.Microsecond))
	if err != nil || n != 1 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rep, err := record.AuditAll(ctx, srv.Store(), record.AuditOptions{Keys: publishedKeys(t, dir), RequireSignatures: true})
	if err != nil || !rep.OK() || rep.Retained != 1 || len(rep.Sessions) != 1 || rep.Sessions[0].Signature != record.SigSigned {
		t.Fatalf("audit: %v %+v", err, rep)
	}
	last := srv.recorder.LastCheckpoint()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	var head checkpointHead
	data, err := os.ReadFile(filepath.Join(dir, recordingCheckpointFile))
	if err != nil || json.Unmarshal(data, &head) != nil || head.Seq != last.Seq || head.Hash != last.Hash || head.Seq < 2 {
		t.Fatalf("checkpoint head kept: %s %v (last %+v)", data, err, last)
	}

	// A restart reuses the key and resumes the chain.
	srv, err = New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.recordingKeys.signer.KeyID() != first {
		t.Fatal("a restart created a new key")
	}
	if got := srv.recordingKeys.resume("gw-test"); got != last {
		t.Fatalf("resume from %+v, want %+v", got, last)
	}
	srv.Close()

	// Rotation: a new key file, the old public key still published.
	old := filepath.Join(dir, "recording-old.pub")
	if err := os.Rename(filepath.Join(dir, "recording.pub"), old); err != nil {
		t.Fatal(err)
	}
	cfg.Recording.Signing.Key = filepath.Join(dir, "keys", "recording-2.key")
	cfg.Recording.Signing.PublicKeys = []string{old}
	srv, err = New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	second := srv.recordingKeys.signer.KeyID()
	if second == first || len(srv.recordingKeys.ids) != 2 || srv.recordingKeys.ids[0] != second || srv.recordingKeys.ids[1] != first {
		t.Fatalf("after rotation: signer %s, published %v", second, srv.recordingKeys.ids)
	}
	if ring := publishedKeys(t, dir); ring.Len() != 2 {
		t.Fatalf("published %v", ring.KeyIDs())
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "recording-2.pub")); err != nil {
		t.Fatal(err)
	}
}

func TestRecordingKeyEncrypted(t *testing.T) {
	// Not parallel: sets an environment variable.
	t.Setenv(RecordingKeyPasswordEnv, "s3cret")
	dir := t.TempDir()
	k, err := openRecordingKeys(quietConfig(t, dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, recordingKeyFile))
	if err != nil || !strings.Contains(string(data), "ENCRYPTED") {
		t.Fatalf("key not encrypted: %v", err)
	}
	t.Setenv(RecordingKeyPasswordEnv, "wrong")
	if _, err := openRecordingKeys(quietConfig(t, dir), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("opened the key with a wrong password")
	}
	t.Setenv(RecordingKeyPasswordEnv, "s3cret")
	again, err := openRecordingKeys(quietConfig(t, dir), slog.New(slog.DiscardHandler))
	if err != nil || again.signer.KeyID() != k.signer.KeyID() {
		t.Fatalf("reopen: %v", err)
	}
}

func TestRecordingKeysAPI(t *testing.T) {
	t.Parallel()
	srv, base := startAdmin(t)
	if code, _ := call(t, "GET", base+"/api/v1/recording/keys", token(t, srv, "agent-a"), ""); code != 403 {
		t.Fatalf("keys as agent: %d", code)
	}
	code, body := call(t, "GET", base+"/api/v1/recording/keys", token(t, srv, "carol"), "")
	if code != 200 {
		t.Fatalf("keys as admin: %d %s", code, body)
	}
	var got RecordingKeys
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Keys) != 1 || !got.Keys[0].Current {
		t.Fatalf("body %s: %v", body, err)
	}
	pub, err := bundle.LoadPublicKey([]byte(got.Keys[0].PEM))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := bundle.KeyID(pub); id != got.Keys[0].KeyID || id != srv.recordingKeys.signer.KeyID() {
		t.Fatalf("published key %s, signer %s", id, srv.recordingKeys.signer.KeyID())
	}
}
