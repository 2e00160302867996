package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Clock is the recorder's source of time.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

// NowFunc is a Clock that reads the time from the function and runs its
// timers on the wall clock: for callers that pin the time (a gateway whose
// clock starts at a fixed instant) but not its pace.
type NowFunc func() time.Time

// Now implements Clock.
func (f NowFunc) Now() time.Time { return f() }

// After implements Clock with time.After.
func (NowFunc) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = NowFunc(time.Now)

// Config configures a Recorder. Validate fills defaults.
type Config struct {
	// Store receives the recordings. Required.
	Store Store
	// QueueSize bounds the items outstanding across all sessions: slots
	// reserved (Reserve) plus session headers and events recorded and not
	// yet written or spooled (default 10000).
	QueueSize int
	// SessionQueue bounds the items outstanding for one session, counted
	// the same way (default 1024, or QueueSize if smaller; at most
	// QueueSize). A session that reaches it waits in Reserve until the
	// writer has written its earlier events.
	SessionQueue int
	// BatchSize bounds the items per store write (default 256).
	BatchSize int
	// FlushInterval is how long the writer waits for a batch to fill after
	// its first item (default 50ms; negative: do not wait).
	FlushInterval time.Duration
	// FailOpen keeps accepting events while the store is failing, as long
	// as the queue has room. By default the recorder fails closed: once
	// FailAfter consecutive writes have failed (and no spool absorbs them),
	// Record returns ErrRecorderUnavailable so that the command is denied.
	FailOpen bool
	// FailAfter is the number of consecutive failed writes after which the
	// store counts as failing (default 3).
	FailAfter int
	// RetryMin and RetryMax bound the exponential backoff between write
	// attempts (defaults 50ms and 5s).
	RetryMin, RetryMax time.Duration
	// SpoolDir, when set, holds an append-only spool file: batches that the
	// store refuses are written there (fsynced) and replayed in order once
	// the store recovers, including after a restart. One recorder per
	// directory.
	SpoolDir string
	// MaxSpoolBytes bounds the spool file (default 1 GiB).
	MaxSpoolBytes int64
	// CloseTimeout bounds how long Close (or the end of Run) keeps trying
	// to write what is queued (default 10s), and how long End waits for a
	// slot before it queues the end event past the caps.
	CloseTimeout time.Duration
	// Clock defaults to the wall clock.
	Clock Clock
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Registerer receives the recorder's metrics; nil: not registered.
	Registerer prometheus.Registerer

	// Signer, when set, signs the head of each session's chain at its end
	// (a Seal, written with the end) and the checkpoints; the Store must
	// then implement EvidenceStore. See the package documentation, "Signed
	// evidence". Signing happens at session ends and checkpoints, never
	// per event.
	Signer Signer
	// GatewayID names this gateway's chain of checkpoints. Required with
	// Signer.
	GatewayID string
	// CheckpointInterval is how often a checkpoint covers the sessions
	// written since the previous one (default 1m; negative: only after
	// CheckpointEvents events and on Checkpoint calls).
	CheckpointInterval time.Duration
	// CheckpointEvents: a checkpoint is also taken once this many events
	// have been written since the previous one (default 10000; negative:
	// never for this reason).
	CheckpointEvents int
	// CheckpointResume is the last checkpoint this gateway wrote, as known
	// outside the store (the gateway keeps it in its state directory).
	// When the store's chain for GatewayID ends before it, checkpoints
	// were deleted from the store: the recorder logs it and continues
	// after CheckpointResume, so that the gap stays visible to audits.
	CheckpointResume CheckpointRef
	// OnCheckpoint, if set, is called with every checkpoint stored, from
	// the goroutine that wrote it; it must not block.
	OnCheckpoint func(*Checkpoint)
}

