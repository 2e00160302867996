package record_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

// These tests drive the recorder's flow control (Reserve, Reservation,
// End) against a real SQLite store. Stores that stall or fail wrap it;
// tests synchronise through the recorder's test hook and channels, never
// through sleeps or timing.

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "rec.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// controlledStore wraps a real store. While gate is non-nil and open,
// AppendEvents waits for it to close; while failing is set, AppendEvents
// (and CreateSession, if failCreate) fail after waiting for hold, when
// hold is non-nil, and report each failure on failures.
type controlledStore struct {
	record.Store
	gate       chan struct{}
	hold       chan struct{}
	failing    atomic.Bool
	failCreate bool
	failures   chan struct{}
}

var errInjected = errors.New("injected store failure")

func (c *controlledStore) fail(ctx context.Context) error {
	if !c.failing.Load() {
		return nil
	}
	if c.hold != nil {
		select {
		case <-c.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.failures != nil {
		select {
		case c.failures <- struct{}{}:
		default:
		}
	}
	return errInjected
}

func (c *controlledStore) CreateSession(ctx context.Context, s *record.Session) error {
	if c.failCreate {
		if err := c.fail(ctx); err != nil {
			return err
		}
	}
	return c.Store.CreateSession(ctx, s)
}

func (c *controlledStore) EndSession(ctx context.Context, id string, at time.Time, reason string) error {
	if err := c.fail(ctx); err != nil {
		return err
	}
	return c.Store.EndSession(ctx, id, at, reason)
}

func (c *controlledStore) AppendEvents(ctx context.Context, evs []record.Event) error {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := c.fail(ctx); err != nil {
		return err
	}
	return c.Store.AppendEvents(ctx, evs)
}

// manualClock fires its timers only when told to.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []chan time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, ch)
	return ch
}

// fire fires every timer created so far.
func (c *manualClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.timers {
		ch <- c.now
	}
	c.timers = nil
}

// hookLog records the recorder's wait and grant events and lets a test
// wait for a given one.
type hookLog struct {
	mu     sync.Mutex
	events []string // "event sessionID"
	notify chan struct{}
}

func installHook(r *record.Recorder) *hookLog {
	h := &hookLog{notify: make(chan struct{}, 1)}
	r.SetTestHook(func(ev, id string) {
		h.mu.Lock()
		h.events = append(h.events, ev+" "+id)
		h.mu.Unlock()
		select {
		case h.notify <- struct{}{}:
		default:
		}
	})
	return h
}

// count returns the number of events with this prefix so far.
func (h *hookLog) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := 0
	for _, e := range h.events {
		if strings.HasPrefix(e, prefix) {
			c++
		}
	}
	return c
}

// waitFor blocks until the log holds n events with this prefix.
func (h *hookLog) waitFor(t *testing.T, prefix string, n int) {
	t.Helper()
	for {
		if h.count(prefix) >= n {
			return
		}
		select {
		case <-h.notify:
		case <-t.Context().Done():
			t.Fatalf("waiting for %d %q hook events: %v", n, prefix, t.Context().Err())
		}
	}
}

func (h *hookLog) snapshot() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

func newRecorder(t *testing.T, cfg record.Config) (*record.Recorder, <-chan error) {
	t.Helper()
	r, err := record.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(t.Context()) }()
	t.Cleanup(func() { r.Close() })
	return r, done
}

func closeRecorder(t *testing.T, r *record.Recorder, done <-chan error) {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if used, reserved := r.Outstanding(); used != 0 || reserved != 0 {
		t.Fatalf("after Close %d slots held, %d reserved; want none", used, reserved)
	}
}

func start(t *testing.T, r *record.Recorder, identity string) *record.SessionRecorder {
	t.Helper()
	sr, err := r.StartSession(t.Context(), &record.Session{Identity: identity, Resource: "orders-db"})
	if err != nil {
		t.Fatalf("StartSession %s: %v", identity, err)
	}
	return sr
}

