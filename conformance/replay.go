package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// Kind is a kind of behavioural change.
type Kind string

// Change kinds, in report order.
const (
	KindNewlyDenied         Kind = "newly_denied"
	KindNewlyAllowed        Kind = "newly_allowed"
	KindNewlyApproval       Kind = "newly_requires_approval"
	KindApprovalNotRequired Kind = "approval_no_longer_required"
	KindMaskingAdded        Kind = "masking_added"
	KindMaskingRemoved      Kind = "masking_removed"
	KindDecidingRuleChanged Kind = "deciding_rule_changed"
)

// Kinds lists every change kind in report order.
var Kinds = []Kind{KindNewlyDenied, KindNewlyAllowed, KindNewlyApproval, KindApprovalNotRequired,
	KindMaskingAdded, KindMaskingRemoved, KindDecidingRuleChanged}

// Title is the kind's heading in reports.
func (k Kind) Title() string {
	switch k {
	case KindNewlyDenied:
		return "Newly denied"
	case KindNewlyAllowed:
		return "Newly allowed"
	case KindNewlyApproval:
		return "Newly requires approval"
	case KindApprovalNotRequired:
		return "Approval no longer required"
	case KindMaskingAdded:
		return "Masking added"
	case KindMaskingRemoved:
		return "Masking removed"
	case KindDecidingRuleChanged:
		return "Deciding rule changed"
	}
	return string(k)
}

func validKind(k Kind) bool { return slices.Contains(Kinds, k) }

// Change is one replayed statement whose decision differs.
type Change struct {
	Kinds     []Kind    `json:"kinds"`
	SessionID string    `json:"session_id"`
	Seq       int64     `json:"seq"`
	Pos       string    `json:"pos"` // file:line of the event
	Identity  string    `json:"identity"`
	Resource  string    `json:"resource"`
	Command   string    `json:"command"`
	Time      time.Time `json:"time"`
	Base      Decision  `json:"base"`
	Head      Decision  `json:"head"`
	// Acknowledged is set when an expectation declares the change (all
	// its kinds); Expectation is the index into the expectations.
	Acknowledged bool   `json:"acknowledged,omitempty"`
	Expectation  int    `json:"-"`
	Reason       string `json:"acknowledged_reason,omitempty"`
}

// Options tune Replay.
type Options struct {
	// Workers is the number of goroutines (0: GOMAXPROCS).
	Workers int
	// Classifier classifies PostgreSQL text (nil: sqlclass.NewPostgres).
	Classifier sqlclass.Classifier
	// Progress, when set, receives a progress line now and then.
	Progress io.Writer
}

// Result is the raw outcome of Replay; Report builds the grouped report.
type Result struct {
	BaseRef, BaseRevision string
	HeadRef, HeadRevision string
	// BaseIsRecorded is true when no base policy was given and head was
	// compared with the recorded decisions.
	BaseIsRecorded bool
	Sessions       int
	Statements     int
	DistinctTexts  int
	// Changes are the statements whose head decision differs from base, in
	// corpus order.
	Changes []Change
	// Drift are the statements whose base decision differs from the
	// recorded one (with BaseIsRecorded: none).
	Drift []Change
	// Skipped counts collateral events not compared with the recording.
	Skipped int
}

// ErrNoHead: Replay needs a head policy.
var ErrNoHead = errors.New("replay: no head policy")

