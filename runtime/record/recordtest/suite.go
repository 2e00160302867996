package recordtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
)

// RawExec runs one SQL statement directly against the store's database.
// Table and column names are those of the SQL stores in this module.
type RawExec func(ctx context.Context, s record.Store, query string) error

// Option configures Run.
type Option func(*options)

type options struct {
	raw RawExec
}

// WithRawSQL enables the tamper-detection tests.
func WithRawSQL(exec RawExec) Option { return func(o *options) { o.raw = exec } }

// Run runs the compliance suite. Every subtest runs in parallel with its own
// store from newStore.
func Run(t *testing.T, newStore func(t *testing.T) record.Store, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	backend := func(t *testing.T) record.Backend {
		t.Helper()
		s := newStore(t)
		b, ok := s.(record.Backend)
		if !ok {
			t.Fatalf("store %T does not implement record.Backend", s)
		}
		return b
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s record.Backend)
	}{
		{"Sessions", testSessions},
		{"ListSessionsFilter", testListSessions},
		{"EventsRoundTrip", testEventsRoundTrip},
		{"EventsIdempotentAndConflict", testEventsIdempotent},
		{"QueryEvents", testQueryEvents},
		{"VerifyOK", testVerifyOK},
		{"Retention", testRetention},
		{"Approvals", testApprovals},
		{"ApprovalExpiry", testApprovalExpiry},
		{"WatchApprovals", testWatchApprovals},
		{"RecorderRoundTrip", testRecorderRoundTrip},
		{"RecorderLoad", testRecorderLoad},
		{"RecorderReserveLoad", testRecorderReserveLoad},
		{"RecorderFailClosed", testRecorderFailClosed},
		{"RecorderSpoolReplay", testRecorderSpoolReplay},
		{"RecorderSpoolRestart", testRecorderSpoolRestart},
		{"EvidenceRecorder", testEvidenceRecorder},
		{"EvidenceFinalCheckpoint", testEvidenceFinalCheckpoint},
		{"EvidenceCheckpointEvents", testEvidenceCheckpointEvents},
		{"EvidenceSpool", testEvidenceSpool},
		{"EvidenceSharedGatewayID", testEvidenceSharedGatewayID},
		{"EvidenceResume", testEvidenceResume},
		{"EvidenceRetention", testEvidenceRetention},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, backend(t))
		})
	}
	t.Run("Tamper", func(t *testing.T) {
		t.Parallel()
		if o.raw == nil {
			t.Fatal("recordtest: WithRawSQL is required for the tamper-detection tests")
		}
		testTamper(t, backend, o.raw)
	})
	t.Run("EvidenceTamper", func(t *testing.T) {
		t.Parallel()
		if o.raw == nil {
			t.Fatal("recordtest: WithRawSQL is required for the tamper-detection tests")
		}
		testEvidenceTamper(t, backend, o.raw)
	})
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newSession(id, identity, resource string, started time.Time) record.Session {
	return record.Session{
		ID: id, Identity: identity, IdentityKind: "agent", Groups: []string{"agents", "dev"},
		Claims:   map[string]any{"iss": "https://issuer.example", "sub": identity, "n": json.Number("42")},
		Resource: resource, ResourceType: "postgres", ClientAddr: "10.0.0.1:5555",
		GatewayID: "gw-1", BundleRevision: "rev-1", StartedAt: started,
	}
}

func mustCreate(t *testing.T, s record.Backend, sess record.Session) {
	t.Helper()
	if err := s.CreateSession(ctxT(t), &sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

// fullEvent has every field set.
func fullEvent(i int, at time.Time) record.Event {
	return record.Event{
		Time: at, Kind: record.KindCommand, Protocol: "postgres",
		Command: fmt.Sprintf("SELECT * FROM orders WHERE id = %d", i),
		Facts:   json.RawMessage(`{"kind":"select","tables":["orders"],"has_where":true}`),
		Effect:  "allow", RuleIDs: []string{"read-orders", "mask-pii"}, BundleRevision: "rev-1",
		Reason: "allowed by read-orders", ApprovalID: "ap-1", Masked: true, DurationMicros: int64(1000 + i),
		Rows: int64(i), Error: "", Results: json.RawMessage(`[["1","a***@example.com"]]`),
	}
}

// sealedSession creates a session with n events, the last one an end event,
// and returns them as stored.
func sealedSession(t *testing.T, s record.Backend, id string, n int) (record.Session, []record.Event) {
	t.Helper()
	sess := newSession(id, "claude-coder", "orders-db", base)
	mustCreate(t, s, sess)
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = fullEvent(i, base.Add(time.Duration(i+1)*time.Second))
	}
	end := base.Add(time.Duration(n+1) * time.Second)
	evs = append(evs, record.Event{Time: end, Kind: record.KindEnd, Reason: "client closed"})
	if err := record.SealChain(&sess, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctxT(t), evs); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	if err := s.EndSession(ctxT(t), id, end, "client closed"); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	sess.EndedAt, sess.EndReason = end, "client closed"
	return sess, evs
}

func sameSession(t *testing.T, got, want record.Session) {
	t.Helper()
	gc, _ := record.ClaimsJSON(got.Claims)
	wc, _ := record.ClaimsJSON(want.Claims)
	if string(gc) != string(wc) {
		t.Errorf("claims: got %s, want %s", gc, wc)
	}
	got.Claims, want.Claims = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("session mismatch:\n got %+v\nwant %+v", got, want)
	}
}

