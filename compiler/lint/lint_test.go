package lint

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func review() *bundle.Review {
	return &bundle.Review{Owner: "platform", Every: "90d", LastReviewed: "2026-11-01"}
}

// basePolicy is a small, clean policy: linting it yields no findings.
func basePolicy() *bundle.Policy {
	p := &bundle.Policy{
		Identities: []bundle.Identity{
			{Name: "alice", Kind: "human", Groups: []string{"dba"}, Pos: "ids.cue:1:1"},
			{Name: "bob", Kind: "human", Groups: []string{"dba"}, Pos: "ids.cue:2:1"},
			{Name: "carol", Kind: "human", Pos: "ids.cue:3:1"},
			{Name: "coder", Kind: "agent", Groups: []string{"agents"}, Pos: "ids.cue:4:1"},
		},
		Groups: []bundle.Group{
			{Name: "agents", Members: []string{"coder"}, Pos: "groups.cue:1:1"},
			{Name: "dba", Members: []string{"alice", "bob"}, Pos: "groups.cue:2:1"},
		},
		Resources: []bundle.Resource{
			{Name: "api", Type: bundle.ResourceHTTP, Address: "https://api.internal", Pos: "res.cue:1:1"},
			{Name: "orders-db", Type: bundle.ResourcePostgres, Address: "orders.internal:5432", Database: "orders",
				Credential: "env:ORDERS_DB_PASSWORD", Tags: []string{"pii", "prod"}, Pos: "res.cue:2:1"},
			{Name: "staging-db", Type: bundle.ResourcePostgres, Address: "staging.internal:5432", Tags: []string{"staging"}, Pos: "res.cue:3:1"},
			{Name: "web", Type: bundle.ResourceSSH, Address: "web.internal:22", Credential: "file:/run/keys/web", Tags: []string{"prod"}, Pos: "res.cue:4:1"},
		},
		Classifiers: []bundle.Classifier{
			{Name: "email", Builtin: true, Pattern: `[^@\s]+@[^@\s]+\.[a-z]{2,}`},
			{Name: "secret", Builtin: true, Pattern: `-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}`},
		},
		Rules: []bundle.Rule{
			{ID: "agents-read", Subjects: []string{"group:agents"}, Resources: []string{"orders-db"}, Effect: bundle.EffectAllow,
				SQL:     &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"customers", "orders"}},
				Expires: "2027-03-01", Review: review(), Pos: "rules.cue:1:3"},
			{ID: "mask-pii", Resources: []string{"tag:pii"}, Effect: bundle.EffectMask,
				Mask: &bundle.MaskSpec{Columns: []string{"customers.email"}, Classifiers: []string{"email"}}, Pos: "rules.cue:5:3"},
			{ID: "migrations", Subjects: []string{"coder"}, Resources: []string{"orders-db"}, Effect: bundle.EffectApprove,
				SQL:      &bundle.SQLMatch{Statements: []string{"alter", "create", "drop"}},
				Approval: &bundle.ApprovalSpec{Group: "dba", Count: 1, Timeout: "30m"},
				Expires:  "2027-03-01", Review: review(), Pos: "rules.cue:9:3"},
			{ID: "no-unbounded", Effect: bundle.EffectDeny,
				SQL: &bundle.SQLMatch{Statements: []string{"delete", "update"}, WithoutWhere: true}, Pos: "rules.cue:14:3"},
			{ID: "dba-all", Subjects: []string{"group:dba"}, Resources: []string{"orders-db", "staging-db"}, Effect: bundle.EffectAllow,
				Expires: "2027-03-01", Review: review(), Pos: "rules.cue:18:3"},
		},
	}
	for i := range p.Rules {
		p.Rules[i].Index = i
	}
	return p
}

func ruleByID(p *bundle.Policy, id string) *bundle.Rule {
	for i := range p.Rules {
		if p.Rules[i].ID == id {
			return &p.Rules[i]
		}
	}
	panic("test policy has no rule " + id)
}

func addRule(p *bundle.Policy, r bundle.Rule) {
	r.Index = len(p.Rules)
	if r.Pos == "" {
		r.Pos = "extra.cue:1:1"
	}
	p.Rules = append(p.Rules, r)
}

func TestBasePolicyIsClean(t *testing.T) {
	t.Parallel()
	if fs := Run(basePolicy(), Options{Now: testNow}); len(fs) != 0 {
		t.Fatalf("base policy has findings:\n%s", textOf(t, fs))
	}
}

