package diff

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/compiler/scope"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Kind classifies a change.
type Kind string

// Change kinds.
const (
	KindGained          Kind = "gained"           // access that base did not grant
	KindLost            Kind = "lost"             // access that head no longer grants
	KindMaskRemoved     Kind = "mask_removed"     // a column, classifier or JSON path is no longer masked
	KindMaskAdded       Kind = "mask_added"       // something newly masked
	KindApprovalRemoved Kind = "approval_removed" // approval no longer needed, or fewer approvers
	KindApprovalAdded   Kind = "approval_added"   // approval newly needed, or more approvers
	KindApprovalChanged Kind = "approval_changed" // approver group changed
	KindDenyRemoved     Kind = "deny_removed"     // a deny no longer applies
	KindDenyAdded       Kind = "deny_added"       // a new deny applies
	KindExpiryExtended  Kind = "expiry_extended"  // access lasts longer (or no longer expires)
	KindExpiryShortened Kind = "expiry_shortened" // access now expires sooner
	KindIdentityAdded   Kind = "identity_added"
	KindIdentityRemoved Kind = "identity_removed"
	KindResourceAdded   Kind = "resource_added"
	KindResourceRemoved Kind = "resource_removed"
	KindResourceChanged Kind = "resource_changed" // address, database, user, credential reference or TLS changed
)

// escalating are the kinds that widen access.
var escalating = map[Kind]bool{
	KindGained:          true,
	KindMaskRemoved:     true,
	KindApprovalRemoved: true,
	KindDenyRemoved:     true,
	KindExpiryExtended:  true,
}

// IsEscalation reports whether changes of kind k widen access.
func (k Kind) IsEscalation() bool { return escalating[k] }

// Change is one semantic difference between base and head.
type Change struct {
	Kind Kind `json:"kind"`
	// Identity and Resource name the pair the change is about; either is
	// empty for identity- or resource-level changes.
	Identity string `json:"identity,omitempty"`
	// IdentityKind is the identity's kind ("agent", "human", "service").
	IdentityKind string `json:"identity_kind,omitempty"`
	Resource     string `json:"resource,omitempty"`
	// Access is the access (or deny) the change is about, when there is one.
	Access *Access `json:"access,omitempty"`
	// Detail is a human-readable description.
	Detail string `json:"detail"`
	// BaseRules and HeadRules are the ids of the rules involved on each side.
	BaseRules []string `json:"base_rules,omitempty"`
	HeadRules []string `json:"head_rules,omitempty"`
}

// Report is the result of [Compare]. Changes are sorted by identity,
// resource, kind and detail.
type Report struct {
	Changes []Change `json:"changes"`
}

// Escalations returns the changes that widen access.
func (r *Report) Escalations() []Change {
	var out []Change
	for _, c := range r.Changes {
		if c.Kind.IsEscalation() {
			out = append(out, c)
		}
	}
	return out
}

// Empty reports whether there are no changes.
func (r *Report) Empty() bool { return len(r.Changes) == 0 }

// grant is a unit of access with its effect and provenance.
type grant struct {
	acc       Access
	approve   bool
	approvals []bundle.ApprovalSpec
	expires   string // "" means never
	rules     []string
}

type maskEntry struct {
	kind  string // "column", "classifier", "json_path"
	value string
	rules []string
}

// pairState is the effective access of one identity on one resource.
type pairState struct {
	grants []*grant
	denies []*grant
	masks  []*maskEntry
}

type version struct {
	p  *bundle.Policy
	ix *scope.Index
	// byIdentity lists, per identity, the indexes of the rules that apply
	// to it, in rule order; resSet holds each rule's resources.
	byIdentity map[string][]int
	resSet     []map[string]bool
}

func newVersion(p *bundle.Policy) *version {
	if p == nil {
		p = &bundle.Policy{}
	}
	v := &version{p: p, ix: scope.NewIndex(p), byIdentity: map[string][]int{}}
	for i := range p.Rules {
		r := &p.Rules[i]
		for _, id := range v.ix.RuleSubjects(r) {
			v.byIdentity[id] = append(v.byIdentity[id], i)
		}
		set := map[string]bool{}
		for _, n := range v.ix.RuleResources(r) {
			set[n] = true
		}
		v.resSet = append(v.resSet, set)
	}
	return v
}