func testSessions(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	sess := newSession("s-1", "claude-coder", "orders-db", base)
	mustCreate(t, s, sess)
	if err := s.CreateSession(ctx, &sess); !errors.Is(err, record.ErrAlreadyExists) {
		t.Fatalf("duplicate CreateSession: got %v, want ErrAlreadyExists", err)
	}
	bad := sess
	bad.ID = "bad id with spaces"
	if err := s.CreateSession(ctx, &bad); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("invalid id: got %v, want ErrInvalid", err)
	}
	got, err := s.GetSession(ctx, "s-1")
	if err != nil {
		t.Fatal(err)
	}
	sameSession(t, got, sess)
	if _, err := s.GetSession(ctx, "nope"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("GetSession(unknown): got %v, want ErrNotFound", err)
	}
	end := base.Add(time.Hour + 123456*time.Nanosecond)
	if err := s.EndSession(ctx, "s-1", end, "idle timeout"); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, "nope", end, "x"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("EndSession(unknown): got %v, want ErrNotFound", err)
	}
	got, err = s.GetSession(ctx, "s-1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.EndedAt.Equal(record.Timestamp(end)) || got.EndReason != "idle timeout" {
		t.Fatalf("ended: got %v %q", got.EndedAt, got.EndReason)
	}
}

func testListSessions(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	for i, c := range []struct{ id, ident, res string }{
		{"a1", "alice", "orders-db"}, {"a2", "alice", "billing-db"}, {"b1", "bot", "orders-db"},
		{"b2", "bot", "orders-db"}, {"b3", "bot", "billing-db"},
	} {
		mustCreate(t, s, newSession(c.id, c.ident, c.res, base.Add(time.Duration(i)*time.Minute)))
	}
	ids := func(ss []record.Session) []string {
		var out []string
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    record.SessionFilter
		want []string
	}{
		{"all newest first", record.SessionFilter{}, []string{"b3", "b2", "b1", "a2", "a1"}},
		{"identity", record.SessionFilter{Identity: "alice"}, []string{"a2", "a1"}},
		{"resource", record.SessionFilter{Resource: "orders-db"}, []string{"b2", "b1", "a1"}},
		{"both", record.SessionFilter{Identity: "bot", Resource: "billing-db"}, []string{"b3"}},
		{"since", record.SessionFilter{Since: base.Add(3 * time.Minute)}, []string{"b3", "b2"}},
		{"until", record.SessionFilter{Until: base.Add(1 * time.Minute)}, []string{"a1"}},
		{"limit offset", record.SessionFilter{Limit: 2, Offset: 1}, []string{"b2", "b1"}},
		{"none", record.SessionFilter{Identity: "nobody"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListSessions(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tc.want) {
				t.Fatalf("got %v, want %v", ids(got), tc.want)
			}
		})
	}
}

func testEventsRoundTrip(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	_, want := sealedSession(t, s, "rt-1", 5)
	// Sparse event: empty optional fields round-trip as empty.
	got, err := s.Events(ctx, "rt-1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events differ:\n got %+v\nwant %+v", got, want)
	}
	if _, err := s.Events(ctx, "unknown"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("Events(unknown): got %v, want ErrNotFound", err)
	}
	orphan := []record.Event{{SessionID: "unknown", Seq: 1, Time: base, Kind: "command", Hash: "x"}}
	if err := s.AppendEvents(ctx, orphan); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("AppendEvents(unknown session): got %v, want ErrNotFound", err)
	}
	badJSON := []record.Event{{SessionID: "rt-1", Seq: 99, Time: base, Facts: json.RawMessage("{"), Hash: "x"}}
	if err := s.AppendEvents(ctx, badJSON); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("AppendEvents(bad facts): got %v, want ErrInvalid", err)
	}
}

