package lint

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/compiler/scope"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// ExpiringWithin is how far ahead of Now a grant's expiry is reported
// (GH025): far enough for a review cycle, near enough not to be noise.
const ExpiringWithin = 30 * 24 * time.Hour

// Options configure a lint run.
type Options struct {
	// Now is the time expiry and review checks are made against. The zero
	// value disables those checks (expired and expiring grants, overdue
	// reviews); Run
	// never reads the clock itself.
	Now time.Time
}

// Run lints p and returns its findings, sorted. A nil policy has no
// findings.
func Run(p *bundle.Policy, opts Options) Findings {
	if p == nil {
		return nil
	}
	l := &linter{p: p, ix: scope.NewIndex(p), opts: opts}
	l.prepare()
	l.checkDeclarations()
	l.checkReferences()
	l.checkCoverage()
	l.checkGrantHygiene()
	l.checkAgentWrites()
	l.checkWildcardProd()
	l.checkSecrets()
	l.checkMasks()
	l.checkApprovals()
	l.out.Sort()
	return l.out
}

type ruleInfo struct {
	r        *bundle.Rule
	subjects []string
	res      []string
	expired  bool
}

type linter struct {
	p     *bundle.Policy
	ix    *scope.Index
	opts  Options
	rules []ruleInfo
	out   Findings
}

func (l *linter) add(pos string, code Code, sev Severity, ruleID, format string, args ...any) {
	l.out = append(l.out, Finding{
		Pos:      pos,
		Code:     code,
		Severity: sev,
		Message:  fmt.Sprintf(format, args...),
		RuleID:   ruleID,
	})
}

func (l *linter) addDefault(pos string, code Code, ruleID, format string, args ...any) {
	ci, _ := Info(code)
	l.add(pos, code, ci.Severity, ruleID, format, args...)
}

func isGrant(e bundle.Effect) bool { return e == bundle.EffectAllow || e == bundle.EffectApprove }

func (l *linter) prepare() {
	l.rules = make([]ruleInfo, len(l.p.Rules))
	for i := range l.p.Rules {
		r := &l.p.Rules[i]
		ri := ruleInfo{r: r, subjects: l.ix.RuleSubjects(r), res: l.ix.RuleResources(r)}
		if !l.opts.Now.IsZero() && r.Expires != "" {
			if t, err := scope.ParseTime(r.Expires); err == nil && !l.opts.Now.Before(t) {
				ri.expired = true
			}
		}
		l.rules[i] = ri
	}
}

// checkDeclarations reports unknown names inside declarations: group members
// and identity group lists.
func (l *linter) checkDeclarations() {
	for _, g := range l.p.Groups {
		for _, m := range g.Members {
			if l.ix.Identity(m) == nil {
				l.addDefault(g.Pos, CodeUnknownIdentity, "", "group %q lists member %q, which is not a declared identity", g.Name, m)
			}
		}
	}
	for _, id := range l.p.Identities {
		for _, g := range id.Groups {
			if !l.ix.HasGroup(g) {
				l.addDefault(id.Pos, CodeUnknownGroup, "", "identity %q is in group %q, which is not declared", id.Name, g)
			}
		}
	}
}

var unknownCode = map[scope.RefKind]Code{
	scope.RefIdentity: CodeUnknownIdentity,
	scope.RefGroup:    CodeUnknownGroup,
	scope.RefResource: CodeUnknownResource,
	scope.RefTag:      CodeUnknownTag,
}

