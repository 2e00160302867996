package record

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AuditReader is what an audit reads: recordings and their evidence.
type AuditReader interface {
	Reader
	EvidenceReader
}

// AuditOptions configure AuditSession and AuditAll.
type AuditOptions struct {
	// Keys are the public keys trusted to sign seals and checkpoints. With
	// none, signatures are not checked: seals and checkpoints are checked
	// for consistency with the recordings only (AuditReport.SignaturesChecked
	// is false), which a writer of the store can defeat.
	Keys *KeyRing
	// RequireSignatures makes an ended session without a seal a failure.
	// (A session that a checkpoint records as ended must have a valid seal
	// in any case.)
	RequireSignatures bool
	// Since limits AuditAll to sessions started and checkpoints taken at
	// or after it (zero: everything). Sessions named by those checkpoints
	// are checked wherever they started.
	Since time.Time
	// Anchors are checkpoints known from outside the store (logs, the
	// admin API, an earlier audit): AuditAll requires each to be present,
	// with that hash and a valid signature. They close the window in which
	// deleting the newest checkpoints would go unnoticed.
	Anchors []CheckpointRef
}

// Signature states of a session in an audit.
const (
	// SigSigned: a seal signed by a trusted key covers the whole session.
	SigSigned = "signed"
	// SigConsistent: a seal matches the session, but no trusted keys were
	// given to check its signature.
	SigConsistent = "sealed (signature not checked)"
	// SigUnsigned: the session ended without a seal (recorded before
	// signing existed, or its seal was removed).
	SigUnsigned = "unsigned"
	// SigOpen: the session has not ended; it is sealed at its end.
	SigOpen = "open"
	// SigInvalid: the seal does not verify (see the audit's problems).
	SigInvalid = "invalid"
)

// SessionAudit is the outcome of auditing one session.
type SessionAudit struct {
	// Chain is the hash chain's verification.
	Chain VerifyResult `json:"chain"`
	// Signature is one of the Sig* states.
	Signature string `json:"signature"`
	// KeyID is the seal's signing key.
	KeyID string `json:"key_id,omitempty"`
	// Checkpointed is the highest seq that verified checkpoints recorded
	// for the session (0: its header only), or -1 if none names it.
	Checkpointed int64 `json:"checkpointed"`
	// Checkpoint is the checkpoint that recorded Checkpointed.
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty"`
}

// ChainAudit summarises one gateway's checkpoint chain.
type ChainAudit struct {
	GatewayID string `json:"gateway_id"`
	// First and Last are the first and last checkpoints read.
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	// LastTime and LastHash are those of the last checkpoint: anything
	// recorded after LastTime is not yet covered.
	LastTime time.Time `json:"last_time"`
	LastHash string    `json:"last_hash"`
	// Checked is the number of checkpoints read; Broken of them failed.
	Checked int `json:"checked"`
	Broken  int `json:"broken"`
	// KeyIDs are the keys that signed the checkpoints read.
	KeyIDs []string `json:"key_ids,omitempty"`
}

// Problem is one verification failure. Err wraps ErrChainBroken,
// ErrSealInvalid, ErrUnsigned, ErrCheckpointBroken or ErrNotCovered (and
// ErrUntrustedKey or ErrBadSignature where a signature failed).
type Problem struct {
	SessionID string `json:"session_id,omitempty"`
	// Seq is the event concerned (0: the header or not applicable).
	Seq int64 `json:"seq,omitempty"`
	// Checkpoint is the checkpoint concerned, if any.
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty"`
	Err        error          `json:"-"`
	// Message is Err's text, for JSON.
	Message string `json:"message"`
}

func (p Problem) Error() string { return p.Message }

// Unwrap returns the underlying error.
func (p Problem) Unwrap() error { return p.Err }

// AuditReport is the outcome of an audit.
type AuditReport struct {
	Sessions []SessionAudit `json:"sessions"`
	Chains   []ChainAudit   `json:"checkpoint_chains"`
	Problems []Problem      `json:"problems,omitempty"`
	// Unsigned counts ended sessions without a seal.
	Unsigned int `json:"unsigned"`
	// Retained counts sessions named by checkpoints that are gone because
	// a signed retention cut-off allowed their deletion.
	Retained int `json:"retained"`
	// SignaturesChecked is false when no trusted keys were given.
	SignaturesChecked bool `json:"signatures_checked"`
}

// OK reports whether the audit found no problem.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 }

