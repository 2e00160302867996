package record

import (
	"errors"
	"sort"
	"testing"
	"time"
)

func testChain(t *testing.T, n int) (*Session, []Event) {
	t.Helper()
	s := &Session{ID: "s1", Identity: "bot", Groups: []string{"g"}, Claims: map[string]any{"sub": "x"},
		StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = Event{Time: s.StartedAt.Add(time.Duration(i) * time.Second), Kind: KindCommand, Command: "SELECT 1"}
	}
	if err := SealChain(s, evs); err != nil {
		t.Fatal(err)
	}
	return s, evs
}

func TestVerifyChain(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		mutate  func(s *Session, evs []Event) []Event
		wantOK  bool
		wantSeq int64
	}{
		{"intact", func(s *Session, evs []Event) []Event { return evs }, true, 0},
		{"no events", func(s *Session, evs []Event) []Event { return nil }, true, 0},
		{"edited command", func(s *Session, evs []Event) []Event { evs[1].Command = "DROP"; return evs }, false, 2},
		{"edited time", func(s *Session, evs []Event) []Event { evs[2].Time = evs[2].Time.Add(time.Microsecond); return evs }, false, 3},
		{"edited rows", func(s *Session, evs []Event) []Event { evs[0].Rows = 7; return evs }, false, 1},
		{"deleted middle", func(s *Session, evs []Event) []Event { return append(evs[:1], evs[2:]...) }, false, 2},
		{"renumbered after delete", func(s *Session, evs []Event) []Event {
			evs = append(evs[:1], evs[2:]...)
			evs[1].Seq = 2
			return evs
		}, false, 2},
		{"swapped", func(s *Session, evs []Event) []Event { evs[0], evs[1] = evs[1], evs[0]; return evs }, false, 1},
		{"header identity", func(s *Session, evs []Event) []Event { s.Identity = "alice"; return evs }, false, 0},
		{"header claims", func(s *Session, evs []Event) []Event { s.Claims = map[string]any{"sub": "y"}; return evs }, false, 0},
		{"header groups", func(s *Session, evs []Event) []Event { s.Groups = nil; return evs }, false, 0},
		{"ended without end event", func(s *Session, evs []Event) []Event { s.EndedAt = s.StartedAt.Add(time.Hour); return evs }, false, 4},
		{"foreign event", func(s *Session, evs []Event) []Event { evs[2].SessionID = "s2"; return evs }, false, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, evs := testChain(t, 3)
			evs = tc.mutate(s, evs)
			res := VerifyChain(s, evs)
			if res.OK != tc.wantOK || res.Seq != tc.wantSeq {
				t.Fatalf("got ok=%v seq=%d (%s), want ok=%v seq=%d", res.OK, res.Seq, res.Problem, tc.wantOK, tc.wantSeq)
			}
			if !tc.wantOK && !errors.Is(res.Err(), ErrChainBroken) {
				t.Fatalf("Err() = %v", res.Err())
			}
		})
	}
}

