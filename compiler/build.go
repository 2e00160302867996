package compiler

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones of time windows are checked the same way everywhere

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// rawPolicy is the decoded, schema-checked policy before compilation.
type rawPolicy struct {
	Identities  map[string]bundle.Identity   `json:"identities"`
	Groups      map[string]bundle.Group      `json:"groups"`
	Resources   map[string]bundle.Resource   `json:"resources"`
	Classifiers map[string]bundle.Classifier `json:"classifiers"`
	Rules       []bundle.Rule                `json:"rules"`
	Settings    bundle.Settings              `json:"settings"`
	Tests       map[string]PolicyTest        `json:"tests"`
}

// build turns the validated CUE value into the bundle policy and the
// policy tests, reporting semantic errors as diagnostics.
func (c *compilation) build(ev evaluated) (*bundle.Policy, []PolicyTest) {
	var raw rawPolicy
	if !c.decode(ev, &raw) {
		return nil, nil
	}
	pol := &bundle.Policy{
		Identities:  []bundle.Identity{},
		Groups:      []bundle.Group{},
		Resources:   []bundle.Resource{},
		Classifiers: []bundle.Classifier{},
		Rules:       []bundle.Rule{},
		Settings:    raw.Settings,
	}
	c.settings(&pol.Settings)

	// Groups first: identities carry their computed memberships.
	memberOf := map[string][]string{}
	groupNames := map[string]bool{}
	for _, name := range sortedKeys(raw.Groups) {
		g := raw.Groups[name]
		g.Name = name
		g.Members = sortedSet(g.Members)
		if g.Members == nil {
			g.Members = []string{}
		}
		g.Pos = c.lookupPos("groups", name)
		groupNames[name] = true
		for _, m := range g.Members {
			memberOf[m] = append(memberOf[m], name)
		}
		pol.Groups = append(pol.Groups, g)
	}
	for _, name := range sortedKeys(raw.Identities) {
		id := raw.Identities[name]
		id.Name = name
		id.Pos = c.lookupPos("identities", name)
		id.Roles = sortedSet(id.Roles)
		id.Groups = sortedSet(memberOf[name])
		if len(id.Match.Claims) == 0 {
			id.Match.Claims = nil
		}
		m := id.Match
		if m.Issuer == "" && m.Subject == "" && m.Email == "" && len(m.Claims) == 0 {
			c.errorf(id.Pos, CodeInvalid, "identities.%s.match: set at least one of issuer, subject, email, claims", name)
		}
		pol.Identities = append(pol.Identities, id)
	}
	byTag := map[string][]string{}
	resourceNames := map[string]bool{}
	for _, name := range sortedKeys(raw.Resources) {
		r := raw.Resources[name]
		r.Name = name
		r.Pos = c.lookupPos("resources", name)
		if !DataPaths[r.Type] {
			c.errorf(r.Pos, CodeUnenforced, "resources.%s: type %q has no data path in this version of Gatehouse (it serves %s); its rules would look enforced and not be",
				name, r.Type, dataPathList())
		}
		r.Tags = sortedSet(r.Tags)
		resourceNames[name] = true
		for _, t := range r.Tags {
			byTag[t] = append(byTag[t], name)
		}
		pol.Resources = append(pol.Resources, r)
	}

	// Custom classifiers; built-in ones are added below when referenced.
	classifiers := map[string]bundle.Classifier{}
	for _, name := range sortedKeys(raw.Classifiers) {
		cl := raw.Classifiers[name]
		cl.Name = name
		cl.Pos = c.lookupPos("classifiers", name)
		if _, err := regexp.Compile(cl.Pattern); err != nil {
			c.errorf(cl.Pos, CodeInvalid, "classifiers.%s.pattern: not a valid RE2 expression: %v", name, err)
		}
		if _, ok := builtinClassifiers[name]; ok {
			c.warnf(cl.Pos, CodeInvalid, "classifiers.%s replaces the built-in classifier of the same name", name)
		}
		classifiers[name] = cl
	}

	seen := map[string]string{}
	for i, r := range raw.Rules {
		r.Index = i
		r.Pos = c.lookupPos("rules", strconv.Itoa(i))
		where := "rules." + strconv.Itoa(i)
		if r.ID != "" {
			where += " (" + r.ID + ")"
		}
		if prev, dup := seen[r.ID]; dup {
			c.errorf(r.Pos, CodeInvalid, "%s: duplicate rule id %q, first declared at %s", where, r.ID, prev)
		} else {
			seen[r.ID] = r.Pos
		}
		c.rule(&r, where, &pol.Settings)
		r.Subjects = sortedSet(r.Subjects)
		r.Resources = sortedSet(r.Resources)
		r.ResolvedResources = resolveResources(r.Resources, pol.Resources, byTag, resourceNames)
		if r.Mask != nil {
			for _, name := range r.Mask.Classifiers {
				if _, ok := classifiers[name]; ok {
					continue
				}
				if b, ok := builtinClassifiers[name]; ok {
					b.Name = name
					b.Builtin = true
					classifiers[name] = b
					continue
				}
				// The runtime cannot mask with a classifier it does not
				// have, so an unknown name is an error, not a lint.
				c.errorf(c.lookupPos("rules", strconv.Itoa(i), "mask", "classifiers"), CodeInvalid,
					"%s: mask.classifiers: unknown classifier %q (built-in: %s)", where, name, strings.Join(BuiltinClassifierNames(), ", "))
			}
		}
		if r.Approval != nil && r.Approval.Group != "" && !groupNames[r.Approval.Group] {
			c.errorf(c.lookupPos("rules", strconv.Itoa(i), "approval", "group"), CodeInvalid,
				"%s: approval.group: unknown group %q", where, r.Approval.Group)
		}
		pol.Rules = append(pol.Rules, r)
	}
	for _, name := range sortedKeys(classifiers) {
		pol.Classifiers = append(pol.Classifiers, classifiers[name])
	}

	var tests []PolicyTest
	for _, name := range sortedKeys(raw.Tests) {
		t := raw.Tests[name]
		t.Name = name
		t.Pos = c.lookupPos("tests", name)
		c.test(&t)
		tests = append(tests, t)
	}
	return pol, tests
}