// DefaultSessionQueue is the default Config.SessionQueue: four default
// batches, so that one session can keep the writer busy (one batch being
// written while the next fills) without holding more than a tenth of the
// default global queue.
const DefaultSessionQueue = 1024

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Store == nil {
		return fmt.Errorf("%w: recorder: store is required", ErrInvalid)
	}
	if c.QueueSize < 0 || c.SessionQueue < 0 || c.BatchSize < 0 || c.FailAfter < 0 || c.MaxSpoolBytes < 0 ||
		c.RetryMin < 0 || c.RetryMax < 0 || c.CloseTimeout < 0 {
		return fmt.Errorf("%w: recorder: negative size or duration", ErrInvalid)
	}
	if c.QueueSize == 0 {
		c.QueueSize = 10000
	}
	if c.SessionQueue == 0 {
		c.SessionQueue = min(DefaultSessionQueue, c.QueueSize)
	}
	if c.SessionQueue > c.QueueSize {
		return fmt.Errorf("%w: recorder: session queue %d exceeds queue size %d", ErrInvalid, c.SessionQueue, c.QueueSize)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 50 * time.Millisecond
	}
	if c.FailAfter == 0 {
		c.FailAfter = 3
	}
	if c.RetryMin == 0 {
		c.RetryMin = 50 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.MaxSpoolBytes == 0 {
		c.MaxSpoolBytes = 1 << 30
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = RealClock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Signer != nil {
		if _, ok := c.Store.(EvidenceStore); !ok {
			return fmt.Errorf("%w: recorder: store %T cannot keep signed evidence", ErrInvalid, c.Store)
		}
		if c.GatewayID == "" {
			return fmt.Errorf("%w: recorder: a gateway id is required to sign", ErrInvalid)
		}
		if c.CheckpointInterval == 0 {
			c.CheckpointInterval = time.Minute
		}
		if c.CheckpointEvents == 0 {
			c.CheckpointEvents = 10000
		}
	}
	return nil
}

type op uint8

const (
	opCreate op = iota + 1
	opEvent
	opEventEnd // the session's end event; EndSession follows it
)

type item struct {
	op      op
	session *Session
	event   Event
	// seal is the signed head of the session, with its end event (when the
	// recorder signs).
	seal *Seal
	// sr holds the item's slot until it is written; nil for items replayed
	// from the spool, which hold none.
	sr *SessionRecorder
}

type writerState uint8

const (
	writerBusy    writerState = iota // writing, or already woken
	writerIdle                       // waiting for the first item
	writerFilling                    // letting a batch fill for FlushInterval
)

const (
	waitGlobal = iota
	waitSession
)

// Recorder records sessions asynchronously: proxies reserve room and record
// on the hot path; Run writes batches to the Store. Safe for concurrent use.
//
// Guarantee: every event passed to Record or Reservation.Record is either
// written to the store, written to the spool, or the call returned an
// error; if Close cannot do either before its deadline it returns
// ErrUnflushed with the count.
type Recorder struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	// mu guards the queue and the flow-control state (see flow.go),
	// including the counters of every SessionRecorder and Reservation.
	mu       sync.Mutex
	closed   bool   // stopped accepting (Close, or Run ended)
	queue    []item // recorded items the writer has not taken yet
	used     int    // slots held: reserved + queued + taken, not yet written
	reserved int    // slots reserved, not yet recorded
	waiters  []*waiter
	pushed   uint64 // items queued so far
	released uint64 // of them, written or spooled
	syncers  []*syncer
	drained  bool // the final drain is over: Sync waits no more
	wstate   writerState
	wake     chan struct{} // capacity 1; a send when the writer waits for items
	// testHook, when set (by tests only), is called under mu when a
	// waiter starts waiting ("wait-global", "wait-session") and when a
	// waiter is granted ("grant").
	testHook func(event string, sr *SessionRecorder)

	stateMu   sync.Mutex
	running   bool
	closeSent bool
	closing   chan struct{}
	done      chan struct{}
	closeErr  error

	failures    atomic.Int64
	unavailable atomic.Bool
	spoolBroken atomic.Bool
	lastErr     atomic.Pointer[string]

	// writer-goroutine state
	spool      *spool
	nextReplay time.Time
	replayWait time.Duration
	pending    []item // taken from the queue; pending[off:] not written yet
	off        int
	spare      []item  // the next queue's storage (swapped with pending)
	evsBuf     []Event // reused AppendEvents argument

	// evStore is the store's evidence side, when it has one; ev is the
	// checkpoint state, when the recorder signs (see checkpoint.go).
	evStore EvidenceStore
	ev      *evidence
}

