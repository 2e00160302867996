package record

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenKey is a fixed Ed25519 key: Ed25519 signatures are deterministic,
// so the golden file pins signatures too.
func goldenKey(t testing.TB, seed byte) *bundle.PrivateKey {
	t.Helper()
	k, err := bundle.NewPrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// goldenSession is a fixed session with every header field set and three
// events, the last one the end event, with every event field used.
func goldenSession(t testing.TB) (*Session, []Event) {
	t.Helper()
	start := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	s := &Session{ID: "01JNKQ3ZV0A1B2C3D4E5F6G7H8", Identity: "claude-coder", IdentityKind: "agent",
		Groups: []string{"coding-agents", "dev"}, Claims: map[string]any{"iss": "https://login.example", "n": json.Number("42"), "sub": "app-123"},
		Resource: "orders-db", ResourceType: "postgres", ClientAddr: "10.0.0.1:5555", GatewayID: "gw-1",
		BundleRevision: "3f2a9c", StartedAt: start}
	evs := []Event{
		{Time: start.Add(time.Second), Kind: KindCommand, Protocol: "postgres",
			Command: "SELECT id, email FROM customers WHERE id = $1",
			Facts:   json.RawMessage(`{"kind":"select","tables":["customers"],"has_where":true}`), Effect: "allow",
			RuleIDs: []string{"agents-read-orders", "mask-pii"}, BundleRevision: "3f2a9c", Reason: "allowed",
			Masked: true, DurationMicros: 420, Rows: 1, Results: json.RawMessage(`[["1","a***@example.com"]]`)},
		{Time: start.Add(2 * time.Second), Kind: KindCommand, Protocol: "postgres", Command: "DELETE FROM orders",
			Effect: "deny", RuleIDs: []string{"no-unbounded-writes"}, BundleRevision: "3f2a9c",
			Reason: "denied by no-unbounded-writes", ApprovalID: "ap-1", Error: "permission denied"},
		{Time: start.Add(3 * time.Second), Kind: KindEnd, Reason: "client closed"},
	}
	if err := SealChain(s, evs); err != nil {
		t.Fatal(err)
	}
	s.EndedAt, s.EndReason = evs[2].Time, evs[2].Reason
	return s, evs
}

type goldenHex struct {
	Encoding  string `json:"encoding"`
	Hash      string `json:"hash,omitempty"`
	Signature string `json:"signature,omitempty"`
}

type goldenFile struct {
	Comment    string      `json:"comment"`
	KeyID      string      `json:"key_id"`
	Header     goldenHex   `json:"header"`
	Events     []goldenHex `json:"events"`
	Seal       goldenHex   `json:"seal"`
	Checkpoint goldenHex   `json:"checkpoint"`
}

// TestGoldenEncodings pins the byte encodings and hashes of a session
// header, events, a seal and a checkpoint, and the Ed25519 signatures over
// them. Stored evidence is only verifiable while these stay the same: a
// change of format needs a new tag (".v2") and a verifier for both, never
// an -update of this file alone.
func TestGoldenEncodings(t *testing.T) {
	t.Parallel()
	key := goldenKey(t, 7)
	s, evs := goldenSession(t)
	var g goldenFile
	g.Comment = "Format of stored evidence: see runtime/record/chain.go and evidence.go. Never regenerate without a format version change."
	g.KeyID = key.KeyID()
	hdr, err := EncodeHeader(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	head, err := HeaderHash(s)
	if err != nil {
		t.Fatal(err)
	}
	g.Header = goldenHex{Encoding: hex.EncodeToString(hdr), Hash: head}
	for i := range evs {
		g.Events = append(g.Events, goldenHex{Encoding: hex.EncodeToString(EncodeEvent(nil, &evs[i])), Hash: evs[i].Hash})
	}
	last := &evs[len(evs)-1]
	seal := Seal{SessionID: s.ID, HeaderHash: head, LastSeq: last.Seq, LastHash: last.Hash, EndedAt: last.Time, EndReason: last.Reason}
	if err := SignSeal(&seal, key); err != nil {
		t.Fatal(err)
	}
	g.Seal = goldenHex{Encoding: hex.EncodeToString(EncodeSeal(nil, &seal)), Signature: hex.EncodeToString(seal.Signature)}
	cp := Checkpoint{GatewayID: "gw-1", Seq: 2, Time: s.StartedAt.Add(time.Minute),
		PrevHash:        "5b6f1e0f8c0d4c1f5e9a2b7d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60",
		RetentionBefore: time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC),
		Entries: []CheckpointEntry{
			{SessionID: s.ID, LastSeq: last.Seq, LastHash: last.Hash, EndedAt: last.Time},
			{SessionID: "01JNKQ40000000000000000000", LastSeq: 0, LastHash: head},
		}}
	if err := SignCheckpoint(&cp, key); err != nil {
		t.Fatal(err)
	}
	g.Checkpoint = goldenHex{Encoding: hex.EncodeToString(EncodeCheckpoint(nil, &cp)), Hash: cp.Hash,
		Signature: hex.EncodeToString(cp.Signature)}

	got, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "evidence.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update once to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the encoding of stored evidence changed; stored sessions, seals and checkpoints would no longer verify.\ngot:\n%s\nwant:\n%s", got, want)
	}
	// The pinned signatures verify with the public key.
	ring, err := NewKeyRing(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Verify(seal.KeyID, EncodeSeal(nil, &seal), seal.Signature); err != nil {
		t.Fatal(err)
	}
	if err := ring.Verify(cp.KeyID, EncodeCheckpoint(nil, &cp), cp.Signature); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointEncodingCanonical(t *testing.T) {
	t.Parallel()
	a := Checkpoint{GatewayID: "gw", Seq: 1, Time: time.Unix(100, 0), Entries: []CheckpointEntry{
		{SessionID: "b", LastSeq: 2, LastHash: "x"}, {SessionID: "a", LastSeq: 1, LastHash: "y"}}}
	b := a
	b.Entries = []CheckpointEntry{a.Entries[1], a.Entries[0]}
	if !bytes.Equal(EncodeCheckpoint(nil, &a), EncodeCheckpoint(nil, &b)) {
		t.Fatal("entry order changes the encoding")
	}
	if a.Entries[0].SessionID != "b" {
		t.Fatal("EncodeCheckpoint reordered its argument")
	}
	c := a
	c.Entries = []CheckpointEntry{{SessionID: "b", LastSeq: 2, LastHash: "x"}, {SessionID: "a", LastSeq: 1, LastHash: "y", EndedAt: time.Unix(5, 0)}}
	if bytes.Equal(EncodeCheckpoint(nil, &a), EncodeCheckpoint(nil, &c)) {
		t.Fatal("an entry's end is not encoded")
	}
	d := a
	d.RetentionBefore = time.Unix(1, 0)
	if bytes.Equal(EncodeCheckpoint(nil, &a), EncodeCheckpoint(nil, &d)) {
		t.Fatal("the retention cut-off is not encoded")
	}
	// Seal and checkpoint encodings cannot be confused: distinct tags.
	if bytes.HasPrefix(EncodeSeal(nil, &Seal{}), []byte(checkpointTag)) {
		t.Fatal("tags collide")
	}
}

func TestKeyRing(t *testing.T) {
	t.Parallel()
	k1, k2 := goldenKey(t, 1), goldenKey(t, 2)
	ring, err := NewKeyRing(k1.Public(), k1.Public())
	if err != nil {
		t.Fatal(err)
	}
	if ring.Len() != 1 {
		t.Fatalf("duplicate key counted: %v", ring.KeyIDs())
	}
	msg := []byte("head")
	sig1, _ := k1.SignMessage(msg)
	sig2, _ := k2.SignMessage(msg)
	cases := []struct {
		name  string
		keyID string
		msg   []byte
		sig   []byte
		want  error
	}{
		{"valid", k1.KeyID(), msg, sig1, nil},
		{"untrusted key", k2.KeyID(), msg, sig2, ErrUntrustedKey},
		{"signature of another key", k1.KeyID(), msg, sig2, ErrBadSignature},
		{"other message", k1.KeyID(), []byte("heap"), sig1, ErrBadSignature},
		{"no key id", "", msg, sig1, ErrUntrustedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ring.Verify(tc.keyID, tc.msg, tc.sig)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	var nilRing *KeyRing
	if err := nilRing.Verify(k1.KeyID(), msg, sig1); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("nil ring: %v", err)
	}
	// ECDSA P-256 gateway keys work the same way.
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k3, err := bundle.NewPrivateKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	ring, err = NewKeyRing(k1.Public(), k3.Public())
	if err != nil {
		t.Fatal(err)
	}
	seal := Seal{SessionID: "s", HeaderHash: "h", LastSeq: 1, LastHash: "x", EndedAt: time.Unix(1, 0)}
	if err := SignSeal(&seal, k3); err != nil {
		t.Fatal(err)
	}
	if err := ring.Verify(seal.KeyID, EncodeSeal(nil, &seal), seal.Signature); err != nil {
		t.Fatalf("ECDSA seal: %v", err)
	}
	seal.LastSeq = 2
	if err := ring.Verify(seal.KeyID, EncodeSeal(nil, &seal), seal.Signature); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("edited ECDSA seal: %v", err)
	}
}

func TestParsePublicKeys(t *testing.T) {
	t.Parallel()
	_, pub1, err := bundle.GenerateKey(bundle.KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, pub2, err := bundle.GenerateKey(bundle.KeyTypeECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParsePublicKeys(append(append([]byte{}, pub1...), pub2...))
	if err != nil || len(keys) != 2 {
		t.Fatalf("got %d keys, %v", len(keys), err)
	}
	if _, err := ParsePublicKeys([]byte("not pem")); err == nil {
		t.Fatal("accepted a file without keys")
	}
}

func TestParseCheckpointRef(t *testing.T) {
	t.Parallel()
	h := "5b6f1e0f8c0d4c1f5e9a2b7d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60"
	ref, err := ParseCheckpointRef("gw:eu:1:42:" + h)
	if err != nil || ref.GatewayID != "gw:eu:1" || ref.Seq != 42 || ref.Hash != h {
		t.Fatalf("got %+v, %v", ref, err)
	}
	if ref.String() != "gw:eu:1:42:"+h {
		t.Fatalf("String() = %s", ref)
	}
	for _, bad := range []string{"", "gw", "gw:1", ":1:" + h, "gw:x:" + h, "gw:0:" + h, "gw:1:ABC", "gw:1:" + h[:63]} {
		if _, err := ParseCheckpointRef(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: got %v, want ErrInvalid", bad, err)
		}
	}
}

// failStore refuses every write.
type failStore struct{ nopStore }

func (failStore) CreateSession(context.Context, *Session) error { return errors.New("down") }

func TestSync(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r, err := New(Config{Store: nopStore{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync with nothing recorded: %v", err)
	}
	sr, err := r.StartSession(ctx, &Session{Identity: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := sr.Record(Event{Command: "SELECT 1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if used, _ := r.Outstanding(); used != 0 {
		t.Fatalf("%d items outstanding after Sync", used)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	<-done

	// A store that never accepts: Sync reports what Close could not write.
	r, err = New(Config{Store: failStore{}, FailOpen: true, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		CloseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.StartSession(ctx, &Session{Identity: "bot"}); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- r.Sync(ctx) }()
	if err := r.Close(); !errors.Is(err, ErrUnflushed) {
		t.Fatalf("Close: %v", err)
	}
	if err := <-waiting; !errors.Is(err, ErrUnflushed) {
		t.Fatalf("Sync waiting through Close: %v", err)
	}
	if err := r.Sync(ctx); !errors.Is(err, ErrUnflushed) {
		t.Fatalf("Sync after Close: %v", err)
	}
}
