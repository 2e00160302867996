package record

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Flow control.
//
// Every queue item (session header or event) holds one slot from the moment
// it is reserved until the writer has written or spooled it. A session may
// hold at most Config.SessionQueue slots and all sessions together at most
// Config.QueueSize. Slots are counted under Recorder.mu:
//
//	Recorder.used      slots held by all sessions (reserved + queued + being written)
//	Recorder.reserved  slots reserved and not yet recorded
//	SessionRecorder.out, .reserved  the same, per session
//
// A Reserve that cannot be granted at once waits in one FIFO list of
// waiters shared by all sessions. Whenever slots are freed (a batch
// written, a reservation released) the list is scanned in order: a waiter
// whose own session is at its cap is skipped (it waits for its own events,
// not for anybody else's, so it must not hold up the others); the first
// waiter that does not fit the global cap stops the scan, so nobody
// overtakes it. A session that keeps reserving therefore queues behind the
// sessions already waiting: with one reserving goroutine per session (the
// proxy's client reader), sessions blocked on the global cap are served
// round robin in arrival order.

// errWaitEnded: the wait for slots ended by the caller's context or
// timeout, not by a grant or a refusal.
var errWaitEnded = errors.New("record: wait for a slot ended")

type waiter struct {
	sr      *SessionRecorder
	n       int
	ready   chan struct{} // closed on grant or refusal
	granted bool
	err     error // refusal (closed, store failing, session ended)
}

// Reservation is the right to record a number of events of one session
// without waiting and without failing for lack of queue space. Reserve
// creates it; Record uses one slot per event; Release returns the slots
// not used. Its methods are safe for concurrent use (the proxy may reserve
// in one goroutine and record in another), but events recorded through
// concurrent calls are chained in whatever order the calls take the
// session's lock.
type Reservation struct {
	sr *SessionRecorder
	n  int // slots left; guarded by sr.r.mu
}

// Reserve blocks until the session may have n more events outstanding
// (reserved, or recorded and not yet written or spooled) within both
// Config.SessionQueue and Config.QueueSize, and returns a Reservation for
// them. The gateway reserves before it forwards a command, so that the
// command's event, created only when the response arrives, has a place:
// a session that outruns the store waits here, which stops the proxy from
// reading that client, instead of filling a queue shared with other
// sessions.
//
// Waiting is first come, first served across sessions (see the package
// documentation). Reserve returns at once, with an error wrapping
// ErrRecorderUnavailable, when the recorder is closed (also ErrClosed),
// when the session has ended (also ErrClosed), or when the store is failing
// and no spool absorbs the writes (fail closed; the proxy denies the
// command). With Config.FailOpen and a failing store it grants only what
// fits at once and never waits. Waiters are refused the same way when the
// store starts failing, the recorder closes or the session ends while they
// wait. If ctx is done first, Reserve returns an error wrapping ctx.Err()
// (unless the slots were granted in the meantime: then it returns them).
// n must be between 1 and MaxReserve(); other values fail with ErrInvalid,
// since they could never be granted.
//
// A store that hangs without failing makes Reserve wait until ctx is done:
// callers bound the wait with ctx.
func (sr *SessionRecorder) Reserve(ctx context.Context, n int) (*Reservation, error) {
	if n < 1 || n > sr.r.cfg.SessionQueue {
		return nil, fmt.Errorf("%w: reserve %d events: must be between 1 and %d", ErrInvalid, n, sr.r.cfg.SessionQueue)
	}
	if err := sr.r.acquire(sr, n, false, ctx.Done(), 0); err != nil {
		if errors.Is(err, errWaitEnded) {
			return nil, fmt.Errorf("record: reserve: %w", context.Cause(ctx))
		}
		return nil, err
	}
	return &Reservation{sr: sr, n: n}, nil
}

