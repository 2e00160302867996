package record

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Canonical encodings. Both are binary, unambiguous and independent of any
// store: every string and list is length-prefixed (unsigned varint), every
// integer is 8 bytes big-endian, a time is a presence byte followed by its
// Unix time in microseconds, a bool is one byte. JSON fields (Facts,
// Results, and the session's Claims) are encoded as their bytes, which the
// recorder compacts and stores keep verbatim.
const (
	eventTag  = "gatehouse.event.v1"
	headerTag = "gatehouse.session.v1"
)

// HeaderHash returns hex(sha256(EncodeHeader(s))): the PrevHash of the
// first event of the session. It covers every field except EndedAt and
// EndReason, which the final "end" event records.
func HeaderHash(s *Session) (string, error) {
	b, err := EncodeHeader(nil, s)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// EncodeHeader appends the canonical encoding of the immutable session
// header fields to dst.
func EncodeHeader(dst []byte, s *Session) ([]byte, error) {
	claims, err := ClaimsJSON(s.Claims)
	if err != nil {
		return nil, err
	}
	dst = appendString(dst, headerTag)
	dst = appendString(dst, s.ID)
	dst = appendString(dst, s.Identity)
	dst = appendString(dst, s.IdentityKind)
	dst = appendStrings(dst, s.Groups)
	dst = appendBytes(dst, claims)
	dst = appendString(dst, s.Resource)
	dst = appendString(dst, s.ResourceType)
	dst = appendString(dst, s.ClientAddr)
	dst = appendString(dst, s.GatewayID)
	dst = appendString(dst, s.BundleRevision)
	dst = appendTime(dst, s.StartedAt)
	return dst, nil
}

// ClaimsJSON is the stored and hashed form of session claims: JSON with
// sorted keys, or nothing for no claims.
func ClaimsJSON(claims map[string]any) ([]byte, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalid, err)
	}
	return b, nil
}

// EncodeEvent appends the canonical encoding of ev without PrevHash and
// Hash to dst.
func EncodeEvent(dst []byte, ev *Event) []byte {
	dst = appendString(dst, eventTag)
	dst = appendString(dst, ev.SessionID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ev.Seq))
	dst = appendTime(dst, ev.Time)
	dst = appendString(dst, ev.Kind)
	dst = appendString(dst, ev.Protocol)
	dst = appendString(dst, ev.Command)
	dst = appendBytes(dst, ev.Facts)
	dst = appendString(dst, ev.Effect)
	dst = appendStrings(dst, ev.RuleIDs)
	dst = appendString(dst, ev.BundleRevision)
	dst = appendString(dst, ev.Reason)
	dst = appendString(dst, ev.ApprovalID)
	if ev.Masked {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(ev.DurationMicros))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ev.Rows))
	dst = appendString(dst, ev.Error)
	dst = appendBytes(dst, ev.Results)
	return dst
}

// EventHash returns hex(sha256(prevHash || EncodeEvent(ev))). buf is
// scratch space that may be reused across calls; the returned slice is
// the (possibly grown) scratch.
func EventHash(buf []byte, prevHash string, ev *Event) (string, []byte) {
	buf = append(buf[:0], prevHash...)
	buf = EncodeEvent(buf, ev)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), buf
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendString(dst, s)
	}
	return dst
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixMicro()))
}

// VerifyResult is the outcome of verifying one session's hash chain.
type VerifyResult struct {
	SessionID string
	// Events is the number of events read.
	Events int
	// OK is true when the whole chain verifies.
	OK bool
	// Seq is the first event that does not verify; 0 means the session
	// header (or the session's end fields) does not match the chain.
	Seq int64
	// Problem says what is wrong; empty when OK.
	Problem string
	// LastHash is the hash of the last verified event (the header hash for
	// a session without events).
	LastHash string
}

// Err returns nil for a verified chain, otherwise a *ChainError.
func (r VerifyResult) Err() error {
	if r.OK {
		return nil
	}
	return &ChainError{SessionID: r.SessionID, Seq: r.Seq, Problem: r.Problem}
}

// ChainError reports where a session's chain broke. It matches
// ErrChainBroken with errors.Is.
type ChainError struct {
	SessionID string
	Seq       int64
	Problem   string
}

