package lint

import (
	"fmt"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func BenchmarkRun2000Rules(b *testing.B) {
	p := basePolicy()
	for i := range 2000 {
		addRule(p, bundle.Rule{ID: fmt.Sprintf("r%04d", i), Subjects: []string{"alice"}, Resources: []string{"orders-db"},
			Effect: bundle.EffectAllow, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{fmt.Sprintf("t%04d", i)}},
			Expires: "2027-01-01", Review: review(), Pos: fmt.Sprintf("gen.cue:%d:3", i+1)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if fs := Run(p, Options{Now: testNow}); len(fs) == 0 {
			b.Fatal("want shadowed-rule findings under dba-all")
		}
	}
}