func (l *linter) checkReferences() {
	for _, ri := range l.rules {
		r := ri.r
		_, us := l.ix.Subjects(r.Subjects)
		for _, u := range us {
			l.addDefault(r.Pos, unknownCode[u.Kind], r.ID, "rule %q: subject names unknown %s %q", r.ID, u.Kind, u.Name)
		}
		_, ur := l.ix.Resources(r.Resources)
		for _, u := range ur {
			l.addDefault(r.Pos, unknownCode[u.Kind], r.ID, "rule %q: resources name unknown %s %q", r.ID, u.Kind, u.Name)
		}
		for _, n := range r.ResolvedResources {
			if l.ix.Resource(n) == nil {
				l.addDefault(r.Pos, CodeUnknownResource, r.ID, "rule %q: resolved resource %q is not declared", r.ID, n)
			}
		}
		if len(ri.subjects) == 0 && len(us) == 0 {
			l.addDefault(r.Pos, CodeEmptyScope, r.ID, "rule %q: subjects %s expand to no identity, so the rule never applies", r.ID, listOrAny(r.Subjects))
		}
		if len(ri.res) == 0 && len(ur) == 0 {
			l.addDefault(r.Pos, CodeEmptyScope, r.ID, "rule %q: resources %s expand to no resource, so the rule never applies", r.ID, listOrAny(r.Resources))
		}
		if r.Mask != nil {
			for _, c := range r.Mask.Classifiers {
				if !l.ix.HasClassifier(c) {
					l.addDefault(r.Pos, CodeUnknownClassifier, r.ID, "rule %q: mask names unknown classifier %q", r.ID, c)
				}
			}
		}
		if r.Approval != nil {
			if g := approverGroup(r.Approval); !l.ix.HasGroup(g) {
				l.addDefault(r.Pos, CodeUnknownApproverGroup, r.ID, "rule %q: approver group %q is not declared, so nobody can approve", r.ID, g)
			}
		}
	}
}

func approverGroup(a *bundle.ApprovalSpec) string {
	return strings.TrimPrefix(a.Group, scope.GroupPrefix)
}

func listOrAny(s []string) string {
	if len(s) == 0 {
		return `["*"]`
	}
	return fmt.Sprintf("%q", s)
}

// covers reports whether rule a applies to everything rule b applies to:
// subjects, resources, command match, conditions and expiry.
func covers(a, b ruleInfo) bool {
	return scope.SubsetOf(b.subjects, a.subjects) &&
		scope.SubsetOf(b.res, a.res) &&
		scope.MatchCovers(a.r, b.r) &&
		scope.ConditionsCover(a.r.Conditions, b.r.Conditions) &&
		scope.ExpiresCovers(a.r.Expires, b.r.Expires)
}

func noTimeWindows(c *bundle.Conditions) bool { return c == nil || len(c.TimeWindows) == 0 }

func (l *linter) checkCoverage() {
	for j, b := range l.rules {
		if b.r.Effect == bundle.EffectMask || len(b.subjects) == 0 || len(b.res) == 0 || b.expired {
			continue
		}
		// A grant fully covered by a deny never takes effect.
		reported := false
		if isGrant(b.r.Effect) {
			for _, d := range l.rules {
				if d.r.Effect != bundle.EffectDeny || d.expired || !noTimeWindows(d.r.Conditions) {
					continue
				}
				if !(scope.SubsetOf(b.subjects, d.subjects) && scope.SubsetOf(b.res, d.res) &&
					scope.MatchCovers(d.r, b.r) && scope.ExpiresCovers(d.r.Expires, b.r.Expires)) {
					continue
				}
				if slices.Equal(b.subjects, d.subjects) && slices.Equal(b.res, d.res) && scope.MatchEqual(b.r, d.r) {
					pos := b.r.Pos
					if d.r.Index > b.r.Index {
						pos = d.r.Pos
					}
					l.addDefault(pos, CodeContradiction, b.r.ID, "rule %q (%s) and deny rule %q have exactly the same scope; the deny always wins", b.r.ID, b.r.Effect, d.r.ID)
				} else {
					l.addDefault(b.r.Pos, CodeUnreachableGrant, b.r.ID, "rule %q (%s) never takes effect: deny rule %q covers all of it", b.r.ID, b.r.Effect, d.r.ID)
				}
				reported = true
				break
			}
		}
		if reported {
			continue
		}
		for i := range j {
			a := l.rules[i]
			if a.r.Effect != b.r.Effect || a.expired || !covers(a, b) {
				continue
			}
			if b.r.Effect == bundle.EffectApprove && !reflect.DeepEqual(a.r.Approval, b.r.Approval) {
				continue
			}
			if b.r.Record != nil && !reflect.DeepEqual(a.r.Record, b.r.Record) {
				continue
			}
			l.addDefault(b.r.Pos, CodeShadowedRule, b.r.ID, "rule %q (%s) is shadowed: earlier rule %q (%s) covers all of it", b.r.ID, b.r.Effect, a.r.ID, a.r.Pos)
			break
		}
	}
}