func textOf(t *testing.T, fs Findings) string {
	t.Helper()
	var b strings.Builder
	if err := WriteText(&b, fs); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRunFindings(t *testing.T) {
	t.Parallel()
	ghToken := "gh" + "p_" + strings.Repeat("A1b2", 9)
	tests := []struct {
		name   string
		mutate func(p *bundle.Policy)
		now    time.Time // zero: testNow
		noNow  bool
		code   Code
		want   bool
		rule   string // expected RuleID of the finding, when want
	}{
		// GH001 unknown identity
		{name: "unknown identity subject", code: CodeUnknownIdentity, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Subjects = []string{"ghost"} }},
		{name: "unknown group member", code: CodeUnknownIdentity, want: true,
			mutate: func(p *bundle.Policy) { p.Groups[1].Members = append(p.Groups[1].Members, "ghost") }},
		{name: "known identity subject", code: CodeUnknownIdentity, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Subjects = []string{"coder"} }},
		// GH002 unknown group
		{name: "unknown group subject", code: CodeUnknownGroup, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Subjects = []string{"group:ghosts"} }},
		{name: "identity in unknown group", code: CodeUnknownGroup, want: true,
			mutate: func(p *bundle.Policy) { p.Identities[2].Groups = []string{"ghosts"} }},
		{name: "known group subject", code: CodeUnknownGroup, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Subjects = []string{"group:agents", "coder"} }},
		// GH003 unknown resource
		{name: "unknown resource", code: CodeUnknownResource, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Resources = []string{"orders-db", "nodb"} }},
		{name: "unknown resolved resource", code: CodeUnknownResource, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").ResolvedResources = []string{"nodb", "orders-db"} }},
		{name: "known resource", code: CodeUnknownResource, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").ResolvedResources = []string{"orders-db"} }},
		// GH004 unknown tag
		{name: "unknown tag", code: CodeUnknownTag, want: true, rule: "mask-pii",
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Resources = []string{"tag:pii", "tag:nope"} }},
		{name: "known tag", code: CodeUnknownTag, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Resources = []string{"tag:pii"} }},
		// GH005 unknown classifier
		{name: "unknown classifier", code: CodeUnknownClassifier, want: true, rule: "mask-pii",
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Mask.Classifiers = []string{"email", "nope"} }},
		{name: "known classifiers", code: CodeUnknownClassifier, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Mask.Classifiers = []string{"email", "secret"} }},
		// GH006 unknown approver group
		{name: "unknown approver group", code: CodeUnknownApproverGroup, want: true, rule: "migrations",
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Approval.Group = "nobody" }},
		{name: "approver group with prefix", code: CodeUnknownApproverGroup, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Approval.Group = "group:dba" }},
		// GH007 empty scope
		{name: "empty group subject", code: CodeEmptyScope, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) {
				p.Groups = append(p.Groups, bundle.Group{Name: "zz-empty"})
				ruleByID(p, "agents-read").Subjects = []string{"group:zz-empty"}
			}},
		{name: "non-empty group subject", code: CodeEmptyScope, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Subjects = []string{"group:dba"} }},
		// GH010 shadowed
		{name: "shadowed by earlier allow", code: CodeShadowedRule, want: true, rule: "agents-read-orders",
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "agents-read-orders", Subjects: []string{"coder"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectAllow, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"public.orders"}},
					Expires: "2027-01-01", Review: review()})
			}},
		{name: "not shadowed: other table", code: CodeShadowedRule, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "agents-read-payments", Subjects: []string{"coder"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectAllow, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"payments"}},
					Expires: "2027-01-01", Review: review()})
			}},
		{name: "not shadowed: outlives earlier rule", code: CodeShadowedRule, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "agents-read-orders", Subjects: []string{"coder"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectAllow, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"orders"}},
					Expires: "2028-01-01", Review: review()})
			}},
		{name: "shadowed deny", code: CodeShadowedRule, want: true, rule: "no-drop-orders",
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "no-drop", Effect: bundle.EffectDeny, SQL: &bundle.SQLMatch{Statements: []string{"drop", "truncate"}}})
				addRule(p, bundle.Rule{ID: "no-drop-orders", Resources: []string{"orders-db"}, Effect: bundle.EffectDeny,
					SQL: &bundle.SQLMatch{Statements: []string{"drop"}, Tables: []string{"orders"}}})
			}},
		// GH011 unreachable grant
		{name: "allow covered by deny", code: CodeUnreachableGrant, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "no-agent-reads", Subjects: []string{"coder"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectDeny, SQL: &bundle.SQLMatch{Statements: []string{"select"}}})
			}},
		{name: "deny on other table", code: CodeUnreachableGrant, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "no-payments", Subjects: []string{"coder"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectDeny, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"payments"}}})
			}},
		{name: "deny only in a time window", code: CodeUnreachableGrant, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "no-night-reads", Subjects: []string{"coder"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectDeny, SQL: &bundle.SQLMatch{Statements: []string{"select"}},
					Conditions: &bundle.Conditions{TimeWindows: []bundle.TimeWindow{{Start: "22:00", End: "06:00"}}}})
			}},
		// GH012 contradiction
		{name: "allow and deny same scope", code: CodeContradiction, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "agents-no-read", Subjects: []string{"group:agents"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectDeny, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"customers", "orders"}}})
			}},
		{name: "deny narrower than allow", code: CodeContradiction, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "agents-no-read-orders", Subjects: []string{"group:agents"}, Resources: []string{"orders-db"},
					Effect: bundle.EffectDeny, SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"orders"}}})
			}},
		// GH020 / GH021
		{name: "grant without expiry", code: CodeNoExpiry, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "" }},
		{name: "deny without expiry is fine", code: CodeNoExpiry, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "no-unbounded").Expires = "" }},
		{name: "grant without review", code: CodeNoReviewOwner, want: true, rule: "migrations",
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Review = nil }},
		{name: "grant with review but no owner", code: CodeNoReviewOwner, want: true, rule: "migrations",
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Review.Owner = "" }},
		{name: "mask without review is fine", code: CodeNoReviewOwner, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Review = nil }},
		// GH022 expired
		{name: "expired grant", code: CodeExpiredGrant, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2026-11-27T00:00:00Z" }},
		{name: "grant expiring tomorrow", code: CodeExpiredGrant, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2026-11-28" }},
		{name: "expired grant without a clock", code: CodeExpiredGrant, want: false, noNow: true,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2020-01-01" }},
		// GH025 expiring
		{name: "grant expiring tomorrow is reported", code: CodeExpiringGrant, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2026-11-28" }},
		{name: "grant expiring in 30 days", code: CodeExpiringGrant, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2026-12-27" }},
		{name: "grant expiring in 31 days", code: CodeExpiringGrant, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2026-12-28" }},
		{name: "expired grant is not also expiring", code: CodeExpiringGrant, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2026-11-01" }},
		{name: "deny expiring is fine", code: CodeExpiringGrant, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "no-unbounded").Expires = "2026-11-28" }},
		{name: "expiring grant without a clock", code: CodeExpiringGrant, want: false, noNow: true,
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "2026-11-28" }},
		// GH023 review overdue
		{name: "review overdue", code: CodeReviewOverdue, want: true, rule: "dba-all",
			mutate: func(p *bundle.Policy) { ruleByID(p, "dba-all").Review.LastReviewed = "2026-08-01" }},
		{name: "review due later", code: CodeReviewOverdue, want: false,
			mutate: func(p *bundle.Policy) {
				ruleByID(p, "dba-all").Review.LastReviewed = "2026-08-01"
				ruleByID(p, "dba-all").Review.Every = "26w"
			}},
		// GH024 invalid time
		{name: "bad expires", code: CodeInvalidTime, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").Expires = "next tuesday" }},
		{name: "bad review interval", code: CodeInvalidTime, want: true, rule: "dba-all",
			mutate: func(p *bundle.Policy) { ruleByID(p, "dba-all").Review.Every = "-3d" }},
		{name: "go duration interval", code: CodeInvalidTime, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "dba-all").Review.Every = "720h" }},
		// GH030 agent writes
		{name: "agent allowed update", code: CodeAgentWrite, want: true, rule: "agents-read",
			mutate: func(p *bundle.Policy) { ruleByID(p, "agents-read").SQL.Statements = []string{"select", "update"} }},
		{name: "agent allowed any command through group", code: CodeAgentWrite, want: true, rule: "dba-all",
			mutate: func(p *bundle.Policy) { p.Groups[1].Members = append(p.Groups[1].Members, "coder") }},
		{name: "agent allowed any command through wildcard", code: CodeAgentWrite, want: true, rule: "everyone",
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "everyone", Subjects: []string{"*"}, Resources: []string{"staging-db"}, Effect: bundle.EffectAllow,
					SQL: &bundle.SQLMatch{Statements: []string{"*"}}, Expires: "2027-01-01", Review: review()})
			}},
		{name: "agent write gated by approve rule", code: CodeAgentWrite, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "agent-ddl", Subjects: []string{"coder"}, Resources: []string{"orders-db"}, Effect: bundle.EffectAllow,
					SQL: &bundle.SQLMatch{Statements: []string{"drop"}, Tables: []string{"scratch"}}, Expires: "2027-01-01", Review: review()})
			}},
		{name: "human allowed update", code: CodeAgentWrite, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "carol-writes", Subjects: []string{"carol"}, Resources: []string{"orders-db"}, Effect: bundle.EffectAllow,
					SQL: &bundle.SQLMatch{Statements: []string{"update"}}, Expires: "2027-01-01", Review: review()})
			}},
		// GH031 wildcard on prod
		{name: "wildcard subject on prod", code: CodeWildcardProd, want: true, rule: "everyone-reads",
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "everyone-reads", Resources: []string{"orders-db"}, Effect: bundle.EffectAllow,
					SQL: &bundle.SQLMatch{Statements: []string{"select"}}, Expires: "2027-01-01", Review: review()})
			}},
		{name: "wildcard subject on staging", code: CodeWildcardProd, want: false,
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "everyone-reads", Subjects: []string{"*"}, Resources: []string{"staging-db"}, Effect: bundle.EffectAllow,
					SQL: &bundle.SQLMatch{Statements: []string{"select"}}, Expires: "2027-01-01", Review: review()})
			}},
		// GH040 literal secrets
		{name: "literal credential", code: CodeLiteralSecret, want: true,
			mutate: func(p *bundle.Policy) { p.Resources[1].Credential = "hunter2" }},
		{name: "password in address", code: CodeLiteralSecret, want: true,
			mutate: func(p *bundle.Policy) { p.Resources[2].Address = "postgres://app:s3cret@staging.internal/db" }},
		{name: "github token in description", code: CodeLiteralSecret, want: true, rule: "dba-all",
			mutate: func(p *bundle.Policy) { ruleByID(p, "dba-all").Description = "use " + ghToken }},
		{name: "private key in ssh command", code: CodeLiteralSecret, want: true, rule: "keys",
			mutate: func(p *bundle.Policy) {
				addRule(p, bundle.Rule{ID: "keys", Subjects: []string{"alice"}, Resources: []string{"web"}, Effect: bundle.EffectDeny,
					SSH: &bundle.SSHMatch{Commands: []string{"echo '-----BEGIN OPENSSH PRIVATE KEY-----' *"}}})
			}},
		{name: "aws key in identity claim", code: CodeLiteralSecret, want: true,
			mutate: func(p *bundle.Policy) {
				p.Identities[0].Match.Claims = map[string]string{"key": "AKIA" + strings.Repeat("Q", 16)}
			}},
		{name: "file credential", code: CodeLiteralSecret, want: false,
			mutate: func(p *bundle.Policy) { p.Resources[1].Credential = "file:/run/secrets/orders" }},
		// GH050 mask unreadable
		{name: "mask on unreadable table", code: CodeMaskUnreadable, want: true, rule: "mask-pii",
			mutate: func(p *bundle.Policy) {
				ruleByID(p, "mask-pii").Mask.Columns = []string{"customers.email", "payments.card"}
				ruleByID(p, "dba-all").Resources = []string{"staging-db"}
			}},
		{name: "mask on table readable through any-command grant", code: CodeMaskUnreadable, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Mask.Columns = []string{"payments.card"} }},
		// GH051 mask unsupported
		{name: "mask on ssh", code: CodeMaskUnsupported, want: true, rule: "mask-pii",
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Resources = []string{"tag:prod"} }},
		{name: "mask columns on http", code: CodeMaskUnsupported, want: true, rule: "mask-pii",
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Resources = []string{"api"} }},
		{name: "mask classifiers on http", code: CodeMaskUnsupported, want: false,
			mutate: func(p *bundle.Policy) {
				ruleByID(p, "mask-pii").Resources = []string{"api"}
				ruleByID(p, "mask-pii").Mask.Columns = nil
			}},
		// GH052 mask empty
		{name: "mask with nothing", code: CodeMaskEmpty, want: true, rule: "mask-pii",
			mutate: func(p *bundle.Policy) { ruleByID(p, "mask-pii").Mask = &bundle.MaskSpec{Style: "hash"} }},
		{name: "mask with only json paths", code: CodeMaskEmpty, want: false,
			mutate: func(p *bundle.Policy) {
				ruleByID(p, "mask-pii").Mask = &bundle.MaskSpec{JSONPaths: []string{"$.email"}}
			}},
		// GH060 approval too small
		{name: "approval count above group size", code: CodeApprovalTooSmall, want: true, rule: "migrations",
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Approval.Count = 3 }},
		{name: "approval count zero", code: CodeApprovalTooSmall, want: true, rule: "migrations",
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Approval.Count = 0 }},
		{name: "approval count equals group size", code: CodeApprovalTooSmall, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Approval.Count = 2 }},
		// GH061 self approval
		{name: "requester is needed as approver", code: CodeSelfApproval, want: true, rule: "migrations",
			mutate: func(p *bundle.Policy) {
				ruleByID(p, "migrations").Subjects = []string{"alice"}
				ruleByID(p, "migrations").Approval.Count = 2
			}},
		{name: "requester in group with other approvers", code: CodeSelfApproval, want: false,
			mutate: func(p *bundle.Policy) { ruleByID(p, "migrations").Subjects = []string{"alice"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := basePolicy()
			tc.mutate(p)
			now := testNow
			if tc.noNow {
				now = time.Time{}
			}
			fs := Run(p, Options{Now: now})
			var got []Finding
			for _, f := range fs {
				if f.Code == tc.code {
					got = append(got, f)
				}
			}
			if tc.want && len(got) == 0 {
				t.Fatalf("want a %s finding, got:\n%s", tc.code, textOf(t, fs))
			}
			if !tc.want && len(got) > 0 {
				t.Fatalf("want no %s finding, got:\n%s", tc.code, textOf(t, got))
			}
			for _, f := range got {
				ci, ok := Info(f.Code)
				if !ok || f.Message == "" || f.Pos == "" {
					t.Errorf("incomplete finding %+v", f)
				}
				if f.Code != CodeWildcardProd && f.Severity != ci.Severity {
					t.Errorf("severity %s, want default %s", f.Severity, ci.Severity)
				}
				if tc.rule != "" && f.RuleID != tc.rule {
					t.Errorf("rule id %q, want %q", f.RuleID, tc.rule)
				}
			}
		})
	}
}