func TestEncodingIsUnambiguous(t *testing.T) {
	t.Parallel()
	a := Event{SessionID: "s", Seq: 1, Command: "ab", Reason: ""}
	b := Event{SessionID: "s", Seq: 1, Command: "a", Reason: "b"}
	ha, _ := EventHash(nil, "p", &a)
	hb, _ := EventHash(nil, "p", &b)
	if ha == hb {
		t.Fatal("field boundary shift not reflected in the hash")
	}
	c := Event{SessionID: "s", Seq: 1, RuleIDs: []string{"a", "b"}}
	d := Event{SessionID: "s", Seq: 1, RuleIDs: []string{"ab"}}
	hc, _ := EventHash(nil, "p", &c)
	hd, _ := EventHash(nil, "p", &d)
	if hc == hd {
		t.Fatal("rule id list boundaries not reflected in the hash")
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 100 {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || !ValidID(id) {
			t.Fatalf("bad id %q", id)
		}
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids do not sort by time")
	}
	if a, b := NewID(base), NewID(base); a == b {
		t.Fatal("ids at the same millisecond collide")
	}
}

func TestApplyVote(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fresh := func(count int) *Approval {
		return &Approval{ID: "a", Identity: "bot", Count: count, Status: StatusPending, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	}
	cases := []struct {
		name       string
		a          *Approval
		v          Vote
		wantErr    error
		wantStatus string
	}{
		{"approve to quorum", fresh(1), Vote{Approver: "alice", Decision: "approve", Time: at}, nil, StatusApproved},
		{"approve below quorum", fresh(2), Vote{Approver: "alice", Decision: "approve", Time: at}, nil, StatusPending},
		{"deny", fresh(2), Vote{Approver: "alice", Decision: "deny", Time: at}, nil, StatusDenied},
		{"self", fresh(1), Vote{Approver: "bot", Decision: "approve", Time: at}, ErrSelfApproval, StatusPending},
		{"no approver", fresh(1), Vote{Decision: "approve", Time: at}, ErrInvalid, StatusPending},
		{"bad decision", fresh(1), Vote{Approver: "alice", Decision: "yes", Time: at}, ErrInvalid, StatusPending},
		{"no time", fresh(1), Vote{Approver: "alice", Decision: "approve"}, ErrInvalid, StatusPending},
		{"expired", fresh(1), Vote{Approver: "alice", Decision: "approve", Time: at.Add(time.Hour)}, ErrApprovalClosed, StatusExpired},
		{"closed", &Approval{ID: "a", Identity: "bot", Count: 1, Status: StatusDenied, ExpiresAt: at.Add(time.Hour)},
			Vote{Approver: "alice", Decision: "approve", Time: at}, ErrApprovalClosed, StatusDenied},
		{"duplicate", &Approval{ID: "a", Identity: "bot", Count: 2, Status: StatusPending, ExpiresAt: at.Add(time.Hour),
			Votes: []Vote{{Approver: "alice", Decision: "approve", Time: at}}},
			Vote{Approver: "alice", Decision: "approve", Time: at}, ErrDuplicateVote, StatusPending},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ApplyVote(tc.a, &tc.v)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.a.Status != tc.wantStatus {
				t.Fatalf("status %s, want %s", tc.a.Status, tc.wantStatus)
			}
		})
	}
}

func TestSpoolRoundTripAndTornTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	s, evs := testChain(t, 3)
	if err := sp.append([]item{{op: opCreate, session: s}, {op: opEvent, event: evs[0]}}); err != nil {
		t.Fatal(err)
	}
	if err := sp.append([]item{{op: opEvent, event: evs[1]}, {op: opEventEnd, event: evs[2]}}); err != nil {
		t.Fatal(err)
	}
	// A torn third record (crash mid-append).
	if _, err := sp.f.Write([]byte("GHS1\x00\x00\x01\x00")); err != nil {
		t.Fatal(err)
	}
	sp.size += 8
	var got [][]item
	var corrupt int
	err = sp.replay(func(b []item) error { got = append(got, b); return nil }, func(error, int64) { corrupt++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || corrupt != 1 || sp.pending() {
		t.Fatalf("replayed %d batches, %d corrupt, pending %v", len(got), corrupt, sp.pending())
	}
	if got[0][0].session.ID != "s1" || got[1][1].op != opEventEnd {
		t.Fatalf("replayed items: %+v", got)
	}
	// The chain survives the spool byte for byte.
	replayed := []Event{got[0][1].event, got[1][0].event, got[1][1].event}
	if res := VerifyChain(got[0][0].session, replayed); !res.OK {
		t.Fatalf("chain after spool: %+v", res)
	}
}

func TestReplayStopsAtStoreError(t *testing.T) {
	t.Parallel()
	sp, err := openSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	_, evs := testChain(t, 2)
	for i := range evs {
		if err := sp.append([]item{{op: opEvent, event: evs[i]}}); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("down")
	calls := 0
	err = sp.replay(func([]item) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	}, func(error, int64) {})
	if !errors.Is(err, boom) || !sp.pending() {
		t.Fatalf("err %v pending %v", err, sp.pending())
	}
	var seqs []int64
	if err := sp.replay(func(b []item) error { seqs = append(seqs, b[0].event.Seq); return nil }, func(error, int64) {}); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 1 || seqs[0] != 2 {
		t.Fatalf("second replay resent %v, want only seq 2", seqs)
	}
}

func TestSpoolLimit(t *testing.T) {
	t.Parallel()
	sp, err := openSpool(t.TempDir(), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	_, evs := testChain(t, 1)
	if err := sp.append([]item{{op: opEvent, event: evs[0]}}); err == nil {
		t.Fatal("spool exceeded its size limit")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{}},
		{"negative queue", Config{Store: nopStore{}, QueueSize: -1}},
		{"negative retry", Config{Store: nopStore{}, RetryMin: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tc.cfg); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	r, err := New(Config{Store: nopStore{}})
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.QueueSize != 10000 || r.cfg.BatchSize != 256 || r.cfg.FlushInterval != 50*time.Millisecond || r.cfg.FailOpen {
		t.Fatalf("defaults: %+v", r.cfg)
	}
}