// New validates cfg and allocates a Recorder. It starts nothing and opens
// nothing; Run starts the writer.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "record"),
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	m, err := newMetrics(cfg.Registerer, r.gauges)
	if err != nil {
		return nil, err
	}
	r.m = m
	r.evStore, _ = cfg.Store.(EvidenceStore)
	if cfg.Signer != nil {
		r.ev = newEvidence()
	}
	return r, nil
}

// Run is the writer loop. It replays a spool left by an earlier run, then
// writes queued items in batches until ctx is done or Close is called, and
// finally flushes what is queued within CloseTimeout. It returns nil after
// a complete flush, ErrUnflushed if items remained, or an error if the
// spool cannot be opened. If Close was called before Run, Close has
// flushed and Run returns nil at once.
func (r *Recorder) Run(ctx context.Context) error {
	r.stateMu.Lock()
	if r.running {
		r.stateMu.Unlock()
		return fmt.Errorf("recorder run: already running")
	}
	if r.closeSent {
		// Close came first and flushed by itself.
		r.stateMu.Unlock()
		return nil
	}
	r.running = true
	r.stateMu.Unlock()
	defer close(r.done)

	if r.cfg.SpoolDir != "" {
		sp, err := openSpool(r.cfg.SpoolDir, r.cfg.MaxSpoolBytes)
		if err != nil {
			r.closeErr = err
			r.stopAccepting()
			return err
		}
		r.spool = sp
		defer sp.close()
		if sp.pending() {
			r.log.InfoContext(ctx, "Replaying spool.", "bytes", sp.size)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.closing:
			cancel()
		case <-runCtx.Done():
		}
	}()
	var ckDone chan struct{}
	if r.ev != nil {
		ckDone = make(chan struct{})
		go func() {
			defer close(ckDone)
			r.checkpointLoop(runCtx)
		}()
	}
	r.loop(runCtx)
	r.stopAccepting()
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.CloseTimeout)
	defer dcancel()
	r.closeErr = r.drain(dctx)
	if ckDone != nil {
		<-ckDone
		r.finalCheckpoint(dctx)
	}
	return r.closeErr
}

func (r *Recorder) loop(ctx context.Context) {
	for {
		if err := r.writePending(ctx); err != nil {
			return
		}
		if !r.next(ctx) {
			return
		}
	}
}

// next waits for queued items and takes them into r.pending, letting a
// batch fill for FlushInterval unless it is full or someone waits for
// slots. It replays the spool when due. It returns false when ctx is done
// and nothing was taken.
func (r *Recorder) next(ctx context.Context) bool {
	var replayC <-chan time.Time
	if r.spool != nil && r.spool.pending() {
		replayC = r.cfg.Clock.After(max(r.nextReplay.Sub(r.cfg.Clock.Now()), 0))
	}
	r.mu.Lock()
	if len(r.queue) == 0 {
		r.waitLocked(writerIdle, ctx.Done(), replayC)
		if len(r.queue) == 0 {
			r.wstate = writerBusy
			r.mu.Unlock()
			if ctx.Err() != nil {
				return false
			}
			if replayC != nil && r.spool.pending() {
				r.tryReplay(ctx, true)
			}
			return true
		}
	}
	if len(r.queue) < r.cfg.BatchSize && len(r.waiters) == 0 && r.cfg.FlushInterval >= 0 && ctx.Err() == nil {
		r.waitLocked(writerFilling, ctx.Done(), r.cfg.Clock.After(r.cfg.FlushInterval))
	}
	r.wstate = writerBusy
	r.pending, r.queue, r.spare = r.queue, r.spare[:0], nil
	r.off = 0
	r.mu.Unlock()
	return true
}