func (e *ChainError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("session %s: header: %s", e.SessionID, e.Problem)
	}
	return fmt.Sprintf("session %s: seq %d: %s", e.SessionID, e.Seq, e.Problem)
}

// Is reports whether target is ErrChainBroken.
func (e *ChainError) Is(target error) bool { return target == ErrChainBroken }

// Verify reads a session and its events from r and recomputes the chain.
// A broken chain is reported in the result, not as an error; the error is
// for failures to read. Editing, deleting or reordering any event, or
// editing the session header, is detected; removing trailing events is
// detected once the session has ended (its last event must be the "end"
// event).
func Verify(ctx context.Context, r Reader, sessionID string) (VerifyResult, error) {
	s, err := r.GetSession(ctx, sessionID)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify session %s: %w", sessionID, err)
	}
	evs, err := r.Events(ctx, sessionID)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify session %s: %w", sessionID, err)
	}
	return VerifyChain(&s, evs), nil
}

// VerifyChain checks evs (in the order given) against the session header.
func VerifyChain(s *Session, evs []Event) VerifyResult {
	res := VerifyResult{SessionID: s.ID, Events: len(evs)}
	fail := func(seq int64, format string, args ...any) VerifyResult {
		res.Seq = seq
		res.Problem = fmt.Sprintf(format, args...)
		return res
	}
	head, err := HeaderHash(s)
	if err != nil {
		return fail(0, "cannot encode header: %v", err)
	}
	prev := head
	var buf []byte
	for i := range evs {
		ev := &evs[i]
		want := int64(i + 1)
		if ev.SessionID != s.ID {
			return fail(want, "event belongs to session %q", ev.SessionID)
		}
		if ev.Seq != want {
			return fail(want, "expected seq %d, found seq %d (event deleted or reordered)", want, ev.Seq)
		}
		var h string
		h, buf = EventHash(buf, ev.PrevHash, ev)
		if h != ev.Hash {
			return fail(ev.Seq, "event content does not match its hash (event edited)")
		}
		if ev.PrevHash != prev {
			if i == 0 {
				return fail(0, "session header does not match the first event's prev_hash (header edited)")
			}
			return fail(ev.Seq, "prev_hash does not match the previous event (event deleted, reordered or replaced)")
		}
		prev = ev.Hash
		res.LastHash = prev
	}
	if len(evs) == 0 {
		res.LastHash = head
	}
	if !s.EndedAt.IsZero() {
		n := int64(len(evs))
		if n == 0 || evs[n-1].Kind != KindEnd {
			return fail(n+1, "session ended but its end event is missing (trailing events deleted)")
		}
		last := &evs[n-1]
		if last.Reason != s.EndReason || !last.Time.Equal(s.EndedAt) {
			return fail(0, "session end fields do not match the end event (header edited)")
		}
	}
	res.OK = true
	return res
}

// VerifyAll verifies every session matching f (typically a period given by
// Since and Until), paging through ListSessions. f.Limit is the page size
// and f.Offset is ignored.
func VerifyAll(ctx context.Context, r Reader, f SessionFilter) ([]VerifyResult, error) {
	f.Limit = EffectiveLimit(f.Limit)
	f.Offset = 0
	seen := make(map[string]bool)
	var out []VerifyResult
	for {
		page, err := r.ListSessions(ctx, f)
		if err != nil {
			return out, fmt.Errorf("verify all: list sessions: %w", err)
		}
		for i := range page {
			if seen[page[i].ID] {
				continue
			}
			seen[page[i].ID] = true
			evs, err := r.Events(ctx, page[i].ID)
			if err != nil {
				return out, fmt.Errorf("verify all: session %s: %w", page[i].ID, err)
			}
			out = append(out, VerifyChain(&page[i], evs))
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.Offset += len(page)
	}
}

// SealChain numbers evs 1..n for session s and sets their PrevHash and
// Hash, as the Recorder does. It is for importing recordings and for tests;
// times and JSON must already be in stored form (see Timestamp).
func SealChain(s *Session, evs []Event) error {
	prev, err := HeaderHash(s)
	if err != nil {
		return err
	}
	var buf []byte
	for i := range evs {
		ev := &evs[i]
		ev.SessionID = s.ID
		ev.Seq = int64(i + 1)
		ev.PrevHash = prev
		ev.Hash, buf = EventHash(buf, prev, ev)
		prev = ev.Hash
	}
	return nil
}
