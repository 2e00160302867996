package conformance

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// Decision is a decision as replay and the test runner report it.
type Decision struct {
	Effect  bundle.Effect `json:"effect"`
	RuleIDs []string      `json:"rule_ids,omitempty"`
	// Masked is true when at least one mask applies.
	Masked bool `json:"masked,omitempty"`
	// Masking lists what is masked, sorted: the statement's columns that a
	// mask covers ("customers.email"), and "classifier:NAME" and
	// "json_path:PATH" for content masks. Nil when unknown (a recorded
	// decision only says whether anything was masked).
	Masking []string `json:"masking,omitempty"`
	Reason  string   `json:"reason,omitempty"`
}

// classified is the classification of one distinct SQL text, shared by all
// events with that text.
type classified struct {
	stmts []sqlclass.Statement
	err   error
	// facts[i] are the engine facts of the statement that decides
	// stmts[i] when that does not depend on session state (its inner
	// statement for PREPARE and DECLARE); unused for EXECUTE and FETCH.
	facts []engine.SQLFacts
}

func classify(c sqlclass.Classifier, text string) *classified {
	stmts, err := c.Classify(text)
	cl := &classified{stmts: stmts, err: err, facts: make([]engine.SQLFacts, len(stmts))}
	for i := range stmts {
		st := &stmts[i]
		switch st.Kind {
		case "prepare", "declare":
			if st.Inner != nil {
				cl.facts[i] = proxy.Facts(st.Inner)
			}
		default:
			cl.facts[i] = proxy.Facts(st)
		}
	}
	return cl
}

// decider decides events under one policy. It reuses its buffers: not safe
// for concurrent use, and its outcome is valid until the next call.
type decider struct {
	p     *Policy
	d     engine.Decision
	req   engine.Request
	facts engine.SQLFacts // the request's SQL facts (no allocation per call)

	effect   bundle.Effect
	rules    []string
	masks    []*bundle.MaskSpec
	reason   string
	columns  [][]string // columns of the judged statements, for masking
	maskKeys []string   // mask spec keys in rule order, to compare masks
	denyBuf  []string   // rules of the first denied statement
}

func newDecider(p *Policy) *decider { return &decider{p: p} }

// principal returns the groups of identity in the policy.
func (dc *decider) principal(identity string, recordedGroups []string, anonymized bool) ([]string, bool) {
	if id, ok := dc.p.identities[identity]; ok {
		return id.Groups, true
	}
	if anonymized {
		// A pseudonymised identity is judged by its recorded groups.
		return recordedGroups, true
	}
	return nil, false
}

func (dc *decider) reset() {
	dc.effect, dc.reason = bundle.EffectAllow, ""
	dc.rules = dc.rules[:0]
	dc.masks = dc.masks[:0]
	dc.columns = dc.columns[:0]
	dc.maskKeys = dc.maskKeys[:0]
}

func (dc *decider) unknownIdentity() {
	dc.reset()
	dc.effect, dc.reason = bundle.EffectDeny, "identity is not in this policy (the gateway would refuse the session)"
}

// decideSQL judges one command's classified SQL like the gateway's
// CheckSQL: an unparseable command is denied; EXECUTE and FETCH are judged
// as the statement they refer to; implicitly allowed kinds need no grant;
// any denied statement denies the command, else any approve makes it
// approve. state is committed when the command is not denied.
func (dc *decider) decideSQL(identity string, groups []string, resource string, t time.Time, cl *classified, state *proxy.SQLState) {
	dc.reset()
	if cl.err != nil {
		dc.effect, dc.reason = bundle.EffectDeny, "unparseable: "+cl.err.Error()
		return
	}
	denied, approve := false, false
	dc.denyBuf = dc.denyBuf[:0]
	for i := range cl.stmts {
		st := &cl.stmts[i]
		target, derr := state.Resolve(st)
		if derr != nil {
			if !denied {
				denied, dc.reason = true, derr.Message
			}
			continue
		}
		if proxy.ImplicitlyAllowed(target.Kind, target.SubKind) {
			continue
		}
		if st.Kind == "execute" || st.Kind == "fetch" {
			dc.facts = proxy.Facts(&target)
		} else {
			dc.facts = cl.facts[i]
		}
		dc.req = engine.Request{Identity: identity, Groups: groups, Resource: resource, Time: t, SQL: &dc.facts}
		dc.p.Engine.Decide(&dc.req, &dc.d)
		switch dc.d.Effect {
		case bundle.EffectDeny:
			if !denied {
				denied, dc.reason = true, dc.d.Reason
				dc.denyBuf = append(dc.denyBuf, dc.d.RuleIDs...)
			}
			continue
		case bundle.EffectApprove:
			approve = true
		}
		if dc.reason == "" {
			dc.reason = dc.d.Reason
		}
		dc.rules = append(dc.rules, dc.d.RuleIDs...)
		dc.masks = append(dc.masks, dc.d.Masks...)
		if len(dc.d.Masks) > 0 {
			dc.columns = append(dc.columns, target.Columns)
		}
	}
	switch {
	case denied:
		dc.effect = bundle.EffectDeny
		dc.rules = append(dc.rules[:0], dc.denyBuf...)
		dc.masks = dc.masks[:0]
		dc.columns = dc.columns[:0]
		return
	case approve:
		dc.effect = bundle.EffectApprove
	}
	state.Commit(cl.stmts)
	dc.collectMaskKeys()
}