// waitLocked releases r.mu while the writer waits in state st for a wake-up
// (see notifyLocked), done or timer, and takes it again. A wake-up left
// over from an earlier wait is discarded first.
func (r *Recorder) waitLocked(st writerState, done <-chan struct{}, timer <-chan time.Time) {
	select {
	case <-r.wake:
	default:
	}
	r.wstate = st
	r.mu.Unlock()
	select {
	case <-r.wake:
	case <-done:
	case <-timer:
	}
	r.mu.Lock()
}

// writePending writes the taken items in batches of BatchSize, freeing
// their slots batch by batch. It returns an error only when ctx is done;
// what is left stays in r.pending for drain.
func (r *Recorder) writePending(ctx context.Context) error {
	for r.off < len(r.pending) {
		end := min(r.off+r.cfg.BatchSize, len(r.pending))
		batch := r.pending[r.off:end]
		if err := r.write(ctx, batch); err != nil {
			return err
		}
		r.releaseWritten(batch)
		r.off = end
	}
	clear(r.pending) // drop references held by the reused storage
	r.spare, r.pending, r.off = r.pending[:0], nil, 0
	return nil
}

// drain writes taken and queued items with the deadline in ctx. It runs
// after the recorder stopped accepting, so the queue no longer grows.
func (r *Recorder) drain(ctx context.Context) error {
	var lost int
	for {
		if r.off >= len(r.pending) {
			r.mu.Lock()
			r.pending, r.queue, r.spare = r.queue, r.spare[:0], nil
			r.off = 0
			r.mu.Unlock()
		}
		if len(r.pending) == 0 {
			break
		}
		if err := r.writePending(ctx); err != nil {
			// Session headers count as lost too: a session whose header
			// was never stored is missing from the recording.
			lost += len(r.pending) - r.off
			r.pending, r.off = nil, 0
			r.mu.Lock()
			lost += len(r.queue)
			r.queue = nil
			r.mu.Unlock()
			break
		}
	}
	if r.spool != nil && r.spool.pending() {
		r.tryReplay(ctx, true)
	}
	r.mu.Lock()
	r.drained = true
	r.wakeSyncersLocked(true)
	r.mu.Unlock()
	if lost > 0 {
		r.m.failed.Add(float64(lost))
		r.log.ErrorContext(ctx, "Recorder closed with records neither written nor spooled.", "records", lost, "error", r.lastError())
		return fmt.Errorf("%w: %d records (session headers and events): %s", ErrUnflushed, lost, r.lastError())
	}
	return nil
}

func countEvents(batch []item) int {
	n := 0
	for i := range batch {
		if batch[i].op != opCreate {
			n++
		}
	}
	return n
}

// write stores batch, spooling or retrying with backoff until ctx is done.
func (r *Recorder) write(ctx context.Context, batch []item) error {
	backoff := r.cfg.RetryMin
	for {
		if r.spool != nil && r.spool.pending() {
			r.tryReplay(ctx, false)
		}
		if r.spool == nil || !r.spool.pending() {
			err := r.apply(ctx, batch)
			if err == nil {
				return nil
			}
			r.markFailure(ctx, err)
		}
		if r.spool != nil {
			if err := r.spool.append(batch); err == nil {
				r.spoolBroken.Store(false)
				r.updateAvailability()
				r.m.spooled.Add(float64(countEvents(batch)))
				if r.nextReplay.IsZero() {
					r.scheduleReplay(false)
				}
				return nil
			} else {
				r.spoolBroken.Store(true)
				r.setLastErr(err)
				r.updateAvailability()
				r.log.ErrorContext(ctx, "Spool write failed.", "error", err)
			}
		}
		select {
		case <-r.cfg.Clock.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, r.cfg.RetryMax)
	}
}

