package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func basePolicy() *bundle.Policy {
	p := &bundle.Policy{
		Identities: []bundle.Identity{
			{Name: "alice", Kind: "human"},
			{Name: "bob", Kind: "human"},
			{Name: "coder", Kind: "agent"},
		},
		Groups: []bundle.Group{
			{Name: "agents", Members: []string{"coder"}},
			{Name: "dba", Members: []string{"alice", "bob"}},
		},
		Resources: []bundle.Resource{
			{Name: "orders-db", Type: bundle.ResourcePostgres, Address: "orders:5432", Tags: []string{"pii", "prod"}},
			{Name: "web", Type: bundle.ResourceSSH, Address: "web:22"},
		},
		Classifiers: []bundle.Classifier{{Name: "email", Builtin: true, Pattern: "x"}},
		Rules: []bundle.Rule{
			{ID: "agents-read", Subjects: []string{"group:agents"}, Resources: []string{"orders-db"}, Effect: bundle.EffectAllow,
				SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"customers", "orders"}}, Expires: "2027-03-01"},
			{ID: "mask-pii", Resources: []string{"tag:pii"}, Effect: bundle.EffectMask,
				Mask: &bundle.MaskSpec{Columns: []string{"customers.email", "customers.phone"}, Classifiers: []string{"email"}}},
			{ID: "migrations", Subjects: []string{"coder"}, Resources: []string{"orders-db"}, Effect: bundle.EffectApprove,
				SQL:      &bundle.SQLMatch{Statements: []string{"alter", "create"}},
				Approval: &bundle.ApprovalSpec{Group: "dba", Count: 2, Timeout: "30m"}, Expires: "2027-03-01"},
			{ID: "no-unbounded", Effect: bundle.EffectDeny, SQL: &bundle.SQLMatch{Statements: []string{"delete", "update"}, WithoutWhere: true}},
			{ID: "dba-all", Subjects: []string{"group:dba"}, Resources: []string{"orders-db"}, Effect: bundle.EffectAllow},
			{ID: "deploy", Subjects: []string{"coder"}, Resources: []string{"web"}, Effect: bundle.EffectAllow,
				SSH: &bundle.SSHMatch{Commands: []string{"git *", "ls *"}}},
		},
	}
	reindex(p)
	return p
}

func reindex(p *bundle.Policy) {
	for i := range p.Rules {
		p.Rules[i].Index = i
	}
}

func rule(p *bundle.Policy, id string) *bundle.Rule {
	for i := range p.Rules {
		if p.Rules[i].ID == id {
			return &p.Rules[i]
		}
	}
	panic("no rule " + id)
}

func removeRule(p *bundle.Policy, id string) {
	p.Rules = slices.DeleteFunc(p.Rules, func(r bundle.Rule) bool { return r.ID == id })
	reindex(p)
}

type want struct {
	kind     Kind
	identity string
	resource string
	detail   string // substring of Detail
}

func (w want) String() string {
	return fmt.Sprintf("%s %s/%s %q", w.kind, w.identity, w.resource, w.detail)
}

func TestCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(p *bundle.Policy)
		want   []want // exactly these changes, in order
	}{
		{name: "identical", mutate: func(*bundle.Policy) {}},
		{name: "reordering and renaming has no effect", mutate: func(p *bundle.Policy) {
			slices.Reverse(p.Rules)
			reindex(p)
			rule(p, "agents-read").ID = "agents-may-read"
			rule(p, "agents-may-read").SQL.Tables = []string{"orders", "customers"}
			rule(p, "mask-pii").Mask.Columns = []string{"customers.phone", "customers.email"}
		}},
		{name: "splitting a rule has no effect", mutate: func(p *bundle.Policy) {
			rule(p, "agents-read").SQL.Tables = []string{"orders"}
			p.Rules = append(p.Rules, bundle.Rule{ID: "agents-read-customers", Subjects: []string{"coder"}, Resources: []string{"orders-db"},
				Effect: bundle.EffectAllow, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"customers"}}, Expires: "2027-03-01"})
			reindex(p)
		}},
		{name: "revoking a grant is lost", mutate: func(p *bundle.Policy) { removeRule(p, "agents-read") }, want: []want{
			{KindLost, "coder", "orders-db", "allow select on customers"},
			{KindLost, "coder", "orders-db", "allow select on orders"},
		}},
		{name: "adding a table is gained", mutate: func(p *bundle.Policy) {
			rule(p, "agents-read").SQL.Tables = []string{"customers", "orders", "payments"}
		}, want: []want{{KindGained, "coder", "orders-db", "allow select on payments"}}},
		{name: "widening to any table", mutate: func(p *bundle.Policy) {
			rule(p, "agents-read").SQL.Tables = nil
		}, want: []want{{KindGained, "coder", "orders-db", "allow select on any table"}}},
		{name: "group membership grants access", mutate: func(p *bundle.Policy) {
			p.Groups[1].Members = []string{"alice", "bob", "coder"}
		}, want: []want{{KindGained, "coder", "orders-db", "allow any command"}}},
		{name: "membership in a group whose access one has already changes nothing", mutate: func(p *bundle.Policy) {
			p.Groups[0].Members = []string{"alice", "coder"}
		}},
		{name: "removing a mask column is mask_removed", mutate: func(p *bundle.Policy) {
			rule(p, "mask-pii").Mask.Columns = []string{"customers.email"}
		}, want: []want{
			{KindMaskRemoved, "alice", "orders-db", "column customers.phone"},
			{KindMaskRemoved, "bob", "orders-db", "column customers.phone"},
			{KindMaskRemoved, "coder", "orders-db", "column customers.phone"},
		}},
		{name: "widening a mask column is mask_added only", mutate: func(p *bundle.Policy) {
			rule(p, "mask-pii").Mask.Columns = []string{"*.email", "customers.phone"}
			rule(p, "mask-pii").Subjects = []string{"coder"}
		}, want: []want{
			{KindMaskRemoved, "alice", "orders-db", "classifier email"},
			{KindMaskRemoved, "alice", "orders-db", "column customers.email"},
			{KindMaskRemoved, "alice", "orders-db", "column customers.phone"},
			{KindMaskRemoved, "bob", "orders-db", "classifier email"},
			{KindMaskRemoved, "bob", "orders-db", "column customers.email"},
			{KindMaskRemoved, "bob", "orders-db", "column customers.phone"},
			{KindMaskAdded, "coder", "orders-db", "column *.email"},
		}},
		{name: "removing an approval is approval_removed", mutate: func(p *bundle.Policy) {
			rule(p, "migrations").Effect = bundle.EffectAllow
			rule(p, "migrations").Approval = nil
		}, want: []want{
			{KindApprovalRemoved, "coder", "orders-db", "alter on any table no longer needs approval"},
			{KindApprovalRemoved, "coder", "orders-db", "create on any table no longer needs approval"},
		}},
		{name: "lowering the approver count is approval_removed", mutate: func(p *bundle.Policy) {
			rule(p, "migrations").Approval.Count = 1
		}, want: []want{
			{KindApprovalRemoved, "coder", "orders-db", "alter on any table: approvers lowered from 2 to 1"},
			{KindApprovalRemoved, "coder", "orders-db", "create on any table: approvers lowered from 2 to 1"},
		}},
		{name: "adding an approve rule over an allow is approval_added", mutate: func(p *bundle.Policy) {
			p.Rules = append(p.Rules, bundle.Rule{ID: "approve-ssh", Subjects: []string{"coder"}, Resources: []string{"web"}, Effect: bundle.EffectApprove,
				SSH: &bundle.SSHMatch{Commands: []string{"*"}}, Approval: &bundle.ApprovalSpec{Group: "dba", Count: 1}})
			reindex(p)
		}, want: []want{
			{KindApprovalAdded, "coder", "web", "command git * now needs approval"},
			{KindApprovalAdded, "coder", "web", "command ls * now needs approval"},
			{KindGained, "coder", "web", "approve any command"},
		}},
		{name: "removing a deny is deny_removed", mutate: func(p *bundle.Policy) { removeRule(p, "no-unbounded") }, want: []want{
			{KindDenyRemoved, "alice", "orders-db", "deny delete on any table (without_where)"},
			{KindDenyRemoved, "alice", "orders-db", "deny update on any table (without_where)"},
			{KindDenyRemoved, "bob", "orders-db", "deny delete"},
			{KindDenyRemoved, "bob", "orders-db", "deny update"},
			{KindDenyRemoved, "coder", "orders-db", "deny delete"},
			{KindDenyRemoved, "coder", "orders-db", "deny update"},
		}},
		{name: "a new deny that covers a grant loses it", mutate: func(p *bundle.Policy) {
			p.Rules = append(p.Rules, bundle.Rule{ID: "no-ssh", Subjects: []string{"coder"}, Resources: []string{"web"}, Effect: bundle.EffectDeny})
			reindex(p)
		}, want: []want{
			{KindDenyAdded, "coder", "web", "deny any command"},
			{KindLost, "coder", "web", "allow command git *"},
			{KindLost, "coder", "web", "allow command ls *"},
		}},
		{name: "extending an expiry", mutate: func(p *bundle.Policy) {
			rule(p, "deploy").SSH.Commands = []string{"git *"}
			rule(p, "agents-read").Expires = "2028-01-01"
		}, want: []want{
			{KindExpiryExtended, "coder", "orders-db", "select on customers: expiry 2027-03-01 → 2028-01-01"},
			{KindExpiryExtended, "coder", "orders-db", "select on orders: expiry 2027-03-01 → 2028-01-01"},
			{KindLost, "coder", "web", "allow command ls *"},
		}},
		{name: "dropping an expiry extends it", mutate: func(p *bundle.Policy) {
			rule(p, "agents-read").SQL.Tables = []string{"orders"}
			rule(p, "agents-read").Expires = ""
		}, want: []want{
			{KindExpiryExtended, "coder", "orders-db", "select on orders: expiry 2027-03-01 → never"},
			{KindLost, "coder", "orders-db", "allow select on customers"},
		}},
		{name: "new agent identity", mutate: func(p *bundle.Policy) {
			p.Identities = append(p.Identities, bundle.Identity{Name: "reviewer-bot", Kind: "agent"})
			p.Groups[0].Members = []string{"coder", "reviewer-bot"}
		}, want: []want{
			{KindIdentityAdded, "reviewer-bot", "", "new agent identity"},
			{KindGained, "reviewer-bot", "orders-db", "allow select on customers"},
			{KindGained, "reviewer-bot", "orders-db", "allow select on orders"},
		}},
		{name: "resource changes", mutate: func(p *bundle.Policy) {
			p.Resources[1].Address = "web2:22"
			p.Resources = append(p.Resources, bundle.Resource{Name: "zz-api", Type: bundle.ResourceHTTP, Address: "https://api"})
		}, want: []want{
			{KindResourceChanged, "", "web", "changed: address"},
			{KindResourceAdded, "", "zz-api", "new http resource at https://api"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			head := basePolicy()
			tc.mutate(head)
			rep := Compare(basePolicy(), head)
			if len(rep.Changes) != len(tc.want) {
				t.Fatalf("got %d changes, want %d:\n%s", len(rep.Changes), len(tc.want), dump(rep))
			}
			for i, w := range tc.want {
				c := rep.Changes[i]
				if c.Kind != w.kind || c.Identity != w.identity || c.Resource != w.resource || !strings.Contains(c.Detail, w.detail) {
					t.Errorf("change %d = %s %s/%s %q, want %s", i, c.Kind, c.Identity, c.Resource, c.Detail, w)
				}
			}
		})
	}
}