func command(prefix string, i int) record.Event {
	return record.Event{Command: fmt.Sprintf("%s %d", prefix, i), Effect: "allow", Rows: 1}
}

// checkStored asserts that the session holds exactly the commands
// prefix 0..n-1 with contiguous Seq (plus the end event when ended), and
// that its hash chain verifies.
func checkStored(t *testing.T, st *sqlite.Store, id, prefix string, n int, ended bool) {
	t.Helper()
	evs, err := st.Events(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := n
	if ended {
		want++
	}
	if len(evs) != want {
		t.Fatalf("session %s (%s): %d events stored, want %d", id, prefix, len(evs), want)
	}
	for i := range n {
		if evs[i].Seq != int64(i+1) || evs[i].Command != fmt.Sprintf("%s %d", prefix, i) {
			t.Fatalf("session %s: event %d is seq %d %q, want seq %d %q", id, i, evs[i].Seq, evs[i].Command, i+1, fmt.Sprintf("%s %d", prefix, i))
		}
	}
	if ended && (evs[n].Kind != record.KindEnd || evs[n].Seq != int64(n+1)) {
		t.Fatalf("session %s: last event %+v, want the end at seq %d", id, evs[n], n+1)
	}
	res, err := record.Verify(t.Context(), st, id)
	if err != nil || !res.OK {
		t.Fatalf("Verify(%s): %+v %v", id, res, err)
	}
}

// TestReserveAttack replays the outside attack: one session pipelines
// 100,000 commands as fast as it can, reserving in one goroutine (the
// client reader) and recording in another (the backend reader), while
// nine other sessions each run 2,000 commands. Every event of every session
// must be stored, no Reserve of the others may fail, and the big session
// may never hold more than its cap.
func TestReserveAttack(t *testing.T) {
	t.Parallel()
	bigN, others, otherN := 100000, 9, 2000
	if raceEnabled {
		// Same interleavings, a tenth of the events: the race detector
		// makes the SQLite store ten times slower.
		bigN, otherN = 10000, 500
	}
	st := openSQLite(t)
	// The store's first append waits until the big session has hit its
	// cap, so the test shows the cap holding rather than a store that
	// happened to keep up.
	cs := &controlledStore{Store: st, gate: make(chan struct{})}
	r, done := newRecorder(t, record.Config{Store: cs})
	capN := r.MaxReserve()
	hooks := installHook(r)

	big := start(t, r, "attacker")
	ctx := t.Context()
	reserved := make(chan *record.Reservation, 4*capN)
	var wg sync.WaitGroup
	var bigErr atomic.Value
	wg.Go(func() { // client reader: reserve before forwarding
		defer close(reserved)
		for range bigN {
			res, err := big.Reserve(ctx, 1)
			if err != nil {
				bigErr.Store(fmt.Errorf("Reserve: %w", err))
				return
			}
			reserved <- res
		}
	})
	wg.Go(func() { // backend reader: record when the response arrives
		i := 0
		for res := range reserved {
			if err := res.Record(command("big", i)); err != nil {
				bigErr.Store(fmt.Errorf("Record %d: %w", i, err))
				return
			}
			i++
		}
	})
	hooks.waitFor(t, "wait-session "+big.ID(), 1)
	close(cs.gate)

	ids := make([]string, others)
	var failures atomic.Int64
	for k := range others {
		wg.Go(func() {
			sr, err := r.StartSession(ctx, &record.Session{Identity: fmt.Sprintf("agent-%d", k), Resource: "orders-db"})
			if err != nil {
				t.Errorf("StartSession agent-%d: %v", k, err)
				failures.Add(1)
				return
			}
			ids[k] = sr.ID()
			for i := range otherN {
				res, err := sr.Reserve(ctx, 1)
				if err != nil {
					t.Errorf("agent-%d Reserve %d: %v", k, i, err)
					failures.Add(1)
					return
				}
				if err := res.Record(command("agent", i)); err != nil {
					t.Errorf("agent-%d Record %d: %v", k, i, err)
					failures.Add(1)
					return
				}
			}
			if err := sr.End("done"); err != nil {
				t.Errorf("agent-%d End: %v", k, err)
			}
			if m := sr.MaxOutstanding(); m > capN {
				t.Errorf("agent-%d held %d slots, cap %d", k, m, capN)
			}
		})
	}
	wg.Wait()
	if err, _ := bigErr.Load().(error); err != nil {
		t.Fatalf("big session: %v", err)
	}
	if err := big.End("done"); err != nil {
		t.Fatal(err)
	}
	closeRecorder(t, r, done)
	if failures.Load() != 0 {
		t.Fatalf("%d operations of the other sessions failed", failures.Load())
	}
	if m := big.MaxOutstanding(); m != capN {
		t.Fatalf("big session held at most %d slots; want exactly its cap %d (it was stalled at the cap)", m, capN)
	}
	checkStored(t, st, big.ID(), "big", bigN, true)
	for _, id := range ids {
		checkStored(t, st, id, "agent", otherN, true)
	}
	waits := map[string]int{}
	for _, e := range hooks.snapshot() {
		ev, id, _ := strings.Cut(e, " ")
		if id == big.ID() {
			ev += " (big)"
		}
		waits[ev]++
	}
	t.Logf("cap %d; hook events: %v", capN, waits)
}

// TestReserveFIFO: with a tiny global cap and a stalled store, a session
// that keeps reserving does not starve sessions that wait: once the store
// moves, each waiting session is served before the greedy one's second
// turn.
func TestReserveFIFO(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	cs := &controlledStore{Store: st, gate: make(chan struct{})}
	r, done := newRecorder(t, record.Config{Store: cs, QueueSize: 4, SessionQueue: 4, FlushInterval: -1})
	holder := start(t, r, "holder")
	greedy := start(t, r, "greedy")
	waiting := []*record.SessionRecorder{start(t, r, "a"), start(t, r, "b"), start(t, r, "c"), start(t, r, "d")}
	hooks := installHook(r)
	ctx := t.Context()

	// The holder fills the global cap with events the stalled store does
	// not take.
	res, err := holder.Reserve(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := res.Record(command("holder", i)); err != nil {
			t.Fatal(err)
		}
	}

	gctx, stopGreedy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var greedyN int
	greedyWaits := hooks.count("wait-global " + greedy.ID())
	wg.Go(func() {
		for ; ; greedyN++ {
			res, err := greedy.Reserve(gctx, 1)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("greedy Reserve: %v", err)
				}
				return
			}
			if err := res.Record(command("greedy", greedyN)); err != nil {
				t.Errorf("greedy Record: %v", err)
				return
			}
		}
	})
	hooks.waitFor(t, "wait-global "+greedy.ID(), greedyWaits+1) // greedy queues first
	var served sync.WaitGroup
	for k, sr := range waiting {
		n := hooks.count("wait-global " + sr.ID())
		served.Go(func() {
			res, err := sr.Reserve(ctx, 1)
			if err != nil {
				t.Errorf("waiter %d: %v", k, err)
				return
			}
			if err := res.Record(command("w", 0)); err != nil {
				t.Errorf("waiter %d Record: %v", k, err)
			}
		})
		hooks.waitFor(t, "wait-global "+sr.ID(), n+1) // queued in this order
	}
	close(cs.gate) // the store moves
	served.Wait()
	stopGreedy()
	wg.Wait()

	// Grants in order: the greedy session may have been served once
	// before all four waiters (it queued first), never twice.
	left := map[string]bool{}
	for _, sr := range waiting {
		left[sr.ID()] = true
	}
	greedyGrants := 0
	for _, e := range hooks.snapshot() {
		ev, id, _ := strings.Cut(e, " ")
		if ev != "grant" || len(left) == 0 {
			continue
		}
		if id == greedy.ID() {
			greedyGrants++
		}
		delete(left, id)
	}
	if greedyGrants > 1 {
		t.Fatalf("greedy session was granted %d times before every waiting session was served; order %v", greedyGrants, hooks.snapshot())
	}
	holder.End("done")
	greedy.End("done")
	for _, sr := range waiting {
		sr.End("done")
	}
	closeRecorder(t, r, done)
	checkStored(t, st, holder.ID(), "holder", 4, true)
	checkStored(t, st, greedy.ID(), "greedy", greedyN, true)
	for _, sr := range waiting {
		checkStored(t, st, sr.ID(), "w", 1, true)
	}
}