// Err returns nil when the audit found no problem, otherwise an error
// joining every problem.
func (r *AuditReport) Err() error {
	if r.OK() {
		return nil
	}
	errs := make([]error, len(r.Problems))
	for i := range r.Problems {
		errs[i] = r.Problems[i]
	}
	return errors.Join(errs...)
}

func (r *AuditReport) problem(sessionID string, seq int64, ref *CheckpointRef, err error) {
	// The sentinels' "record: " prefixes say nothing to a reader here.
	msg := strings.ReplaceAll(err.Error(), "record: ", "")
	var ce *ChainError
	switch {
	case errors.As(err, &ce):
		msg = ce.Error()
	case sessionID != "" && ref != nil:
		msg = fmt.Sprintf("session %s (checkpoint %s/%d): %s", sessionID, ref.GatewayID, ref.Seq, msg)
	case sessionID != "":
		msg = fmt.Sprintf("session %s: %s", sessionID, msg)
	case ref != nil:
		msg = fmt.Sprintf("checkpoint %s/%d: %s", ref.GatewayID, ref.Seq, msg)
	}
	r.Problems = append(r.Problems, Problem{SessionID: sessionID, Seq: seq, Checkpoint: ref, Err: err, Message: msg})
}

// coverage collects what verified checkpoints recorded.
type coverage struct {
	entries   map[string]covered
	retention time.Time
}

type covered struct {
	CheckpointEntry
	ref CheckpointRef
}

func newCoverage() *coverage { return &coverage{entries: make(map[string]covered)} }

// add records the entries of a verified checkpoint; only is "" for all,
// else the one session of interest.
func (c *coverage) add(cp *Checkpoint, only string, rep *AuditReport) {
	if cp.RetentionBefore.After(c.retention) {
		c.retention = cp.RetentionBefore
	}
	ref := cp.Ref()
	for _, e := range cp.Entries {
		if only != "" && e.SessionID != only {
			continue
		}
		old, ok := c.entries[e.SessionID]
		switch {
		case !ok || e.LastSeq > old.LastSeq:
			c.entries[e.SessionID] = covered{CheckpointEntry: e, ref: ref}
		case e.LastSeq == old.LastSeq && e.LastHash != old.LastHash:
			rep.problem(e.SessionID, e.LastSeq, &ref, fmt.Errorf("%w: records seq %d with another hash than checkpoint %s/%d",
				ErrCheckpointBroken, e.LastSeq, old.ref.GatewayID, old.ref.Seq))
		}
	}
}

// checkCheckpoint verifies a checkpoint's own hash and signature (not its
// place in the chain) and reports the problems; it returns whether the
// checkpoint is authentic.
func checkCheckpoint(c *Checkpoint, keys *KeyRing, rep *AuditReport) bool {
	ref := c.Ref()
	msg := EncodeCheckpoint(nil, c)
	sum := sha256.Sum256(msg)
	if hex.EncodeToString(sum[:]) != c.Hash {
		rep.problem("", 0, &ref, fmt.Errorf("%w: content does not match its hash (checkpoint edited)", ErrCheckpointBroken))
		return false
	}
	if keys.Len() == 0 {
		return true
	}
	if err := keys.Verify(c.KeyID, msg, c.Signature); err != nil {
		rep.problem("", 0, &ref, fmt.Errorf("%w: %w", ErrCheckpointBroken, err))
		return false
	}
	return true
}