func dump(r *Report) string {
	var b strings.Builder
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "  %s %s/%s %q base=%v head=%v\n", c.Kind, c.Identity, c.Resource, c.Detail, c.BaseRules, c.HeadRules)
	}
	return b.String()
}

func TestCompareRuleIDs(t *testing.T) {
	t.Parallel()
	head := basePolicy()
	rule(head, "migrations").Effect = bundle.EffectAllow
	rule(head, "migrations").ID = "migrations-open"
	rep := Compare(basePolicy(), head)
	if len(rep.Changes) == 0 {
		t.Fatal("no changes")
	}
	c := rep.Changes[0]
	if c.Kind != KindApprovalRemoved || !slices.Equal(c.BaseRules, []string{"migrations"}) || !slices.Equal(c.HeadRules, []string{"migrations-open"}) {
		t.Fatalf("change %+v", c)
	}
	if c.IdentityKind != "agent" || c.Access == nil || c.Access.Protocol != "sql" || c.Access.Action != "alter" {
		t.Fatalf("change %+v access %+v", c, c.Access)
	}
}

func TestEscalations(t *testing.T) {
	t.Parallel()
	head := basePolicy()
	removeRule(head, "deploy")                           // lost
	rule(head, "agents-read").SQL.Tables = []string{"*"} // gained
	rule(head, "mask-pii").Mask.Classifiers = nil        // mask_removed x3
	rule(head, "migrations").Approval.Count = 3          // approval_added
	rep := Compare(basePolicy(), head)
	var kinds []Kind
	for _, c := range rep.Escalations() {
		kinds = append(kinds, c.Kind)
	}
	wantKinds := []Kind{KindMaskRemoved, KindMaskRemoved, KindGained, KindMaskRemoved}
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("escalations %v, want %v\n%s", kinds, wantKinds, dump(rep))
	}
	if len(rep.Changes) <= len(kinds) {
		t.Fatalf("want non-escalating changes too:\n%s", dump(rep))
	}
}