// tryReplay replays the spool if due (or if force is set).
func (r *Recorder) tryReplay(ctx context.Context, force bool) {
	if !force && r.cfg.Clock.Now().Before(r.nextReplay) {
		return
	}
	err := r.spool.replay(func(batch []item) error {
		return r.apply(ctx, batch)
	}, func(err error, bytes int64) {
		r.log.ErrorContext(ctx, "Spool record corrupt; discarding the rest of the spool.", "bytes", bytes, "error", err)
	})
	if err != nil {
		r.markFailure(ctx, err)
		r.scheduleReplay(true)
		return
	}
	r.nextReplay = time.Time{}
	r.replayWait = 0
	r.log.InfoContext(ctx, "Spool replayed.")
}

func (r *Recorder) scheduleReplay(grow bool) {
	switch {
	case r.replayWait == 0:
		r.replayWait = r.cfg.RetryMin
	case grow:
		r.replayWait = min(r.replayWait*2, r.cfg.RetryMax)
	}
	r.nextReplay = r.cfg.Clock.Now().Add(r.replayWait)
}

// apply writes one batch to the store in order. Every step is idempotent,
// so a batch can be applied again after a failure.
func (r *Recorder) apply(ctx context.Context, batch []item) error {
	start := time.Now()
	evs := r.evsBuf[:0]
	defer func() { clear(r.evsBuf) }()
	var ends []*item
	flush := func() error {
		if len(evs) > 0 {
			if err := r.cfg.Store.AppendEvents(ctx, evs); err != nil {
				return fmt.Errorf("append events: %w", err)
			}
		}
		for _, it := range ends {
			e := &it.event
			if err := r.cfg.Store.EndSession(ctx, e.SessionID, e.Time, e.Reason); err != nil {
				return fmt.Errorf("end session %s: %w", e.SessionID, err)
			}
			if it.seal != nil && r.evStore != nil {
				if err := r.evStore.PutSeal(ctx, it.seal); err != nil {
					return fmt.Errorf("seal session %s: %w", e.SessionID, err)
				}
			}
		}
		r.evsBuf = evs
		evs, ends = evs[:0], ends[:0]
		return nil
	}
	for i := range batch {
		it := &batch[i]
		switch it.op {
		case opCreate:
			if err := flush(); err != nil {
				return err
			}
			if err := r.cfg.Store.CreateSession(ctx, it.session); err != nil && !errors.Is(err, ErrAlreadyExists) {
				return fmt.Errorf("create session %s: %w", it.session.ID, err)
			}
		case opEvent:
			evs = append(evs, it.event)
		case opEventEnd:
			evs = append(evs, it.event)
			ends = append(ends, it)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	r.noteWritten(batch)
	r.m.batch.Observe(time.Since(start).Seconds())
	r.m.written.Add(float64(countEvents(batch)))
	if r.failures.Swap(0) >= int64(r.cfg.FailAfter) {
		r.log.InfoContext(ctx, "Store recovered.")
	}
	r.updateAvailability()
	return nil
}

func (r *Recorder) markFailure(ctx context.Context, err error) {
	n := r.failures.Add(1)
	r.m.writeErrors.Inc()
	r.setLastErr(err)
	r.updateAvailability()
	if n == int64(r.cfg.FailAfter) {
		r.log.ErrorContext(ctx, "Store failing.", "attempts", n, "error", err)
	} else {
		r.log.WarnContext(ctx, "Store write failed.", "attempts", n, "error", err)
	}
}

func (r *Recorder) updateAvailability() {
	failing := r.failures.Load() >= int64(r.cfg.FailAfter)
	absorbed := r.cfg.SpoolDir != "" && !r.spoolBroken.Load()
	un := failing && !absorbed
	if r.unavailable.Swap(un) || !un {
		return
	}
	// The store just started failing: nobody waits for it (fail closed,
	// and with FailOpen nobody waits for a store that is not writing).
	r.mu.Lock()
	r.refuseWaitersLocked(fmt.Errorf("%w: store failing: %s", ErrRecorderUnavailable, r.lastError()), nil)
	r.mu.Unlock()
}

func (r *Recorder) setLastErr(err error) {
	s := err.Error()
	r.lastErr.Store(&s)
}

func (r *Recorder) lastError() string {
	if p := r.lastErr.Load(); p != nil {
		return *p
	}
	return "none"
}

// stopAccepting refuses new items and every waiter; reservations still
// open are void from now on.
func (r *Recorder) stopAccepting() {
	r.mu.Lock()
	r.closed = true
	r.refuseWaitersLocked(fmt.Errorf("%w: %w", ErrRecorderUnavailable, ErrClosed), nil)
	r.used -= r.reserved
	r.reserved = 0
	r.mu.Unlock()
}

// Healthy returns nil when the non-blocking Record would accept an event
// now, otherwise an error wrapping ErrRecorderUnavailable: the recorder is
// closed, the store is failing with no spool to absorb it, or all
// QueueSize slots are held. Callers that reserve before each command use
// Available instead: for them a full queue means waiting, not refusing.
func (r *Recorder) Healthy() error {
	if err := r.Available(); err != nil {
		return err
	}
	r.mu.Lock()
	full := r.used >= r.cfg.QueueSize
	r.mu.Unlock()
	if full {
		return fmt.Errorf("%w: queue full", ErrRecorderUnavailable)
	}
	return nil
}

// Available returns nil unless the recorder is closed or the store is
// failing with no spool to absorb the writes, in which case it returns an
// error wrapping ErrRecorderUnavailable (the fail-closed state in which
// Reserve refuses at once, unless Config.FailOpen). Unlike Healthy it does
// not report a full queue, which only makes Reserve wait.
func (r *Recorder) Available() error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("%w: %w", ErrRecorderUnavailable, ErrClosed)
	case r.unavailable.Load():
		return fmt.Errorf("%w: store failing: %s", ErrRecorderUnavailable, r.lastError())
	}
	return nil
}