func (l *linter) checkGrantHygiene() {
	for _, ri := range l.rules {
		r := ri.r
		if isGrant(r.Effect) {
			if r.Expires == "" {
				l.addDefault(r.Pos, CodeNoExpiry, r.ID, "rule %q (%s) has no expires; the grant never lapses", r.ID, r.Effect)
			}
			if r.Review == nil || r.Review.Owner == "" {
				l.addDefault(r.Pos, CodeNoReviewOwner, r.ID, "rule %q (%s) has no review.owner", r.ID, r.Effect)
			}
		}
		if r.Expires != "" {
			t, err := scope.ParseTime(r.Expires)
			switch {
			case err != nil:
				l.addDefault(r.Pos, CodeInvalidTime, r.ID, "rule %q: expires: %v", r.ID, err)
			case isGrant(r.Effect) && !l.opts.Now.IsZero() && !l.opts.Now.Before(t):
				l.addDefault(r.Pos, CodeExpiredGrant, r.ID, "rule %q (%s) expired on %s", r.ID, r.Effect, r.Expires)
			case isGrant(r.Effect) && !l.opts.Now.IsZero() && !l.opts.Now.Add(ExpiringWithin).Before(t):
				days := int(math.Ceil(t.Sub(l.opts.Now).Hours() / 24)) // a partial day counts
				l.addDefault(r.Pos, CodeExpiringGrant, r.ID, "rule %q (%s) expires on %s, within %d day(s)",
					r.ID, r.Effect, r.Expires, days)
			}
		}
		if r.Review != nil {
			l.checkReview(r)
		}
	}
}

func (l *linter) checkReview(r *bundle.Rule) {
	var every time.Duration
	var last time.Time
	var errEvery, errLast error
	if r.Review.Every != "" {
		every, errEvery = scope.ParseEvery(r.Review.Every)
		if errEvery != nil {
			l.addDefault(r.Pos, CodeInvalidTime, r.ID, "rule %q: review.every: %v", r.ID, errEvery)
		}
	}
	if r.Review.LastReviewed != "" {
		last, errLast = scope.ParseTime(r.Review.LastReviewed)
		if errLast != nil {
			l.addDefault(r.Pos, CodeInvalidTime, r.ID, "rule %q: review.last_reviewed: %v", r.ID, errLast)
		}
	}
	if l.opts.Now.IsZero() || r.Review.Every == "" || r.Review.LastReviewed == "" || errEvery != nil || errLast != nil {
		return
	}
	due := last.Add(every)
	if due.Before(l.opts.Now) {
		l.addDefault(r.Pos, CodeReviewOverdue, r.ID, "rule %q: review overdue since %s (last reviewed %s, every %s, owner %q)",
			r.ID, due.Format(time.DateOnly), r.Review.LastReviewed, r.Review.Every, r.Review.Owner)
	}
}

// writeKinds are the SQL statement kinds that change data, schema or
// privileges.
var writeKinds = []string{"alter", "copy", "create", "delete", "drop", "grant", "insert", "truncate", "update"}

func isSQL(t bundle.ResourceType) bool {
	return t == bundle.ResourcePostgres || t == bundle.ResourceMySQL
}

// grantedWriteKinds returns the write kinds an allow rule grants ("*" for
// any statement).
func grantedWriteKinds(r *bundle.Rule) []string {
	if r.SQL == nil {
		if scope.RuleProtocol(r) == scope.ProtocolAny {
			return []string{scope.Wildcard}
		}
		return nil
	}
	if len(r.SQL.Statements) == 0 || slices.Contains(r.SQL.Statements, scope.Wildcard) {
		return []string{scope.Wildcard}
	}
	var out []string
	for _, s := range r.SQL.Statements {
		if slices.Contains(writeKinds, strings.ToLower(s)) {
			out = append(out, strings.ToLower(s))
		}
	}
	return out
}