// decode fills raw from the evaluated policy.
//
// Exporting the concrete value to JSON once and decoding that with
// encoding/json is several times faster than cue.Value.Decode, which
// builds an evaluation context and sorts the fields of every struct it
// visits. The policy package on its own (ev.data) is cheaper still to
// export than its unification with the schema, and it holds the same
// concrete values: the schema only constrains (types, patterns, bounds,
// closedness, required fields) and provides no values or defaults
// (schemaSuppliesValues), and
// ev.policy has already been validated as concrete. Two cases can make
// the two differ, and both export ev.policy instead: a default in the
// policy's own sources, which the schema could rule out in favour of
// another value, and a value that is concrete only together with the
// schema (ev.data does not export). A value that encoding/json cannot
// hold (an integer out of range) is decoded with cue.Value.Decode, as
// before, which reports it.
func (c *compilation) decode(ev evaluated, raw *rawPolicy) bool {
	var data []byte
	var err error
	if !ev.defaults {
		data, err = ev.data.MarshalJSON()
	}
	if ev.defaults || err != nil {
		data, err = ev.policy.MarshalJSON()
	}
	if err == nil {
		err = json.Unmarshal(data, raw)
	}
	if err == nil {
		return true
	}
	*raw = rawPolicy{}
	if err := ev.policy.Decode(raw); err != nil {
		c.cueDiags(err, CodeSchema)
		return false
	}
	return true
}

func (c *compilation) settings(s *bundle.Settings) {
	if s.Audience == "" {
		s.Audience = DefaultAudience
	}
	if s.DefaultApprovalTimeout == "" {
		s.DefaultApprovalTimeout = DefaultApprovalTimeout
	} else if d, err := time.ParseDuration(s.DefaultApprovalTimeout); err != nil || d <= 0 {
		c.errorf(c.lookupPos("settings", "default_approval_timeout"), CodeInvalid,
			"settings.default_approval_timeout: %q is not a positive duration such as \"15m\"", s.DefaultApprovalTimeout)
	}
}

