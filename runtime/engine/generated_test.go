package engine_test

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/engine/enginetest"
)

// TestGeneratedMatchesReference checks the index against a scan of every
// rule on the generated 1,000-rule policy, including requests whose groups
// differ from the identity's (the slow path).
func TestGeneratedMatchesReference(t *testing.T) {
	t.Parallel()
	b := enginetest.Generate(enginetest.DefaultConfig)
	e, err := engine.New(b)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	reqs := enginetest.Requests(b, 3, 5000)
	counts := map[string]int{}
	var d engine.Decision
	for i, req := range reqs {
		if i%5 == 0 {
			r := *req
			r.Groups = append([]string{enginetest.GroupName(i % 20)}, req.Groups...)
			req = &r
		}
		e.Decide(req, &d)
		ref := engine.ReferenceDecide(e, req)
		if d.Effect != ref.Effect || !slices.Equal(d.RuleIDs, ref.RuleIDs) {
			t.Fatalf("request %d %+v: engine %s %v, reference %s %v", i, *req, d.Effect, d.RuleIDs, ref.Effect, ref.RuleIDs)
		}
		k := string(d.Effect)
		if d.Effect == bundle.EffectDeny && len(d.RuleIDs) == 0 {
			k = "default-deny"
		}
		if len(d.Masks) > 0 {
			k += "+mask"
		}
		counts[k]++
	}
	// The generated mix must exercise every outcome, or the benchmark
	// cases below would not exist.
	counts["approve (any)"] = counts["approve"] + counts["approve+mask"]
	for _, k := range []string{"allow", "allow+mask", "deny", "default-deny", "approve (any)"} {
		if counts[k] == 0 {
			t.Errorf("no %s decisions among %d requests: %v", k, len(reqs), counts)
		}
	}
	t.Logf("outcomes: %v", counts)
}

// TestDecideAllocs asserts the steady state allocates nothing for every kind
// of outcome on the generated policy.
// It is not parallel: testing.AllocsPerRun refuses parallel tests.
func TestDecideAllocs(t *testing.T) {
	e, cases := benchCases(t)
	for _, c := range cases {
		var d engine.Decision
		e.Decide(c.req, &d)
		if n := testing.AllocsPerRun(200, func() { e.Decide(c.req, &d) }); n != 0 {
			t.Errorf("%s: %v allocations per decision, want 0", c.name, n)
		}
	}
}
