package conformance

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/proxy"
)

// TestCorpusReproducesRecordedDecisions replays the committed corpus under
// the current policies: every recorded decision is reproduced exactly
// (effect, rule ids, masked), and base against itself changes nothing.
func TestCorpusReproducesRecordedDecisions(t *testing.T) {
	t.Parallel()
	c := corpus(t)
	p := currentPolicy(t)
	res := replay(t, c, p, p)
	for _, d := range res.Drift {
		t.Errorf("%s: %s: recorded %s, replayed %s", d.Pos, d.Command, decisionText(d.Base), decisionText(d.Head))
	}
	if len(res.Changes) != 0 {
		t.Errorf("%d changes replaying a policy against itself", len(res.Changes))
	}
	if res.Statements != c.Statements() || res.Sessions != len(c.Sessions) {
		t.Errorf("replayed %d statements in %d sessions, corpus has %d in %d", res.Statements, res.Sessions, c.Statements(), len(c.Sessions))
	}
	// Without a base, head is compared with the recording.
	res = replay(t, c, nil, p)
	if len(res.Changes) != 0 {
		for _, d := range res.Changes {
			t.Errorf("%s: %s: recorded %s, head %s", d.Pos, d.Command, decisionText(d.Base), decisionText(d.Head))
		}
	}
	// The corpus covers what it is meant to: denials, approvals, masking,
	// prepared statements and cursors.
	seen := map[string]bool{}
	for _, s := range c.Sessions {
		for _, e := range s.Events {
			seen[string(e.Decision.Effect)] = true
			if e.Decision.Masked {
				seen["masked"] = true
			}
			var f proxy.SQLFacts
			if json.Unmarshal(e.Facts, &f) == nil {
				seen[f.Kind] = true
			}
		}
	}
	for _, want := range []string{"allow", "deny", "approve", "masked", "copy", "delete", "alter", "create", "select"} {
		if !seen[want] {
			t.Errorf("corpus has no %q event", want)
		}
	}
}

// countRecorded counts corpus events whose recorded decision matches.
func countRecorded(c *Corpus, match func(e *Event) bool) int {
	n := 0
	for i := range c.Sessions {
		for j := range c.Sessions[i].Events {
			if match(&c.Sessions[i].Events[j]) {
				n++
			}
		}
	}
	return n
}

