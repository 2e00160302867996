package record

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// evidence is the recorder's checkpoint state. The writer notes what it
// has written (noteWritten, after the store accepted a batch, so a
// checkpoint never names an event the store does not have); Checkpoint
// takes the noted heads, signs them and stores them.
type evidence struct {
	mu     sync.Mutex
	dirty  map[string]CheckpointEntry // heads written since the last checkpoint
	events int                        // events written since the last checkpoint
	wake   chan struct{}              // capacity 1: CheckpointEvents reached

	// run serialises checkpoints; it guards the fields below.
	run       sync.Mutex
	loaded    bool // head and retention read from the store
	head      CheckpointRef
	retention time.Time

	lastMu sync.Mutex
	last   CheckpointRef // the last checkpoint stored, for LastCheckpoint
}

func newEvidence() *evidence {
	return &evidence{dirty: make(map[string]CheckpointEntry), wake: make(chan struct{}, 1)}
}

// seal signs the head of the session whose end event is ev. It runs under
// sr.mu at the session's end. A signing failure leaves the session
// unsigned (audits report it) rather than losing its end.
func (sr *SessionRecorder) seal(ev *Event) *Seal {
	s := &Seal{SessionID: sr.s.ID, HeaderHash: sr.head, LastSeq: ev.Seq, LastHash: ev.Hash,
		EndedAt: ev.Time, EndReason: ev.Reason}
	if err := SignSeal(s, sr.r.cfg.Signer); err != nil {
		sr.r.m.sealErrors.Inc()
		sr.r.log.Error("Cannot sign the session's seal; it stays unsigned.", "session_id", sr.s.ID, "error", err)
		return nil
	}
	sr.r.m.seals.Inc()
	return s
}

// noteWritten records the heads of the sessions in a batch the store has
// accepted. Only the last event of each run of one session's events
// matters, so the map is touched about once per session and batch.
func (r *Recorder) noteWritten(batch []item) {
	ev := r.ev
	if ev == nil {
		return
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for i := range batch {
		it := &batch[i]
		if it.op == opCreate {
			if _, known := ev.dirty[it.session.ID]; !known {
				if h, err := HeaderHash(it.session); err == nil {
					ev.dirty[it.session.ID] = CheckpointEntry{SessionID: it.session.ID, LastHash: h}
				}
			}
			continue
		}
		n++
		e := &it.event
		if i+1 < len(batch) && batch[i+1].op != opCreate && batch[i+1].event.SessionID == e.SessionID {
			continue
		}
		entry := CheckpointEntry{SessionID: e.SessionID, LastSeq: e.Seq, LastHash: e.Hash}
		if it.op == opEventEnd {
			entry.EndedAt = e.Time
		}
		if old, ok := ev.dirty[e.SessionID]; !ok || old.LastSeq <= entry.LastSeq {
			ev.dirty[e.SessionID] = entry
		}
	}
	ev.events += n
	if r.cfg.CheckpointEvents > 0 && ev.events >= r.cfg.CheckpointEvents {
		select {
		case ev.wake <- struct{}{}:
		default:
		}
	}
}

// checkpointLoop takes a checkpoint every CheckpointInterval and whenever
// CheckpointEvents events have been written, until ctx is done.
func (r *Recorder) checkpointLoop(ctx context.Context) {
	for {
		var timer <-chan time.Time
		if r.cfg.CheckpointInterval > 0 {
			timer = r.cfg.Clock.After(r.cfg.CheckpointInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer:
		case <-r.ev.wake:
		}
		if _, err := r.checkpoint(ctx, time.Time{}); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "Checkpoint failed; retrying at the next one.", "error", err)
		}
	}
}

// finalCheckpoint covers what the recorder wrote before it stopped.
func (r *Recorder) finalCheckpoint(ctx context.Context) {
	if _, err := r.checkpoint(ctx, time.Time{}); err != nil {
		r.log.ErrorContext(ctx, "Final checkpoint failed: the sessions written since the last checkpoint are not covered.", "error", err)
	}
}

// Checkpoint signs and stores a checkpoint now, covering the sessions
// written since the previous one. It returns nil and no error when there
// is nothing new to cover, and ErrInvalid when the recorder does not sign.
// Safe for concurrent use; checkpoints are taken one at a time.
func (r *Recorder) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if r.ev == nil {
		return nil, fmt.Errorf("%w: the recorder has no signer", ErrInvalid)
	}
	return r.checkpoint(ctx, time.Time{})
}