// TestReserveSessionCapDoesNotBlockOthers: a session waiting for its own
// events to be written holds up nobody else.
func TestReserveSessionCapDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	// b's header may still be queued (one slot): b has room for 2 more.
	r, done := newRecorder(t, record.Config{Store: st, QueueSize: 8, SessionQueue: 3})
	a, b := start(t, r, "a"), start(t, r, "b")
	hooks := installHook(r)
	ctx := t.Context()
	resA, err := a.Reserve(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	aWaits := hooks.count("wait-session " + a.ID())
	go func() {
		res, err := a.Reserve(ctx, 1)
		if err == nil {
			err = res.Record(command("a", 0))
		}
		got <- err
	}()
	hooks.waitFor(t, "wait-session "+a.ID(), aWaits+1)
	// b is served at once although a waits ahead of it.
	resB, err := b.TryReserve(2)
	if err != nil {
		t.Fatalf("TryReserve of b while a waits for its own cap: %v", err)
	}
	if err := resB.Record(command("b", 0)); err != nil {
		t.Fatal(err)
	}
	resB.Release()
	resA.Release() // a's own slots come back: its waiter is served
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	a.End("done")
	b.End("done")
	closeRecorder(t, r, done)
	checkStored(t, st, a.ID(), "a", 1, true)
	checkStored(t, st, b.ID(), "b", 1, true)
}