func TestRevokedGrantIsNewlyDenied(t *testing.T) {
	t.Parallel()
	c := corpus(t)
	base := currentPolicy(t)
	head := variant(t, "revoke", removeRule("agents-read-orders"))
	want := countRecorded(c, func(e *Event) bool {
		return e.Decision.Effect == bundle.EffectAllow && slices.Contains(e.Decision.RuleIDs, "agents-read-orders")
	})
	if want == 0 {
		t.Fatal("corpus has no statement allowed by agents-read-orders")
	}
	rep := BuildReport(replay(t, c, base, head), nil, 3)
	g := groupOf(rep, KindNewlyDenied)
	if g == nil {
		t.Fatalf("no newly denied group; groups %+v", rep.Groups)
	}
	if g.Count != want {
		t.Errorf("newly denied: %d statements, want %d", g.Count, want)
	}
	if !slices.Contains(g.RuleIDs, "agents-read-orders") {
		t.Errorf("rule ids %v do not name the revoked grant", g.RuleIDs)
	}
	if !slices.Equal(g.Identities, []string{"claude-coder", "copilot-agent"}) || !slices.Equal(g.Resources, []string{"orders-db"}) {
		t.Errorf("identities %v resources %v", g.Identities, g.Resources)
	}
	if len(g.Examples) != 3 {
		t.Errorf("%d examples, want 3", len(g.Examples))
	}
	for _, e := range g.Examples {
		if e.Base.Effect != bundle.EffectAllow || e.Head.Effect != bundle.EffectDeny || e.Command == "" {
			t.Errorf("example %+v", e)
		}
	}
	if len(rep.Groups) != 1 {
		t.Errorf("groups %v, want only newly denied", rep.Groups)
	}
	if !rep.Failed() || rep.Unacknowledged != want {
		t.Errorf("failed=%v unacknowledged=%d", rep.Failed(), rep.Unacknowledged)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| Newly denied | " + itoa(want), "<details>", "**unexpected**", "agents-read-orders"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
	var ju bytes.Buffer
	if err := rep.WriteJUnit(&ju); err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatalf("junit: %v\n%s", err, ju.String())
	}
	if len(suites.Suites) != 1 || suites.Suites[0].Failures != 1 {
		t.Errorf("junit suites %+v", suites.Suites)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Unacknowledged != want {
		t.Errorf("json round trip: %v, %d", err, back.Unacknowledged)
	}
}

func TestTighterMaskIsMaskingAdded(t *testing.T) {
	t.Parallel()
	c := corpus(t)
	base := currentPolicy(t)
	head := variant(t, "mask-note", func(p *bundle.Policy) {
		r := ruleByID(p, "mask-customer-pii")
		r.Mask.Columns = append(r.Mask.Columns, "orders.note")
	})
	want := countRecorded(c, func(e *Event) bool {
		var f proxy.SQLFacts
		_ = json.Unmarshal(e.Facts, &f)
		return e.Decision.Effect == bundle.EffectAllow && slices.Contains(e.Decision.RuleIDs, "mask-customer-pii") &&
			slices.Contains(f.Columns, "orders.note")
	})
	if want == 0 {
		t.Fatal("corpus reads no orders.note")
	}
	rep := BuildReport(replay(t, c, base, head), nil, 0)
	g := groupOf(rep, KindMaskingAdded)
	if g == nil || g.Count != want {
		t.Fatalf("masking added: %+v, want %d statements", g, want)
	}
	if len(rep.Groups) != 1 {
		t.Errorf("groups %+v, want only masking added", rep.Groups)
	}
	for _, e := range g.Examples {
		if !slices.Contains(e.Head.Masking, "orders.note") || slices.Contains(e.Base.Masking, "orders.note") {
			t.Errorf("example %q: base masking %v, head %v", e.Command, e.Base.Masking, e.Head.Masking)
		}
	}
	// And the other way round.
	rep = BuildReport(replay(t, c, head, base), nil, 0)
	if g := groupOf(rep, KindMaskingRemoved); g == nil || g.Count != want {
		t.Errorf("masking removed: %+v, want %d", g, want)
	}
}

func TestNoBehaviouralChange(t *testing.T) {
	t.Parallel()
	c := corpus(t)
	base := currentPolicy(t)
	head := variant(t, "cosmetic", func(p *bundle.Policy) {
		ruleByID(p, "agents-read-orders").Description = "reworded"
		// A grant nobody in the corpus uses.
		p.Rules = append(p.Rules, bundle.Rule{ID: "erin-reads-analytics", Subjects: []string{"erin"},
			Resources: []string{"analytics"}, ResolvedResources: []string{"analytics"}, Effect: bundle.EffectAllow,
			SQL: &bundle.SQLMatch{Statements: []string{"select"}}})
	})
	rep := BuildReport(replay(t, c, base, head), nil, 0)
	if rep.Changed != 0 || len(rep.Groups) != 0 || rep.Failed() {
		t.Errorf("cosmetic change reported %d changes: %+v", rep.Changed, rep.Groups)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "No behavioural change") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

func TestApprovalAndRuleChanges(t *testing.T) {
	t.Parallel()
	c := corpus(t)
	base := currentPolicy(t)
	// CI status updates now need a DBA; migrations no longer do.
	head := variant(t, "approvals", func(p *bundle.Policy) {
		r := ruleByID(p, "ci-writes-orders")
		r.Effect = bundle.EffectApprove
		r.Approval = &bundle.ApprovalSpec{Group: "dba", Count: 1, Timeout: "30m"}
		m := ruleByID(p, "ci-migrations-need-approval")
		m.Effect, m.Approval, m.Conditions = bundle.EffectAllow, nil, nil
	})
	rep := BuildReport(replay(t, c, base, head), nil, 0)
	if g := groupOf(rep, KindNewlyApproval); g == nil || g.Count == 0 || !slices.Equal(g.Identities, []string{"ci-deployer"}) {
		t.Errorf("newly requires approval: %+v", g)
	}
	if g := groupOf(rep, KindApprovalNotRequired); g == nil || g.Count == 0 {
		t.Errorf("approval no longer required: %+v", g)
	}
	// Renaming the deciding rule changes only the rule.
	head = variant(t, "rename", func(p *bundle.Policy) { ruleByID(p, "ci-writes-orders").ID = "ci-maintains-orders" })
	rep = BuildReport(replay(t, c, base, head), nil, 0)
	g := groupOf(rep, KindDecidingRuleChanged)
	if g == nil || len(rep.Groups) != 1 || !slices.Contains(g.RuleIDs, "ci-maintains-orders") {
		t.Errorf("rule change: %+v", rep.Groups)
	}
}

func TestExpectedChangesAreAcknowledged(t *testing.T) {
	t.Parallel()
	c := corpus(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "expected.cue", `
expected: [{
	kind:   "newly_denied"
	rule:   "agents-read-orders"
	reason: "agents lose direct read access; they use the reporting replica"
}, {
	kind:     "newly_allowed"
	identity: "nobody"
	reason:   "stale entry"
}]
`)
	exps, err := LoadExpected(path)
	if err != nil {
		t.Fatal(err)
	}
	res := replay(t, c, currentPolicy(t), variant(t, "revoke", removeRule("agents-read-orders")))
	rep := BuildReport(res, exps, 0)
	if rep.Failed() || rep.Unacknowledged != 0 || rep.Acknowledged != rep.Changed || rep.Changed == 0 {
		t.Errorf("changed %d acknowledged %d unacknowledged %d", rep.Changed, rep.Acknowledged, rep.Unacknowledged)
	}
	if len(rep.Stale) != 1 || rep.Stale[0].Identity != "nobody" {
		t.Errorf("stale %+v", rep.Stale)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "acknowledged: agents lose direct read access") {
		t.Errorf("markdown:\n%s", md.String())
	}
	// An expectation for another rule does not acknowledge it.
	path = writeFile(t, dir, "other.cue", `expected: [{kind: "newly_denied", rule: "ci-writes-orders", reason: "x"}]`)
	exps, err = LoadExpected(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep := BuildReport(res, exps, 0); !rep.Failed() {
		t.Error("unrelated expectation acknowledged the change")
	}
}

func TestLoadExpectedRejects(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, src, want string }{
		{"no reason", `expected: [{kind: "newly_denied", rule: "r"}]`, "reason is required"},
		{"bad kind", `expected: [{kind: "denied", rule: "r", reason: "x"}]`, "kind"},
		{"matches everything", `expected: [{kind: "newly_denied", reason: "x"}]`, "at least one"},
		{"unknown field", `expected: [{rules: "r", reason: "x"}]`, "unknown field"},
		{"not concrete", `expected: [{rule: string, reason: "x"}]`, "incomplete"},
		{"syntax", `expected: [{`, "expected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, t.TempDir(), "expected.cue", tc.src)
			_, err := LoadExpected(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if exps, err := LoadExpected(filepath.Join(t.TempDir(), "missing.cue")); err != nil || exps != nil {
		t.Errorf("missing file: %v %v", exps, err)
	}
}

func TestPolicyFromDirectoryAndBundle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "cue.mod"), 0o755); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../cue.mod/module.cue")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cue.mod"), "module.cue", string(mod))
	pdir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../policies/*.cue")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if filepath.Base(f) == "rules.cue" {
			// Coding agents may no longer COPY: already denied; no longer
			// TRUNCATE either, so drop truncate from the deny list.
			s = strings.Replace(s, `"alter", "create", "drop", "truncate",`, `"alter", "create", "drop",`, 1)
		}
		writeFile(t, pdir, filepath.Base(f), s)
	}
	head, err := LoadPolicy(dir, dir, "policies") // a checkout containing policies/
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bundle.Encode(current(t).Bundle)
	if err != nil {
		t.Fatal(err)
	}
	bfile := writeFile(t, dir, "base.bundle.json", string(raw))
	base, err := LoadPolicy(bfile, ".", "policies")
	if err != nil {
		t.Fatal(err)
	}
	rep := BuildReport(replay(t, corpus(t), base, head), nil, 0)
	g := groupOf(rep, KindDecidingRuleChanged)
	if len(rep.Groups) != 1 || g == nil || g.Count != 1 || g.Examples[0].Command != "TRUNCATE orders" {
		t.Errorf("groups %+v", rep.Groups)
	}
	if g != nil && (g.Examples[0].Head.Effect != bundle.EffectDeny || len(g.Examples[0].Head.RuleIDs) != 0) {
		t.Errorf("TRUNCATE under head: %+v", g.Examples[0].Head)
	}
	if _, err := LoadPolicy("no-such-revision-or-file", dir, "policies"); err == nil {
		t.Error("loaded a policy from nothing")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