func testEventsIdempotent(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	_, evs := sealedSession(t, s, "id-1", 3)
	if err := s.AppendEvents(ctx, evs[:2]); err != nil {
		t.Fatalf("re-append identical events: %v", err)
	}
	changed := evs[1]
	changed.Command = "DROP TABLE orders"
	changed.Hash = "0000"
	if err := s.AppendEvents(ctx, []record.Event{changed}); !errors.Is(err, record.ErrConflict) {
		t.Fatalf("conflicting event: got %v, want ErrConflict", err)
	}
	// A failing batch is atomic: the new event before the conflict is not stored.
	extra := record.Event{SessionID: "id-1", Seq: int64(len(evs) + 1), Time: base, Kind: "command", Hash: "ab"}
	if err := s.AppendEvents(ctx, []record.Event{extra, changed}); !errors.Is(err, record.ErrConflict) {
		t.Fatalf("batch with conflict: got %v, want ErrConflict", err)
	}
	got, err := s.Events(ctx, "id-1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, evs) {
		t.Fatalf("events changed by failed appends: got %d events", len(got))
	}
}

func testQueryEvents(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	mk := func(id, ident, res string) {
		sess := newSession(id, ident, res, base)
		mustCreate(t, s, sess)
		evs := []record.Event{
			{Time: base.Add(1 * time.Second), Kind: "command", Command: "SELECT 1", Effect: "allow", RuleIDs: []string{"read"}},
			{Time: base.Add(2 * time.Second), Kind: "command", Command: "DELETE FROM t", Effect: "deny", RuleIDs: []string{"no-unbounded-writes"}},
			{Time: base.Add(3 * time.Second), Kind: "command", Command: "ALTER TABLE t", Effect: "approve", RuleIDs: []string{"migrations", "read"}},
		}
		for i := range evs {
			evs[i].Time = evs[i].Time.Add(time.Duration(len(id)) * time.Millisecond)
		}
		if err := record.SealChain(&sess, evs); err != nil {
			t.Fatal(err)
		}
		// Two batches: order must follow seq regardless.
		if err := s.AppendEvents(ctx, evs[:1]); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, evs[1:]); err != nil {
			t.Fatal(err)
		}
	}
	mk("q1", "alice", "orders-db")
	mk("q22", "bot", "orders-db")
	mk("q333", "bot", "billing-db")
	type key struct {
		id  string
		seq int64
	}
	keys := func(evs []record.Event) []key {
		var out []key
		for _, e := range evs {
			out = append(out, key{e.SessionID, e.Seq})
		}
		return out
	}
	cases := []struct {
		name string
		f    record.EventFilter
		want []key
	}{
		{"deny", record.EventFilter{Effect: "deny"}, []key{{"q1", 2}, {"q22", 2}, {"q333", 2}}},
		{"rule", record.EventFilter{RuleID: "read", Identity: "bot"}, []key{{"q22", 1}, {"q333", 1}, {"q22", 3}, {"q333", 3}}},
		{"rule prefix does not match", record.EventFilter{RuleID: "rea"}, nil},
		{"resource", record.EventFilter{Resource: "billing-db"}, []key{{"q333", 1}, {"q333", 2}, {"q333", 3}}},
		{"since until", record.EventFilter{Since: base.Add(2 * time.Second), Until: base.Add(3 * time.Second), Identity: "alice"}, []key{{"q1", 2}}},
		{"limit", record.EventFilter{Limit: 2}, []key{{"q1", 1}, {"q22", 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.QueryEvents(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(keys(got), tc.want) {
				t.Fatalf("got %v, want %v", keys(got), tc.want)
			}
		})
	}
	evs, err := s.Events(ctx, "q22")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("Events not in seq order: %v", keys(evs))
		}
	}
}