func TestSecretNeverInMessage(t *testing.T) {
	t.Parallel()
	p := basePolicy()
	secret := "xox" + "b-1234567890-abcdefghij"
	ruleByID(p, "dba-all").Description = "token " + secret
	p.Resources[1].Credential = "pa55word-literal"
	fs := Run(p, Options{Now: testNow})
	if fs.Count(SeverityError) != 2 {
		t.Fatalf("want 2 errors, got:\n%s", textOf(t, fs))
	}
	out := textOf(t, fs)
	if strings.Contains(out, secret) || strings.Contains(out, "pa55word") {
		t.Fatalf("output leaks the secret:\n%s", out)
	}
}

func TestFindingsSorted(t *testing.T) {
	t.Parallel()
	p := basePolicy()
	ruleByID(p, "dba-all").Expires = ""                    // rules.cue:18:3 GH020
	ruleByID(p, "agents-read").Review = nil                // rules.cue:1:3 GH021
	ruleByID(p, "agents-read").Subjects = []string{"nope"} // rules.cue:1:3 GH001, GH007
	p.Groups[0].Members = append(p.Groups[0].Members, "x") // groups.cue:1:1 GH001
	fs := Run(p, Options{Now: testNow})
	var got []string
	for _, f := range fs {
		got = append(got, f.Pos+" "+string(f.Code))
	}
	want := []string{
		"groups.cue:1:1 GH001",
		"rules.cue:1:3 GH001",
		"rules.cue:1:3 GH021",
		"rules.cue:18:3 GH020",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
	if !fs.HasErrors() {
		t.Fatal("HasErrors false with GH001 findings")
	}
}

func TestRunNilAndEmpty(t *testing.T) {
	t.Parallel()
	if fs := Run(nil, Options{}); len(fs) != 0 {
		t.Fatalf("nil policy: %v", fs)
	}
	if fs := Run(&bundle.Policy{}, Options{Now: testNow}); len(fs) != 0 {
		t.Fatalf("empty policy: %v", fs)
	}
}

func TestParsePos(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Location
	}{
		{"rules.cue:12:5", Location{"rules.cue", 12, 5}},
		{"dir/rules.cue:7", Location{"dir/rules.cue", 7, 0}},
		{"rules.cue", Location{"rules.cue", 0, 0}},
		{`C:\p\rules.cue:3:4`, Location{`C:\p\rules.cue`, 3, 4}},
		{"", Location{}},
		{"a:b:c", Location{"a:b:c", 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			if got := ParsePos(tc.in); got != tc.want {
				t.Fatalf("ParsePos(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestCodesDocumented(t *testing.T) {
	t.Parallel()
	seen := map[Code]bool{}
	for _, ci := range Codes() {
		if seen[ci.Code] {
			t.Errorf("duplicate code %s", ci.Code)
		}
		seen[ci.Code] = true
		if ci.Name == "" || ci.Summary == "" || ci.Help == "" || ci.Severity == "" {
			t.Errorf("code %s incompletely described", ci.Code)
		}
	}
}
