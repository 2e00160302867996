package conformance

import (
	"encoding/json"
	"fmt"
	"io"

	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// DefaultTestTime is the request time of a test that gives none: a Monday
// in business hours (UTC), fixed so results do not depend on the clock.
var DefaultTestTime = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// EffectMask is the test effect "mask": granted (allow) with at least one
// mask applied.
const EffectMask = "mask"

// TestResult is the outcome of one policy test.
type TestResult struct {
	Name   string              `json:"name"`
	Source string              `json:"source"` // "policy" or the case file
	Pos    string              `json:"pos,omitempty"`
	Expect compiler.TestExpect `json:"expect"`
	Got    Decision            `json:"got"`
	Passed bool                `json:"passed"`
	// Failures say what differs, one line each.
	Failures []string `json:"failures,omitempty"`
}

// TestReport is the outcome of RunTests.
type TestReport struct {
	Revision string       `json:"revision"`
	Results  []TestResult `json:"results"`
	Passed   int          `json:"passed"`
	Failed   int          `json:"failed"`
	// Uncovered are the rules (by id, in rule order) that no test's
	// decision names.
	Uncovered []string `json:"uncovered_rules"`
}

// NamedTest is a policy test with where it came from.
type NamedTest struct {
	compiler.PolicyTest
	Source string
}

// casesFile is the layout of a conformance case file.
type casesFile struct {
	Cases map[string]compiler.PolicyTest `json:"cases"`
}

// LoadCases reads expected-decision cases from every *.cue and *.json
// file of dir (a missing dir is no cases). A file holds
// `cases: {"name": {request: {...}, expect: {...}}}`, the same form as the
// policy's `tests`.
func LoadCases(dir string) ([]NamedTest, error) {
	if !isDir(dir) {
		return nil, nil
	}
	var files []string
	for _, pat := range []string{"*.cue", "*.json"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var out []NamedTest
	for _, f := range files {
		var cf casesFile
		if err := loadData(f, &cf); err != nil {
			return nil, err
		}
		names := make([]string, 0, len(cf.Cases))
		for n := range cf.Cases {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t := cf.Cases[n]
			t.Name = n
			if err := normalizeTest(&t); err != nil {
				return nil, fmt.Errorf("%s: case %q: %w", f, n, err)
			}
			out = append(out, NamedTest{PolicyTest: t, Source: f})
		}
	}
	return out, nil
}

// normalizeTest checks a case the way the compiler checks policy tests.
func normalizeTest(t *compiler.PolicyTest) error {
	req := &t.Request
	n := 0
	for _, set := range []bool{req.SQL != "", req.Facts != nil, req.SSH != nil, req.HTTP != nil, req.Kubernetes != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("request: at most one of sql, facts, ssh, http, kubernetes may be set")
	}
	if req.Time != "" {
		if _, err := time.Parse(time.RFC3339, req.Time); err != nil {
			return fmt.Errorf("request.time %q is not an RFC 3339 time", req.Time)
		}
	}
	switch t.Expect.Effect {
	case bundle.EffectAllow, bundle.EffectDeny, bundle.EffectApprove, EffectMask:
	default:
		return fmt.Errorf("expect.effect %q: want allow, deny, approve or mask", t.Expect.Effect)
	}
	if req.Identity == "" || req.Resource == "" {
		return fmt.Errorf("request: identity and resource are required")
	}
	if req.Facts != nil {
		req.Facts.Kind = strings.ToLower(req.Facts.Kind)
	}
	if req.HTTP != nil {
		req.HTTP.Method = strings.ToUpper(req.HTTP.Method)
	}
	return nil
}

// PolicyTests returns the policy's own tests as named tests.
func (p *Policy) PolicyTests() []NamedTest {
	out := make([]NamedTest, len(p.Tests))
	for i, t := range p.Tests {
		out[i] = NamedTest{PolicyTest: t, Source: "policy"}
	}
	return out
}

// RunTests decides every test under p through the runtime's classifier and
// engine, exactly as the gateway would (SQL text is classified and
// converted with proxy.Facts), and compares with the expectation:
//
//   - effect: allow, deny and approve must equal the decision's effect;
//     "mask" means allowed with at least one mask applied.
//   - rules (if given): every listed rule id must be among the decision's
//     rule ids.
//   - masked_columns (if given): exactly these statement columns must be
//     masked (content masks are not columns).
func RunTests(p *Policy, tests []NamedTest) (*TestReport, error) {
	pg, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		return nil, err
	}
	rep := &TestReport{Revision: p.Revision()}
	covered := map[string]bool{}
	dc := newDecider(p)
	for _, t := range tests {
		got := decideTest(dc, pg, &t.Request)
		for _, id := range got.RuleIDs {
			covered[id] = true
		}
		r := TestResult{Name: t.Name, Source: t.Source, Pos: t.Pos, Expect: t.Expect, Got: got}
		r.Failures = checkExpect(&t.Expect, &got)
		r.Passed = len(r.Failures) == 0
		if r.Passed {
			rep.Passed++
		} else {
			rep.Failed++
		}
		rep.Results = append(rep.Results, r)
	}
	for _, r := range p.Bundle.Policy.Rules {
		if !covered[r.ID] {
			rep.Uncovered = append(rep.Uncovered, r.ID)
		}
	}
	return rep, nil
}

func decideTest(dc *decider, pg sqlclass.Classifier, req *compiler.TestRequest) Decision {
	t := DefaultTestTime
	if req.Time != "" {
		if pt, err := time.Parse(time.RFC3339, req.Time); err == nil {
			t = pt
		}
	}
	groups, known := dc.principal(req.Identity, nil, false)
	if !known {
		dc.unknownIdentity()
		return dc.decision(true)
	}
	if req.SQL != "" {
		dc.decideSQL(req.Identity, groups, req.Resource, t, classify(pg, req.SQL), proxy.NewSQLState())
		return dc.decision(true)
	}
	dc.reset()
	dc.req = engine.Request{Identity: req.Identity, Groups: groups, Resource: req.Resource, Time: t}
	switch {
	case req.Facts != nil:
		f := engine.SQLFacts{Kind: req.Facts.Kind, Tables: req.Facts.Tables, Columns: req.Facts.Columns,
			Functions: req.Facts.Functions, HasWhere: req.Facts.HasWhere}
		if proxy.ImplicitlyAllowed(f.Kind, "") {
			dc.reason = proxy.ImplicitReason
			return dc.decision(true)
		}
		dc.req.SQL = &f
	case req.SSH != nil:
		cmd := req.SSH.Command
		if cmd == "shell" {
			cmd = ""
		}
		dc.req.SSH = &engine.SSHFacts{Command: cmd}
	case req.HTTP != nil:
		dc.req.HTTP = &engine.HTTPFacts{Method: req.HTTP.Method, Host: req.HTTP.Host, Path: req.HTTP.Path}
	case req.Kubernetes != nil:
		k := req.Kubernetes
		dc.req.Kubernetes = &engine.KubernetesFacts{Verb: k.Verb, Resource: k.Resource, Namespace: k.Namespace, Command: k.Command}
	}
	dc.p.Engine.Decide(&dc.req, &dc.d)
	dc.effect, dc.reason = dc.d.Effect, dc.d.Reason
	dc.rules = append(dc.rules, dc.d.RuleIDs...)
	dc.masks = append(dc.masks, dc.d.Masks...)
	if req.Facts != nil && len(dc.masks) > 0 {
		dc.columns = append(dc.columns, req.Facts.Columns)
	}
	return dc.decision(true)
}

func checkExpect(e *compiler.TestExpect, got *Decision) []string {
	var f []string
	want := string(e.Effect)
	switch {
	case want == EffectMask:
		if got.Effect != bundle.EffectAllow || !got.Masked {
			f = append(f, fmt.Sprintf("effect: expected mask (allow with masking), got %s", effectText(got)))
		}
	case bundle.Effect(want) != got.Effect:
		f = append(f, fmt.Sprintf("effect: expected %s, got %s", want, effectText(got)))
	}
	var missing []string
	for _, id := range e.Rules {
		if !slices.Contains(got.RuleIDs, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		f = append(f, fmt.Sprintf("rules: expected %s, decision named [%s] (missing %s)",
			"["+strings.Join(e.Rules, ", ")+"]", strings.Join(got.RuleIDs, ", "), strings.Join(missing, ", ")))
	}
	if len(e.MaskedColumns) > 0 {
		var cols []string
		for _, m := range got.Masking {
			if !strings.Contains(m, ":") {
				cols = append(cols, m)
			}
		}
		want := slices.Clone(e.MaskedColumns)
		for i := range want {
			want[i] = strings.ToLower(want[i])
		}
		sort.Strings(want)
		if !slices.Equal(want, cols) {
			f = append(f, fmt.Sprintf("masked_columns: expected [%s], got [%s]", strings.Join(want, ", "), strings.Join(cols, ", ")))
		}
	}
	return f
}

func effectText(d *Decision) string {
	s := string(d.Effect)
	if d.Masked && d.Effect != bundle.EffectDeny {
		s += " (masked)"
	}
	if d.Reason != "" && d.Effect == bundle.EffectDeny && len(d.RuleIDs) == 0 {
		s += " (" + d.Reason + ")"
	}
	return s
}

// WriteText writes failures in detail, then a summary and the uncovered
// rules.
func (r *TestReport) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, t := range r.Results {
		if t.Passed {
			continue
		}
		where := t.Source
		if t.Pos != "" {
			where = t.Pos
		}
		fmt.Fprintf(&b, "FAIL %s (%s)\n", t.Name, where)
		for _, f := range t.Failures {
			fmt.Fprintf(&b, "     %s\n", f)
		}
		if len(t.Got.RuleIDs) > 0 {
			fmt.Fprintf(&b, "     decision rules: %s\n", strings.Join(t.Got.RuleIDs, ", "))
		}
	}
	fmt.Fprintf(&b, "%d tests: %d passed, %d failed\n", len(r.Results), r.Passed, r.Failed)
	if len(r.Uncovered) > 0 {
		fmt.Fprintf(&b, "%d rule(s) no test exercises: %s\n", len(r.Uncovered), strings.Join(r.Uncovered, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as JSON.
func (r *TestReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *TestReport) junitSuite() junitSuite {
	s := junitSuite{Name: "gatehouse.policy-tests"}
	for _, t := range r.Results {
		c := junitCase{Name: t.Name, Classname: "policy." + filepath.Base(t.Source)}
		if !t.Passed {
			c.Failure = &junitFailure{Message: t.Failures[0], Text: strings.Join(t.Failures, "\n")}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	return s
}

// WriteJUnit writes the test results as JUnit XML.
func (r *TestReport) WriteJUnit(w io.Writer) error { return writeJUnit(w, r.junitSuite()) }

// markdown writes the test results for the combined check report.
func (r *TestReport) markdown(b *strings.Builder, h string) {
	fmt.Fprintf(b, "%s Policy tests\n\n%d tests: %d passed, %d failed.\n\n", h, len(r.Results), r.Passed, r.Failed)
	if r.Failed > 0 {
		b.WriteString("| test | source | failure |\n|---|---|---|\n")
		for _, t := range r.Results {
			if !t.Passed {
				fmt.Fprintf(b, "| %s | %s | %s |\n", mdEscape(t.Name), mdEscape(firstNonEmpty(t.Pos, t.Source)), mdEscape(strings.Join(t.Failures, "; ")))
			}
		}
		b.WriteString("\n")
	}
	if len(r.Uncovered) > 0 {
		fmt.Fprintf(b, "Rules no test exercises: %s.\n\n", mdEscape(strings.Join(r.Uncovered, ", ")))
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
