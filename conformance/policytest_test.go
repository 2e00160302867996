package conformance

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestPolicyTestsPass(t *testing.T) {
	t.Parallel()
	p := currentPolicy(t)
	cases, err := LoadCases("cases")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 || len(p.Tests) == 0 {
		t.Fatalf("%d cases, %d policy tests", len(cases), len(p.Tests))
	}
	rep, err := RunTests(p, append(p.PolicyTests(), cases...))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 {
		var b bytes.Buffer
		rep.WriteText(&b)
		t.Errorf("policy tests fail:\n%s", b.String())
	}
}

func TestPolicyTestFailuresAreReported(t *testing.T) {
	t.Parallel()
	p := currentPolicy(t)
	dir := t.TempDir()
	writeFile(t, dir, "wrong.json", `{"cases": {
		"agents may drop tables": {
			"request": {"identity": "claude-coder", "resource": "orders-db", "sql": "DROP TABLE public.orders", "time": "2026-12-01T10:00:00+01:00"},
			"expect": {"effect": "allow", "rules": ["agents-read-orders"]}
		},
		"wrong masked columns": {
			"request": {"identity": "claude-coder", "resource": "orders-db", "sql": "SELECT name, email FROM customers", "time": "2026-12-01T10:00:00+01:00"},
			"expect": {"effect": "mask", "masked_columns": ["customers.name"]}
		},
		"unparseable is denied": {
			"request": {"identity": "claude-coder", "resource": "orders-db", "sql": "SELEC 1"},
			"expect": {"effect": "deny"}
		}
	}}`)
	cases, err := LoadCases(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunTests(p, cases)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed != 1 || rep.Failed != 2 {
		t.Fatalf("passed %d failed %d: %+v", rep.Passed, rep.Failed, rep.Results)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"FAIL agents may drop tables",
		"effect: expected allow, got deny",
		"missing agents-read-orders",
		"decision rules: deny-agent-ddl",
		"masked_columns: expected [customers.name], got [customers.email]",
		"3 tests: 1 passed, 2 failed",
		"no test exercises: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Three tests exercise only a few rules; the rest are listed.
	if !slices.Contains(rep.Uncovered, "ci-writes-orders") || slices.Contains(rep.Uncovered, "deny-agent-ddl") {
		t.Errorf("uncovered %v", rep.Uncovered)
	}
	var ju bytes.Buffer
	if err := rep.WriteJUnit(&ju); err != nil || strings.Count(ju.String(), "<failure") != 2 {
		t.Errorf("junit (%v):\n%s", err, ju.String())
	}
}

func TestLoadCasesRejects(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, src, want string }{
		{"two requests", `cases: x: {request: {identity: "a", resource: "r", sql: "SELECT 1", ssh: command: "ls"}, expect: effect: "deny"}`, "at most one"},
		{"bad effect", `cases: x: {request: {identity: "a", resource: "r", sql: "SELECT 1"}, expect: effect: "permit"}`, "expect.effect"},
		{"bad time", `cases: x: {request: {identity: "a", resource: "r", sql: "SELECT 1", time: "noon"}, expect: effect: "deny"}`, "RFC 3339"},
		{"unknown field", `cases: x: {request: {identity: "a", resource: "r", sql: "SELECT 1"}, expected: effect: "deny"}`, "unknown field"},
		{"no identity", `cases: x: {request: {resource: "r", sql: "SELECT 1"}, expect: effect: "deny"}`, "identity and resource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "c.cue", tc.src)
			_, err := LoadCases(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckExpect(t *testing.T) {
	t.Parallel()
	allowMasked := Decision{Effect: bundle.EffectAllow, RuleIDs: []string{"a", "m"}, Masked: true, Masking: []string{"classifier:email", "t.c"}}
	cases := []struct {
		name   string
		expect compiler.TestExpect
		got    Decision
		fails  int
	}{
		{"allow matches allow", compiler.TestExpect{Effect: "allow"}, allowMasked, 0},
		{"mask matches masked allow", compiler.TestExpect{Effect: "mask", Rules: []string{"m"}, MaskedColumns: []string{"t.c"}}, allowMasked, 0},
		{"mask needs masking", compiler.TestExpect{Effect: "mask"}, Decision{Effect: bundle.EffectAllow}, 1},
		{"approve is not mask", compiler.TestExpect{Effect: "mask"}, Decision{Effect: bundle.EffectApprove, Masked: true}, 1},
		{"rules are a subset", compiler.TestExpect{Effect: "allow", Rules: []string{"a", "x"}}, allowMasked, 1},
		{"all wrong", compiler.TestExpect{Effect: "deny", Rules: []string{"x"}, MaskedColumns: []string{"t.d"}}, allowMasked, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if f := checkExpect(&tc.expect, &tc.got); len(f) != tc.fails {
				t.Errorf("failures %q, want %d", f, tc.fails)
			}
		})
	}
}