// DataPaths are the resource types this version of Gatehouse serves. A
// policy naming another type does not compile (CodeUnenforced): a grant
// that nothing enforces must not look like one.
var DataPaths = map[bundle.ResourceType]bool{
	bundle.ResourcePostgres: true,
}

func dataPathList() string {
	var names []string
	for t := range DataPaths {
		names = append(names, string(t))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// rule normalises one rule in place and checks what the schema cannot.
func (c *compilation) rule(r *bundle.Rule, where string, s *bundle.Settings) {
	idx := strconv.Itoa(r.Index)
	pos := func(labels ...string) string {
		return c.lookupPos(append([]string{"rules", idx}, labels...)...)
	}
	n := 0
	if r.SQL != nil {
		n++
		r.SQL.Statements = sortedSet(lower(r.SQL.Statements))
		r.SQL.Tables = sortedSet(r.SQL.Tables)
		r.SQL.Columns = sortedSet(r.SQL.Columns)
		r.SQL.Functions = sortedSet(r.SQL.Functions)
	}
	if r.SSH != nil {
		n++
		r.SSH.Commands = sortedSet(r.SSH.Commands)
	}
	if r.HTTP != nil {
		n++
		r.HTTP.Methods = sortedSet(upper(r.HTTP.Methods))
		r.HTTP.Hosts = sortedSet(r.HTTP.Hosts)
		r.HTTP.Paths = sortedSet(r.HTTP.Paths)
	}
	if r.Kubernetes != nil {
		n++
		k := r.Kubernetes
		k.Verbs = sortedSet(lower(k.Verbs))
		k.Resources = sortedSet(k.Resources)
		k.Namespaces = sortedSet(k.Namespaces)
		k.ExecCommands = sortedSet(k.ExecCommands)
	}
	if n > 1 {
		c.errorf(pos(), CodeInvalid, "%s: at most one of sql, ssh, http, kubernetes may be set", where)
	}
	for _, b := range []struct {
		set   bool
		block string
		typ   bundle.ResourceType
	}{{r.SSH != nil, "ssh", bundle.ResourceSSH}, {r.HTTP != nil, "http", bundle.ResourceHTTP}, {r.Kubernetes != nil, "kubernetes", bundle.ResourceKubernetes}} {
		if b.set && !DataPaths[b.typ] {
			c.errorf(pos(b.block), CodeUnenforced, "%s: %s rules have no data path in this version of Gatehouse (it serves %s); the rule would look enforced and not be", where, b.block, dataPathList())
		}
	}
	switch {
	case r.Effect == bundle.EffectApprove && r.Approval == nil:
		c.errorf(pos(), CodeIncomplete, "%s: effect \"approve\" requires approval", where)
	case r.Effect == bundle.EffectMask && r.Mask == nil:
		c.errorf(pos(), CodeIncomplete, "%s: effect \"mask\" requires mask", where)
	}
	if r.Mask != nil {
		if r.Effect != bundle.EffectMask {
			c.errorf(pos("mask"), CodeInvalid, "%s: mask is only allowed on rules with effect \"mask\"", where)
		}
		r.Mask.Columns = sortedSet(r.Mask.Columns)
		r.Mask.Classifiers = sortedSet(r.Mask.Classifiers)
		r.Mask.JSONPaths = sortedSet(r.Mask.JSONPaths)
		if r.Mask.Binary == "" {
			r.Mask.Binary = "null"
		}
		if r.Mask.Style == "" {
			r.Mask.Style = "redact"
		}
		if len(r.Mask.Columns) == 0 && len(r.Mask.Classifiers) == 0 && len(r.Mask.JSONPaths) == 0 {
			c.errorf(pos("mask"), CodeInvalid, "%s: mask names no columns, classifiers or json_paths", where)
		}
	}
	if r.Approval != nil {
		if r.Effect != bundle.EffectApprove {
			c.errorf(pos("approval"), CodeInvalid, "%s: approval is only allowed on rules with effect \"approve\"", where)
		}
		if r.Approval.Count == 0 {
			r.Approval.Count = 1
		}
		if r.Approval.Timeout == "" {
			r.Approval.Timeout = s.DefaultApprovalTimeout
		} else if d, err := time.ParseDuration(r.Approval.Timeout); err != nil || d <= 0 {
			c.errorf(pos("approval", "timeout"), CodeInvalid, "%s: approval.timeout %q is not a positive duration such as \"30m\"", where, r.Approval.Timeout)
		}
	}
	if r.Conditions != nil {
		for i, w := range r.Conditions.TimeWindows {
			if w.Timezone != "" {
				if _, err := time.LoadLocation(w.Timezone); err != nil {
					c.errorf(pos("conditions", "time_windows", strconv.Itoa(i), "timezone"), CodeInvalid,
						"%s: unknown time zone %q", where, w.Timezone)
				}
			}
			if w.Start == w.End {
				c.errorf(pos("conditions", "time_windows", strconv.Itoa(i)), CodeInvalid,
					"%s: time window start and end are both %s", where, w.Start)
			}
		}
		if len(r.Conditions.TimeWindows) == 0 && r.Conditions.MaxRows == 0 {
			r.Conditions = nil
		}
	}
	if r.Expires != "" && !validDate(r.Expires) {
		c.errorf(pos("expires"), CodeInvalid, "%s: expires %q is not an RFC 3339 date or date-time", where, r.Expires)
	}
	if r.Review != nil {
		if !validEvery(r.Review.Every) {
			c.errorf(pos("review", "every"), CodeInvalid, "%s: review.every %q is not a number of days (\"90d\") or a duration", where, r.Review.Every)
		}
		if r.Review.LastReviewed != "" && !validDate(r.Review.LastReviewed) {
			c.errorf(pos("review", "last_reviewed"), CodeInvalid, "%s: review.last_reviewed %q is not an RFC 3339 date", where, r.Review.LastReviewed)
		}
	}
}

func (c *compilation) test(t *PolicyTest) {
	where := "tests." + t.Name
	req := &t.Request
	n := 0
	for _, set := range []bool{req.SQL != "", req.Facts != nil, req.SSH != nil, req.HTTP != nil, req.Kubernetes != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		c.errorf(t.Pos, CodeInvalid, "%s.request: at most one of sql, facts, ssh, http, kubernetes may be set", where)
	}
	if req.Time != "" {
		if _, err := time.Parse(time.RFC3339, req.Time); err != nil {
			c.errorf(c.lookupPos("tests", t.Name, "request", "time"), CodeInvalid, "%s.request.time: %q is not an RFC 3339 time", where, req.Time)
		}
	}
	if req.Facts != nil {
		req.Facts.Kind = strings.ToLower(req.Facts.Kind)
		req.Facts.Tables = sortedSet(req.Facts.Tables)
		req.Facts.Columns = sortedSet(req.Facts.Columns)
		req.Facts.Functions = sortedSet(req.Facts.Functions)
	}
	if req.HTTP != nil {
		req.HTTP.Method = strings.ToUpper(req.HTTP.Method)
	}
	t.Expect.Rules = sortedSet(t.Expect.Rules)
	t.Expect.MaskedColumns = sortedSet(t.Expect.MaskedColumns)
}

// resolveResources expands "*" and "tag:T" references into resource names.
// Names that are not resources and unknown tags expand to nothing (they stay
// as written in Rule.Resources, where the linter reports them).
func resolveResources(refs []string, all []bundle.Resource, byTag map[string][]string, known map[string]bool) []string {
	out := []string{}
	if len(refs) == 0 {
		refs = []string{"*"}
	}
	for _, ref := range refs {
		switch {
		case ref == "*":
			for _, r := range all {
				out = append(out, r.Name)
			}
		case strings.HasPrefix(ref, "tag:"):
			out = append(out, byTag[strings.TrimPrefix(ref, "tag:")]...)
		default:
			if known[ref] {
				out = append(out, ref)
			}
		}
	}
	out = sortedSet(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func validDate(s string) bool {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return true
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func validEvery(s string) bool {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		return err == nil && n > 0
	}
	d, err := time.ParseDuration(s)
	return err == nil && d > 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedSet returns s sorted without duplicates; nil for an empty s.
func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToUpper(v)
	}
	return out
}