// TryReserve is Reserve without waiting: when the slots cannot be granted
// at once (the caps are reached, or other sessions wait ahead for the
// global cap) it returns ErrWouldWait and takes no place in the queue.
// Its other errors are Reserve's. A proxy uses it to find out that it is
// about to block, so it can first make the backend send what it holds
// (for PostgreSQL, a Flush), whose outcomes free the session's slots.
func (sr *SessionRecorder) TryReserve(n int) (*Reservation, error) {
	r := sr.r
	if n < 1 || n > r.cfg.SessionQueue {
		return nil, fmt.Errorf("%w: reserve %d events: must be between 1 and %d", ErrInvalid, n, r.cfg.SessionQueue)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.refuseLocked(sr, false); err != nil {
		return nil, err
	}
	if !r.fitsLocked(sr, n) || r.globalWaiterLocked() {
		return nil, ErrWouldWait
	}
	r.takeLocked(sr, n)
	return &Reservation{sr: sr, n: n}, nil
}

// MaxReserve is the largest n Reserve accepts: Config.SessionQueue.
func (r *Recorder) MaxReserve() int { return r.cfg.SessionQueue }

// Record records ev like SessionRecorder.Record, using one reserved slot
// instead of queue space: it never fails because the queue is full or the
// store is failing. It fails, recording nothing and keeping the slot, only
// for an invalid event (ErrInvalid: a KindEnd event, Facts or Results that
// are not JSON), when the reservation is used up or released (ErrInvalid),
// after the session's End (ErrClosed), or after the recorder's Close
// (ErrClosed). Each of these is a programmer error or a race between
// recording and ending the session or shutting down, which callers must
// prevent: record every reserved command before End and before Close.
func (res *Reservation) Record(ev Event) error {
	sr := res.sr
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.ended {
		return fmt.Errorf("%w: session %s: %w", ErrRecorderUnavailable, sr.s.ID, ErrClosed)
	}
	if ev.Kind == "" {
		ev.Kind = KindCommand
	}
	if ev.Kind == KindEnd {
		return fmt.Errorf("%w: the end event is recorded by End", ErrInvalid)
	}
	return sr.record(ev, opEvent, res)
}

// Release returns the slots not used yet. It is idempotent, safe on a nil
// Reservation, and a no-op once the session has ended (End takes back every
// open reservation of its session) or the recorder is closed.
func (res *Reservation) Release() {
	if res == nil {
		return
	}
	r := res.sr.r
	r.mu.Lock()
	defer r.mu.Unlock()
	n := res.n
	res.n = 0
	if n == 0 || res.sr.flowEnded {
		return
	}
	r.releaseLocked(res.sr, n)
}

// releaseLocked returns n reserved, unused slots of sr.
func (r *Recorder) releaseLocked(sr *SessionRecorder, n int) {
	sr.out -= n
	sr.reserved -= n
	if r.closed {
		return // stopAccepting took back every reservation
	}
	r.used -= n
	r.reserved -= n
	r.grantWaitersLocked()
}

// Remaining returns the number of slots not used or released yet (0 once
// the session has ended or the recorder is closed).
func (res *Reservation) Remaining() int {
	r := res.sr.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.sr.flowEnded || r.closed {
		return 0
	}
	return res.n
}

// acquire takes n slots for sr, waiting in the FIFO list until they are
// granted, the wait is refused (closed, store failing, session ended), done
// is closed or, if timeout is positive, timeout has passed on the clock
// (errWaitEnded). end is set for the session's own End, which may acquire
// after the session stopped taking events.
func (r *Recorder) acquire(sr *SessionRecorder, n int, end bool, done <-chan struct{}, timeout time.Duration) error {
	r.mu.Lock()
	if err := r.refuseLocked(sr, end); err != nil {
		r.mu.Unlock()
		return err
	}
	if r.fitsLocked(sr, n) && !r.globalWaiterLocked() {
		r.takeLocked(sr, n)
		r.mu.Unlock()
		return nil
	}
	if r.unavailable.Load() {
		// Fail open with a failing store: accept what fits, never wait
		// for a store that is not writing.
		r.mu.Unlock()
		return fmt.Errorf("%w: queue full and store failing: %s", ErrRecorderUnavailable, r.lastError())
	}
	w := &waiter{sr: sr, n: n, ready: make(chan struct{})}
	kind := waitGlobal
	if sr.out+n > r.cfg.SessionQueue {
		kind = waitSession
	}
	r.waiters = append(r.waiters, w)
	r.grantWaitersLocked()
	if w.granted {
		r.mu.Unlock()
		return nil
	}
	var timer <-chan time.Time
	if timeout > 0 {
		timer = r.cfg.Clock.After(timeout)
	}
	if r.testHook != nil {
		r.testHook([...]string{waitGlobal: "wait-global", waitSession: "wait-session"}[kind], sr)
	}
	// Someone waits: the writer should not hold back a partial batch.
	r.notifyLocked()
	r.mu.Unlock()

	r.m.waits[kind].Inc()
	start := time.Now()
	select {
	case <-w.ready:
	case <-done:
	case <-timer:
	}
	r.m.waitSeconds.Observe(time.Since(start).Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case w.granted:
		return nil
	case w.err != nil:
		return w.err
	}
	r.removeWaiterLocked(w)
	r.grantWaitersLocked()
	return errWaitEnded
}

// refuseLocked returns why sr may not take slots now, or nil.
func (r *Recorder) refuseLocked(sr *SessionRecorder, end bool) error {
	switch {
	case r.closed:
		return fmt.Errorf("%w: %w", ErrRecorderUnavailable, ErrClosed)
	case sr.flowEnded && !end:
		return fmt.Errorf("%w: session %s: %w", ErrRecorderUnavailable, sr.s.ID, ErrClosed)
	case !r.cfg.FailOpen && r.unavailable.Load():
		return fmt.Errorf("%w: store failing: %s", ErrRecorderUnavailable, r.lastError())
	}
	return nil
}

// globalWaiterLocked reports whether a waiter is blocked on the global
// cap; a newcomer must then queue behind it. After grantWaitersLocked every
// waiter is blocked on its session's cap or queued behind such a waiter.
func (r *Recorder) globalWaiterLocked() bool {
	for _, w := range r.waiters {
		if w.sr.out+w.n <= r.cfg.SessionQueue {
			return true
		}
	}
	return false
}

func (r *Recorder) fitsLocked(sr *SessionRecorder, n int) bool {
	return r.used+n <= r.cfg.QueueSize && sr.out+n <= r.cfg.SessionQueue
}

// takeLocked counts n reserved slots for sr (also past the caps: see End).
func (r *Recorder) takeLocked(sr *SessionRecorder, n int) {
	r.used += n
	r.reserved += n
	sr.out += n
	sr.reserved += n
	sr.maxOut = max(sr.maxOut, sr.out)
}

// grantWaitersLocked grants waiters in FIFO order; see the comment at the
// top of this file.
func (r *Recorder) grantWaitersLocked() {
	for i := 0; i < len(r.waiters); {
		w := r.waiters[i]
		if w.sr.out+w.n > r.cfg.SessionQueue {
			i++ // waits for its own session's events to be written
			continue
		}
		if r.used+w.n > r.cfg.QueueSize {
			return // nobody overtakes the first waiter blocked on the global cap
		}
		r.takeLocked(w.sr, w.n)
		w.granted = true
		close(w.ready)
		if r.testHook != nil {
			r.testHook("grant", w.sr)
		}
		r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
	}
}

func (r *Recorder) removeWaiterLocked(w *waiter) {
	for i, x := range r.waiters {
		if x == w {
			r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
			return
		}
	}
}

// refuseWaitersLocked refuses every waiter for which match is true.
func (r *Recorder) refuseWaitersLocked(err error, match func(*waiter) bool) {
	kept := r.waiters[:0]
	for _, w := range r.waiters {
		if match != nil && !match(w) {
			kept = append(kept, w)
			continue
		}
		w.err = err
		close(w.ready)
	}
	clear(r.waiters[len(kept):])
	r.waiters = kept
}

// releaseWritten frees the slots of items the writer has written or
// spooled, and grants waiters.
func (r *Recorder) releaseWritten(batch []item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range batch {
		if sr := batch[i].sr; sr != nil {
			sr.out--
			r.used--
			r.released++
		}
	}
	r.grantWaitersLocked()
	r.wakeSyncersLocked(false)
}

// push queues it for sr. With a reservation it uses one of its slots;
// without (the non-blocking Record and the header in StartSession use
// their own paths) it takes a slot if one is free at once.
func (r *Recorder) push(sr *SessionRecorder, it item, res *Reservation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.m.failed.Inc()
		return fmt.Errorf("%w: %w", ErrRecorderUnavailable, ErrClosed)
	}
	switch {
	case res != nil:
		if res.n == 0 || sr.flowEnded && it.op != opEventEnd {
			return fmt.Errorf("%w: reservation used up or released", ErrInvalid)
		}
		res.n--
		sr.reserved--
		r.reserved--
	case !r.cfg.FailOpen && r.unavailable.Load():
		r.m.failed.Inc()
		return fmt.Errorf("%w: store failing: %s", ErrRecorderUnavailable, r.lastError())
	case r.used >= r.cfg.QueueSize:
		r.m.failed.Inc()
		return fmt.Errorf("%w: queue full", ErrRecorderUnavailable)
	default:
		r.used++
		sr.out++
		sr.maxOut = max(sr.maxOut, sr.out)
	}
	it.sr = sr
	r.pushed++
	r.queue = append(r.queue, it)
	if it.op != opCreate {
		r.m.enqueued.Inc()
	}
	r.notifyLocked()
	return nil
}