// auditChain reads one gateway's checkpoints in order and checks each and
// the links between them.
func auditChain(ctx context.Context, r AuditReader, head ChainHead, opts AuditOptions, cov *coverage,
	seen map[CheckpointRef]bool, rep *AuditReport) (ChainAudit, error) {
	ca := ChainAudit{GatewayID: head.GatewayID}
	f := CheckpointFilter{GatewayID: head.GatewayID, FromSeq: 1, Since: opts.Since, Limit: DefaultCheckpointLimit}
	var (
		prevSeq  int64
		prevHash string
		first    = true
		keys     = map[string]bool{}
	)
	for {
		page, err := r.ListCheckpoints(ctx, f)
		if err != nil {
			return ca, fmt.Errorf("audit: checkpoints of %s: %w", head.GatewayID, err)
		}
		for i := range page {
			c := &page[i]
			ref := c.Ref()
			if first {
				first = false
				ca.First = c.Seq
				if c.Seq > 1 {
					if opts.Since.IsZero() {
						rep.problem("", 0, &ref, fmt.Errorf("%w: checkpoints 1 to %d are missing (deleted)", ErrCheckpointBroken, c.Seq-1))
					} else {
						// The audit starts within the chain: link to the
						// previous checkpoint as stored (an audit of an
						// earlier period checks that one).
						prev, err := r.ListCheckpoints(ctx, CheckpointFilter{GatewayID: head.GatewayID, FromSeq: c.Seq - 1, Limit: 1})
						if err != nil {
							return ca, fmt.Errorf("audit: checkpoints of %s: %w", head.GatewayID, err)
						}
						if len(prev) == 1 && prev[0].Seq == c.Seq-1 {
							prevSeq, prevHash = prev[0].Seq, prev[0].Hash
						} else {
							rep.problem("", 0, &ref, fmt.Errorf("%w: checkpoint %d, before it, is missing (deleted)", ErrCheckpointBroken, c.Seq-1))
						}
					}
				}
				if c.Seq == 1 && c.PrevHash != "" {
					rep.problem("", 0, &ref, fmt.Errorf("%w: the first checkpoint names a predecessor", ErrCheckpointBroken))
				}
			}
			if prevSeq > 0 {
				switch {
				case c.Seq != prevSeq+1:
					rep.problem("", 0, &ref, fmt.Errorf("%w: checkpoints %d to %d are missing (deleted)", ErrCheckpointBroken, prevSeq+1, c.Seq-1))
				case c.PrevHash != prevHash:
					rep.problem("", 0, &ref, fmt.Errorf("%w: prev_hash does not match checkpoint %d (replaced)", ErrCheckpointBroken, prevSeq))
				}
			}
			ca.Checked++
			ok := c.GatewayID == head.GatewayID && checkCheckpoint(c, opts.Keys, rep)
			if ok {
				cov.add(c, "", rep)
				seen[CheckpointRef{GatewayID: c.GatewayID, Seq: c.Seq, Hash: c.Hash}] = true
				keys[c.KeyID] = true
			} else {
				ca.Broken++
			}
			prevSeq, prevHash = c.Seq, c.Hash
			ca.Last, ca.LastTime, ca.LastHash = c.Seq, c.Time, c.Hash
		}
		if len(page) < f.Limit {
			break
		}
		f.FromSeq, f.Since = prevSeq+1, time.Time{}
	}
	if ca.Checked > 0 && ca.Last < head.Last {
		rep.problem("", 0, &CheckpointRef{GatewayID: head.GatewayID, Seq: head.Last},
			fmt.Errorf("%w: the store lists checkpoints up to %d, but they could not be read in order", ErrCheckpointBroken, head.Last))
	}
	for id := range keys {
		ca.KeyIDs = append(ca.KeyIDs, id)
	}
	slices.Sort(ca.KeyIDs)
	return ca, nil
}