// Retain records, in a signed checkpoint, that sessions which ended before
// before may now be deleted (retention). Delete them only after Retain
// returned nil: audits accept a session named by a checkpoint to be
// missing only if it ended before a cut-off so recorded. The cut-off only
// grows; an earlier one than already recorded changes nothing.
func (r *Recorder) Retain(ctx context.Context, before time.Time) error {
	if r.ev == nil {
		return fmt.Errorf("%w: the recorder has no signer", ErrInvalid)
	}
	_, err := r.checkpoint(ctx, Timestamp(before))
	return err
}

// LastCheckpoint returns the last checkpoint this recorder stored or
// continued from (zero before the first).
func (r *Recorder) LastCheckpoint() CheckpointRef {
	if r.ev == nil {
		return CheckpointRef{}
	}
	r.ev.lastMu.Lock()
	defer r.ev.lastMu.Unlock()
	return r.ev.last
}

// maxCheckpointAttempts bounds retries after another gateway with the same
// id stored the next checkpoint first.
const maxCheckpointAttempts = 3

func (r *Recorder) checkpoint(ctx context.Context, retention time.Time) (*Checkpoint, error) {
	ev := r.ev
	ev.run.Lock()
	defer ev.run.Unlock()
	if !ev.loaded {
		if err := r.loadHead(ctx); err != nil {
			r.m.checkpointErrors.Inc()
			return nil, err
		}
		ev.loaded = true
	}
	ev.mu.Lock()
	dirty := ev.dirty
	ev.dirty = make(map[string]CheckpointEntry, len(dirty))
	ev.events = 0
	ev.mu.Unlock()

	if retention.Before(ev.retention) {
		retention = ev.retention
	}
	if len(dirty) == 0 && retention.Equal(ev.retention) {
		return nil, nil
	}
	entries := slices.SortedFunc(maps.Values(dirty), compareEntries)
	var err error
	for range maxCheckpointAttempts {
		c := &Checkpoint{GatewayID: r.cfg.GatewayID, Seq: ev.head.Seq + 1, PrevHash: ev.head.Hash,
			Time: Timestamp(r.cfg.Clock.Now()), RetentionBefore: retention, Entries: entries}
		if err = SignCheckpoint(c, r.cfg.Signer); err != nil {
			break
		}
		err = r.evStore.PutCheckpoint(ctx, c)
		if errors.Is(err, ErrConflict) {
			// Another gateway with our id took this seq: continue its
			// chain.
			if err = r.loadHead(ctx); err != nil {
				break
			}
			err = fmt.Errorf("checkpoint %s/%d: %w", c.GatewayID, c.Seq, ErrConflict)
			continue
		}
		if err != nil {
			break
		}
		ev.head, ev.retention = c.Ref(), retention
		ev.lastMu.Lock()
		ev.last = ev.head
		ev.lastMu.Unlock()
		r.m.checkpoints.Inc()
		r.log.InfoContext(ctx, "Checkpoint stored.", "gateway_id", c.GatewayID, "seq", c.Seq, "hash", c.Hash,
			"sessions", len(c.Entries), "key_id", c.KeyID)
		if r.cfg.OnCheckpoint != nil {
			r.cfg.OnCheckpoint(c)
		}
		return c, nil
	}
	// Keep the heads for the next attempt, unless newer ones arrived.
	ev.mu.Lock()
	for id, e := range dirty {
		if _, newer := ev.dirty[id]; !newer {
			ev.dirty[id] = e
		}
	}
	ev.mu.Unlock()
	r.m.checkpointErrors.Inc()
	return nil, fmt.Errorf("checkpoint: %w", err)
}

// loadHead reads the head of this gateway's chain from the store and
// reconciles it with Config.CheckpointResume. It runs under ev.run.
func (r *Recorder) loadHead(ctx context.Context) error {
	ev := r.ev
	last, err := r.evStore.LastCheckpoint(ctx, r.cfg.GatewayID)
	switch {
	case errors.Is(err, ErrNotFound):
		last = Checkpoint{}
	case err != nil:
		return fmt.Errorf("read the last checkpoint: %w", err)
	}
	ev.head = CheckpointRef{GatewayID: r.cfg.GatewayID, Seq: last.Seq, Hash: last.Hash}
	if last.RetentionBefore.After(ev.retention) {
		ev.retention = last.RetentionBefore
	}
	if res := r.cfg.CheckpointResume; res.Seq > ev.head.Seq && res.GatewayID == r.cfg.GatewayID {
		r.log.ErrorContext(ctx, "The store lacks checkpoints this gateway wrote: they were deleted. Continuing after the last one it wrote, so that audits show the gap.",
			"gateway_id", r.cfg.GatewayID, "store_last_seq", ev.head.Seq, "written_last_seq", res.Seq)
		ev.head = res
	}
	ev.lastMu.Lock()
	if ev.head.Seq > 0 {
		ev.last = ev.head
	}
	ev.lastMu.Unlock()
	return nil
}
