package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Request is what Decide judges: who asks, for which resource, when, and the
// facts the protocol proxy extracted from the command. At most one of SQL,
// SSH, HTTP and Kubernetes is normally set; a rule with a protocol match
// only matches requests that carry facts of that protocol.
type Request struct {
	// Identity is the policy identity name ("" = unknown caller, always
	// denied).
	Identity string
	// Groups are the groups of the identity; callers pass Identity.Groups
	// from the policy.
	Groups []string
	// Resource is the resource name.
	Resource string
	// Time is the evaluation time, used for rule expiry and time windows.
	// A zero Time matches no rule that has an expiry or a time window.
	Time time.Time

	SQL        *SQLFacts
	SSH        *SSHFacts
	HTTP       *HTTPFacts
	Kubernetes *KubernetesFacts
}

// SQLFacts describe one SQL statement as the classifier reports it.
type SQLFacts struct {
	// Kind is the statement kind in lower case ("select", "update", ...).
	Kind string
	// Tables read and written: "schema.table", or a bare "table" meaning
	// schema public.
	Tables []string
	// Columns referenced: "column", "table.column" or "schema.table.column".
	Columns []string
	// Functions are the flagged dangerous functions the statement calls,
	// optionally schema-qualified.
	Functions []string
	// HasWhere reports whether an UPDATE or DELETE has a WHERE clause.
	HasWhere bool
}

// SSHFacts describe one SSH session request.
type SSHFacts struct {
	// Command is the command line; "" is an interactive shell.
	Command string
}

// HTTPFacts describe one HTTP request.
type HTTPFacts struct {
	Method string
	// Host as sent, optionally with ":port".
	Host string
	// Path as sent; a query string or fragment is ignored.
	Path string
}

// KubernetesFacts describe one Kubernetes API request.
type KubernetesFacts struct {
	Verb string
	// Resource, with a subresource where there is one ("pods/exec").
	Resource  string
	Namespace string // "" for cluster-scoped requests
	Name      string
	// Command is the exec command line for exec requests, else "".
	Command string
}

// Decision is the outcome of Decide. Decide overwrites every field and
// reuses the slices' storage, so a Decision kept per connection makes the
// steady state allocation-free. A Decision must not be used by two Decide
// calls at once; copy out what must outlive the next call (the strings and
// the pointed-to specs are immutable and may be kept).
type Decision struct {
	// Effect is allow, deny or approve; never mask (see Masks).
	Effect bundle.Effect
	// RuleIDs name the rules that produced the decision, in rule order:
	// every matching deny rule for a deny; else every matching approve rule
	// for approve; else every matching allow rule for allow; followed, on
	// allow and approve, by the mask rules that apply. Empty for a default
	// deny.
	RuleIDs []string
	// BundleRevision is the revision of the bundle that decided ("" when
	// no bundle is active).
	BundleRevision string
	// Reason is a human-readable explanation.
	Reason string
	// Masks are the masks of the applied mask rules (allow and approve only),
	// in rule order. They point into the bundle: do not modify.
	Masks []*bundle.MaskSpec
	// Approval is set when Effect is approve: the approval of the first
	// matching approve rule, its timeout defaulted from the policy settings.
	Approval *bundle.ApprovalSpec
	// MaxRows is the smallest non-zero max_rows of the deciding allow or
	// approve rules; 0 means no cap.
	MaxRows int
	// Record is the record spec of the first rule in RuleIDs that has one.
	Record *bundle.RecordSpec

	cand    []int32    // scratch: candidate rule indices (slow path)
	tables  []tableRef // scratch: the statement's tables, split
	matched []int32    // scratch: matching rule indices
}

// Engine evaluates requests against one bundle. It is immutable after New
// and safe for concurrent use. A nil *Engine denies everything.
type Engine struct {
	b        *bundle.Bundle
	revision string
	rules    []rule

	resources  map[string]int32 // resource name -> index into perRes
	perRes     []resIndex
	identities map[string]int32 // identity name -> index into groups / resIndex.known
	groups     [][]string       // policy groups of each identity

	reasons reasonCache
	fast    *fastIndex // nil when the policy is too large for it
}

// resIndex holds the candidate rules of one resource. Every list is sorted
// by rule index and holds no duplicates.
type resIndex struct {
	name       string
	any        []int32            // rules whose subjects include "*" (or are empty)
	byIdentity map[string][]int32 // rules naming the identity (not via "*")
	byGroup    map[string][]int32 // rules naming "group:NAME" (not via "*")
	// known[i] is the union of byIdentity and byGroup for identity i of the
	// policy with its policy groups (nil when the index would be too large).
	known [][]int32
}

