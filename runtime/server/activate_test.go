package server

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
	"github.com/gatehouse/gatehouse/runtime/engine"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// testPolicy grants agent-a select on db-1; the revision names the serial so
// the test can tell which bundle decided.
func testBundle(t *testing.T, serial uint64, notBefore, expires time.Time) *bundle.Bundle {
	t.Helper()
	b := &bundle.Bundle{
		Manifest: bundle.Manifest{
			FormatVersion:   bundle.FormatVersion,
			Revision:        "rev-" + strconv.FormatUint(serial, 10),
			SourceDigest:    "sha256:" + strings.Repeat("0", 64),
			Serial:          serial,
			NotBefore:       notBefore,
			Expires:         expires,
			CompilerVersion: "test",
		},
		Policy: bundle.Policy{
			Identities: []bundle.Identity{{Name: "agent-a", Kind: "agent", Match: bundle.IdentityMatch{Subject: "a"}}},
			Resources:  []bundle.Resource{{Name: "db-1", Type: bundle.ResourcePostgres, Address: "127.0.0.1:5432"}},
			Rules: []bundle.Rule{{
				ID: "read-" + strconv.FormatUint(serial, 10), Subjects: []string{"agent-a"}, Resources: []string{"db-1"},
				ResolvedResources: []string{"db-1"}, Effect: bundle.EffectAllow,
				SQL: &bundle.SQLMatch{Statements: []string{"select"}},
			}},
		},
	}
	d, err := bundle.PolicyDigest(&b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.PolicyDigest = d
	return b
}

func signed(t *testing.T, b *bundle.Bundle, key *bundle.PrivateKey) []byte {
	t.Helper()
	raw, err := bundle.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := bundle.Sign(raw, key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newKey(t *testing.T) (*bundle.PrivateKey, *bundle.Verifier) {
	t.Helper()
	priv, pub, err := bundle.GenerateKey(bundle.KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := bundle.LoadPrivateKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := bundle.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := bundle.NewVerifier([]crypto.PublicKey{pk}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return k, v
}

func TestActivatorSequenceUnderLoad(t *testing.T) {
	t.Parallel()
	key, verifier := newKey(t)
	otherKey, _ := newKey(t)
	day := 24 * time.Hour

	good1 := signed(t, testBundle(t, 10, testNow.Add(-day), testNow.Add(day)), key)
	tampered := append([]byte(nil), signed(t, testBundle(t, 11, testNow.Add(-day), testNow.Add(day)), key)...)
	// Flip one character inside the base64 payload.
	for i := len(tampered) / 3; i < len(tampered); i++ {
		if tampered[i] >= 'a' && tampered[i] <= 'y' {
			tampered[i]++
			break
		}
	}
	wrongKey := signed(t, testBundle(t, 12, testNow.Add(-day), testNow.Add(day)), otherKey)
	lower := signed(t, testBundle(t, 9, testNow.Add(-day), testNow.Add(day)), key)
	expired := signed(t, testBundle(t, 13, testNow.Add(-3*day), testNow.Add(-2*day)), key)
	good2 := signed(t, testBundle(t, 14, testNow.Add(-day), testNow.Add(day)), key)

	steps := []struct {
		name       string
		data       []byte
		wantSerial uint64
		wantErr    error
	}{
		{"good", good1, 10, nil},
		{"tampered", tampered, 10, bundle.ErrBadSignature},
		{"wrong key", wrongKey, 10, bundle.ErrUnknownKey},
		{"rollback", lower, 10, bundle.ErrRollback},
		{"expired", expired, 10, bundle.ErrExpired},
		{"good again", good2, 14, nil},
	}

	var mu sync.Mutex
	current := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := current
		mu.Unlock()
		w.Header().Set("ETag", `"step-`+strconv.Itoa(i)+`"`)
		_, _ = w.Write(steps[i].data)
	}))
	defer srv.Close()

	stateDir := t.TempDir()
	act, err := NewActivator(ActivatorConfig{
		Verifier: verifier, StateDir: stateDir, Clock: func() time.Time { return testNow },
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}

	// Before any bundle: everything is denied with a clear reason.
	var d engine.Decision
	act.Engine().Decide(&engine.Request{Identity: "agent-a", Resource: "db-1", Time: testNow,
		SQL: &engine.SQLFacts{Kind: "select"}}, &d)
	if d.Effect != bundle.EffectDeny || d.Reason == "" {
		t.Fatalf("no bundle: decision %+v, want deny with reason", d)
	}

	// Decisions run concurrently from many goroutines for the whole
	// sequence. Each must come from one whole bundle: revision rev-N with
	// rule read-N, never a mix.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var decisions atomic.Int64
	var bad atomic.Value
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d engine.Decision
			req := &engine.Request{Identity: "agent-a", Resource: "db-1", Time: testNow, SQL: &engine.SQLFacts{Kind: "select", Tables: []string{"orders"}}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				act.Engine().Decide(req, &d)
				decisions.Add(1)
				if d.Effect == bundle.EffectAllow {
					want := "read-" + d.BundleRevision[len("rev-"):]
					if len(d.RuleIDs) != 1 || d.RuleIDs[0] != want {
						bad.Store("decision mixes bundles: " + d.BundleRevision + " " + d.RuleIDs[0])
					}
				}
			}
		}()
	}

	src, err := fetch.NewSource(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	poller, err := fetch.NewPoller(fetch.PollerConfig{Source: src, Handle: act.Handle})
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range steps {
		mu.Lock()
		current = i
		mu.Unlock()
		err := poller.Once(context.Background())
		if step.wantErr == nil && err != nil {
			t.Fatalf("%s: unexpected error %v", step.name, err)
		}
		if step.wantErr != nil && !errors.Is(err, step.wantErr) {
			t.Fatalf("%s: error %v, want %v", step.name, err, step.wantErr)
		}
		if got := act.Current().Manifest.Serial; got != step.wantSerial {
			t.Fatalf("%s: active serial %d, want %d", step.name, got, step.wantSerial)
		}
		if step.wantErr != nil {
			st := act.Status()
			if st.LastRejection == "" || st.Serial != step.wantSerial {
				t.Fatalf("%s: status %+v does not show the rejection", step.name, st)
			}
		}
	}
	close(stop)
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	if decisions.Load() == 0 {
		t.Fatal("no decisions ran during the sequence")
	}

	// Restart with the source down: the persisted bundle (serial 14) is
	// restored and enforced.
	restarted, err := NewActivator(ActivatorConfig{
		Verifier: verifier, StateDir: stateDir, Clock: func() time.Time { return testNow },
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cur := restarted.Current(); cur == nil || cur.Manifest.Serial != 14 || cur.ETag != `"step-5"` {
		t.Fatalf("restored %+v, want serial 14 with its ETag", cur)
	}
	srv.Close()
	down, _ := fetch.NewSource(srv.URL, http.DefaultClient)
	p2, _ := fetch.NewPoller(fetch.PollerConfig{Source: down, Handle: restarted.Handle, InitialETag: restarted.ETag()})
	if err := p2.Once(context.Background()); err == nil {
		t.Fatal("fetch from a stopped server succeeded")
	}
	restarted.Engine().Decide(&engine.Request{Identity: "agent-a", Resource: "db-1", Time: testNow,
		SQL: &engine.SQLFacts{Kind: "select"}}, &d)
	if d.Effect != bundle.EffectAllow || d.BundleRevision != "rev-14" {
		t.Fatalf("after restart: %+v", d)
	}
}

func TestRestoreRejectsExpiredPersistedBundle(t *testing.T) {
	t.Parallel()
	key, verifier := newKey(t)
	dir := t.TempDir()
	clock := testNow
	act, _ := NewActivator(ActivatorConfig{Verifier: verifier, StateDir: dir, Clock: func() time.Time { return clock }})
	b := signed(t, testBundle(t, 1, testNow.Add(-time.Hour), testNow.Add(time.Hour)), key)
	if err := act.Handle(context.Background(), fetch.Fetched{Data: b, ETag: "x"}); err != nil {
		t.Fatal(err)
	}
	clock = testNow.Add(48 * time.Hour)
	later, _ := NewActivator(ActivatorConfig{Verifier: verifier, StateDir: dir, Clock: func() time.Time { return clock }})
	if err := later.Restore(context.Background()); !errors.Is(err, bundle.ErrExpired) {
		t.Fatalf("restore of expired bundle: %v, want ErrExpired", err)
	}
	if later.Ready() {
		t.Fatal("expired persisted bundle became active")
	}
}
