package recordtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// Key returns a fixed Ed25519 gateway key for seed; different seeds give
// different keys.
func Key(t testing.TB, seed byte) *bundle.PrivateKey {
	t.Helper()
	k, err := bundle.NewPrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// KeyRing returns a key ring trusting the given keys.
func KeyRing(t testing.TB, keys ...*bundle.PrivateKey) *record.KeyRing {
	t.Helper()
	var pubs []crypto.PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.Public())
	}
	ring, err := record.NewKeyRing(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// signingRecorder starts a recorder that signs with key as gateway gw and
// takes checkpoints only when asked.
func signingRecorder(t *testing.T, s record.Store, key record.Signer, gw string, mod func(*record.Config)) *record.Recorder {
	t.Helper()
	cfg := record.Config{Store: s, Signer: key, GatewayID: gw, CheckpointInterval: -1, CheckpointEvents: -1,
		FlushInterval: -1}
	if mod != nil {
		mod(&cfg)
	}
	r := newRecorder(t, cfg)
	done := runRecorder(t, r)
	t.Cleanup(func() {
		_ = r.Close()
		<-done
	})
	return r
}

func startSession(t *testing.T, r *record.Recorder, id string) *record.SessionRecorder {
	t.Helper()
	sr, err := r.StartSession(ctxT(t), &record.Session{ID: id, Identity: "claude-coder", Resource: "orders-db", ResourceType: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

func syncAndCheckpoint(t *testing.T, r *record.Recorder) *record.Checkpoint {
	t.Helper()
	ctx := ctxT(t)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil {
		t.Fatal("nothing to checkpoint")
	}
	return c
}

func audit(t *testing.T, s record.Backend, opts record.AuditOptions) *record.AuditReport {
	t.Helper()
	rep, err := record.AuditAll(ctxT(t), s, opts)
	if err != nil {
		t.Fatalf("AuditAll: %v", err)
	}
	return rep
}

func sessionAudit(t *testing.T, rep *record.AuditReport, id string) record.SessionAudit {
	t.Helper()
	for _, sa := range rep.Sessions {
		if sa.Chain.SessionID == id {
			return sa
		}
	}
	t.Fatalf("session %s not audited: %+v", id, rep.Sessions)
	return record.SessionAudit{}
}

// testEvidenceRecorder records through a signing recorder and checks what
// it stored: seals, chained checkpoints covering exactly what was written,
// and a clean audit.
func testEvidenceRecorder(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	key := Key(t, 1)
	var seen atomic.Int64
	r := signingRecorder(t, s, key, "gw-a", func(c *record.Config) {
		c.OnCheckpoint = func(*record.Checkpoint) { seen.Add(1) }
	})
	if _, err := r.Checkpoint(ctx); err != nil {
		t.Fatalf("empty checkpoint: %v", err)
	}
	a := startSession(t, r, "ev-a")
	recordN(t, a, 0, 3)
	if err := a.End("client closed"); err != nil {
		t.Fatal(err)
	}
	b := startSession(t, r, "ev-b")
	recordN(t, b, 0, 2)
	c1 := syncAndCheckpoint(t, r)
	if c1.Seq != 1 || c1.PrevHash != "" || len(c1.Entries) != 2 {
		t.Fatalf("first checkpoint: %+v", c1)
	}
	if e := c1.Entries[0]; e.SessionID != "ev-a" || e.LastSeq != 4 || e.EndedAt.IsZero() {
		t.Fatalf("entry of the ended session: %+v", e)
	}
	if e := c1.Entries[1]; e.SessionID != "ev-b" || e.LastSeq != 2 || !e.EndedAt.IsZero() {
		t.Fatalf("entry of the open session: %+v", e)
	}
	recordN(t, b, 2, 3)
	c2 := syncAndCheckpoint(t, r)
	if c2.Seq != 2 || c2.PrevHash != c1.Hash || len(c2.Entries) != 1 || c2.Entries[0].LastSeq != 3 {
		t.Fatalf("second checkpoint: %+v", c2)
	}
	if got := r.LastCheckpoint(); got != c2.Ref() {
		t.Fatalf("LastCheckpoint %+v, want %+v", got, c2.Ref())
	}
	if seen.Load() != 2 {
		t.Fatalf("OnCheckpoint called %d times", seen.Load())
	}
	if c, err := r.Checkpoint(ctx); err != nil || c != nil {
		t.Fatalf("checkpoint with nothing new: %+v %v", c, err)
	}

	seal, err := s.GetSeal(ctx, "ev-a")
	if err != nil {
		t.Fatal(err)
	}
	if seal.LastSeq != 4 || seal.KeyID != key.KeyID() || seal.EndReason != "client closed" {
		t.Fatalf("seal: %+v", seal)
	}
	if _, err := s.GetSeal(ctx, "ev-b"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("seal of an open session: %v", err)
	}
	chains, err := s.CheckpointChains(ctx)
	if err != nil || len(chains) != 1 || chains[0] != (record.ChainHead{GatewayID: "gw-a", First: 1, Last: 2}) {
		t.Fatalf("chains %+v %v", chains, err)
	}
	refs, err := s.CheckpointsNaming(ctx, "ev-b")
	if err != nil || len(refs) != 2 || refs[1] != c2.Ref() {
		t.Fatalf("checkpoints naming ev-b: %+v %v", refs, err)
	}
	last, err := s.LastCheckpoint(ctx, "gw-a")
	if err != nil || last.Hash != c2.Hash || last.Seq != 2 {
		t.Fatalf("last checkpoint %+v %v", last, err)
	}
	if _, err := s.LastCheckpoint(ctx, "gw-none"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("last checkpoint of an unknown gateway: %v", err)
	}
	// Storing a checkpoint again is a no-op; another one with its seq is a
	// conflict.
	if err := s.PutCheckpoint(ctx, c2); err != nil {
		t.Fatalf("re-store checkpoint: %v", err)
	}
	forged := *c2
	forged.Hash = strings.Repeat("0", 64)
	if err := s.PutCheckpoint(ctx, &forged); !errors.Is(err, record.ErrConflict) {
		t.Fatalf("conflicting checkpoint: %v", err)
	}
	if err := s.PutSeal(ctx, &record.Seal{SessionID: "nope", HeaderHash: "h", LastSeq: 1, LastHash: "h",
		EndedAt: base, KeyID: "k", Signature: []byte{1}}); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("seal of an unknown session: %v", err)
	}

	rep := audit(t, s, record.AuditOptions{Keys: KeyRing(t, key), RequireSignatures: true})
	if !rep.OK() || !rep.SignaturesChecked || len(rep.Sessions) != 2 || len(rep.Chains) != 1 {
		t.Fatalf("audit: %v\n%+v", rep.Err(), rep)
	}
	if sa := sessionAudit(t, rep, "ev-a"); sa.Signature != record.SigSigned || sa.Checkpointed != 4 {
		t.Fatalf("ended session: %+v", sa)
	}
	if sa := sessionAudit(t, rep, "ev-b"); sa.Signature != record.SigOpen || sa.Checkpointed != 3 {
		t.Fatalf("open session: %+v", sa)
	}
	if ch := rep.Chains[0]; ch.First != 1 || ch.Last != 2 || ch.Checked != 2 || ch.Broken != 0 || ch.LastHash != c2.Hash {
		t.Fatalf("chain: %+v", ch)
	}
	one, err := record.AuditSession(ctx, s, "ev-a", record.AuditOptions{Keys: KeyRing(t, key)})
	if err != nil || !one.OK() || len(one.Sessions) != 1 || one.Sessions[0].Checkpointed != 4 {
		t.Fatalf("AuditSession: %+v %v", one, err)
	}
	if _, err := record.AuditSession(ctx, s, "nope", record.AuditOptions{}); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("AuditSession(unknown): %v", err)
	}
	// Without trusted keys the evidence is checked for consistency only.
	rep = audit(t, s, record.AuditOptions{})
	if !rep.OK() || rep.SignaturesChecked || sessionAudit(t, rep, "ev-a").Signature != record.SigConsistent {
		t.Fatalf("audit without keys: %+v", rep)
	}
	// Anchors: a checkpoint known from elsewhere must be there.
	rep = audit(t, s, record.AuditOptions{Keys: KeyRing(t, key), Anchors: []record.CheckpointRef{c1.Ref()}})
	if !rep.OK() {
		t.Fatalf("audit with a present anchor: %v", rep.Err())
	}
}

// testEvidenceFinalCheckpoint: Close covers what was written since the
// last checkpoint, and End seals even when the session ends at shutdown.
func testEvidenceFinalCheckpoint(t *testing.T, s record.Backend) {
	key := Key(t, 1)
	r := newRecorder(t, record.Config{Store: s, Signer: key, GatewayID: "gw-f", CheckpointInterval: -1, CheckpointEvents: -1})
	done := runRecorder(t, r)
	sr := startSession(t, r, "fin-1")
	recordN(t, sr, 0, 5)
	if err := sr.End("shutdown"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rep := audit(t, s, record.AuditOptions{Keys: KeyRing(t, key), RequireSignatures: true})
	if !rep.OK() {
		t.Fatal(rep.Err())
	}
	if sa := sessionAudit(t, rep, "fin-1"); sa.Signature != record.SigSigned || sa.Checkpointed != 6 {
		t.Fatalf("after Close: %+v", sa)
	}
}

// testEvidenceCheckpointEvents: CheckpointEvents events written trigger a
// checkpoint without any call.
func testEvidenceCheckpointEvents(t *testing.T, s record.Backend) {
	key := Key(t, 1)
	got := make(chan *record.Checkpoint, 16)
	r := signingRecorder(t, s, key, "gw-e", func(c *record.Config) {
		c.CheckpointEvents = 10
		c.OnCheckpoint = func(c *record.Checkpoint) { got <- c }
	})
	sr := startSession(t, r, "evt-1")
	recordN(t, sr, 0, 10)
	select {
	case c := <-got:
		if len(c.Entries) != 1 || c.Entries[0].LastSeq < 1 {
			t.Fatalf("checkpoint: %+v", c)
		}
	case <-ctxT(t).Done():
		t.Fatal("no checkpoint after CheckpointEvents events")
	}
}

// testEvidenceSpool: a seal survives the spool and is written on replay.
func testEvidenceSpool(t *testing.T, s record.Backend) {
	key := Key(t, 1)
	fs := &flakyBackend{Backend: s, failures: make(chan struct{}, 1)}
	fs.failing.Store(true)
	cfg := record.Config{Store: fs, Signer: key, GatewayID: "gw-s", SpoolDir: t.TempDir(), BatchSize: 8,
		FailAfter: 1, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, CheckpointInterval: -1, CheckpointEvents: -1}
	r := newRecorder(t, cfg)
	done := runRecorder(t, r)
	sr := startSession(t, r, "sp-1")
	recordN(t, sr, 0, 20)
	if err := sr.End("done"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(cfg.SpoolDir, "recorder.spool")); err != nil || st.Size() == 0 {
		t.Fatalf("nothing spooled: %v %v", st, err)
	}
	fs.failing.Store(false)
	r2 := newRecorder(t, cfg)
	done2 := runRecorder(t, r2)
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	rep := audit(t, s, record.AuditOptions{Keys: KeyRing(t, key), RequireSignatures: true})
	if !rep.OK() {
		t.Fatal(rep.Err())
	}
	if sa := sessionAudit(t, rep, "sp-1"); sa.Signature != record.SigSigned || sa.Checkpointed != 21 {
		t.Fatalf("spooled session: %+v", sa)
	}
}

// testEvidenceSharedGatewayID: two recorders with one gateway id (a
// misconfiguration, or replicas sharing an id) interleave one chain.
func testEvidenceSharedGatewayID(t *testing.T, s record.Backend) {
	key1, key2 := Key(t, 1), Key(t, 2)
	a := signingRecorder(t, s, key1, "gw-x", nil)
	b := signingRecorder(t, s, key2, "gw-x", nil)
	sa := startSession(t, a, "sh-a")
	sb := startSession(t, b, "sh-b")
	recordN(t, sa, 0, 2)
	c1 := syncAndCheckpoint(t, a)
	recordN(t, sb, 0, 2)
	c2 := syncAndCheckpoint(t, b) // reads the head c1
	recordN(t, sa, 2, 3)
	c3 := syncAndCheckpoint(t, a) // its head is c1: conflict, reload, continue after c2
	if c1.Seq != 1 || c2.Seq != 2 || c3.Seq != 3 || c2.PrevHash != c1.Hash || c3.PrevHash != c2.Hash {
		t.Fatalf("chain: %+v %+v %+v", c1.Ref(), c2.Ref(), c3.Ref())
	}
	rep := audit(t, s, record.AuditOptions{Keys: KeyRing(t, key1, key2)})
	if !rep.OK() || len(rep.Chains) != 1 || len(rep.Chains[0].KeyIDs) != 2 {
		t.Fatalf("audit: %v %+v", rep.Err(), rep.Chains)
	}
}

// testEvidenceResume: a gateway that remembers a later checkpoint than the
// store holds continues after it, so the deletion stays visible.
func testEvidenceResume(t *testing.T, s record.Backend) {
	key := Key(t, 1)
	gone := record.CheckpointRef{GatewayID: "gw-r", Seq: 5, Hash: strings.Repeat("ab", 32)}
	r := signingRecorder(t, s, key, "gw-r", func(c *record.Config) { c.CheckpointResume = gone })
	sr := startSession(t, r, "rs-1")
	recordN(t, sr, 0, 1)
	c := syncAndCheckpoint(t, r)
	if c.Seq != 6 || c.PrevHash != gone.Hash {
		t.Fatalf("checkpoint after resume: %+v", c.Ref())
	}
	rep := audit(t, s, record.AuditOptions{Keys: KeyRing(t, key)})
	if rep.OK() || !errors.Is(rep.Err(), record.ErrCheckpointBroken) {
		t.Fatalf("deleted checkpoints 1-5 not reported: %+v", rep)
	}
}

// testEvidenceRetention: sessions deleted after a signed retention
// cut-off are not reported; a session deleted otherwise is.
func testEvidenceRetention(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	key := Key(t, 1)
	r := signingRecorder(t, s, key, "gw-ret", nil)
	old := startSession(t, r, "ret-old")
	recordN(t, old, 0, 2)
	if err := old.End("done"); err != nil {
		t.Fatal(err)
	}
	keep := startSession(t, r, "ret-keep")
	recordN(t, keep, 0, 2)
	syncAndCheckpoint(t, r)
	oldSess, err := s.GetSession(ctx, "ret-old")
	if err != nil {
		t.Fatal(err)
	}
	cut := oldSess.EndedAt.Add(time.Microsecond)
	if err := r.Retain(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteBefore(ctx, cut); err != nil || n != 1 {
		t.Fatalf("DeleteBefore: %d %v", n, err)
	}
	keys := KeyRing(t, key)
	rep := audit(t, s, record.AuditOptions{Keys: keys})
	if !rep.OK() || rep.Retained != 1 {
		t.Fatalf("audit after retention: %v retained=%d", rep.Err(), rep.Retained)
	}
	one, err := record.AuditSession(ctx, s, "ret-old", record.AuditOptions{Keys: keys})
	if err != nil || !one.OK() || one.Retained != 1 {
		t.Fatalf("AuditSession of a retained session: %+v %v", one, err)
	}
}

// flakyBackend fails the writes of a Backend while failing is set.
type flakyBackend struct {
	record.Backend
	failing  atomic.Bool
	failures chan struct{}
}

func (f *flakyBackend) fail() error {
	if !f.failing.Load() {
		return nil
	}
	select {
	case f.failures <- struct{}{}:
	default:
	}
	return errInjected
}

func (f *flakyBackend) CreateSession(ctx context.Context, s *record.Session) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Backend.CreateSession(ctx, s)
}

func (f *flakyBackend) EndSession(ctx context.Context, id string, at time.Time, reason string) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Backend.EndSession(ctx, id, at, reason)
}

func (f *flakyBackend) AppendEvents(ctx context.Context, evs []record.Event) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Backend.AppendEvents(ctx, evs)
}

func (f *flakyBackend) PutSeal(ctx context.Context, s *record.Seal) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Backend.PutSeal(ctx, s)
}