// gauges reads the flow-control state for the metrics.
func (r *Recorder) gauges() (queued, reserved float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return float64(r.used - r.reserved), float64(r.reserved)
}

// Close stops accepting events and flushes what is queued, within
// CloseTimeout. It waits for Run to finish if Run is running, and flushes
// by itself otherwise. It returns ErrUnflushed when events could be neither
// written nor spooled. Close is idempotent.
func (r *Recorder) Close() error {
	r.stateMu.Lock()
	first := !r.closeSent
	r.closeSent = true
	running := r.running
	r.stateMu.Unlock()
	if first {
		close(r.closing)
	}
	if running {
		<-r.done
		return r.closeErr
	}
	if !first {
		return r.closeErr
	}
	r.stopAccepting()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CloseTimeout)
	defer cancel()
	if r.cfg.SpoolDir != "" {
		sp, err := openSpool(r.cfg.SpoolDir, r.cfg.MaxSpoolBytes)
		if err != nil {
			r.log.ErrorContext(ctx, "Cannot open spool at close.", "error", err)
		} else {
			r.spool = sp
			defer sp.close()
		}
	}
	r.closeErr = r.drain(ctx)
	if r.ev != nil {
		r.finalCheckpoint(ctx)
	}
	return r.closeErr
}

// SessionRecorder records the events of one session. Its methods are safe
// for concurrent use; events are chained in the order Record (or
// Reservation.Record) is called.
type SessionRecorder struct {
	r   *Recorder
	mu  sync.Mutex
	s   Session
	seq int64
	// head is the session's HeaderHash.
	head string
	// prev is the hash of the last accepted event.
	prev   string
	buf    []byte
	ended  bool  // End was called: no more events
	endErr error // End's result

	// Guarded by r.mu (flow control, see flow.go).
	out       int  // slots held: reserved + recorded and not yet written
	reserved  int  // slots reserved and not yet recorded
	maxOut    int  // the highest out seen
	flowEnded bool // End started: takes no more slots
}