// state computes the effective access of identity id on resource res.
func (v *version) state(id, res string) *pairState {
	st := &pairState{}
	rsrc := v.ix.Resource(res)
	if rsrc == nil || v.ix.Identity(id) == nil {
		return st
	}
	for _, i := range v.byIdentity[id] {
		r := &v.p.Rules[i]
		if !v.resSet[i][res] {
			continue
		}
		switch r.Effect {
		case bundle.EffectAllow, bundle.EffectApprove, bundle.EffectDeny:
			for _, a := range ruleAccess(r, rsrc.Type) {
				g := &grant{acc: a, approve: r.Effect == bundle.EffectApprove, expires: r.Expires, rules: []string{r.ID}}
				if g.approve && r.Approval != nil {
					g.approvals = []bundle.ApprovalSpec{*r.Approval}
				}
				if r.Effect == bundle.EffectDeny {
					st.denies = mergeGrant(st.denies, g)
				} else {
					st.grants = mergeGrant(st.grants, g)
				}
			}
		case bundle.EffectMask:
			st.addMasks(r)
		}
	}
	// Grants fully covered by a deny never take effect.
	st.grants = slices.DeleteFunc(st.grants, func(g *grant) bool {
		for _, d := range st.denies {
			if covers(d.acc, g.acc) && scope.ExpiresCovers(d.expires, g.expires) {
				return true
			}
		}
		return false
	})
	return st
}

func mergeGrant(list []*grant, g *grant) []*grant {
	for _, e := range list {
		if e.acc == g.acc && e.approve == g.approve {
			e.rules = appendUnique(e.rules, g.rules...)
			e.approvals = append(e.approvals, g.approvals...)
			if !scope.ExpiresCovers(e.expires, g.expires) {
				e.expires = g.expires
			}
			return list
		}
	}
	return append(list, g)
}