func testVerifyOK(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	sealedSession(t, s, "v-1", 10)
	sealedSession(t, s, "v-2", 0)
	res, err := record.Verify(ctx, s, "v-1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Events != 11 || res.Err() != nil {
		t.Fatalf("Verify: %+v", res)
	}
	all, err := record.VerifyAll(ctx, s, record.SessionFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !all[0].OK || !all[1].OK {
		t.Fatalf("VerifyAll: %+v", all)
	}
	if _, err := record.Verify(ctx, s, "unknown"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("Verify(unknown): got %v, want ErrNotFound", err)
	}
}

func testTamper(t *testing.T, backend func(t *testing.T) record.Backend, raw RawExec) {
	cases := []struct {
		name    string
		sql     []string
		wantSeq int64
	}{
		{"edit command", []string{`UPDATE events SET command = 'SELECT 2' WHERE session_id = 'tm' AND seq = 3`}, 3},
		{"edit effect", []string{`UPDATE events SET effect = 'deny' WHERE session_id = 'tm' AND seq = 2`}, 2},
		{"delete row", []string{`DELETE FROM events WHERE session_id = 'tm' AND seq = 4`}, 4},
		{"delete first row", []string{`DELETE FROM events WHERE session_id = 'tm' AND seq = 1`}, 1},
		{"delete end event", []string{`DELETE FROM events WHERE session_id = 'tm' AND seq = 6`}, 6},
		{"swap rows", []string{
			`UPDATE events SET seq = -1 WHERE session_id = 'tm' AND seq = 2`,
			`UPDATE events SET seq = 2 WHERE session_id = 'tm' AND seq = 3`,
			`UPDATE events SET seq = 3 WHERE session_id = 'tm' AND seq = -1`,
		}, 2},
		{"edit header identity", []string{`UPDATE sessions SET identity = 'someone-else' WHERE id = 'tm'`}, 0},
		{"edit header resource", []string{`UPDATE sessions SET resource = 'other-db' WHERE id = 'tm'`}, 0},
		{"edit end reason", []string{`UPDATE sessions SET end_reason = 'normal' WHERE id = 'tm'`}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := backend(t)
			ctx := ctxT(t)
			sealedSession(t, s, "tm", 5)
			if res, err := record.Verify(ctx, s, "tm"); err != nil || !res.OK {
				t.Fatalf("before tampering: %+v %v", res, err)
			}
			for _, q := range tc.sql {
				if err := raw(ctx, s, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			res, err := record.Verify(ctx, s, "tm")
			if err != nil {
				t.Fatal(err)
			}
			if res.OK {
				t.Fatalf("tampering not detected: %+v", res)
			}
			if res.Seq != tc.wantSeq {
				t.Fatalf("broken at seq %d (%s), want seq %d", res.Seq, res.Problem, tc.wantSeq)
			}
			var ce *record.ChainError
			if err := res.Err(); !errors.Is(err, record.ErrChainBroken) || !errors.As(err, &ce) || ce.SessionID != "tm" {
				t.Fatalf("Err(): %v", err)
			}
		})
	}
}

func testRetention(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	sealedSession(t, s, "old", 3) // ends at base+4s
	open := newSession("open", "bot", "orders-db", base.Add(-time.Hour))
	mustCreate(t, s, open)
	newer := newSession("newer", "bot", "orders-db", base)
	mustCreate(t, s, newer)
	if err := s.EndSession(ctx, "newer", base.Add(time.Hour), "done"); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteBefore(ctx, base.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("DeleteBefore deleted %d sessions, want 1", n)
	}
	if _, err := s.GetSession(ctx, "old"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("old session still there: %v", err)
	}
	evs, err := s.QueryEvents(ctx, record.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Fatalf("%d events of deleted session remain", len(evs))
	}
	for _, id := range []string{"open", "newer"} {
		if _, err := s.GetSession(ctx, id); err != nil {
			t.Fatalf("session %s deleted: %v", id, err)
		}
	}
}

func newApproval(id string, count int) record.Approval {
	return record.Approval{
		ID: id, SessionID: "s-1", Identity: "ci-bot", Resource: "orders-db",
		Command: "ALTER TABLE orders ADD COLUMN x int", RuleID: "migrations-need-approval",
		Group: "dba", Count: count, CreatedAt: base, ExpiresAt: base.Add(30 * time.Minute),
	}
}

func testApprovals(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	a := newApproval("ap-1", 2)
	if err := s.CreateApproval(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApproval(ctx, &a); !errors.Is(err, record.ErrAlreadyExists) {
		t.Fatalf("duplicate approval: got %v", err)
	}
	bad := newApproval("ap-bad", 0)
	if err := s.CreateApproval(ctx, &bad); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("count 0: got %v, want ErrInvalid", err)
	}
	got, err := s.GetApproval(ctx, "ap-1")
	if err != nil {
		t.Fatal(err)
	}
	a.Status = record.StatusPending
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("GetApproval:\n got %+v\nwant %+v", got, a)
	}
	if _, err := s.GetApproval(ctx, "nope"); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("GetApproval(unknown): %v", err)
	}
	vote := func(id, who, decision string, at time.Duration) (record.Approval, error) {
		return s.AddVote(ctx, id, record.Vote{Approver: who, Decision: decision, Reason: "ok", Time: base.Add(at)})
	}
	steps := []struct {
		name       string
		approver   string
		decision   string
		wantErr    error
		wantStatus string
		wantVotes  int
	}{
		{"first approval", "alice", "approve", nil, record.StatusPending, 1},
		{"duplicate vote", "alice", "approve", record.ErrDuplicateVote, "", 1},
		{"duplicate deny", "alice", "deny", record.ErrDuplicateVote, "", 1},
		{"self approval", "ci-bot", "approve", record.ErrSelfApproval, "", 1},
		{"bad decision", "carol", "maybe", record.ErrInvalid, "", 1},
		{"quorum", "bob", "approve", nil, record.StatusApproved, 2},
		{"after resolution", "carol", "approve", record.ErrApprovalClosed, "", 2},
	}
	for i, st := range steps {
		got, err := vote("ap-1", st.approver, st.decision, time.Duration(i+1)*time.Minute)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
		if err == nil && got.Status != st.wantStatus {
			t.Fatalf("%s: status %s, want %s", st.name, got.Status, st.wantStatus)
		}
	}
	final, err := s.GetApproval(ctx, "ap-1")
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != record.StatusApproved || len(final.Votes) != 2 ||
		final.Votes[0].Approver != "alice" || final.Votes[1].Approver != "bob" ||
		!final.ResolvedAt.Equal(base.Add(6*time.Minute)) {
		t.Fatalf("final approval: %+v", final)
	}
	// A deny resolves at once.
	d := newApproval("ap-2", 3)
	if err := s.CreateApproval(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if got, err := vote("ap-2", "alice", "deny", time.Minute); err != nil || got.Status != record.StatusDenied {
		t.Fatalf("deny: %+v %v", got, err)
	}
	// Concurrent votes by distinct approvers: all counted, none lost.
	c := newApproval("ap-3", 50)
	if err := s.CreateApproval(ctx, &c); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := vote("ap-3", fmt.Sprintf("approver-%d", i), "approve", time.Minute)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent vote: %v", err)
		}
	}
	if got, _ := s.GetApproval(ctx, "ap-3"); len(got.Votes) != 20 || got.Status != record.StatusPending {
		t.Fatalf("concurrent votes: %d votes, status %s", len(got.Votes), got.Status)
	}
	list := func(status string) []string {
		as, err := s.ListApprovals(ctx, status)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range as {
			ids = append(ids, a.ID)
		}
		return ids
	}
	if got := list(""); !reflect.DeepEqual(got, []string{"ap-1", "ap-2", "ap-3"}) {
		t.Fatalf("ListApprovals(all): %v", got)
	}
	if got := list(record.StatusDenied); !reflect.DeepEqual(got, []string{"ap-2"}) {
		t.Fatalf("ListApprovals(denied): %v", got)
	}
}