// Replay re-decides every event of c under base and head (base nil: the
// recorded decisions are the base) and returns the statements whose
// decisions differ. Each distinct SQL text is classified once; sessions
// are replayed in parallel, each in order (PREPARE and DECLARE state), and
// the result is in corpus order whatever the parallelism. Time-window and
// expiry rules are evaluated at the recorded event time.
func Replay(ctx context.Context, c *Corpus, base, head *Policy, opts Options) (*Result, error) {
	if head == nil {
		return nil, ErrNoHead
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	cls := opts.Classifier
	if cls == nil {
		pg, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
		if err != nil {
			return nil, err
		}
		cls = pg
	}
	res := &Result{HeadRef: head.Ref, HeadRevision: head.Revision(), Sessions: len(c.Sessions), Statements: c.Statements()}
	if base != nil {
		res.BaseRef, res.BaseRevision = base.Ref, base.Revision()
	} else {
		res.BaseIsRecorded = true
		res.BaseRef = "recorded decisions"
	}

	// Phase 1: classify each distinct PostgreSQL text once.
	index := map[string]int{}
	var texts []string
	for i := range c.Sessions {
		s := &c.Sessions[i]
		for j := range s.Events {
			e := &s.Events[j]
			if e.Protocol != string(bundle.ResourcePostgres) {
				continue
			}
			if _, ok := index[e.Command]; !ok {
				index[e.Command] = len(texts)
				texts = append(texts, e.Command)
			}
		}
	}
	res.DistinctTexts = len(texts)
	classes := make([]*classified, len(texts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(texts) || ctx.Err() != nil {
					return
				}
				classes[i] = classify(cls, texts[i])
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Phase 2: decide, one session at a time per worker.
	type out struct {
		changes, drift []Change
		skipped        int
	}
	outs := make([]out, len(c.Sessions))
	next.Store(0)
	var done atomic.Int64
	stopProgress := progress(opts.Progress, &done, int64(res.Statements))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newReplayer(base, head, index, classes)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(c.Sessions) || ctx.Err() != nil {
					return
				}
				o := &outs[i]
				o.changes, o.drift, o.skipped = r.session(&c.Sessions[i])
				done.Add(int64(len(c.Sessions[i].Events)))
			}
		}()
	}
	wg.Wait()
	stopProgress()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nc, nd := 0, 0
	for i := range outs {
		nc += len(outs[i].changes)
		nd += len(outs[i].drift)
	}
	res.Changes = make([]Change, 0, nc)
	res.Drift = make([]Change, 0, nd)
	for i := range outs {
		res.Changes = append(res.Changes, outs[i].changes...)
		res.Drift = append(res.Drift, outs[i].drift...)
		res.Skipped += outs[i].skipped
	}
	return res, nil
}