func appendUnique(s []string, vals ...string) []string {
	for _, v := range vals {
		if !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	slices.Sort(s)
	return s
}

func (st *pairState) addMasks(r *bundle.Rule) {
	if r.Mask == nil {
		return
	}
	add := func(kind string, vals []string) {
		for _, val := range vals {
			found := false
			for _, m := range st.masks {
				if m.kind == kind && m.value == val {
					m.rules = appendUnique(m.rules, r.ID)
					found = true
				}
			}
			if !found {
				st.masks = append(st.masks, &maskEntry{kind: kind, value: val, rules: []string{r.ID}})
			}
		}
	}
	add("column", r.Mask.Columns)
	add("classifier", r.Mask.Classifiers)
	add("json_path", r.Mask.JSONPaths)
}

type mode int

const (
	modeNone mode = iota
	modeAllow
	modeApprove
)

// lookup returns how acc is granted in st and the grants that cover it.
func (st *pairState) lookup(acc Access) (mode, []*grant) {
	var cov []*grant
	m := modeNone
	for _, g := range st.grants {
		if !covers(g.acc, acc) {
			continue
		}
		cov = append(cov, g)
		if g.approve {
			m = modeApprove
		} else if m == modeNone {
			m = modeAllow
		}
	}
	return m, cov
}

func rulesOf(gs []*grant, approveOnly bool) []string {
	var out []string
	for _, g := range gs {
		if !approveOnly || g.approve {
			out = appendUnique(out, g.rules...)
		}
	}
	return out
}

// approvalStrength is the largest approver count and the sorted approver
// groups among the approve grants in gs.
func approvalStrength(gs []*grant) (int, []string) {
	maxCount := 0
	var groups []string
	for _, g := range gs {
		if !g.approve {
			continue
		}
		for _, a := range g.approvals {
			maxCount = max(maxCount, a.Count)
			groups = appendUnique(groups, strings.TrimPrefix(a.Group, scope.GroupPrefix))
		}
	}
	return maxCount, groups
}

// latestExpiry is the latest expiry among gs ("" = never).
func latestExpiry(gs []*grant) string {
	if len(gs) == 0 {
		return "-"
	}
	e := gs[0].expires
	for _, g := range gs[1:] {
		if !scope.ExpiresCovers(e, g.expires) {
			e = g.expires
		}
	}
	return e
}

func effectName(approve bool) string {
	if approve {
		return "approve"
	}
	return "allow"
}

func expiryText(e string) string {
	if e == "" {
		return "never"
	}
	return e
}

// Compare returns the semantic access difference from base to head. Either
// policy may be nil (treated as empty). Compare never panics on policy
// contents.
func Compare(base, head *bundle.Policy) *Report {
	b, h := newVersion(base), newVersion(head)
	c := &comparer{b: b, h: h, seen: map[string]bool{}}
	c.compareDeclarations()
	ids := unionSorted(b.ix.IdentityNames(), h.ix.IdentityNames())
	resources := unionSorted(b.ix.ResourceNames(), h.ix.ResourceNames())
	for _, id := range ids {
		for _, res := range resources {
			c.comparePair(id, res)
		}
	}
	slices.SortStableFunc(c.out, func(x, y Change) int {
		return cmp.Or(
			cmp.Compare(x.Identity, y.Identity),
			cmp.Compare(x.Resource, y.Resource),
			cmp.Compare(x.Kind, y.Kind),
			cmp.Compare(x.Detail, y.Detail),
		)
	})
	return &Report{Changes: c.out}
}

type comparer struct {
	b, h *version
	out  []Change
	seen map[string]bool
}

func (c *comparer) add(ch Change) {
	key := strings.Join([]string{string(ch.Kind), ch.Identity, ch.Resource, ch.Detail}, "\x00")
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.out = append(c.out, ch)
}

func unionSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func (c *comparer) identityKind(id string) string {
	if i := c.h.ix.Identity(id); i != nil {
		return i.Kind
	}
	if i := c.b.ix.Identity(id); i != nil {
		return i.Kind
	}
	return ""
}

func (c *comparer) compareDeclarations() {
	for _, id := range unionSorted(c.b.ix.IdentityNames(), c.h.ix.IdentityNames()) {
		bi, hi := c.b.ix.Identity(id), c.h.ix.Identity(id)
		switch {
		case bi == nil:
			c.add(Change{Kind: KindIdentityAdded, Identity: id, IdentityKind: hi.Kind, Detail: fmt.Sprintf("new %s identity", hi.Kind)})
		case hi == nil:
			c.add(Change{Kind: KindIdentityRemoved, Identity: id, IdentityKind: bi.Kind, Detail: fmt.Sprintf("%s identity removed", bi.Kind)})
		}
	}
	for _, name := range unionSorted(c.b.ix.ResourceNames(), c.h.ix.ResourceNames()) {
		br, hr := c.b.ix.Resource(name), c.h.ix.Resource(name)
		switch {
		case br == nil:
			c.add(Change{Kind: KindResourceAdded, Resource: name, Detail: fmt.Sprintf("new %s resource at %s", hr.Type, hr.Address)})
		case hr == nil:
			c.add(Change{Kind: KindResourceRemoved, Resource: name, Detail: fmt.Sprintf("%s resource removed", br.Type)})
		default:
			var what []string
			if br.Type != hr.Type {
				what = append(what, fmt.Sprintf("type %s → %s", br.Type, hr.Type))
			}
			if br.Address != hr.Address {
				what = append(what, "address")
			}
			if br.Database != hr.Database {
				what = append(what, "database")
			}
			if br.User != hr.User {
				what = append(what, "user")
			}
			if br.Credential != hr.Credential {
				what = append(what, "credential reference")
			}
			if !reflect.DeepEqual(br.TLS, hr.TLS) {
				what = append(what, "tls")
			}
			if len(what) > 0 {
				c.add(Change{Kind: KindResourceChanged, Resource: name, Detail: "changed: " + strings.Join(what, ", ")})
			}
		}
	}
}

func (c *comparer) comparePair(id, res string) {
	bs, hs := c.b.state(id, res), c.h.state(id, res)
	// For an identity or resource that exists on one side only, only gains
	// (new) or losses (gone) are meaningful: its masks and denies come and
	// go with it and must not read as escalations.
	onBothSides := c.b.ix.Identity(id) != nil && c.h.ix.Identity(id) != nil &&
		c.b.ix.Resource(res) != nil && c.h.ix.Resource(res) != nil
	base := Change{Identity: id, IdentityKind: c.identityKind(id), Resource: res}
	with := func(k Kind, acc Access, detail string, br, hr []string) {
		ch := base
		ch.Kind, ch.Detail, ch.BaseRules, ch.HeadRules = k, detail, br, hr
		a := acc
		ch.Access = &a
		c.add(ch)
	}
	gained := map[*grant]bool{}
	for _, g := range hs.grants {
		if bm, _ := bs.lookup(g.acc); bm == modeNone {
			gained[g] = true
			with(KindGained, g.acc, fmt.Sprintf("%s %s", effectName(g.approve), g.acc), nil, g.rules)
		}
	}
	for _, g := range hs.grants {
		if gained[g] || !onBothSides {
			continue
		}
		bm, bcov := bs.lookup(g.acc)
		hm, hcov := hs.lookup(g.acc)
		// A wider grant that is itself reported as gained already explains
		// any longer expiry.
		hcovOld := slices.DeleteFunc(slices.Clone(hcov), func(x *grant) bool { return gained[x] })
		switch {
		case bm == modeApprove && hm == modeAllow:
			with(KindApprovalRemoved, g.acc, fmt.Sprintf("%s no longer needs approval", g.acc), rulesOf(bcov, true), rulesOf(hcov, false))
		case bm == modeAllow && hm == modeApprove:
			with(KindApprovalAdded, g.acc, fmt.Sprintf("%s now needs approval", g.acc), rulesOf(bcov, false), rulesOf(hcov, true))
		case bm == modeApprove && hm == modeApprove:
			bn, bg := approvalStrength(bcov)
			hn, hg := approvalStrength(hcov)
			switch {
			case hn < bn:
				with(KindApprovalRemoved, g.acc, fmt.Sprintf("%s: approvers lowered from %d to %d", g.acc, bn, hn), rulesOf(bcov, true), rulesOf(hcov, true))
			case hn > bn:
				with(KindApprovalAdded, g.acc, fmt.Sprintf("%s: approvers raised from %d to %d", g.acc, bn, hn), rulesOf(bcov, true), rulesOf(hcov, true))
			}
			if !slices.Equal(bg, hg) {
				with(KindApprovalChanged, g.acc, fmt.Sprintf("%s: approver group %s → %s", g.acc, strings.Join(bg, ","), strings.Join(hg, ",")), rulesOf(bcov, true), rulesOf(hcov, true))
			}
		}
		be, he := latestExpiry(bcov), latestExpiry(hcovOld)
		if be != he {
			switch {
			case scope.ExpiresCovers(he, be) && !scope.ExpiresCovers(be, he):
				with(KindExpiryExtended, g.acc, fmt.Sprintf("%s: expiry %s → %s", g.acc, expiryText(be), expiryText(he)), rulesOf(bcov, false), rulesOf(hcov, false))
			case scope.ExpiresCovers(be, he) && !scope.ExpiresCovers(he, be):
				with(KindExpiryShortened, g.acc, fmt.Sprintf("%s: expiry %s → %s", g.acc, expiryText(be), expiryText(he)), rulesOf(bcov, false), rulesOf(hcov, false))
			}
		}
	}
	for _, g := range bs.grants {
		if hm, _ := hs.lookup(g.acc); hm == modeNone {
			with(KindLost, g.acc, fmt.Sprintf("%s %s", effectName(g.approve), g.acc), g.rules, nil)
		}
	}
	if !onBothSides {
		return
	}
	for _, d := range bs.denies {
		if !anyCovers(hs.denies, d.acc) {
			with(KindDenyRemoved, d.acc, "deny "+d.acc.String(), d.rules, nil)
		}
	}
	for _, d := range hs.denies {
		if !anyCovers(bs.denies, d.acc) {
			with(KindDenyAdded, d.acc, "deny "+d.acc.String(), nil, d.rules)
		}
	}
	for _, m := range bs.masks {
		if !maskCovered(hs.masks, m) {
			ch := base
			ch.Kind, ch.Detail, ch.BaseRules = KindMaskRemoved, fmt.Sprintf("%s %s no longer masked", m.kind, m.value), m.rules
			c.add(ch)
		}
	}
	for _, m := range hs.masks {
		if !maskCovered(bs.masks, m) {
			ch := base
			ch.Kind, ch.Detail, ch.HeadRules = KindMaskAdded, fmt.Sprintf("%s %s now masked", m.kind, m.value), m.rules
			c.add(ch)
		}
	}
}

func anyCovers(list []*grant, acc Access) bool {
	for _, g := range list {
		if covers(g.acc, acc) {
			return true
		}
	}
	return false
}

func maskCovered(list []*maskEntry, m *maskEntry) bool {
	for _, e := range list {
		if e.kind != m.kind {
			continue
		}
		switch m.kind {
		case "column":
			if scope.ColumnCovers(e.value, m.value) {
				return true
			}
		default:
			if e.value == m.value {
				return true
			}
		}
	}
	return false
}
