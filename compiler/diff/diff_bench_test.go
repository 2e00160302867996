package diff

import (
	"fmt"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// generated returns a policy with n agents, n/10 databases and 4n rules.
func generated(n int) *bundle.Policy {
	p := &bundle.Policy{}
	for i := range n {
		p.Identities = append(p.Identities, bundle.Identity{Name: fmt.Sprintf("agent-%04d", i), Kind: "agent"})
	}
	for i := range max(n/10, 1) {
		p.Resources = append(p.Resources, bundle.Resource{Name: fmt.Sprintf("db-%03d", i), Type: bundle.ResourcePostgres, Tags: []string{"sql"}})
	}
	for i := range n {
		id := fmt.Sprintf("agent-%04d", i)
		db := fmt.Sprintf("db-%03d", i%len(p.Resources))
		p.Rules = append(p.Rules,
			bundle.Rule{ID: "read-" + id, Subjects: []string{id}, Resources: []string{db}, Effect: bundle.EffectAllow,
				SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"public.orders", "public.customers"}}, Expires: "2027-01-01"},
			bundle.Rule{ID: "write-" + id, Subjects: []string{id}, Resources: []string{db}, Effect: bundle.EffectApprove,
				SQL:      &bundle.SQLMatch{Statements: []string{"insert", "update"}, Tables: []string{"public.orders"}},
				Approval: &bundle.ApprovalSpec{Group: "dba", Count: 1}},
			bundle.Rule{ID: "mask-" + id, Subjects: []string{id}, Resources: []string{"tag:sql"}, Effect: bundle.EffectMask,
				Mask: &bundle.MaskSpec{Columns: []string{"customers.email"}}},
			bundle.Rule{ID: "deny-" + id, Subjects: []string{id}, Effect: bundle.EffectDeny,
				SQL: &bundle.SQLMatch{Statements: []string{"drop"}}},
		)
	}
	return p
}

func BenchmarkCompare1000Identities(b *testing.B) {
	base := generated(1000)
	head := generated(1000)
	head.Rules[0].SQL.Tables = []string{"*"}
	b.ReportAllocs()
	for b.Loop() {
		if rep := Compare(base, head); len(rep.Escalations()) != 1 {
			b.Fatalf("escalations: %d", len(rep.Escalations()))
		}
	}
}