func (f *flakyBackend) PutCheckpoint(ctx context.Context, c *record.Checkpoint) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Backend.PutCheckpoint(ctx, c)
}

// CheckUpgraded checks a store opened on a database written before
// signed evidence existed, holding the ended session id: its chain
// verifies and it is reported unsigned (a failure only when signatures
// are required), and a signing recorder records into the upgraded store.
func CheckUpgraded(t *testing.T, s record.Backend, id string) {
	t.Helper()
	ctx := ctxT(t)
	key := Key(t, 1)
	rep := audit(t, s, record.AuditOptions{Keys: KeyRing(t, key)})
	if !rep.OK() || rep.Unsigned != 1 {
		t.Fatalf("old session: %v unsigned=%d", rep.Err(), rep.Unsigned)
	}
	if sa := sessionAudit(t, rep, id); !sa.Chain.OK || sa.Signature != record.SigUnsigned || sa.Checkpointed != -1 {
		t.Fatalf("old session: %+v", sa)
	}
	rep = audit(t, s, record.AuditOptions{Keys: KeyRing(t, key), RequireSignatures: true})
	if rep.OK() || !errors.Is(rep.Err(), record.ErrUnsigned) {
		t.Fatalf("old session with signatures required: %+v", rep)
	}
	r := signingRecorder(t, s, key, "gw-up", nil)
	sr := startSession(t, r, "up-new")
	recordN(t, sr, 0, 3)
	if err := sr.End("done"); err != nil {
		t.Fatal(err)
	}
	syncAndCheckpoint(t, r)
	rep = audit(t, s, record.AuditOptions{Keys: KeyRing(t, key)})
	if !rep.OK() || sessionAudit(t, rep, "up-new").Signature != record.SigSigned || rep.Unsigned != 1 {
		t.Fatalf("after upgrade: %v %+v", rep.Err(), rep.Sessions)
	}
	if _, err := s.GetSeal(ctx, id); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("old session has a seal: %v", err)
	}
}