// maxKnownEntries bounds the precomputed per-identity candidate lists; a
// larger policy falls back to merging the lists at decision time.
const maxKnownEntries = 1 << 22

// Reasons that need no formatting.
const (
	reasonNoBundle      = "no valid policy bundle is active"
	reasonNoRequest     = "no request (default deny)"
	reasonUnknownCaller = "unknown caller: no identity (default deny)"
)

// New compiles b into an Engine. The bundle must not be modified afterwards;
// the engine keeps pointers into it. New assumes the bundle was verified
// (bundle.Validate) and checks only what evaluation depends on; errors wrap
// ErrNilBundle or ErrInvalidRule.
func New(b *bundle.Bundle) (*Engine, error) {
	if b == nil {
		return nil, ErrNilBundle
	}
	p := &b.Policy
	e := &Engine{
		b:          b,
		revision:   b.Manifest.Revision,
		rules:      make([]rule, len(p.Rules)),
		resources:  make(map[string]int32, len(p.Resources)),
		identities: make(map[string]int32, len(p.Identities)),
	}
	e.reasons.init()
	addResource := func(name string) int32 {
		if i, ok := e.resources[name]; ok {
			return i
		}
		i := int32(len(e.perRes))
		e.resources[name] = i
		e.perRes = append(e.perRes, resIndex{name: name, byIdentity: map[string][]int32{}, byGroup: map[string][]int32{}})
		return i
	}
	for i := range p.Resources {
		addResource(p.Resources[i].Name)
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		cr, err := compileRule(r, &p.Settings)
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w: %v", r.ID, ErrInvalidRule, err)
		}
		e.rules[i] = *cr
		anySubject := len(r.Subjects) == 0 || slices.Contains(r.Subjects, "*")
		for _, res := range r.ResolvedResources {
			ri := &e.perRes[addResource(res)]
			if anySubject {
				ri.any = appendUnique(ri.any, int32(i))
				continue
			}
			for _, s := range r.Subjects {
				if g, ok := cutPrefix(s, "group:"); ok {
					ri.byGroup[g] = appendUnique(ri.byGroup[g], int32(i))
				} else {
					ri.byIdentity[s] = appendUnique(ri.byIdentity[s], int32(i))
				}
			}
		}
	}
	e.groups = make([][]string, len(p.Identities))
	for i := range p.Identities {
		e.identities[p.Identities[i].Name] = int32(i)
		e.groups[i] = p.Identities[i].Groups
	}
	e.buildKnown()
	e.buildFast()
	return e, nil
}