func testApprovalExpiry(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	for _, id := range []string{"e-1", "e-2", "e-3"} {
		a := newApproval(id, 1)
		if err := s.CreateApproval(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	// A vote after the deadline expires the approval instead of counting.
	got, err := s.AddVote(ctx, "e-1", record.Vote{Approver: "alice", Decision: "approve", Time: base.Add(time.Hour)})
	if !errors.Is(err, record.ErrApprovalClosed) {
		t.Fatalf("late vote: got %v, want ErrApprovalClosed", err)
	}
	if got.Status != record.StatusExpired {
		t.Fatalf("late vote: status %s", got.Status)
	}
	if a, _ := s.GetApproval(ctx, "e-1"); a.Status != record.StatusExpired || len(a.Votes) != 0 {
		t.Fatalf("after late vote: %+v", a)
	}
	if _, err := s.AddVote(ctx, "e-2", record.Vote{Approver: "alice", Decision: "approve", Time: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.ExpireApprovals(ctx, base.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("ExpireApprovals changed %d, want 1 (only e-3 was pending)", n)
	}
	for id, want := range map[string]string{"e-1": "expired", "e-2": "approved", "e-3": "expired"} {
		a, err := s.GetApproval(ctx, id)
		if err != nil || a.Status != want {
			t.Fatalf("%s: status %s (%v), want %s", id, a.Status, err, want)
		}
	}
}

func testWatchApprovals(t *testing.T, s record.Backend) {
	ctx, cancel := context.WithCancel(ctxT(t))
	ch, err := s.WatchApprovals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(want string) {
		t.Helper()
		select {
		case id, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed early")
			}
			if id != want {
				t.Fatalf("notified %q, want %q", id, want)
			}
		case <-ctxT(t).Done():
			t.Fatalf("no notification for %s", want)
		}
	}
	a := newApproval("w-1", 1)
	if err := s.CreateApproval(ctxT(t), &a); err != nil {
		t.Fatal(err)
	}
	expect("w-1")
	if _, err := s.AddVote(ctxT(t), "w-1", record.Vote{Approver: "alice", Decision: "approve", Time: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	expect("w-1")
	b := newApproval("w-2", 1)
	if err := s.CreateApproval(ctxT(t), &b); err != nil {
		t.Fatal(err)
	}
	expect("w-2")
	if _, err := s.ExpireApprovals(ctxT(t), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	expect("w-2")
	cancel()
	for range ch { // drains until closed; hangs (and times out) if never closed
	}
}

func newRecorder(t *testing.T, cfg record.Config) *record.Recorder {
	t.Helper()
	r, err := record.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runRecorder(t *testing.T, r *record.Recorder) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Run(t.Context()) }()
	return done
}

func testRecorderRoundTrip(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	r := newRecorder(t, record.Config{Store: s})
	done := runRecorder(t, r)
	sess := record.Session{Identity: "claude-coder", Resource: "orders-db", ResourceType: "postgres",
		Claims: map[string]any{"sub": "app-123", "iat": 1700000000}}
	sr, err := r.StartSession(ctx, &sess)
	if err != nil {
		t.Fatal(err)
	}
	if sess.ID == "" || sess.StartedAt.IsZero() {
		t.Fatalf("StartSession did not fill id and start: %+v", sess)
	}
	want := fullEvent(1, time.Time{})
	want.Facts = json.RawMessage("{ \"kind\" : \"select\" }")
	if err := sr.Record(want); err != nil {
		t.Fatal(err)
	}
	if err := sr.Record(record.Event{Kind: record.KindEnd}); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("Record(end): got %v, want ErrInvalid", err)
	}
	if err := sr.Record(record.Event{Facts: json.RawMessage("{nope")}); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("Record(bad facts): got %v, want ErrInvalid", err)
	}
	if err := sr.Record(record.Event{Command: "bad \xff utf8 \x00 nul", Effect: "deny"}); err != nil {
		t.Fatal(err)
	}
	if err := sr.End("client closed"); err != nil {
		t.Fatal(err)
	}
	if err := sr.Record(record.Event{}); !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("Record after End: got %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	got, err := s.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.EndReason != "client closed" || got.EndedAt.IsZero() {
		t.Fatalf("session not ended: %+v", got)
	}
	sess.EndedAt, sess.EndReason = got.EndedAt, got.EndReason
	sameSession(t, got, sess)
	evs, err := s.Events(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Seq != 1 || evs[2].Kind != record.KindEnd {
		t.Fatalf("events: %+v", evs)
	}
	if string(evs[0].Facts) != `{"kind":"select"}` || evs[0].Command != want.Command ||
		!reflect.DeepEqual(evs[0].RuleIDs, want.RuleIDs) || evs[0].Rows != want.Rows || !evs[0].Masked {
		t.Fatalf("event 1: %+v", evs[0])
	}
	if evs[1].Command != "bad \uFFFD utf8 \\x00 nul" {
		t.Fatalf("unclean command stored as %q", evs[1].Command)
	}
	if res, err := record.Verify(ctx, s, sess.ID); err != nil || !res.OK {
		t.Fatalf("Verify: %+v %v", res, err)
	}
}

func testRecorderLoad(t *testing.T, s record.Backend) {
	sessions, perSession := 50, 2000
	if raceEnabled {
		perSession = 200
	}
	ctx := ctxT(t)
	// Default queue and batch sizes. The queue is full when Close flushes
	// it; the generous deadline lets slow machines (the race detector
	// slows the stores about tenfold) write it, which is what is tested.
	r := newRecorder(t, record.Config{Store: s, CloseTimeout: 2 * time.Minute})
	done := runRecorder(t, r)
	ids := make([]string, sessions)
	accepted := make([][]int, sessions)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range sessions {
		wg.Go(func() {
			sess := &record.Session{Identity: fmt.Sprintf("agent-%d", i), Resource: "orders-db"}
			sr, err := r.StartSession(ctx, sess)
			for errors.Is(err, record.ErrRecorderUnavailable) {
				runtime.Gosched() // queue full: the proxy would refuse the connection
				sess.ID = ""
				sr, err = r.StartSession(ctx, sess)
			}
			if err != nil {
				t.Errorf("StartSession: %v", err)
				return
			}
			ids[i] = sr.ID()
			for j := range perSession {
				err := sr.Record(record.Event{Command: fmt.Sprintf("SELECT %d", j), Effect: "allow", Rows: int64(j)})
				if errors.Is(err, record.ErrRecorderUnavailable) {
					// The proxy would deny this command; it is not recorded.
					refused.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				accepted[i] = append(accepted[i], j)
			}
			for sr.End("done") != nil {
				runtime.Gosched() // queue full: retry until the writer makes room
			}
		})
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%d of %d Record calls refused (queue full)", refused.Load(), sessions*perSession)
	total := 0
	for i, id := range ids {
		evs, err := s.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := accepted[i]
		total += len(want)
		if len(evs) != len(want)+1 {
			t.Fatalf("session %s: %d events stored, %d accepted", id, len(evs)-1, len(want))
		}
		for k, j := range want {
			e := evs[k]
			if e.Command != fmt.Sprintf("SELECT %d", j) || e.Seq != int64(k+1) {
				t.Fatalf("session %s: event %d is %q seq %d, want SELECT %d", id, k, e.Command, e.Seq, j)
			}
		}
		if evs[len(evs)-1].Kind != record.KindEnd {
			t.Fatalf("session %s: last event %+v", id, evs[len(evs)-1])
		}
		res, err := record.Verify(ctx, s, id)
		if err != nil || !res.OK {
			t.Fatalf("Verify(%s): %+v %v", id, res, err)
		}
	}
	if total+int(refused.Load()) != sessions*perSession {
		t.Fatalf("accepted %d + refused %d != %d", total, refused.Load(), sessions*perSession)
	}
}

// testRecorderReserveLoad runs sessions that reserve before each command in
// one goroutine and record its outcome in another, with caps small enough
// that they wait for the store again and again: nothing may be refused or
// lost, and every chain must verify.
func testRecorderReserveLoad(t *testing.T, s record.Backend) {
	sessions, perSession := 20, 500
	if raceEnabled {
		perSession = 100
	}
	ctx := ctxT(t)
	r := newRecorder(t, record.Config{Store: s, QueueSize: 64, SessionQueue: 16, BatchSize: 32})
	done := runRecorder(t, r)
	ids := make([]string, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			sr, err := r.StartSession(ctx, &record.Session{Identity: fmt.Sprintf("agent-%d", i), Resource: "orders-db"})
			if err != nil {
				t.Errorf("StartSession: %v", err)
				return
			}
			ids[i] = sr.ID()
			reserved := make(chan *record.Reservation, perSession)
			go func() {
				defer close(reserved)
				for j := range perSession {
					res, err := sr.Reserve(ctx, 1)
					if err != nil {
						t.Errorf("Reserve %d: %v", j, err)
						return
					}
					reserved <- res
				}
			}()
			j := 0
			for res := range reserved {
				if err := res.Record(record.Event{Command: fmt.Sprintf("SELECT %d", j), Effect: "allow"}); err != nil {
					t.Errorf("Record %d: %v", j, err)
				}
				j++
			}
			if err := sr.End("done"); err != nil {
				t.Errorf("End: %v", err)
			}
		})
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if t.Failed() {
		return
	}
	for _, id := range ids {
		checkSession(t, s, id, perSession)
		evs, err := s.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if last := evs[len(evs)-1]; last.Kind != record.KindEnd || last.Seq != int64(perSession+1) {
			t.Fatalf("session %s: last event %+v", id, last)
		}
	}
}

func testRecorderFailClosed(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	const queue, batch = 8, 4
	r := newRecorder(t, record.Config{Store: s, QueueSize: queue, BatchSize: batch, FailAfter: 2,
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, CloseTimeout: 200 * time.Millisecond})
	done := runRecorder(t, r)
	sr, err := r.StartSession(ctx, &record.Session{Identity: "bot", Resource: "orders-db"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sr.Record(record.Event{Command: "SELECT 1"}); err != nil {
		t.Fatal(err)
	}
	// The store goes away under the recorder.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	accepted := 1
	var refusal error
	// Nothing can be written, so at most one batch in flight plus a full
	// queue are accepted before Record must refuse.
	for i := 0; i < 100000; i++ {
		if err := sr.Record(record.Event{Command: fmt.Sprintf("SELECT %d", i)}); err != nil {
			refusal = err
			break
		}
		accepted++
	}
	if !errors.Is(refusal, record.ErrRecorderUnavailable) {
		t.Fatalf("Record with a dead store: got %v, want ErrRecorderUnavailable", refusal)
	}
	if accepted > 1+queue+batch {
		t.Fatalf("accepted %d events with a dead store; bound is %d", accepted, 1+queue+batch)
	}
	if err := r.Healthy(); !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("Healthy with a dead store: %v", err)
	}
	// Accepted events could not be written: Close says so rather than
	// dropping them silently.
	err = r.Close()
	if !errors.Is(err, record.ErrUnflushed) {
		t.Fatalf("Close: got %v, want ErrUnflushed", err)
	}
	// Run reports the same, unless it had not started before Close (then
	// Close flushed by itself and Run returns nil).
	if runErr := <-done; runErr != nil && !errors.Is(runErr, record.ErrUnflushed) {
		t.Fatalf("Run: got %v, want ErrUnflushed or nil", runErr)
	}
}

// flaky wraps a real store and fails its writes while failing is set,
// reporting every failure on failures.
type flaky struct {
	record.Store
	failing  atomic.Bool
	failures chan struct{}
}

var errInjected = errors.New("injected store failure")

func (f *flaky) fail() error {
	if !f.failing.Load() {
		return nil
	}
	select {
	case f.failures <- struct{}{}:
	default:
	}
	return errInjected
}

func (f *flaky) CreateSession(ctx context.Context, s *record.Session) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.CreateSession(ctx, s)
}

func (f *flaky) EndSession(ctx context.Context, id string, at time.Time, reason string) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.EndSession(ctx, id, at, reason)
}

func (f *flaky) AppendEvents(ctx context.Context, evs []record.Event) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.AppendEvents(ctx, evs)
}

func recordN(t *testing.T, sr *record.SessionRecorder, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := sr.Record(record.Event{Command: fmt.Sprintf("SELECT %d", i)}); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

func checkSession(t *testing.T, s record.Backend, id string, n int) {
	t.Helper()
	ctx := ctxT(t)
	evs, err := s.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n+1 {
		t.Fatalf("%d events stored, want %d", len(evs), n+1)
	}
	for i := range n {
		if evs[i].Command != fmt.Sprintf("SELECT %d", i) {
			t.Fatalf("event %d is %q: order lost", i+1, evs[i].Command)
		}
	}
	if res, err := record.Verify(ctx, s, id); err != nil || !res.OK {
		t.Fatalf("Verify: %+v %v", res, err)
	}
}

func testRecorderSpoolReplay(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	dir := t.TempDir()
	fs := &flaky{Store: s, failures: make(chan struct{}, 1)}
	r := newRecorder(t, record.Config{Store: fs, SpoolDir: dir, BatchSize: 16, FlushInterval: -1,
		FailAfter: 1, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	done := runRecorder(t, r)
	fs.failing.Store(true)
	sr, err := r.StartSession(ctx, &record.Session{Identity: "bot", Resource: "orders-db"})
	if err != nil {
		t.Fatal(err)
	}
	recordN(t, sr, 0, 100)
	<-fs.failures // a write failed: that batch went to the spool
	recordN(t, sr, 100, 200)
	<-fs.failures // a replay of the spool failed: the spool holds data
	if err := r.Healthy(); err != nil {
		t.Fatalf("spooling recorder reports unhealthy: %v", err)
	}
	fs.failing.Store(false)
	recordN(t, sr, 200, 300)
	if err := sr.End("done"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sr.ID(), 300)
	if st, err := os.Stat(filepath.Join(dir, "recorder.spool")); err != nil || st.Size() != 0 {
		t.Fatalf("spool not emptied after replay: %v %v", st, err)
	}
}

func testRecorderSpoolRestart(t *testing.T, s record.Backend) {
	ctx := ctxT(t)
	dir := t.TempDir()
	fs := &flaky{Store: s, failures: make(chan struct{}, 1)}
	fs.failing.Store(true)
	cfg := record.Config{Store: fs, SpoolDir: dir, BatchSize: 32, FailAfter: 1,
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}
	r := newRecorder(t, cfg)
	done := runRecorder(t, r)
	sr, err := r.StartSession(ctx, &record.Session{Identity: "bot", Resource: "orders-db"})
	if err != nil {
		t.Fatal(err)
	}
	recordN(t, sr, 0, 500)
	if err := sr.End("done"); err != nil {
		t.Fatal(err)
	}
	// The store is down at shutdown: everything goes to the spool.
	if err := r.Close(); err != nil {
		t.Fatalf("Close with spool: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "recorder.spool")); err != nil || st.Size() == 0 {
		t.Fatalf("nothing spooled: %v %v", st, err)
	}
	if _, err := s.GetSession(ctx, sr.ID()); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("session reached the failing store: %v", err)
	}
	// Restart with the store back: Run replays the spool in order.
	fs.failing.Store(false)
	r2 := newRecorder(t, cfg)
	done2 := runRecorder(t, r2)
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sr.ID(), 500)
}
