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
	// QueueSize bounds the events waiting to be written (default 10000).
	QueueSize int
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
	// to write what is queued (default 10s).
	CloseTimeout time.Duration
	// Clock defaults to the wall clock.
	Clock Clock
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Registerer receives the recorder's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Store == nil {
		return fmt.Errorf("%w: recorder: store is required", ErrInvalid)
	}
	if c.QueueSize < 0 || c.BatchSize < 0 || c.FailAfter < 0 || c.MaxSpoolBytes < 0 ||
		c.RetryMin < 0 || c.RetryMax < 0 || c.CloseTimeout < 0 {
		return fmt.Errorf("%w: recorder: negative size or duration", ErrInvalid)
	}
	if c.QueueSize == 0 {
		c.QueueSize = 10000
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
}

// Recorder records sessions asynchronously: proxies call Record on the hot
// path; Run writes batches to the Store. Safe for concurrent use.
//
// Guarantee: every event passed to Record is either written to the store,
// written to the spool, or Record returned an error; if Close cannot do
// either before its deadline it returns ErrUnflushed with the count.
type Recorder struct {
	cfg   Config
	log   *slog.Logger
	queue chan item
	m     *metrics

	acceptMu  sync.RWMutex
	accepting bool

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
	pending    []item
	batchBuf   []item  // reused batch storage
	evsBuf     []Event // reused AppendEvents argument
}

// New validates cfg and allocates a Recorder. It starts nothing and opens
// nothing; Run starts the writer.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "record"),
		queue:     make(chan item, cfg.QueueSize),
		accepting: true,
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	m, err := newMetrics(cfg.Registerer, func() float64 { return float64(len(r.queue)) })
	if err != nil {
		return nil, err
	}
	r.m = m
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
	r.loop(runCtx)
	r.stopAccepting()
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.CloseTimeout)
	defer dcancel()
	r.closeErr = r.drain(dctx)
	return r.closeErr
}