// StartSession queues the session header and returns its recorder. It
// fills s.ID (NewID) and s.StartedAt (the clock) when empty and normalises
// times and claims in place, so s equals what the store will return.
//
// The header takes a slot like an event: StartSession waits for one as
// Reserve does (first come, first served, until ctx is done) and refuses
// like Reserve when the recorder is closed or the store is failing.
func (r *Recorder) StartSession(ctx context.Context, s *Session) (*SessionRecorder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("%w: nil session", ErrInvalid)
	}
	now := r.cfg.Clock.Now()
	if s.ID == "" {
		s.ID = NewID(now)
	}
	if s.StartedAt.IsZero() {
		s.StartedAt = now
	}
	s.StartedAt = Timestamp(s.StartedAt)
	s.EndedAt, s.EndReason = time.Time{}, ""
	for _, p := range []*string{&s.Identity, &s.IdentityKind, &s.Resource, &s.ResourceType,
		&s.ClientAddr, &s.GatewayID, &s.BundleRevision} {
		*p = cleanText(*p)
	}
	for i := range s.Groups {
		s.Groups[i] = cleanText(s.Groups[i])
	}
	claims, err := ClaimsJSON(s.Claims)
	if err != nil {
		return nil, err
	}
	if s.Claims, err = DecodeClaims(claims); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := ValidateSession(s); err != nil {
		return nil, err
	}
	head, err := HeaderHash(s)
	if err != nil {
		return nil, err
	}
	cp := *s
	cp.Groups = append([]string(nil), s.Groups...)
	if len(cp.Groups) == 0 {
		cp.Groups = nil
	}
	sr := &SessionRecorder{r: r, s: cp, head: head, prev: head}
	hdr := &cp // the writer's copy; sr.s is the recorder's
	if err := r.acquire(sr, 1, false, ctx.Done(), 0); err != nil {
		if errors.Is(err, errWaitEnded) {
			return nil, fmt.Errorf("record: start session: %w", context.Cause(ctx))
		}
		r.m.failed.Inc()
		return nil, err
	}
	res := Reservation{sr: sr, n: 1}
	if err := r.push(sr, item{op: opCreate, session: hdr}, &res); err != nil {
		return nil, err
	}
	return sr, nil
}

// ID returns the session id.
func (sr *SessionRecorder) ID() string { return sr.s.ID }

// Record assigns the next Seq, the time (when zero) and the hash chain,
// and queues the event without blocking. Kind defaults to "command". Facts
// and Results must be JSON; they are compacted and copied. Record takes
// ownership of ev.RuleIDs. On error (ErrRecorderUnavailable when the
// recorder is closed, the store is failing or all QueueSize slots are
// held; ErrInvalid; or ErrClosed after End) nothing is recorded and the
// sequence does not advance: the caller must treat the command as not
// recorded (deny it).
//
// Record takes a free slot if there is one and never waits; it is not
// bound by Config.SessionQueue, though its events count against it. Use
// Reserve before forwarding a command and Reservation.Record when its
// outcome arrives, so that the event of a command that ran always has a
// place.
func (sr *SessionRecorder) Record(ev Event) error {
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
	return sr.record(ev, opEvent, nil)
}