// endLocked stops the session from taking slots: it refuses the session's
// waiters and takes back its open reservations.
func (r *Recorder) endLocked(sr *SessionRecorder) {
	sr.flowEnded = true
	r.refuseWaitersLocked(fmt.Errorf("%w: session %s: %w", ErrRecorderUnavailable, sr.s.ID, ErrClosed),
		func(w *waiter) bool { return w.sr == sr })
	r.releaseLocked(sr, sr.reserved)
}

// notifyLocked wakes the writer if it waits for what just arrived: any
// item when idle; a full batch, or a waiter, while it lets a batch fill.
func (r *Recorder) notifyLocked() {
	switch r.wstate {
	case writerIdle:
	case writerFilling:
		if len(r.queue) < r.cfg.BatchSize && len(r.waiters) == 0 {
			return
		}
	default:
		return
	}
	r.wstate = writerBusy
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// syncer is a Sync call waiting for the items pushed before it.
type syncer struct {
	target uint64
	done   chan struct{}
}

// wakeSyncersLocked releases the Sync calls whose items are written, or
// all of them when the recorder has stopped writing.
func (r *Recorder) wakeSyncersLocked(all bool) {
	kept := r.syncers[:0]
	for _, w := range r.syncers {
		if all || r.released >= w.target {
			close(w.done)
			continue
		}
		kept = append(kept, w)
	}
	clear(r.syncers[len(kept):])
	r.syncers = kept
}

// Sync waits until every session header and event recorded before the
// call has been written to the store or spooled. It returns ctx's error
// if ctx is done first, and an error wrapping ErrUnflushed if the recorder
// stopped before writing them. A checkpoint taken after Sync returned
// covers what was written.
func (r *Recorder) Sync(ctx context.Context) error {
	r.mu.Lock()
	target := r.pushed
	if r.released >= target {
		r.mu.Unlock()
		return nil
	}
	if r.drained {
		r.mu.Unlock()
		return fmt.Errorf("%w: %d records recorded before Sync", ErrUnflushed, target-r.released)
	}
	w := &syncer{target: target, done: make(chan struct{})}
	r.syncers = append(r.syncers, w)
	r.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, x := range r.syncers {
			if x == w {
				r.syncers = append(r.syncers[:i], r.syncers[i+1:]...)
				break
			}
		}
		return fmt.Errorf("record: sync: %w", ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.released < target {
		return fmt.Errorf("%w: %d records recorded before Sync", ErrUnflushed, target-r.released)
	}
	return nil
}