// otherFacts are the recorded facts of non-SQL protocols.
type otherFacts struct {
	Command   string `json:"command"`
	Method    string `json:"method"`
	Host      string `json:"host"`
	Path      string `json:"path"`
	Verb      string `json:"verb"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// decideRecorded judges an event from its recorded facts: SQL of
// resources without a classifier (MySQL), SSH, HTTP and Kubernetes.
func (dc *decider) decideRecorded(identity string, groups []string, resource, protocol string, t time.Time, ev *Event) {
	dc.reset()
	dc.req = engine.Request{Identity: identity, Groups: groups, Resource: resource, Time: t}
	switch bundle.ResourceType(protocol) {
	case bundle.ResourcePostgres, bundle.ResourceMySQL:
		var f proxy.SQLFacts
		if len(ev.Facts) == 0 || json.Unmarshal(ev.Facts, &f) != nil {
			dc.effect, dc.reason = bundle.EffectDeny, "no recorded facts"
			return
		}
		if proxy.ImplicitlyAllowed(f.Kind, f.SubKind) {
			return
		}
		st := sqlclass.Statement{Kind: f.Kind, TablesRead: f.TablesRead, TablesWritten: f.TablesWritten,
			Columns: f.Columns, DangerousFunctions: f.DangerousFunctions, HasWhere: f.HasWhere}
		facts := proxy.Facts(&st)
		dc.req.SQL = &facts
		defer func() {
			if len(dc.masks) > 0 {
				dc.columns = append(dc.columns, f.Columns)
			}
		}()
	default:
		var f otherFacts
		if len(ev.Facts) > 0 {
			_ = json.Unmarshal(ev.Facts, &f)
		}
		switch bundle.ResourceType(protocol) {
		case bundle.ResourceSSH:
			cmd := f.Command
			if len(ev.Facts) == 0 {
				cmd = ev.Command
			}
			dc.req.SSH = &engine.SSHFacts{Command: cmd}
		case bundle.ResourceHTTP:
			if f.Method == "" && f.Path == "" {
				f.Method, f.Path, _ = strings.Cut(ev.Command, " ")
			}
			dc.req.HTTP = &engine.HTTPFacts{Method: f.Method, Host: f.Host, Path: f.Path}
		case bundle.ResourceKubernetes:
			dc.req.Kubernetes = &engine.KubernetesFacts{Verb: f.Verb, Resource: f.Resource, Namespace: f.Namespace, Name: f.Name, Command: f.Command}
		default:
			dc.effect, dc.reason = bundle.EffectDeny, "unknown protocol "+protocol
			return
		}
	}
	dc.p.Engine.Decide(&dc.req, &dc.d)
	dc.effect, dc.reason = dc.d.Effect, dc.d.Reason
	dc.rules = append(dc.rules, dc.d.RuleIDs...)
	dc.masks = append(dc.masks, dc.d.Masks...)
	dc.collectMaskKeys()
}

func (dc *decider) collectMaskKeys() {
	for _, id := range dc.rules {
		if k, ok := dc.p.maskKey[id]; ok {
			dc.maskKeys = append(dc.maskKeys, k)
		}
	}
}

// decidingRules returns the rules of the decision that are not mask rules.
func (dc *decider) decidingRules(buf []string) []string {
	buf = buf[:0]
	for _, id := range dc.rules {
		if dc.p.ruleEffect[id] != bundle.EffectMask {
			buf = append(buf, id)
		}
	}
	return buf
}

// decision copies the current outcome out; with detail, what is masked is
// computed too.
func (dc *decider) decision(detail bool) Decision {
	d := Decision{Effect: dc.effect, Reason: dc.reason, Masked: len(dc.masks) > 0}
	if len(dc.rules) > 0 {
		d.RuleIDs = slices.Clone(dc.rules)
	}
	if detail {
		d.Masking = masking(dc.masks, dc.columns)
	}
	return d
}

// masking lists what masks cover for statements with the given columns.
func masking(masks []*bundle.MaskSpec, columns [][]string) []string {
	if len(masks) == 0 {
		return nil
	}
	set := map[string]bool{}
	for _, m := range masks {
		for _, c := range m.Classifiers {
			set["classifier:"+c] = true
		}
		for _, p := range m.JSONPaths {
			set["json_path:"+p] = true
		}
		for _, pat := range m.Columns {
			mp, ok := parseMaskPattern(pat)
			if !ok {
				continue
			}
			for _, cols := range columns {
				for _, c := range cols {
					if e, ok := mp.cover(c); ok {
						set[e] = true
					}
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// maskPattern is a mask column pattern, as runtime/mask reads it.
type maskPattern struct{ schema, table, column string }

func parseMaskPattern(s string) (maskPattern, bool) {
	parts := strings.Split(strings.ToLower(s), ".")
	switch len(parts) {
	case 2:
		return maskPattern{table: parts[0], column: parts[1]}, true
	case 3:
		return maskPattern{schema: parts[0], table: parts[1], column: parts[2]}, true
	}
	return maskPattern{}, false
}

func wild(p, v string) bool { return p == "*" || p == v }

// cover reports whether the pattern masks the statement column c
// ("table.column", "schema.table.column", "?.column", "table.*") and names
// the masked column "table.column". An unknown table ("?") or a star
// matches fail-safe, as the masking engine does.
func (p maskPattern) cover(c string) (string, bool) {
	c = strings.ToLower(c)
	i := strings.LastIndexByte(c, '.')
	if i < 0 {
		return "", false
	}
	tbl, col := c[:i], c[i+1:]
	schema := ""
	if j := strings.LastIndexByte(tbl, '.'); j >= 0 {
		schema, tbl = tbl[:j], tbl[j+1:]
	}
	if tbl != "?" && !wild(p.table, tbl) {
		return "", false
	}
	if p.schema != "" && schema != "" && !wild(p.schema, schema) {
		return "", false
	}
	if col != "*" && !wild(p.column, col) {
		return "", false
	}
	name := tbl
	if tbl == "?" {
		name = p.table
	}
	if col == "*" {
		col = p.column
	}
	return name + "." + col, true
}