// record prepares ev and queues it with res (nil: take a free slot). It
// runs under sr.mu, so the queue holds the session's events in Seq order.
func (sr *SessionRecorder) record(ev Event, o op, res *Reservation) error {
	var err error
	if ev.Facts, err = compactJSON(ev.Facts); err != nil {
		return fmt.Errorf("%w: facts: %w", ErrInvalid, err)
	}
	if ev.Results, err = compactJSON(ev.Results); err != nil {
		return fmt.Errorf("%w: results: %w", ErrInvalid, err)
	}
	if len(ev.RuleIDs) == 0 {
		ev.RuleIDs = nil
	}
	for i, id := range ev.RuleIDs {
		ev.RuleIDs[i] = cleanText(id)
	}
	ev.Kind, ev.Protocol, ev.Command = cleanText(ev.Kind), cleanText(ev.Protocol), cleanText(ev.Command)
	ev.Effect, ev.BundleRevision, ev.Reason = cleanText(ev.Effect), cleanText(ev.BundleRevision), cleanText(ev.Reason)
	ev.ApprovalID, ev.Error = cleanText(ev.ApprovalID), cleanText(ev.Error)
	if ev.Time.IsZero() {
		ev.Time = sr.r.cfg.Clock.Now()
	}
	ev.Time = Timestamp(ev.Time)
	ev.SessionID = sr.s.ID
	ev.Seq = sr.seq + 1
	ev.PrevHash = sr.prev
	ev.Hash, sr.buf = EventHash(sr.buf, ev.PrevHash, &ev)
	it := item{op: o, event: ev}
	if o == opEventEnd && sr.r.cfg.Signer != nil {
		it.seal = sr.seal(&ev)
	}
	if err := sr.r.push(sr, it, res); err != nil {
		return err
	}
	sr.seq = ev.Seq
	sr.prev = ev.Hash
	return nil
}

// End records the session's final "end" event with reason and then marks
// the session ended in the store. From the moment End is called, Record,
// Reservation.Record and Reserve of this session fail with ErrClosed, the
// session's waiting Reserve calls are refused, and its open reservations
// are taken back.
//
// The end event is not refused for lack of room: End waits for a slot
// like Reserve, at most CloseTimeout, and then queues the event past the
// caps (one item per session, so the excess is bounded by the number of
// sessions); it does not wait at all while the store is failing, and queues
// the event even then, to be written when the store recovers or reported
// by Close as unflushed. End fails only once the recorder is closed
// (ErrClosed); the session then stays open in the store. End is
// idempotent: later calls return the first call's result (nil while it is
// still in progress).
func (sr *SessionRecorder) End(reason string) error {
	sr.mu.Lock()
	if sr.ended {
		err := sr.endErr
		sr.mu.Unlock()
		return err
	}
	sr.ended = true
	r := sr.r
	r.mu.Lock()
	r.endLocked(sr)
	r.mu.Unlock()
	sr.mu.Unlock()

	err := r.acquire(sr, 1, true, nil, r.cfg.CloseTimeout)
	if err != nil && !errors.Is(err, ErrClosed) {
		// Waited CloseTimeout, or the store is failing: the end event is
		// queued past the caps rather than lost.
		r.mu.Lock()
		if r.closed {
			err = fmt.Errorf("%w: %w", ErrRecorderUnavailable, ErrClosed)
		} else {
			r.takeLocked(sr, 1)
			r.m.endsPastCap.Inc()
			err = nil
		}
		r.mu.Unlock()
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if err == nil {
		res := Reservation{sr: sr, n: 1}
		err = sr.record(Event{Kind: KindEnd, Reason: reason}, opEventEnd, &res)
		if err != nil {
			r.mu.Lock()
			r.releaseLocked(sr, res.n)
			r.mu.Unlock()
		}
	}
	sr.endErr = err
	return err
}

// cleanText makes s storable by every store: invalid UTF-8 becomes U+FFFD
// and NUL bytes become the text \x00.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", `\x00`)
}

func compactJSON(b json.RawMessage) (json.RawMessage, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	if !utf8.Valid(out) {
		out = bytes.ToValidUTF8(out, []byte("\uFFFD"))
	}
	return out, nil
}