// AuditAll verifies every session (started since opts.Since), every
// gateway's checkpoint chain, and that every session a checkpoint names is
// present with at least what the checkpoint recorded. The error is for
// failures to read the store; what fails verification is in the report.
func AuditAll(ctx context.Context, r AuditReader, opts AuditOptions) (*AuditReport, error) {
	rep := &AuditReport{SignaturesChecked: opts.Keys.Len() > 0}
	cov := newCoverage()
	seen := make(map[CheckpointRef]bool)
	heads, err := r.CheckpointChains(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	for _, h := range heads {
		ca, err := auditChain(ctx, r, h, opts, cov, seen, rep)
		if err != nil {
			return rep, err
		}
		rep.Chains = append(rep.Chains, ca)
	}
	checkAnchors(opts.Anchors, seen, rep)

	f := SessionFilter{Since: opts.Since, Limit: DefaultLimit}
	done := make(map[string]bool)
	for {
		page, err := r.ListSessions(ctx, f)
		if err != nil {
			return rep, fmt.Errorf("audit: list sessions: %w", err)
		}
		for i := range page {
			s := &page[i]
			if done[s.ID] {
				continue
			}
			done[s.ID] = true
			evs, err := r.Events(ctx, s.ID)
			if err != nil {
				return rep, fmt.Errorf("audit: session %s: %w", s.ID, err)
			}
			sa, err := auditSession(ctx, r, s, evs, cov, opts, rep)
			if err != nil {
				return rep, err
			}
			rep.Sessions = append(rep.Sessions, sa)
		}
		if len(page) < f.Limit {
			break
		}
		f.Offset += len(page)
	}
	// Sessions named by checkpoints but not listed: started before Since,
	// or deleted.
	rest := make([]string, 0, len(cov.entries))
	for id := range cov.entries {
		if !done[id] {
			rest = append(rest, id)
		}
	}
	slices.Sort(rest)
	for _, id := range rest {
		if err := auditNamed(ctx, r, id, cov, opts, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// AuditSession verifies one session: its chain, its seal, and the
// checkpoints that name it (their hashes and signatures, not the whole
// chain of checkpoints: AuditAll does that). A session that does not exist
// is ErrNotFound, unless a checkpoint names it: then it was deleted, which
// the report shows (or, after a signed retention cut-off, counts as
// Retained).
func AuditSession(ctx context.Context, r AuditReader, id string, opts AuditOptions) (*AuditReport, error) {
	rep := &AuditReport{SignaturesChecked: opts.Keys.Len() > 0}
	cov := newCoverage()
	refs, err := r.CheckpointsNaming(ctx, id)
	if err != nil {
		return rep, fmt.Errorf("audit session %s: %w", id, err)
	}
	for i, ref := range refs {
		// The latest checkpoint of each gateway that names the session
		// records the most of it; the earlier ones add nothing.
		if i+1 < len(refs) && refs[i+1].GatewayID == ref.GatewayID {
			continue
		}
		cs, err := r.ListCheckpoints(ctx, CheckpointFilter{GatewayID: ref.GatewayID, FromSeq: ref.Seq, Limit: 1})
		if err != nil {
			return rep, fmt.Errorf("audit session %s: %w", id, err)
		}
		if len(cs) == 1 && cs[0].Seq == ref.Seq && checkCheckpoint(&cs[0], opts.Keys, rep) {
			cov.add(&cs[0], id, rep)
		}
	}
	if _, err := r.GetSession(ctx, id); errors.Is(err, ErrNotFound) {
		if _, named := cov.entries[id]; !named {
			return rep, fmt.Errorf("audit session %s: %w", id, err)
		}
		// The latest retention cut-off of any gateway decides whether the
		// deletion was allowed.
		heads, err := r.CheckpointChains(ctx)
		if err != nil {
			return rep, fmt.Errorf("audit session %s: %w", id, err)
		}
		for _, h := range heads {
			cs, err := r.ListCheckpoints(ctx, CheckpointFilter{GatewayID: h.GatewayID, FromSeq: h.Last, Limit: 1})
			if err != nil {
				return rep, fmt.Errorf("audit session %s: %w", id, err)
			}
			if len(cs) == 1 && checkCheckpoint(&cs[0], opts.Keys, rep) && cs[0].RetentionBefore.After(cov.retention) {
				cov.retention = cs[0].RetentionBefore
			}
		}
	}
	if err := auditNamed(ctx, r, id, cov, opts, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// checkAnchors reports anchors not among the verified checkpoints seen.
func checkAnchors(anchors []CheckpointRef, seen map[CheckpointRef]bool, rep *AuditReport) {
	for _, a := range anchors {
		if !seen[a] {
			ref := a
			rep.problem("", 0, &ref, fmt.Errorf("%w: this checkpoint, known from outside the store, is missing or differs (%s)",
				ErrCheckpointBroken, a.Hash))
		}
	}
}

// auditNamed audits a session by id: present, or deleted as allowed by
// retention, or missing.
func auditNamed(ctx context.Context, r AuditReader, id string, cov *coverage, opts AuditOptions, rep *AuditReport) error {
	s, err := r.GetSession(ctx, id)
	if errors.Is(err, ErrNotFound) {
		e := cov.entries[id]
		if !e.EndedAt.IsZero() && e.EndedAt.Before(cov.retention) {
			rep.Retained++
			return nil
		}
		rep.problem(id, e.LastSeq, &e.ref, fmt.Errorf("%w: the session is missing from the store (deleted)", ErrNotCovered))
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: session %s: %w", id, err)
	}
	evs, err := r.Events(ctx, id)
	if err != nil {
		return fmt.Errorf("audit: session %s: %w", id, err)
	}
	sa, err := auditSession(ctx, r, &s, evs, cov, opts, rep)
	if err != nil {
		return err
	}
	rep.Sessions = append(rep.Sessions, sa)
	return nil
}

// auditSession checks one stored session against its chain, its seal and
// the latest checkpoint entry that names it.
func auditSession(ctx context.Context, r AuditReader, s *Session, evs []Event, cov *coverage, opts AuditOptions,
	rep *AuditReport) (SessionAudit, error) {
	sa := SessionAudit{Chain: VerifyChain(s, evs), Checkpointed: -1}
	if !sa.Chain.OK {
		rep.problem(s.ID, sa.Chain.Seq, nil, sa.Chain.Err())
	}
	entry, named := cov.entries[s.ID]

	seal, err := r.GetSeal(ctx, s.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		switch {
		case s.EndedAt.IsZero():
			sa.Signature = SigOpen
		default:
			sa.Signature = SigUnsigned
			rep.Unsigned++
			if opts.RequireSignatures {
				rep.problem(s.ID, 0, nil, fmt.Errorf("%w: the session has no seal", ErrUnsigned))
			}
		}
		if named && !entry.EndedAt.IsZero() {
			rep.problem(s.ID, entry.LastSeq, &entry.ref, fmt.Errorf("%w: a checkpoint records the session's end, but its seal is missing (removed)", ErrUnsigned))
		}
	case err != nil:
		return sa, fmt.Errorf("audit: seal of session %s: %w", s.ID, err)
	default:
		sa.KeyID = seal.KeyID
		if problems := checkSeal(s, evs, &seal, opts.Keys); len(problems) > 0 {
			sa.Signature = SigInvalid
			for _, p := range problems {
				rep.problem(s.ID, 0, nil, p)
			}
		} else if opts.Keys.Len() == 0 {
			sa.Signature = SigConsistent
		} else {
			sa.Signature = SigSigned
		}
	}

	if !named {
		return sa, nil
	}
	ref := entry.ref
	sa.Checkpointed, sa.Checkpoint = entry.LastSeq, &ref
	switch {
	case entry.LastSeq == 0:
		if h, err := HeaderHash(s); err != nil || h != entry.LastHash {
			rep.problem(s.ID, 0, &ref, fmt.Errorf("%w: the header differs from the one the checkpoint recorded", ErrNotCovered))
		}
	default:
		ev := findSeq(evs, entry.LastSeq)
		switch {
		case ev == nil:
			rep.problem(s.ID, entry.LastSeq, &ref, fmt.Errorf("%w: the checkpoint recorded events up to seq %d, the store has %d (truncated)",
				ErrNotCovered, entry.LastSeq, len(evs)))
		case ev.Hash != entry.LastHash:
			rep.problem(s.ID, entry.LastSeq, &ref, fmt.Errorf("%w: event seq %d differs from the one the checkpoint recorded (rewritten)",
				ErrNotCovered, entry.LastSeq))
		}
	}
	if !entry.EndedAt.IsZero() && (s.EndedAt.IsZero() || !s.EndedAt.Equal(entry.EndedAt)) {
		rep.problem(s.ID, 0, &ref, fmt.Errorf("%w: the checkpoint recorded the session's end at %s, the store says otherwise",
			ErrNotCovered, entry.EndedAt.Format(time.RFC3339Nano)))
	}
	return sa, nil
}

// findSeq returns the event with the given seq (events are in seq order).
func findSeq(evs []Event, seq int64) *Event {
	i, ok := slices.BinarySearchFunc(evs, seq, func(e Event, s int64) int { return cmp.Compare(e.Seq, s) })
	if !ok {
		return nil
	}
	return &evs[i]
}

// checkSeal compares a seal with the stored session and checks its
// signature.
func checkSeal(s *Session, evs []Event, seal *Seal, keys *KeyRing) []error {
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("%w: "+format, append([]any{ErrSealInvalid}, args...)...))
	}
	head, err := HeaderHash(s)
	if err != nil {
		bad("cannot encode header: %v", err)
		return problems
	}
	lastSeq, lastHash := int64(0), head
	if n := len(evs); n > 0 {
		lastSeq, lastHash = evs[n-1].Seq, evs[n-1].Hash
	}
	switch {
	case seal.SessionID != s.ID:
		bad("the seal belongs to session %q (swapped)", seal.SessionID)
	case seal.HeaderHash != head:
		bad("the header differs from the one sealed")
	case seal.LastSeq != lastSeq:
		bad("sealed with %d events, the store has %d (events added or removed)", seal.LastSeq, lastSeq)
	case seal.LastHash != lastHash:
		bad("the last event differs from the one sealed (rewritten)")
	case s.EndedAt.IsZero() || !seal.EndedAt.Equal(s.EndedAt) || seal.EndReason != s.EndReason:
		bad("the session's end differs from the one sealed")
	}
	if keys.Len() > 0 {
		if err := keys.Verify(seal.KeyID, EncodeSeal(nil, seal), seal.Signature); err != nil {
			problems = append(problems, fmt.Errorf("%w: %w", ErrSealInvalid, err))
		}
	}
	return problems
}