func (l *linter) checkAgentWrites() {
	for _, ri := range l.rules {
		r := ri.r
		if r.Effect != bundle.EffectAllow || ri.expired {
			continue
		}
		var sqlRes []string
		for _, n := range ri.res {
			if res := l.ix.Resource(n); res != nil && isSQL(res.Type) {
				sqlRes = append(sqlRes, n)
			}
		}
		kinds := grantedWriteKinds(r)
		if len(sqlRes) == 0 || len(kinds) == 0 {
			continue
		}
		var problems []string
		for _, s := range ri.subjects {
			id := l.ix.Identity(s)
			if id == nil || id.Kind != "agent" {
				continue
			}
			var open []string
			for _, k := range kinds {
				if !l.writeGated(r, s, sqlRes, k) {
					open = append(open, k)
				}
			}
			if len(open) > 0 {
				problems = append(problems, fmt.Sprintf("%s (%s)", s, strings.Join(open, ", ")))
			}
		}
		if len(problems) > 0 {
			l.addDefault(r.Pos, CodeAgentWrite, r.ID, "rule %q allows write statements to agents without approval on %s: %s",
				r.ID, strings.Join(sqlRes, ", "), strings.Join(problems, "; "))
		}
	}
}

// writeGated reports whether statement kind k granted by allow rule r to
// identity s on resources res is always caught first by an approve or deny
// rule.
func (l *linter) writeGated(r *bundle.Rule, s string, res []string, k string) bool {
	probe := bundle.SQLMatch{Statements: []string{k}}
	if r.SQL != nil {
		probe.Tables, probe.Columns, probe.Functions = r.SQL.Tables, r.SQL.Columns, r.SQL.Functions
		probe.WithoutWhere = r.SQL.WithoutWhere
	}
	for _, g := range l.rules {
		if g.r == r || g.expired || (g.r.Effect != bundle.EffectApprove && g.r.Effect != bundle.EffectDeny) {
			continue
		}
		if !noTimeWindows(g.r.Conditions) || !scope.ExpiresCovers(g.r.Expires, r.Expires) {
			continue
		}
		if !slices.Contains(g.subjects, s) || !scope.SubsetOf(res, g.res) {
			continue
		}
		switch scope.RuleProtocol(g.r) {
		case scope.ProtocolAny:
			return true
		case scope.ProtocolSQL:
			if scope.SQLCovers(g.r.SQL, &probe) {
				return true
			}
		}
	}
	return false
}

func hasWildcardSubject(r *bundle.Rule) bool {
	return len(r.Subjects) == 0 || slices.Contains(r.Subjects, scope.Wildcard)
}

func (l *linter) checkWildcardProd() {
	for _, ri := range l.rules {
		r := ri.r
		if !isGrant(r.Effect) || ri.expired || !hasWildcardSubject(r) {
			continue
		}
		var prod []string
		for _, n := range ri.res {
			if res := l.ix.Resource(n); res != nil && slices.Contains(res.Tags, "prod") {
				prod = append(prod, n)
			}
		}
		if len(prod) == 0 {
			continue
		}
		sev := SeverityError
		if r.Effect == bundle.EffectApprove {
			sev = SeverityWarning
		}
		l.add(r.Pos, CodeWildcardProd, sev, r.ID, "rule %q (%s) grants every identity access to prod resources %s", r.ID, r.Effect, strings.Join(prod, ", "))
	}
}

func (l *linter) checkApprovals() {
	for _, ri := range l.rules {
		r := ri.r
		if r.Approval == nil {
			continue
		}
		g := approverGroup(r.Approval)
		if !l.ix.HasGroup(g) {
			continue // reported as unknown
		}
		members := l.ix.GroupMembers(g)
		if r.Approval.Count < 1 {
			l.addDefault(r.Pos, CodeApprovalTooSmall, r.ID, "rule %q: approval count %d must be at least 1", r.ID, r.Approval.Count)
			continue
		}
		if len(members) < r.Approval.Count {
			l.addDefault(r.Pos, CodeApprovalTooSmall, r.ID, "rule %q: approval needs %d approvers but group %q has %d member(s)", r.ID, r.Approval.Count, g, len(members))
			continue
		}
		if r.Effect != bundle.EffectApprove {
			continue
		}
		var self []string
		for _, s := range ri.subjects {
			if slices.Contains(members, s) && len(members)-1 < r.Approval.Count {
				self = append(self, s)
			}
		}
		if len(self) > 0 {
			l.addDefault(r.Pos, CodeSelfApproval, r.ID, "rule %q: commands of %s can only be approved with the requester's own approval (group %q has %d member(s), count %d)",
				r.ID, strings.Join(self, ", "), g, len(members), r.Approval.Count)
		}
	}
}