// appendUnique appends i unless it is already the last element (rules are
// added in index order, so duplicates are adjacent).
func appendUnique(l []int32, i int32) []int32 {
	if n := len(l); n > 0 && l[n-1] == i {
		return l
	}
	return append(l, i)
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

// buildKnown precomputes, per resource and policy identity, the merged
// identity and group candidate lists, packed into one backing array.
func (e *Engine) buildKnown() {
	total := 0
	for ri := range e.perRes {
		r := &e.perRes[ri]
		for name, id := range e.identities {
			total += len(r.byIdentity[name])
			for _, g := range e.groups[id] {
				total += len(r.byGroup[g])
			}
		}
	}
	if total > maxKnownEntries {
		return
	}
	arena := make([]int32, 0, total)
	var scratch []int32
	for ri := range e.perRes {
		r := &e.perRes[ri]
		r.known = make([][]int32, len(e.identities))
		for name, id := range e.identities {
			scratch = append(scratch[:0], r.byIdentity[name]...)
			for _, g := range e.groups[id] {
				scratch = append(scratch, r.byGroup[g]...)
			}
			if len(scratch) == 0 {
				continue
			}
			slices.Sort(scratch)
			scratch = slices.Compact(scratch)
			start := len(arena)
			arena = append(arena, scratch...)
			r.known[id] = arena[start:len(arena):len(arena)]
		}
	}
}

// Bundle returns the bundle the engine evaluates (nil for a nil engine). It
// must not be modified.
func (e *Engine) Bundle() *bundle.Bundle {
	if e == nil {
		return nil
	}
	return e.b
}

// Decide judges req and writes the outcome into d, reusing d's slices. It is
// a pure function of req and the bundle. A nil engine or request is a deny.
// Decide never allocates once d's slices have grown to the sizes the policy
// needs, except to format a default-deny reason not seen before (those are
// cached, up to a bound).
func (e *Engine) Decide(req *Request, d *Decision) {
	if d == nil {
		return
	}
	d.reset()
	if e == nil {
		d.Reason = reasonNoBundle
		return
	}
	d.BundleRevision = e.revision
	if req == nil {
		d.Reason = reasonNoRequest
		return
	}
	if req.Identity == "" {
		d.Reason = reasonUnknownCaller
		return
	}
	rid, ok := e.resources[req.Resource]
	if !ok {
		d.Reason = e.reasons.get(reasonKey{kind: keyUnknownResource, resource: req.Resource})
		return
	}
	ri := &e.perRes[rid]
	var named []int32
	id, known := e.identities[req.Identity]
	known = known && slices.Equal(req.Groups, e.groups[id])
	if known && e.fast != nil {
		if cls, ok := e.fast.class(req); ok {
			e.decideFast(req, ri, rid, id, cls, d)
			return
		}
	}
	if known && ri.known != nil {
		named = ri.known[id]
	} else {
		d.cand = append(d.cand[:0], ri.byIdentity[req.Identity]...)
		for _, g := range req.Groups {
			d.cand = append(d.cand, ri.byGroup[g]...)
		}
		if len(req.Groups) > 0 {
			slices.Sort(d.cand)
			d.cand = slices.Compact(d.cand)
		}
		named = d.cand
	}
	// Merge the two sorted, disjoint candidate lists, evaluating in rule
	// order.
	var tables []tableRef
	if req.SQL != nil {
		d.tables = splitTables(d.tables, req.SQL.Tables)
		tables = d.tables
	}
	matched := d.matched[:0]
	anyl := ri.any
	i, j := 0, 0
	for i < len(named) || j < len(anyl) {
		var c int32
		if j >= len(anyl) || (i < len(named) && named[i] < anyl[j]) {
			c = named[i]
			i++
		} else {
			c = anyl[j]
			j++
		}
		if e.rules[c].match(req, tables, false) {
			matched = append(matched, c)
		}
	}
	d.matched = matched
	e.resolve(req, ri, d)
}

func (d *Decision) reset() {
	d.Effect = bundle.EffectDeny
	d.RuleIDs = d.RuleIDs[:0]
	d.BundleRevision = ""
	d.Reason = ""
	clear(d.Masks)
	d.Masks = d.Masks[:0]
	d.Approval = nil
	d.MaxRows = 0
	d.Record = nil
}

// resolve turns the matching rules (d.matched, in rule order) into the
// decision: deny beats approve beats allow; masks apply to allow and
// approve; no grant is a default deny.
func (e *Engine) resolve(req *Request, ri *resIndex, d *Decision) {
	var n [4]int
	first := [4]int32{-1, -1, -1, -1}
	for _, c := range d.matched {
		eff := e.rules[c].effect
		if n[eff] == 0 {
			first[eff] = c
		}
		n[eff]++
	}
	var win effect
	switch {
	case n[effDeny] > 0:
		win = effDeny
		d.Effect = bundle.EffectDeny
	case n[effApprove] > 0:
		win = effApprove
		d.Effect = bundle.EffectApprove
	case n[effAllow] > 0:
		win = effAllow
		d.Effect = bundle.EffectAllow
	default:
		d.Effect = bundle.EffectDeny
		d.Reason = e.reasons.get(defaultDenyKey(req, ri.name))
		return
	}
	fr := &e.rules[first[win]]
	d.setWinner(win, fr, n[win])
	for _, c := range d.matched {
		if r := &e.rules[c]; r.effect == win {
			d.addWinner(r)
		}
	}
	if win == effDeny {
		return
	}
	for _, c := range d.matched {
		if r := &e.rules[c]; r.effect == effMask {
			d.addMask(r)
		}
	}
}

// setWinner sets the effect and reason of a decision made by n rules of
// effect win, the first of which is first.
func (d *Decision) setWinner(win effect, first *rule, n int) {
	switch win {
	case effDeny:
		d.Effect = bundle.EffectDeny
	case effApprove:
		d.Effect = bundle.EffectApprove
	default:
		d.Effect = bundle.EffectAllow
	}
	if n == 1 {
		d.Reason = first.reasonOne
	} else {
		d.Reason = first.reasonMany
	}
}

// addWinner adds one deciding rule (called in rule order).
func (d *Decision) addWinner(r *rule) {
	d.RuleIDs = append(d.RuleIDs, r.id)
	if d.Record == nil {
		d.Record = r.record
	}
	if r.effect == effDeny {
		return
	}
	if r.maxRows > 0 && (d.MaxRows == 0 || r.maxRows < d.MaxRows) {
		d.MaxRows = r.maxRows
	}
	if d.Approval == nil && r.approval != nil {
		d.Approval = r.approval
	}
}

// addMask adds one applying mask rule to a grant (called in rule order,
// after the deciding rules).
func (d *Decision) addMask(r *rule) {
	d.RuleIDs = append(d.RuleIDs, r.id)
	d.Masks = append(d.Masks, r.mask)
	if d.Record == nil {
		d.Record = r.record
	}
}
