package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeHotReload runs `gatehouse serve` from a configuration file, then
// publishes bundles into the watched file: a good one activates, a tampered
// one is rejected (the good one keeps serving, the rejection shows on
// /status and /metrics), a newer one activates.
func TestServeHotReload(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GATEHOUSE_KEY_PASSWORD", "test-password")
	_, _, code, err := run(t, "keygen", "--type", "ed25519", "--output-key-prefix", filepath.Join(dir, "k"))
	if code != 0 {
		t.Fatalf("keygen: %v", err)
	}
	write := func(serial uint64) []byte {
		unsigned := filepath.Join(dir, fmt.Sprintf("b%d.json", serial))
		b := writeTestBundle(t, unsigned)
		b.Manifest.Serial = serial
		b.Manifest.Revision = fmt.Sprintf("%040d", serial)
		data, err := bundle.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(unsigned, data, 0o600); err != nil {
			t.Fatal(err)
		}
		signedPath := unsigned + ".signed"
		if _, stderr, code, err := run(t, "sign", "--key", filepath.Join(dir, "k.key"), "-o", signedPath, unsigned); code != 0 {
			t.Fatalf("sign: %v %s", err, stderr)
		}
		out, err := os.ReadFile(signedPath)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	published := filepath.Join(dir, "published.json")
	publish := func(data []byte) {
		tmp := published + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, published); err != nil {
			t.Fatal(err)
		}
	}
	publish(write(10))

	admin := freeAddr(t)
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg := fmt.Sprintf(`state_dir: %s
bundle:
  source: %s
  keys: [%s]
  poll_interval: 1h
admin:
  listen: %s
postgres:
  listen: ""
log:
  level: warn
`, filepath.Join(dir, "state"), published, filepath.Join(dir, "k.pub"), admin)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs([]string{"serve", "--config", cfgPath})
		done <- cmd.ExecuteContext(ctx)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	base := "http://" + admin
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	serial := func() string {
		_, body := get("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "gatehouse_bundle_active_serial ") {
				return strings.TrimPrefix(line, "gatehouse_bundle_active_serial ")
			}
		}
		return ""
	}
	waitFor("readiness", func() bool { code, _ := get("/readyz"); return code == 200 })
	if s := serial(); s != "10" {
		t.Fatalf("active serial %q, want 10", s)
	}

	// Tampered: flip a byte of the payload; the file watch picks it up, the
	// candidate is rejected, serial 10 keeps serving.
	bad := write(11)
	var env map[string]any
	if err := json.Unmarshal(bad, &env); err != nil {
		t.Fatal(err)
	}
	payload := env["payload"].(string)
	env["payload"] = payload[:40] + string(rune(payload[40]^1)) + payload[41:]
	tampered, _ := json.Marshal(env)
	publish(tampered)
	waitFor("rejection metric", func() bool {
		_, body := get("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "gatehouse_bundle_activations_total{") && !strings.Contains(line, `"activated"`) {
				return true
			}
		}
		return false
	})
	if s := serial(); s != "10" {
		t.Fatalf("after tampered bundle: serial %q, want 10", s)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatal("not ready after a rejected candidate")
	}

	publish(write(12))
	waitFor("serial 12", func() bool { return serial() == "12" })
}