func (r *Recorder) loop(ctx context.Context) {
	for {
		if len(r.pending) > 0 {
			if err := r.write(ctx, r.pending); err != nil {
				return
			}
			clear(r.pending) // drop references held by the reused buffer
			r.pending = nil
		}
		var replayC <-chan time.Time
		if r.spool != nil && r.spool.pending() {
			replayC = r.cfg.Clock.After(max(r.nextReplay.Sub(r.cfg.Clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-replayC:
			r.tryReplay(ctx, true)
		case it := <-r.queue:
			r.pending = r.collect(ctx, it)
		}
	}
}

// collect builds a batch starting with first.
func (r *Recorder) collect(ctx context.Context, first item) []item {
	if cap(r.batchBuf) < r.cfg.BatchSize {
		r.batchBuf = make([]item, 0, r.cfg.BatchSize)
	}
	batch := append(r.batchBuf[:0], first)
	for len(batch) < r.cfg.BatchSize {
		select {
		case it := <-r.queue:
			batch = append(batch, it)
			continue
		default:
		}
		break
	}
	if len(batch) >= r.cfg.BatchSize || r.cfg.FlushInterval < 0 {
		return batch
	}
	timer := r.cfg.Clock.After(r.cfg.FlushInterval)
	for len(batch) < r.cfg.BatchSize {
		select {
		case it := <-r.queue:
			batch = append(batch, it)
		case <-timer:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// drain writes pending and queued items with the deadline in ctx.
func (r *Recorder) drain(ctx context.Context) error {
	var lost int
	for {
		if len(r.pending) == 0 {
			for len(r.pending) < r.cfg.BatchSize {
				select {
				case it := <-r.queue:
					r.pending = append(r.pending, it)
					continue
				default:
				}
				break
			}
		}
		if len(r.pending) == 0 {
			break
		}
		if err := r.write(ctx, r.pending); err != nil {
			// Session headers count as lost too: a session whose header
			// was never stored is missing from the recording.
			lost += len(r.pending)
			r.pending = nil
			for {
				select {
				case <-r.queue:
					lost++
					continue
				default:
				}
				break
			}
			break
		}
		r.pending = nil
	}
	if r.spool != nil && r.spool.pending() {
		r.tryReplay(ctx, true)
	}
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
	var ends []*Event
	flush := func() error {
		if len(evs) > 0 {
			if err := r.cfg.Store.AppendEvents(ctx, evs); err != nil {
				return fmt.Errorf("append events: %w", err)
			}
		}
		for _, e := range ends {
			if err := r.cfg.Store.EndSession(ctx, e.SessionID, e.Time, e.Reason); err != nil {
				return fmt.Errorf("end session %s: %w", e.SessionID, err)
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
			ends = append(ends, &it.event)
		}
	}
	if err := flush(); err != nil {
		return err
	}
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
	r.unavailable.Store(failing && !absorbed)
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

func (r *Recorder) stopAccepting() {
	r.acceptMu.Lock()
	r.accepting = false
	r.acceptMu.Unlock()
}

// enqueue is the non-blocking fast path.
func (r *Recorder) enqueue(it item) error {
	r.acceptMu.RLock()
	defer r.acceptMu.RUnlock()
	if !r.accepting {
		r.m.failed.Inc()
		return fmt.Errorf("%w: %w", ErrRecorderUnavailable, ErrClosed)
	}
	if !r.cfg.FailOpen && r.unavailable.Load() {
		r.m.failed.Inc()
		return fmt.Errorf("%w: store failing: %s", ErrRecorderUnavailable, r.lastError())
	}
	select {
	case r.queue <- it:
		r.m.enqueued.Inc()
		return nil
	default:
		r.m.failed.Inc()
		return fmt.Errorf("%w: queue full", ErrRecorderUnavailable)
	}
}

// Healthy returns nil when Record would accept an event now, otherwise an
// error wrapping ErrRecorderUnavailable.
func (r *Recorder) Healthy() error {
	r.acceptMu.RLock()
	accepting := r.accepting
	r.acceptMu.RUnlock()
	switch {
	case !accepting:
		return fmt.Errorf("%w: %w", ErrRecorderUnavailable, ErrClosed)
	case r.unavailable.Load():
		return fmt.Errorf("%w: store failing: %s", ErrRecorderUnavailable, r.lastError())
	case len(r.queue) >= cap(r.queue):
		return fmt.Errorf("%w: queue full", ErrRecorderUnavailable)
	}
	return nil
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
	return r.closeErr
}

// SessionRecorder records the events of one session. Its methods are safe
// for concurrent use; events are chained in the order Record is called.
type SessionRecorder struct {
	r   *Recorder
	mu  sync.Mutex
	s   Session
	seq int64
	// prev is the hash of the last accepted event.
	prev  string
	buf   []byte
	ended bool
}

// StartSession queues the session header and returns its recorder. It
// fills s.ID (NewID) and s.StartedAt (the clock) when empty and normalises
// times and claims in place, so s equals what the store will return.
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
	if err := r.enqueue(item{op: opCreate, session: &cp}); err != nil {
		return nil, err
	}
	return &SessionRecorder{r: r, s: cp, prev: head}, nil
}

// ID returns the session id.
func (sr *SessionRecorder) ID() string { return sr.s.ID }

// Record assigns the next Seq, the time (when zero) and the hash chain,
// and queues the event without blocking. Kind defaults to "command". Facts
// and Results must be JSON; they are compacted and copied. Record takes
// ownership of ev.RuleIDs. On error (ErrRecorderUnavailable, ErrInvalid,
// or ErrClosed after End) nothing is recorded and the sequence does not
// advance: the caller must treat the command as not recorded (deny it).
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
	return sr.record(ev, opEvent)
}

func (sr *SessionRecorder) record(ev Event, o op) error {
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
	if err := sr.r.enqueue(item{op: o, event: ev}); err != nil {
		return err
	}
	sr.seq = ev.Seq
	sr.prev = ev.Hash
	return nil
}

// End records the session's final "end" event with reason and then marks
// the session ended in the store. Later Record calls fail. If End fails
// (recorder unavailable), the session stays open and End may be retried.
func (sr *SessionRecorder) End(reason string) error {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.ended {
		return nil
	}
	if err := sr.record(Event{Kind: KindEnd, Reason: reason}, opEventEnd); err != nil {
		return err
	}
	sr.ended = true
	return nil
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
