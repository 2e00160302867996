package recordtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// tamperEnv is one store recorded by a signing gateway, for an attacker
// with write access to the store (raw SQL and the store's own API) but not
// the gateway's key:
//
//	tm-ended  events 1-4, end (5)        sealed, in checkpoint 1 as ended
//	tm-open   events 1-2 | 3 | 4 | 5-6   checkpoints 1, 2, 3 record seq 2, 3, 4
//	tm-late   events 1-2, end (3)        sealed, after the last checkpoint
type tamperEnv struct {
	s        record.Backend
	raw      RawExec
	key      *bundle.PrivateKey // the gateway's
	attacker *bundle.PrivateKey
	cps      []*record.Checkpoint
}

func newTamperEnv(t *testing.T, s record.Backend, raw RawExec) *tamperEnv {
	t.Helper()
	e := &tamperEnv{s: s, raw: raw, key: Key(t, 1), attacker: Key(t, 66)}
	r := signingRecorder(t, s, e.key, "gw-t", nil)
	ended := startSession(t, r, "tm-ended")
	recordN(t, ended, 0, 4)
	if err := ended.End("client closed"); err != nil {
		t.Fatal(err)
	}
	open := startSession(t, r, "tm-open")
	recordN(t, open, 0, 2)
	e.cps = append(e.cps, syncAndCheckpoint(t, r))
	recordN(t, open, 2, 3)
	e.cps = append(e.cps, syncAndCheckpoint(t, r))
	recordN(t, open, 3, 4)
	e.cps = append(e.cps, syncAndCheckpoint(t, r))
	recordN(t, open, 4, 6)
	late := startSession(t, r, "tm-late")
	recordN(t, late, 0, 2)
	if err := late.End("client closed"); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *tamperEnv) exec(t *testing.T, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if err := e.raw(ctxT(t), e.s, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// rewrite edits a session as an attacker would: change the header or
// events, recompute every hash of the chain, write the rows back.
func (e *tamperEnv) rewrite(t *testing.T, id string, edit func(s *record.Session, evs []record.Event)) (record.Session, []record.Event) {
	t.Helper()
	ctx := ctxT(t)
	s, err := e.s.GetSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := e.s.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	identity := s.Identity
	edit(&s, evs)
	prev, err := record.HeaderHash(&s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		ev := &evs[i]
		ev.PrevHash = prev
		ev.Hash, _ = record.EventHash(nil, prev, ev)
		prev = ev.Hash
		e.exec(t, fmt.Sprintf(`UPDATE events SET command = %s, prev_hash = '%s', hash = '%s' WHERE session_id = '%s' AND seq = %d`,
			sqlQuote(ev.Command), ev.PrevHash, ev.Hash, id, ev.Seq))
	}
	if s.Identity != identity {
		e.exec(t, fmt.Sprintf(`UPDATE sessions SET identity = %s WHERE id = '%s'`, sqlQuote(s.Identity), id))
	}
	if res, err := record.Verify(ctx, e.s, id); err != nil || !res.OK {
		t.Fatalf("the rewritten chain should verify on its own: %+v %v", res, err)
	}
	return s, evs
}

// reseal signs a new seal for the stored session with key and stores it
// through the store's API.
func (e *tamperEnv) reseal(t *testing.T, id string, key *bundle.PrivateKey) {
	t.Helper()
	ctx := ctxT(t)
	s, err := e.s.GetSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := e.s.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := record.HeaderHash(&s)
	last := evs[len(evs)-1]
	seal := record.Seal{SessionID: id, HeaderHash: head, LastSeq: last.Seq, LastHash: last.Hash, EndedAt: s.EndedAt, EndReason: s.EndReason}
	if err := record.SignSeal(&seal, key); err != nil {
		t.Fatal(err)
	}
	if err := e.s.PutSeal(ctx, &seal); err != nil {
		t.Fatal(err)
	}
}

func editCommand(seq int64, text string) func(*record.Session, []record.Event) {
	return func(_ *record.Session, evs []record.Event) { evs[seq-1].Command = text }
}

// testEvidenceTamper runs each tampering against a fresh recording and
// audits it. Each case says whether the audit must fail (and with which
// errors) or, for the window the security model documents, pass.
func testEvidenceTamper(t *testing.T, backend func(t *testing.T) record.Backend, raw RawExec) {
	trusted := func(e *tamperEnv) record.AuditOptions { return record.AuditOptions{Keys: KeyRing(t, e.key)} }
	cases := []struct {
		name   string
		tamper func(t *testing.T, e *tamperEnv)
		opts   func(e *tamperEnv) record.AuditOptions
		// session, if set, is also audited alone: same verdict expected.
		session string
		wantOK  bool
		want    []error
	}{
		{name: "untouched", tamper: func(*testing.T, *tamperEnv) {}, wantOK: true, session: "tm-ended"},
		{name: "untouched, signatures required", tamper: func(*testing.T, *tamperEnv) {},
			opts: func(e *tamperEnv) record.AuditOptions {
				return record.AuditOptions{Keys: KeyRing(t, e.key), RequireSignatures: true}
			}, wantOK: true},

		// Rewriting a session and recomputing its hashes.
		{name: "edit event and rehash chain of a sealed checkpointed session",
			tamper:  func(t *testing.T, e *tamperEnv) { e.rewrite(t, "tm-ended", editCommand(2, "SELECT 'nothing to see'")) },
			session: "tm-ended", want: []error{record.ErrSealInvalid, record.ErrNotCovered}},
		{name: "edit event and rehash chain of an open session within its checkpoint",
			tamper:  func(t *testing.T, e *tamperEnv) { e.rewrite(t, "tm-open", editCommand(1, "SELECT 1")) },
			session: "tm-open", want: []error{record.ErrNotCovered}},
		{name: "rewrite header and rehash everything",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.rewrite(t, "tm-open", func(s *record.Session, _ []record.Event) { s.Identity = "someone-else" })
			}, session: "tm-open", want: []error{record.ErrNotCovered}},
		{name: "edit event and rehash chain of a sealed session after the last checkpoint",
			tamper:  func(t *testing.T, e *tamperEnv) { e.rewrite(t, "tm-late", editCommand(1, "SELECT 1")) },
			session: "tm-late", want: []error{record.ErrSealInvalid}},
		{name: "rewrite and re-seal with the attacker's key",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.rewrite(t, "tm-late", editCommand(1, "SELECT 1"))
				e.reseal(t, "tm-late", e.attacker)
			}, session: "tm-late", want: []error{record.ErrSealInvalid, record.ErrUntrustedKey}},
		{name: "window: edit and rehash events after the last checkpoint of an open session",
			tamper:  func(t *testing.T, e *tamperEnv) { e.rewrite(t, "tm-open", editCommand(5, "SELECT 1")) },
			session: "tm-open", wantOK: true},

		// Deleting sessions.
		{name: "delete a checkpointed session",
			tamper:  func(t *testing.T, e *tamperEnv) { e.exec(t, `DELETE FROM sessions WHERE id = 'tm-ended'`) },
			session: "tm-ended", want: []error{record.ErrNotCovered}},
		{name: "delete an open checkpointed session",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM events WHERE session_id = 'tm-open'`, `DELETE FROM sessions WHERE id = 'tm-open'`)
			}, session: "tm-open", want: []error{record.ErrNotCovered}},
		{name: "window: delete a session started and ended after the last checkpoint",
			tamper: func(t *testing.T, e *tamperEnv) { e.exec(t, `DELETE FROM sessions WHERE id = 'tm-late'`) },
			wantOK: true},

		// Truncating a session.
		{name: "truncate tail recorded by a checkpoint",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM events WHERE session_id = 'tm-open' AND seq >= 4`)
			}, session: "tm-open", want: []error{record.ErrNotCovered}},
		{name: "window: truncate tail after the last checkpoint",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM events WHERE session_id = 'tm-open' AND seq >= 5`)
			}, session: "tm-open", wantOK: true},
		{name: "truncate a checkpointed ended session, reopen it, drop its seal",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM events WHERE session_id = 'tm-ended' AND seq >= 4`,
					`UPDATE sessions SET ended_at = NULL, end_reason = '' WHERE id = 'tm-ended'`,
					`DELETE FROM seals WHERE session_id = 'tm-ended'`)
			}, session: "tm-ended", want: []error{record.ErrNotCovered, record.ErrUnsigned}},
		{name: "truncate a sealed session after the last checkpoint",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM events WHERE session_id = 'tm-late' AND seq = 3`)
			}, session: "tm-late", want: []error{record.ErrChainBroken, record.ErrSealInvalid}},
		{name: "window: truncate a session after the last checkpoint, reopen it, drop its seal",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM events WHERE session_id = 'tm-late' AND seq >= 2`,
					`UPDATE sessions SET ended_at = NULL, end_reason = '' WHERE id = 'tm-late'`,
					`DELETE FROM seals WHERE session_id = 'tm-late'`)
			}, session: "tm-late", wantOK: true},

		// Seals.
		{name: "swap seal signatures between sessions",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `UPDATE seals SET signature = (SELECT signature FROM seals WHERE session_id = 'tm-late') WHERE session_id = 'tm-ended'`)
			}, session: "tm-ended", want: []error{record.ErrSealInvalid, record.ErrBadSignature}},
		{name: "move a seal to another session",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM seals WHERE session_id = 'tm-ended'`,
					`UPDATE seals SET session_id = 'tm-ended' WHERE session_id = 'tm-late'`)
			}, session: "tm-ended", want: []error{record.ErrSealInvalid}},
		{name: "drop the seal of a session a checkpoint records as ended",
			tamper:  func(t *testing.T, e *tamperEnv) { e.exec(t, `DELETE FROM seals WHERE session_id = 'tm-ended'`) },
			session: "tm-ended", want: []error{record.ErrUnsigned}},
		{name: "window: drop the seal of a session ended after the last checkpoint",
			tamper:  func(t *testing.T, e *tamperEnv) { e.exec(t, `DELETE FROM seals WHERE session_id = 'tm-late'`) },
			session: "tm-late", wantOK: true},
		{name: "drop the seal of a session ended after the last checkpoint, signatures required",
			tamper: func(t *testing.T, e *tamperEnv) { e.exec(t, `DELETE FROM seals WHERE session_id = 'tm-late'`) },
			opts: func(e *tamperEnv) record.AuditOptions {
				return record.AuditOptions{Keys: KeyRing(t, e.key), RequireSignatures: true}
			}, session: "tm-late", want: []error{record.ErrUnsigned}},

		// Keys.
		{name: "untrusted key",
			tamper: func(*testing.T, *tamperEnv) {},
			opts: func(e *tamperEnv) record.AuditOptions {
				return record.AuditOptions{Keys: KeyRing(t, e.attacker)}
			}, session: "tm-ended", want: []error{record.ErrUntrustedKey, record.ErrCheckpointBroken, record.ErrSealInvalid}},

		// Checkpoints.
		{name: "delete a checkpoint in the middle",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM checkpoints WHERE gateway_id = 'gw-t' AND seq = 2`)
			},
			want: []error{record.ErrCheckpointBroken}},
		{name: "delete the first checkpoint",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM checkpoints WHERE gateway_id = 'gw-t' AND seq = 1`)
			},
			want: []error{record.ErrCheckpointBroken}},
		{name: "window: delete the newest checkpoint and what only it covered",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM checkpoints WHERE gateway_id = 'gw-t' AND seq = 3`,
					`DELETE FROM events WHERE session_id = 'tm-open' AND seq >= 4`)
			}, wantOK: true},
		{name: "delete the newest checkpoint, known from outside",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM checkpoints WHERE gateway_id = 'gw-t' AND seq = 3`,
					`DELETE FROM events WHERE session_id = 'tm-open' AND seq >= 4`)
			},
			opts: func(e *tamperEnv) record.AuditOptions {
				return record.AuditOptions{Keys: KeyRing(t, e.key), Anchors: []record.CheckpointRef{e.cps[2].Ref()}}
			}, want: []error{record.ErrCheckpointBroken}},
		{name: "edit a checkpoint entry",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `UPDATE checkpoint_entries SET last_seq = 1 WHERE gateway_id = 'gw-t' AND checkpoint_seq = 3 AND session_id = 'tm-open'`)
			}, session: "tm-open", want: []error{record.ErrCheckpointBroken}},
		{name: "delete a checkpoint entry, then the session",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM checkpoint_entries WHERE session_id = 'tm-ended'`, `DELETE FROM sessions WHERE id = 'tm-ended'`)
			}, want: []error{record.ErrCheckpointBroken}},
		{name: "swap checkpoint signatures",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `UPDATE checkpoints SET signature = (SELECT c.signature FROM checkpoints c WHERE c.gateway_id = 'gw-t' AND c.seq = 1)
					WHERE gateway_id = 'gw-t' AND seq = 2`)
			}, want: []error{record.ErrCheckpointBroken, record.ErrBadSignature}},
		{name: "forge a retention cut-off, then delete a session",
			tamper: func(t *testing.T, e *tamperEnv) {
				e.exec(t, `DELETE FROM sessions WHERE id = 'tm-ended'`)
				// The cut-off is part of the signed encoding, so the
				// attacker appends a checkpoint of their own carrying one.
				c := record.Checkpoint{GatewayID: "gw-t", Seq: 4, PrevHash: e.cps[2].Hash, Time: e.cps[2].Time,
					RetentionBefore: e.cps[2].Time.Add(1e12)}
				if err := record.SignCheckpoint(&c, e.attacker); err != nil {
					t.Fatal(err)
				}
				if err := e.s.PutCheckpoint(ctxT(t), &c); err != nil {
					t.Fatal(err)
				}
			}, want: []error{record.ErrCheckpointBroken, record.ErrUntrustedKey, record.ErrNotCovered}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTamperEnv(t, backend(t), raw)
			tc.tamper(t, e)
			opts := trusted(e)
			if tc.opts != nil {
				opts = tc.opts(e)
			}
			rep := audit(t, e.s, opts)
			checkVerdict(t, "AuditAll", rep, tc.wantOK, tc.want)
			if tc.session == "" {
				return
			}
			one, err := record.AuditSession(ctxT(t), e.s, tc.session, opts)
			if err != nil && !(tc.wantOK && errors.Is(err, record.ErrNotFound)) {
				t.Fatalf("AuditSession: %v", err)
			}
			checkVerdict(t, "AuditSession", one, tc.wantOK, nil)
		})
	}
}

func checkVerdict(t *testing.T, what string, rep *record.AuditReport, wantOK bool, want []error) {
	t.Helper()
	if rep.OK() != wantOK {
		t.Fatalf("%s: OK = %v, want %v; problems: %v", what, rep.OK(), wantOK, rep.Err())
	}
	for _, w := range want {
		if !errors.Is(rep.Err(), w) {
			t.Errorf("%s: no problem matches %v; problems:\n%v", what, w, rep.Err())
		}
	}
}