func TestCompareNil(t *testing.T) {
	t.Parallel()
	if rep := Compare(nil, nil); !rep.Empty() {
		t.Fatalf("nil vs nil: %s", dump(rep))
	}
	rep := Compare(nil, basePolicy())
	if len(rep.Escalations()) == 0 {
		t.Fatal("empty base to policy reports no escalation")
	}
}

func TestWriteMarkdown(t *testing.T) {
	t.Parallel()
	var empty bytes.Buffer
	if err := (&Report{}).WriteMarkdown(&empty); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(empty.String(), "No change in effective access.") {
		t.Fatalf("empty report:\n%s", empty.String())
	}

	head := basePolicy()
	rule(head, "deploy").SSH.Commands = []string{"git *", "ls *", "cat a|b"}
	removeRule(head, "no-unbounded") // 6 deny_removed
	rule(head, "agents-read").SQL.Tables = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
	rep := Compare(basePolicy(), head)
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, s := range []string{
		"## Gatehouse access diff",
		"change(s) widen access",
		"| `gained` | 12 | yes |",
		"| `deny_removed` | 6 | yes |",
		"| `lost` | 2 |",
		"### Escalations (18)",
		"<details>\n<summary>Show 18 changes</summary>",
		"### Other changes (2)",
		`command cat a\|b`,
		"`coder` (agent)",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
	if strings.Count(md, "<details>") != 1 {
		t.Errorf("want one folded section:\n%s", md)
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	head := basePolicy()
	removeRule(head, "agents-read")
	var b bytes.Buffer
	if err := Compare(basePolicy(), head).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Changes []Change
		Summary struct {
			Escalations int
			ByKind      map[string]int `json:"by_kind"`
		}
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Changes) != 2 || doc.Summary.Escalations != 0 || doc.Summary.ByKind["lost"] != 2 {
		t.Fatalf("json: %s", b.String())
	}
	if doc.Changes[0].BaseRules[0] != "agents-read" || doc.Changes[0].Access.Object != "customers" {
		t.Fatalf("first change: %+v", doc.Changes[0])
	}
}