// TestReserveFailClosed: with a failing store and no spool, Reserve
// refuses at once, and so does a Reserve that was waiting when the store
// started failing; End is still queued and reaches the store once it
// recovers.
func TestReserveFailClosed(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	cs := &controlledStore{Store: st, hold: make(chan struct{}), failures: make(chan struct{}, 1)}
	r, done := newRecorder(t, record.Config{Store: cs, QueueSize: 2, SessionQueue: 2, FlushInterval: -1,
		FailAfter: 1, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	sr := start(t, r, "bot")
	hooks := installHook(r)
	ctx := t.Context()

	cs.failing.Store(true)
	res, err := sr.Reserve(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Reserved before the failure is known: recording never fails.
	for i := range 2 {
		if err := res.Record(command("cmd", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The writer's append now waits in the store; a third command waits
	// for a slot.
	got := make(chan error, 1)
	waits := hooks.count("wait-")
	go func() {
		_, err := sr.Reserve(ctx, 1)
		got <- err
	}()
	hooks.waitFor(t, "wait-", waits+1)
	close(cs.hold) // the append fails: the store counts as failing
	if err := <-got; !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("waiting Reserve when the store failed: %v, want ErrRecorderUnavailable", err)
	}
	if _, err := sr.Reserve(ctx, 1); !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("Reserve with a failing store: %v, want ErrRecorderUnavailable", err)
	}
	if err := r.Available(); !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("Available with a failing store: %v", err)
	}
	if err := sr.Record(command("cmd", 2)); !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("Record with a failing store: %v", err)
	}
	if _, err := r.StartSession(ctx, &record.Session{Identity: "late", Resource: "orders-db"}); !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("StartSession with a failing store: %v", err)
	}
	// The end is never refused for a failing store: it waits in the queue.
	if err := sr.End("done"); err != nil {
		t.Fatalf("End with a failing store: %v", err)
	}
	cs.failing.Store(false)
	closeRecorder(t, r, done)
	checkStored(t, st, sr.ID(), "cmd", 2, true)
}

// TestReserveSpoolAbsorbs: with a spool, a failing store does not make
// Reserve refuse or wait for ever: written-to-spool frees the slots.
func TestReserveSpoolAbsorbs(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	cs := &controlledStore{Store: st, failCreate: true, failures: make(chan struct{}, 1)}
	cs.failing.Store(true)
	r, done := newRecorder(t, record.Config{Store: cs, QueueSize: 8, SessionQueue: 4, BatchSize: 4,
		FlushInterval: -1, FailAfter: 1, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond,
		SpoolDir: t.TempDir()})
	sr := start(t, r, "bot")
	ctx := t.Context()
	const n = 200 // 25 times the global cap
	for i := range n {
		res, err := sr.Reserve(ctx, 1)
		if err != nil {
			t.Fatalf("Reserve %d with a spool: %v", i, err)
		}
		if err := res.Record(command("cmd", i)); err != nil {
			t.Fatal(err)
		}
	}
	<-cs.failures // the store really failed
	if err := sr.End("done"); err != nil {
		t.Fatal(err)
	}
	cs.failing.Store(false)
	closeRecorder(t, r, done) // replays the spool
	checkStored(t, st, sr.ID(), "cmd", n, true)
}

// TestCloseWithOpenReservations: Close writes what was recorded, refuses
// waiters, and voids open reservations; everything after Close fails with
// ErrClosed.
func TestCloseWithOpenReservations(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	r, done := newRecorder(t, record.Config{Store: st, QueueSize: 16, SessionQueue: 5})
	sr := start(t, r, "bot")
	hooks := installHook(r)
	ctx := t.Context()
	res, err := sr.Reserve(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := res.Record(command("cmd", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	waits := hooks.count("wait-session")
	go func() {
		// Three slots stay reserved after the two events are written:
		// this waits until Close.
		_, err := sr.Reserve(ctx, 4)
		got <- err
	}()
	hooks.waitFor(t, "wait-session", waits+1)
	closeRecorder(t, r, done)
	if err := <-got; !errors.Is(err, record.ErrClosed) || !errors.Is(err, record.ErrRecorderUnavailable) {
		t.Fatalf("Reserve waiting at Close: %v, want ErrClosed", err)
	}
	if err := res.Record(command("cmd", 2)); !errors.Is(err, record.ErrClosed) {
		t.Fatalf("Reservation.Record after Close: %v, want ErrClosed", err)
	}
	if n := res.Remaining(); n != 0 {
		t.Fatalf("Remaining after Close: %d", n)
	}
	res.Release()
	res.Release()
	if _, err := sr.Reserve(ctx, 1); !errors.Is(err, record.ErrClosed) {
		t.Fatalf("Reserve after Close: %v", err)
	}
	if err := sr.Record(command("cmd", 2)); !errors.Is(err, record.ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	if err := sr.End("late"); !errors.Is(err, record.ErrClosed) {
		t.Fatalf("End after Close: %v", err)
	}
	if used, reserved := r.Outstanding(); used != 0 || reserved != 0 {
		t.Fatalf("after Release: %d slots held, %d reserved", used, reserved)
	}
	checkStored(t, st, sr.ID(), "cmd", 2, false)
}

// TestEndWhenQueueFull: End waits for a slot rather than failing, and past
// its bounded wait queues the end event over the cap.
func TestEndWhenQueueFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// free makes room, or lets End's wait expire.
		free func(res *record.Reservation, clock *manualClock)
	}{
		{"slot freed", func(res *record.Reservation, _ *manualClock) { res.Release() }},
		{"wait expires", func(_ *record.Reservation, clock *manualClock) { clock.fire() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openSQLite(t)
			clock := &manualClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
			r, done := newRecorder(t, record.Config{Store: st, QueueSize: 2, SessionQueue: 2,
				FlushInterval: -1, Clock: clock})
			x, other := start(t, r, "x"), start(t, r, "other")
			hooks := installHook(r)
			ctx := t.Context()
			rx, err := x.Reserve(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := rx.Record(command("x", 0)); err != nil {
				t.Fatal(err)
			}
			res, err := other.Reserve(ctx, 2) // waits for the headers and x's event to be written
			if err != nil {
				t.Fatal(err)
			}
			ended := make(chan error, 1)
			waits := hooks.count("wait-global " + x.ID()) // x's Reserve may have waited too
			go func() { ended <- x.End("client closed") }()
			hooks.waitFor(t, "wait-global "+x.ID(), waits+1)
			tc.free(res, clock)
			if err := <-ended; err != nil {
				t.Fatalf("End with a full queue: %v", err)
			}
			for i := range res.Remaining() {
				if err := res.Record(command("other", i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := other.End("done"); err != nil {
				t.Fatal(err)
			}
			closeRecorder(t, r, done)
			checkStored(t, st, x.ID(), "x", 1, true)
			got, err := st.GetSession(ctx, x.ID())
			if err != nil || got.EndReason != "client closed" {
				t.Fatalf("x's end not stored: %+v %v", got, err)
			}
		})
	}
}

// TestReservationMisuse: the errors a caller gets for programmer errors
// and races, and that none of them leaks a slot.
func TestReservationMisuse(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	r, done := newRecorder(t, record.Config{Store: st, QueueSize: 8, SessionQueue: 4})
	sr := start(t, r, "bot")
	ctx := t.Context()
	for _, n := range []int{0, -1, 5} {
		if _, err := sr.Reserve(ctx, n); !errors.Is(err, record.ErrInvalid) {
			t.Errorf("Reserve(%d): %v, want ErrInvalid", n, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if res, err := sr.Reserve(cctx, 1); err != nil {
		// A done context does not matter when a slot is free at once.
		t.Fatalf("Reserve with a done context and room: %v", err)
	} else {
		res.Release()
	}
	res, err := sr.Reserve(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Record(record.Event{Kind: record.KindEnd}); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("Record(end): %v", err)
	}
	if err := res.Record(record.Event{Facts: []byte("{nope")}); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("Record(bad facts): %v", err)
	}
	if n := res.Remaining(); n != 2 {
		t.Fatalf("failed Records used slots: %d left", n)
	}
	for i := range 2 {
		if err := res.Record(command("cmd", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := res.Record(command("cmd", 2)); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("Record past the reservation: %v", err)
	}
	res.Release()
	var nilRes *record.Reservation
	nilRes.Release()

	// A Reserve whose context ends while it waits returns the context's
	// error and leaves its place.
	full, err := sr.Reserve(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sr.TryReserve(3); !errors.Is(err, record.ErrWouldWait) {
		t.Fatalf("TryReserve over the session cap: %v, want ErrWouldWait", err)
	}
	if _, err := sr.TryReserve(5); !errors.Is(err, record.ErrInvalid) {
		t.Fatalf("TryReserve(5): %v, want ErrInvalid", err)
	}
	hooks := installHook(r)
	wctx, wcancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := sr.Reserve(wctx, 3)
		got <- err
	}()
	hooks.waitFor(t, "wait-session", 1) // the hook was installed after the other Reserve calls
	wcancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Reserve with a cancelled wait: %v", err)
	}

	full.Release()
	open, err := sr.Reserve(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// End takes back open reservations; using them afterwards fails.
	if err := sr.End("done"); err != nil {
		t.Fatal(err)
	}
	if err := open.Record(command("cmd", 2)); !errors.Is(err, record.ErrClosed) {
		t.Fatalf("Reservation.Record after End: %v", err)
	}
	open.Release()
	if _, err := sr.Reserve(ctx, 1); !errors.Is(err, record.ErrClosed) {
		t.Fatalf("Reserve after End: %v", err)
	}
	if err := sr.End("again"); err != nil {
		t.Fatalf("second End: %v", err)
	}
	closeRecorder(t, r, done)
	checkStored(t, st, sr.ID(), "cmd", 2, true)
}