// progress prints "replayed N/M statements" to w every half second until
// the returned function is called.
func progress(w io.Writer, done *atomic.Int64, total int64) func() {
	if w == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprintf(w, "\rreplayed %d/%d statements\n", done.Load(), total)
				return
			case <-t.C:
				fmt.Fprintf(w, "\rreplayed %d/%d statements", done.Load(), total)
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// replayer is one worker's state.
type replayer struct {
	base, head *decider // base nil: recorded decisions
	index      map[string]int
	classes    []*classified
	ruleBufA   []string
	ruleBufB   []string
}

func newReplayer(base, head *Policy, index map[string]int, classes []*classified) *replayer {
	r := &replayer{head: newDecider(head), index: index, classes: classes}
	if base != nil {
		r.base = newDecider(base)
	}
	return r
}

// side decides one event under one policy.
func (r *replayer) side(dc *decider, s *Session, e *Event, groups []string, known bool, state *proxy.SQLState) {
	if !known {
		dc.unknownIdentity()
		return
	}
	if e.Protocol == string(bundle.ResourcePostgres) {
		dc.decideSQL(s.Identity, groups, s.Resource, e.Time, r.classes[r.index[e.Command]], state)
		return
	}
	dc.decideRecorded(s.Identity, groups, s.Resource, e.Protocol, e.Time, e)
}

func (r *replayer) session(s *Session) (changes, drift []Change, skipped int) {
	anonymized := s.anonymized // pseudonymised identities fall back to recorded groups
	hg, hk := r.head.principal(s.Identity, s.Groups, anonymized)
	hs := proxy.NewSQLState()
	var bg []string
	var bk bool
	var bs *proxy.SQLState
	if r.base != nil {
		bg, bk = r.base.principal(s.Identity, s.Groups, anonymized)
		bs = proxy.NewSQLState()
	}
	for i := range s.Events {
		e := &s.Events[i]
		r.side(r.head, s, e, hg, hk, hs)
		if r.base == nil {
			if e.Collateral {
				skipped++
				continue
			}
			if kinds := r.compareRecorded(e, r.head, false); len(kinds) > 0 {
				changes = append(changes, r.change(s, e, kinds, recordedDecision(e), r.head.decision(maskingKinds(kinds))))
			}
			continue
		}
		r.side(r.base, s, e, bg, bk, bs)
		if e.Collateral {
			// Not judged on its own when recorded (another statement of
			// its message was denied): replayed for session state only.
			skipped++
			continue
		}
		if kinds := r.compareRecorded(e, r.base, true); len(kinds) > 0 {
			drift = append(drift, r.change(s, e, kinds, recordedDecision(e), r.base.decision(maskingKinds(kinds))))
		}
		if kinds := r.compare(r.base, r.head); len(kinds) > 0 {
			m := maskingKinds(kinds)
			changes = append(changes, r.change(s, e, kinds, r.base.decision(m), r.head.decision(m)))
		}
	}
	return changes, drift, skipped
}

func recordedDecision(e *Event) Decision {
	return Decision{Effect: e.Decision.Effect, RuleIDs: e.Decision.RuleIDs, Masked: e.Decision.Masked}
}

func (r *replayer) change(s *Session, e *Event, kinds []Kind, base, head Decision) Change {
	return Change{Kinds: kinds, SessionID: s.ID, Seq: e.Seq, Pos: posFile(s.Pos) + ":" + strconv.Itoa(e.Line),
		Identity: s.Identity, Resource: s.Resource, Command: e.Command, Time: e.Time, Base: base, Head: head}
}

// maskingKinds reports whether kinds include a masking change (only then
// is the masked-column detail computed).
func maskingKinds(kinds []Kind) bool {
	return slices.Contains(kinds, KindMaskingAdded) || slices.Contains(kinds, KindMaskingRemoved)
}

func posFile(pos string) string {
	for i := len(pos) - 1; i >= 0; i-- {
		if pos[i] == ':' {
			return pos[:i]
		}
	}
	return pos
}

// effectKind classifies an effect transition.
func effectKind(from, to bundle.Effect) (Kind, bool) {
	switch {
	case from == to:
		return "", false
	case to == bundle.EffectDeny:
		return KindNewlyDenied, true
	case from == bundle.EffectDeny:
		return KindNewlyAllowed, true
	case to == bundle.EffectApprove:
		return KindNewlyApproval, true
	default:
		return KindApprovalNotRequired, true
	}
}

// compareRecorded compares a decider's outcome with the recorded decision:
// effect, rule ids (exactly) and whether anything was masked.
func (r *replayer) compareRecorded(e *Event, dc *decider, exactRules bool) []Kind {
	rec := &e.Decision
	if k, ok := effectKind(rec.Effect, dc.effect); ok {
		return []Kind{k}
	}
	var kinds []Kind
	masked := len(dc.masks) > 0
	if masked && !rec.Masked {
		kinds = append(kinds, KindMaskingAdded)
	}
	if !masked && rec.Masked {
		kinds = append(kinds, KindMaskingRemoved)
	}
	if exactRules {
		if !slices.Equal(rec.RuleIDs, dc.rules) {
			kinds = append(kinds, KindDecidingRuleChanged)
		}
		return kinds
	}
	// Head against the recording: compare the deciding (non-mask) rules.
	r.ruleBufA = dc.decidingRules(r.ruleBufA)
	r.ruleBufB = r.ruleBufB[:0]
	for _, id := range rec.RuleIDs {
		if dc.p.ruleEffect[id] != bundle.EffectMask {
			r.ruleBufB = append(r.ruleBufB, id)
		}
	}
	if !slices.Equal(r.ruleBufA, r.ruleBufB) {
		kinds = append(kinds, KindDecidingRuleChanged)
	}
	return kinds
}

// compare compares base and head outcomes without allocating when they
// agree.
func (r *replayer) compare(b, h *decider) []Kind {
	if k, ok := effectKind(b.effect, h.effect); ok {
		return []Kind{k}
	}
	var kinds []Kind
	if !slices.Equal(b.maskKeys, h.maskKeys) {
		bm := masking(b.masks, b.columns)
		hm := masking(h.masks, h.columns)
		if hasExtra(hm, bm) {
			kinds = append(kinds, KindMaskingAdded)
		}
		if hasExtra(bm, hm) {
			kinds = append(kinds, KindMaskingRemoved)
		}
	}
	r.ruleBufA = b.decidingRules(r.ruleBufA)
	r.ruleBufB = h.decidingRules(r.ruleBufB)
	if !slices.Equal(r.ruleBufA, r.ruleBufB) {
		kinds = append(kinds, KindDecidingRuleChanged)
	}
	return kinds
}

// hasExtra reports whether sorted a has an element not in sorted b.
func hasExtra(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return true
		}
	}
	return false
}
