package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// testBundle is a hand-built policy covering every semantic rule.
func testBundle() *bundle.Bundle {
	rules := []bundle.Rule{
		{ID: "agents-read-orders", Subjects: []string{"group:coding-agents"}, ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectAllow,
			SQL:     &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"items", "public.customers", "public.orders", "reporting.*"}},
			Expires: "2027-03-01"},
		{ID: "mask-pii", ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectMask,
			Mask: &bundle.MaskSpec{Columns: []string{"customers.email"}}},
		{ID: "no-unbounded-writes", ResolvedResources: []string{"analytics-db", "orders-db"}, Effect: bundle.EffectDeny,
			SQL: &bundle.SQLMatch{Statements: []string{"delete", "update"}, WithoutWhere: true}},
		{ID: "migrations-need-approval", Subjects: []string{"ci-bot"}, ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectApprove,
			SQL:      &bundle.SQLMatch{Statements: []string{"alter", "create", "drop"}},
			Approval: &bundle.ApprovalSpec{Group: "dba", Count: 1}},
		{ID: "ci-writes", Subjects: []string{"ci-bot"}, ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectAllow,
			SQL:        &bundle.SQLMatch{Statements: []string{"delete", "insert", "update"}, Tables: []string{"*"}},
			Conditions: &bundle.Conditions{MaxRows: 100}},
		{ID: "deny-secrets", Subjects: []string{"*"}, ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectDeny,
			SQL: &bundle.SQLMatch{Tables: []string{"secrets"}}},
		{ID: "dba-all", Subjects: []string{"group:dba"}, ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectAllow,
			Record: &bundle.RecordSpec{Results: "masked", MaxResultRows: 10}},
		{ID: "dba-deletes-approve", Subjects: []string{"group:dba"}, ResolvedResources: []string{"orders-db"}, Effect: bundle.EffectApprove,
			SQL:      &bundle.SQLMatch{Statements: []string{"delete"}},
			Approval: &bundle.ApprovalSpec{Group: "dba", Count: 2, Timeout: "1h"}},
		{ID: "alice-readfile", Subjects: []string{"alice"}, ResolvedResources: []string{"analytics-db"}, Effect: bundle.EffectAllow,
			SQL: &bundle.SQLMatch{Statements: []string{"select"}, Functions: []string{"pg_read_file"}}},
		{ID: "analytics-select", Subjects: []string{"*"}, ResolvedResources: []string{"analytics-db"}, Effect: bundle.EffectAllow,
			SQL:        &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"*"}},
			Conditions: &bundle.Conditions{MaxRows: 500}},
		{ID: "analytics-select-small", Subjects: []string{"alice"}, ResolvedResources: []string{"analytics-db"}, Effect: bundle.EffectAllow,
			SQL:        &bundle.SQLMatch{Statements: []string{"select"}},
			Conditions: &bundle.Conditions{MaxRows: 50}},
		{ID: "deny-dangerous-fn", ResolvedResources: []string{"analytics-db"}, Effect: bundle.EffectDeny,
			SQL: &bundle.SQLMatch{Functions: []string{"pg_catalog.pg_terminate_backend"}}},
		{ID: "business-hours", Subjects: []string{"claude-coder"}, ResolvedResources: []string{"web-host"}, Effect: bundle.EffectAllow,
			SSH: &bundle.SSHMatch{Commands: []string{"git *", "ls *", "shell"}},
			Conditions: &bundle.Conditions{TimeWindows: []bundle.TimeWindow{
				{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "18:00", Timezone: "Europe/Berlin"}}}},
		{ID: "night-batch", Subjects: []string{"ci-bot"}, ResolvedResources: []string{"web-host"}, Effect: bundle.EffectAllow,
			SSH:        &bundle.SSHMatch{Commands: []string{"*"}},
			Conditions: &bundle.Conditions{TimeWindows: []bundle.TimeWindow{{Days: []string{"fri"}, Start: "22:00", End: "06:00"}}}},
		{ID: "no-rm", Subjects: []string{"*"}, ResolvedResources: []string{"web-host"}, Effect: bundle.EffectDeny,
			SSH: &bundle.SSHMatch{Commands: []string{"* rm -rf *", "rm *"}}},
		{ID: "api-read", Subjects: []string{"group:coding-agents"}, ResolvedResources: []string{"api"}, Effect: bundle.EffectAllow,
			HTTP: &bundle.HTTPMatch{Methods: []string{"GET"}, Hosts: []string{"*.internal.example.com", "api.example.com"}, Paths: []string{"/status", "/v1/**"}}},
		{ID: "api-admin-deny", Subjects: []string{"*"}, ResolvedResources: []string{"api"}, Effect: bundle.EffectDeny,
			HTTP: &bundle.HTTPMatch{Paths: []string{"/v1/admin/**"}}},
		{ID: "k8s-read", Subjects: []string{"group:coding-agents"}, ResolvedResources: []string{"cluster"}, Effect: bundle.EffectAllow,
			Kubernetes: &bundle.KubernetesMatch{Verbs: []string{"get", "list"}, Resources: []string{"pods", "pods/log"}, Namespaces: []string{"dev-*"}}},
		{ID: "k8s-exec", Subjects: []string{"claude-coder"}, ResolvedResources: []string{"cluster"}, Effect: bundle.EffectAllow,
			Kubernetes: &bundle.KubernetesMatch{Verbs: []string{"create"}, Resources: []string{"pods/exec"}, Namespaces: []string{"dev-*"}, ExecCommands: []string{"cat *", "ls *"}}},
		{ID: "expired-grant", Subjects: []string{"claude-coder"}, ResolvedResources: []string{"analytics-db"}, Effect: bundle.EffectAllow,
			SQL: &bundle.SQLMatch{Statements: []string{"delete"}}, Expires: "2026-01-01T12:00:00Z"},
		{ID: "mask-analytics", ResolvedResources: []string{"analytics-db"}, Effect: bundle.EffectMask,
			SQL:    &bundle.SQLMatch{Tables: []string{"users"}},
			Mask:   &bundle.MaskSpec{Columns: []string{"users.email"}},
			Record: &bundle.RecordSpec{Results: "masked"}},
		{ID: "k8s-deny-secrets", Subjects: []string{"*"}, ResolvedResources: []string{"cluster"}, Effect: bundle.EffectDeny,
			Kubernetes: &bundle.KubernetesMatch{Resources: []string{"secrets"}}},
	}
	for i := range rules {
		rules[i].Index = i
	}
	return &bundle.Bundle{
		Manifest: bundle.Manifest{FormatVersion: bundle.FormatVersion, Revision: "rev-1", Serial: 1},
		Policy: bundle.Policy{
			Identities: []bundle.Identity{
				{Name: "alice", Kind: "human", Groups: []string{"dba"}},
				{Name: "bob", Kind: "human", Groups: []string{"coding-agents", "dba"}},
				{Name: "ci-bot", Kind: "service"},
				{Name: "claude-coder", Kind: "agent", Groups: []string{"coding-agents"}},
			},
			Groups: []bundle.Group{
				{Name: "coding-agents", Members: []string{"bob", "claude-coder"}},
				{Name: "dba", Members: []string{"alice", "bob"}},
			},
			Resources: []bundle.Resource{
				{Name: "analytics-db", Type: bundle.ResourcePostgres},
				{Name: "api", Type: bundle.ResourceHTTP},
				{Name: "cluster", Type: bundle.ResourceKubernetes},
				{Name: "orders-db", Type: bundle.ResourcePostgres},
				{Name: "web-host", Type: bundle.ResourceSSH},
			},
			Rules:    rules,
			Settings: bundle.Settings{DefaultApprovalTimeout: "15m"},
		},
	}
}

var groupsOf = map[string][]string{
	"alice":        {"dba"},
	"bob":          {"coding-agents", "dba"},
	"claude-coder": {"coding-agents"},
}

// base is a Wednesday, 12:00 in Berlin (CEST).
var base = time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)

func sqlReq(id, res, kind string, tables ...string) *Request {
	return &Request{Identity: id, Groups: groupsOf[id], Resource: res, Time: base,
		SQL: &SQLFacts{Kind: kind, Tables: tables, HasWhere: true}}
}

func with(r *Request, f func(*Request)) *Request { f(r); return r }

func at(t time.Time) func(*Request) { return func(r *Request) { r.Time = t } }

func noWhere(r *Request) { r.SQL.HasWhere = false }

func fns(f ...string) func(*Request) { return func(r *Request) { r.SQL.Functions = f } }

func cols(c ...string) func(*Request) { return func(r *Request) { r.SQL.Columns = c } }

func sshReq(id, cmd string, t time.Time) *Request {
	return &Request{Identity: id, Groups: groupsOf[id], Resource: "web-host", Time: t, SSH: &SSHFacts{Command: cmd}}
}

func httpReq(id, method, host, path string) *Request {
	return &Request{Identity: id, Groups: groupsOf[id], Resource: "api", Time: base, HTTP: &HTTPFacts{Method: method, Host: host, Path: path}}
}

func k8sReq(id, verb, res, ns, cmd string) *Request {
	return &Request{Identity: id, Groups: groupsOf[id], Resource: "cluster", Time: base,
		Kubernetes: &KubernetesFacts{Verb: verb, Resource: res, Namespace: ns, Command: cmd}}
}

type want struct {
	effect   bundle.Effect
	ruleIDs  []string
	reason   string // checked when set
	maxRows  int
	masks    int
	approval *bundle.ApprovalSpec
	record   string // Record.Results when set
}

type decideCase struct {
	name string
	req  *Request
	want want
}

var (
	allow   = bundle.EffectAllow
	deny    = bundle.EffectDeny
	approve = bundle.EffectApprove
)

func decideCases() []decideCase {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(fmt.Sprintf("tzdata missing (install the tzdata package): %v", err))
	}
	fri := func(h, m int) time.Time { return time.Date(2026, 6, 12, h, m, 0, 0, time.UTC) }
	sat := func(h, m int) time.Time { return time.Date(2026, 6, 13, h, m, 0, 0, time.UTC) }
	return []decideCase{
		// SQL tables: grants cover, denials touch.
		{"allow select with mask", sqlReq("claude-coder", "orders-db", "select", "public.orders"),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1, reason: `allowed by rule "agents-read-orders"`}},
		{"allow all tables covered", sqlReq("claude-coder", "orders-db", "select", "orders", "public.customers"),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1}},
		{"allow covers only some tables", sqlReq("claude-coder", "orders-db", "select", "public.orders", "public.invoices"),
			want{effect: deny, reason: "no rule grants claude-coder select on orders-db (default deny)"}},
		{"deny on one table", sqlReq("claude-coder", "orders-db", "select", "public.orders", "secrets"),
			want{effect: deny, ruleIDs: []string{"deny-secrets"}, reason: `denied by rule "deny-secrets"`}},
		{"deny on table in other schema", sqlReq("claude-coder", "orders-db", "select", "vault.secrets"),
			want{effect: deny, ruleIDs: []string{"deny-secrets"}}},
		{"schema wildcard", sqlReq("claude-coder", "orders-db", "select", "reporting.daily"),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1}},
		{"schema wildcard other schema", sqlReq("claude-coder", "orders-db", "select", "staging.daily"),
			want{effect: deny, ruleIDs: nil}},
		{"bare pattern any schema", sqlReq("claude-coder", "orders-db", "select", "sales.items"),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1}},
		{"qualified pattern other schema", sqlReq("claude-coder", "orders-db", "select", "private.orders"),
			want{effect: deny}},
		{"three-part table name", sqlReq("claude-coder", "orders-db", "select", "orders.public.orders"),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1}},
		{"statement kind not granted", sqlReq("claude-coder", "orders-db", "update", "orders"),
			want{effect: deny, ruleIDs: nil}},
		{"statement kind case ignored", sqlReq("claude-coder", "orders-db", "SELECT", "orders"),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1}},
		// Mask rules never grant.
		{"mask alone denies", sqlReq("claude-coder", "orders-db", "insert", "orders"),
			want{effect: deny, reason: "no rule grants claude-coder insert on orders-db (default deny)"}},
		// Expiry: a date expires at midnight UTC.
		{"expiry last instant", with(sqlReq("claude-coder", "orders-db", "select", "orders"), at(time.Date(2027, 2, 28, 23, 59, 59, 999999999, time.UTC))),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1}},
		{"expiry boundary", with(sqlReq("claude-coder", "orders-db", "select", "orders"), at(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC))),
			want{effect: deny}},
		{"expiry boundary other zone", with(sqlReq("claude-coder", "orders-db", "select", "orders"), at(time.Date(2027, 3, 1, 0, 30, 0, 0, berlin))),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "mask-pii"}, masks: 1}},
		{"expired rfc3339", sqlReq("claude-coder", "analytics-db", "delete", "events"),
			want{effect: deny}},
		{"rfc3339 before expiry", with(sqlReq("claude-coder", "analytics-db", "delete", "events"), at(time.Date(2026, 1, 1, 11, 59, 0, 0, time.UTC))),
			want{effect: allow, ruleIDs: []string{"expired-grant"}}},
		{"zero time never matches expiring rule", with(sqlReq("claude-coder", "orders-db", "select", "orders"), at(time.Time{})),
			want{effect: deny}},
		// Precedence.
		{"without where denied", with(sqlReq("ci-bot", "orders-db", "update", "orders"), noWhere),
			want{effect: deny, ruleIDs: []string{"no-unbounded-writes"}, reason: `denied by rule "no-unbounded-writes"`}},
		{"with where allowed, max rows", sqlReq("ci-bot", "orders-db", "update", "orders"),
			want{effect: allow, ruleIDs: []string{"ci-writes", "mask-pii"}, maxRows: 100, masks: 1}},
		{"without where ignores select", with(sqlReq("ci-bot", "orders-db", "insert", "orders"), noWhere),
			want{effect: allow, ruleIDs: []string{"ci-writes", "mask-pii"}, maxRows: 100, masks: 1}},
		{"approve with default timeout", sqlReq("ci-bot", "orders-db", "alter", "orders"),
			want{effect: approve, ruleIDs: []string{"migrations-need-approval", "mask-pii"}, masks: 1,
				approval: &bundle.ApprovalSpec{Group: "dba", Count: 1, Timeout: "15m"}, reason: `approval required by rule "migrations-need-approval"`}},
		{"approve beats allow, masks on approve", sqlReq("alice", "orders-db", "delete", "orders"),
			want{effect: approve, ruleIDs: []string{"dba-deletes-approve", "mask-pii"}, masks: 1,
				approval: &bundle.ApprovalSpec{Group: "dba", Count: 2, Timeout: "1h"}}},
		{"deny beats approve", with(sqlReq("alice", "orders-db", "delete", "orders"), noWhere),
			want{effect: deny, ruleIDs: []string{"no-unbounded-writes"}}},
		{"deny beats allow, all deny rules", with(sqlReq("alice", "orders-db", "delete", "secrets"), noWhere),
			want{effect: deny, ruleIDs: []string{"no-unbounded-writes", "deny-secrets"}, reason: `denied by rule "no-unbounded-writes" and other rules`}},
		{"rule without protocol block, record", sqlReq("alice", "orders-db", "select", "orders"),
			want{effect: allow, ruleIDs: []string{"dba-all", "mask-pii"}, masks: 1, record: "masked"}},
		{"rule without protocol block matches ssh facts", &Request{Identity: "alice", Groups: []string{"dba"}, Resource: "orders-db", Time: base, SSH: &SSHFacts{}},
			want{effect: allow, ruleIDs: []string{"dba-all", "mask-pii"}, masks: 1, record: "masked"}},
		{"rule without protocol block matches no facts", &Request{Identity: "alice", Groups: []string{"dba"}, Resource: "orders-db", Time: base},
			want{effect: allow, ruleIDs: []string{"dba-all", "mask-pii"}, masks: 1, record: "masked"}},
		{"protocol block needs its facts", &Request{Identity: "claude-coder", Groups: []string{"coding-agents"}, Resource: "orders-db", Time: base, SSH: &SSHFacts{Command: "ls"}},
			want{effect: deny, reason: "no rule grants claude-coder ssh command on orders-db (default deny)"}},
		{"two groups, all allow rules", sqlReq("bob", "orders-db", "select", "orders"),
			want{effect: allow, ruleIDs: []string{"agents-read-orders", "dba-all", "mask-pii"}, masks: 1, record: "masked", reason: `allowed by rule "agents-read-orders" and other rules`}},
		// Subjects.
		{"wildcard subject", sqlReq("claude-coder", "analytics-db", "select", "events"),
			want{effect: allow, ruleIDs: []string{"analytics-select"}, maxRows: 500}},
		{"wildcard subject, unknown identity", &Request{Identity: "mallory", Resource: "analytics-db", Time: base, SQL: &SQLFacts{Kind: "select", Tables: []string{"events"}}},
			want{effect: allow, ruleIDs: []string{"analytics-select"}, maxRows: 500}},
		{"unknown identity gets no group rules it does not claim", &Request{Identity: "mallory", Resource: "orders-db", Time: base, SQL: &SQLFacts{Kind: "select", Tables: []string{"orders"}, HasWhere: true}},
			want{effect: deny}},
		{"groups given explicitly", &Request{Identity: "mallory", Groups: []string{"dba", "nope"}, Resource: "orders-db", Time: base, SQL: &SQLFacts{Kind: "select", Tables: []string{"orders"}}},
			want{effect: allow, ruleIDs: []string{"dba-all", "mask-pii"}, masks: 1, record: "masked"}},
		{"known identity with other groups", &Request{Identity: "claude-coder", Groups: []string{"dba"}, Resource: "orders-db", Time: base, SQL: &SQLFacts{Kind: "select", Tables: []string{"orders"}}},
			want{effect: allow, ruleIDs: []string{"dba-all", "mask-pii"}, masks: 1, record: "masked"}},
		{"empty identity", &Request{Resource: "analytics-db", Time: base, SQL: &SQLFacts{Kind: "select"}},
			want{effect: deny, reason: reasonUnknownCaller}},
		{"unknown resource", sqlReq("alice", "nope-db", "select"),
			want{effect: deny, reason: `unknown resource "nope-db" (default deny)`}},
		{"min max rows of grants", sqlReq("alice", "analytics-db", "select", "events"),
			want{effect: allow, ruleIDs: []string{"alice-readfile", "analytics-select", "analytics-select-small"}, maxRows: 50}},
		// Dangerous functions.
		{"function not granted", with(sqlReq("claude-coder", "analytics-db", "select"), fns("pg_read_file")),
			want{effect: deny, ruleIDs: nil}},
		{"function granted", with(sqlReq("alice", "analytics-db", "select"), fns("pg_read_file")),
			want{effect: allow, ruleIDs: []string{"alice-readfile"}}},
		{"function granted any schema", with(sqlReq("alice", "analytics-db", "select"), fns("pg_catalog.pg_read_file")),
			want{effect: allow, ruleIDs: []string{"alice-readfile"}}},
		{"grant must list every function", with(sqlReq("alice", "analytics-db", "select"), fns("pg_read_file", "lo_import")),
			want{effect: deny, ruleIDs: nil}},
		{"deny function qualified", with(sqlReq("alice", "analytics-db", "select"), fns("pg_catalog.pg_terminate_backend")),
			want{effect: deny, ruleIDs: []string{"deny-dangerous-fn"}}},
		{"deny function unqualified fact", with(sqlReq("alice", "analytics-db", "select"), fns("pg_read_file", "PG_TERMINATE_BACKEND")),
			want{effect: deny, ruleIDs: []string{"deny-dangerous-fn"}}},
		{"deny function other schema", with(sqlReq("alice", "analytics-db", "select"), fns("evil.pg_terminate_backend")),
			want{effect: deny, ruleIDs: nil}},
		// Masks via SQL match: touching one table is enough.
		{"mask rule with tables", sqlReq("claude-coder", "analytics-db", "select", "events", "users"),
			want{effect: allow, ruleIDs: []string{"analytics-select", "mask-analytics"}, maxRows: 500, masks: 1, record: "masked"}},
		{"columns fact ignored without column patterns", with(sqlReq("claude-coder", "analytics-db", "select", "events"), cols("events.id")),
			want{effect: allow, ruleIDs: []string{"analytics-select"}, maxRows: 500}},
		// SSH and time windows.
		{"ssh in window (Berlin)", sshReq("claude-coder", "git status", base),
			want{effect: allow, ruleIDs: []string{"business-hours"}}},
		{"ssh shell in window", sshReq("claude-coder", "", base),
			want{effect: allow, ruleIDs: []string{"business-hours"}}},
		{"ssh window start inclusive (09:00 Berlin)", sshReq("claude-coder", "ls -la", time.Date(2026, 6, 10, 9, 0, 0, 0, berlin)),
			want{effect: allow, ruleIDs: []string{"business-hours"}}},
		{"ssh before window in Berlin (08:59 Berlin = 06:59 UTC)", sshReq("claude-coder", "ls -la", time.Date(2026, 6, 10, 6, 59, 0, 0, time.UTC)),
			want{effect: deny}},
		{"ssh window end exclusive (18:00 Berlin)", sshReq("claude-coder", "ls -la", time.Date(2026, 6, 10, 16, 0, 0, 0, time.UTC)),
			want{effect: deny}},
		{"ssh 17:59 Berlin", sshReq("claude-coder", "ls -la", time.Date(2026, 6, 10, 15, 59, 0, 0, time.UTC)),
			want{effect: allow, ruleIDs: []string{"business-hours"}}},
		{"ssh saturday", sshReq("claude-coder", "ls -la", sat(10, 0)),
			want{effect: deny, reason: "no rule grants claude-coder ssh command on web-host (default deny)"}},
		{"ssh command not granted", sshReq("claude-coder", "cat /etc/passwd", base),
			want{effect: deny}},
		{"ssh deny glob", sshReq("claude-coder", "rm -rf /", base),
			want{effect: deny, ruleIDs: []string{"no-rm"}}},
		{"ssh deny glob in middle", sshReq("claude-coder", "git status && rm -rf /", base),
			want{effect: deny, ruleIDs: []string{"no-rm"}}},
		{"overnight friday evening", sshReq("ci-bot", "backup.sh", fri(23, 0)),
			want{effect: allow, ruleIDs: []string{"night-batch"}}},
		{"overnight start inclusive", sshReq("ci-bot", "", fri(22, 0)),
			want{effect: allow, ruleIDs: []string{"night-batch"}}},
		{"overnight before start", sshReq("ci-bot", "backup.sh", fri(21, 59)),
			want{effect: deny}},
		{"overnight saturday morning", sshReq("ci-bot", "backup.sh", sat(5, 59)),
			want{effect: allow, ruleIDs: []string{"night-batch"}}},
		{"overnight end exclusive", sshReq("ci-bot", "backup.sh", sat(6, 0)),
			want{effect: deny}},
		{"overnight saturday night not a start day", sshReq("ci-bot", "backup.sh", sat(23, 0)),
			want{effect: deny}},
		{"overnight friday morning belongs to thursday", sshReq("ci-bot", "backup.sh", fri(1, 0)),
			want{effect: deny}},
		// HTTP.
		{"http get", httpReq("claude-coder", "GET", "api.example.com", "/v1/orders/1"),
			want{effect: allow, ruleIDs: []string{"api-read"}}},
		{"http method case and port", httpReq("claude-coder", "get", "API.Example.com:443", "/v1/orders?x=1"),
			want{effect: allow, ruleIDs: []string{"api-read"}}},
		{"http post", httpReq("claude-coder", "POST", "api.example.com", "/v1/orders"),
			want{effect: deny, reason: "no rule grants claude-coder POST request on api (default deny)"}},
		{"http ** suffix matches base", httpReq("claude-coder", "GET", "api.example.com", "/v1"),
			want{effect: allow, ruleIDs: []string{"api-read"}}},
		{"http exact path", httpReq("claude-coder", "GET", "api.example.com", "/status"),
			want{effect: allow, ruleIDs: []string{"api-read"}}},
		{"http exact path no prefix", httpReq("claude-coder", "GET", "api.example.com", "/status/x"),
			want{effect: deny}},
		{"http host * within a label", httpReq("claude-coder", "GET", "svc.internal.example.com", "/status"),
			want{effect: allow, ruleIDs: []string{"api-read"}}},
		{"http host * not across labels", httpReq("claude-coder", "GET", "a.svc.internal.example.com", "/status"),
			want{effect: deny}},
		{"http deny path", httpReq("claude-coder", "GET", "api.example.com", "/v1/admin/users"),
			want{effect: deny, ruleIDs: []string{"api-admin-deny"}}},
		{"http dot segments deny", httpReq("claude-coder", "GET", "api.example.com", "/v1/x/../admin/users"),
			want{effect: deny, ruleIDs: []string{"api-admin-deny"}}},
		{"http encoded slash deny", httpReq("claude-coder", "GET", "api.example.com", "/v1%2fadmin"),
			want{effect: deny, ruleIDs: []string{"api-admin-deny"}}},
		// Kubernetes.
		{"k8s get pods", k8sReq("claude-coder", "get", "pods", "dev-1", ""),
			want{effect: allow, ruleIDs: []string{"k8s-read"}}},
		{"k8s other namespace", k8sReq("claude-coder", "get", "pods", "prod", ""),
			want{effect: deny, reason: "no rule grants claude-coder get pods on cluster (default deny)"}},
		{"k8s subresource not granted by resource", k8sReq("claude-coder", "get", "pods/exec", "dev-1", ""),
			want{effect: deny}},
		{"k8s subresource granted", k8sReq("claude-coder", "get", "pods/log", "dev-1", ""),
			want{effect: allow, ruleIDs: []string{"k8s-read"}}},
		{"k8s deny", k8sReq("claude-coder", "get", "secrets", "dev-1", ""),
			want{effect: deny, ruleIDs: []string{"k8s-deny-secrets"}}},
		{"k8s exec allowed", k8sReq("claude-coder", "create", "pods/exec", "dev-1", "ls -la /app"),
			want{effect: allow, ruleIDs: []string{"k8s-exec"}}},
		{"k8s exec command not allowed", k8sReq("claude-coder", "create", "pods/exec", "dev-1", "sh -c id"),
			want{effect: deny}},
		{"k8s exec needs a command", k8sReq("claude-coder", "create", "pods/exec", "dev-1", ""),
			want{effect: deny}},
	}
}

func checkDecision(t *testing.T, got *Decision, w want) {
	t.Helper()
	if got.Effect != w.effect {
		t.Errorf("effect = %q, want %q (reason %q, rules %v)", got.Effect, w.effect, got.Reason, got.RuleIDs)
	}
	if !slices.Equal(got.RuleIDs, w.ruleIDs) {
		t.Errorf("rule ids = %q, want %q", got.RuleIDs, w.ruleIDs)
	}
	if w.reason != "" && got.Reason != w.reason {
		t.Errorf("reason = %q, want %q", got.Reason, w.reason)
	}
	if got.Reason == "" {
		t.Errorf("empty reason")
	}
	if got.MaxRows != w.maxRows {
		t.Errorf("max rows = %d, want %d", got.MaxRows, w.maxRows)
	}
	if len(got.Masks) != w.masks {
		t.Errorf("masks = %d, want %d", len(got.Masks), w.masks)
	}
	for _, m := range got.Masks {
		if m == nil {
			t.Errorf("nil mask")
		}
	}
	switch {
	case w.approval == nil && got.Approval != nil:
		t.Errorf("approval = %+v, want none", *got.Approval)
	case w.approval != nil && (got.Approval == nil || *got.Approval != *w.approval):
		t.Errorf("approval = %+v, want %+v", got.Approval, *w.approval)
	}
	if w.record != "" && (got.Record == nil || got.Record.Results != w.record) {
		t.Errorf("record = %+v, want results %q", got.Record, w.record)
	}
	if w.record == "" && got.Record != nil {
		t.Errorf("record = %+v, want none", got.Record)
	}
	if got.Effect == deny && len(got.Masks) > 0 {
		t.Errorf("deny with masks")
	}
}

func newTestEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(testBundle())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func TestDecide(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	for _, tc := range decideCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d Decision
			e.Decide(tc.req, &d)
			checkDecision(t, &d, tc.want)
			if d.BundleRevision != "rev-1" {
				t.Errorf("revision = %q", d.BundleRevision)
			}
			// The index must agree with a scan of every rule.
			ref := referenceDecide(e, tc.req)
			if ref.Effect != d.Effect || !slices.Equal(ref.RuleIDs, d.RuleIDs) {
				t.Errorf("reference = %s %v, engine = %s %v", ref.Effect, ref.RuleIDs, d.Effect, d.RuleIDs)
			}
		})
	}
}

// TestDecideReuse runs every case through one Decision, so stale state from
// a previous decision would show.
func TestDecideReuse(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	var d Decision
	cases := decideCases()
	for round := 0; round < 2; round++ {
		for i := range cases {
			tc := cases[len(cases)-1-i]
			if round == 1 {
				tc = cases[i]
			}
			e.Decide(tc.req, &d)
			t.Run(tc.name, func(t *testing.T) { checkDecision(t, &d, tc.want) })
		}
	}
}

func TestNilEngine(t *testing.T) {
	t.Parallel()
	var e *Engine
	d := Decision{Effect: allow, RuleIDs: []string{"x"}, MaxRows: 3}
	e.Decide(sqlReq("alice", "orders-db", "select"), &d)
	if d.Effect != deny || d.Reason != "no valid policy bundle is active" || len(d.RuleIDs) != 0 || d.MaxRows != 0 || d.BundleRevision != "" {
		t.Errorf("nil engine decision = %+v", d)
	}
	if e.Bundle() != nil {
		t.Errorf("nil engine has a bundle")
	}
	e.Decide(nil, nil) // must not panic
}

func TestNilRequest(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	var d Decision
	e.Decide(nil, &d)
	if d.Effect != deny || d.Reason == "" {
		t.Errorf("nil request decision = %+v", d)
	}
	if e.Bundle() == nil || e.Bundle().Manifest.Revision != "rev-1" {
		t.Errorf("Bundle() = %v", e.Bundle())
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	mod := func(f func(r *bundle.Rule)) *bundle.Bundle {
		b := testBundle()
		f(&b.Policy.Rules[0])
		return b
	}
	win := func(w bundle.TimeWindow) func(r *bundle.Rule) {
		return func(r *bundle.Rule) { r.Conditions = &bundle.Conditions{TimeWindows: []bundle.TimeWindow{w}} }
	}
	cases := []struct {
		name string
		b    *bundle.Bundle
		err  error
	}{
		{"valid", testBundle(), nil},
		{"nil bundle", nil, ErrNilBundle},
		{"unknown effect", mod(func(r *bundle.Rule) { r.Effect = "permit" }), ErrInvalidRule},
		{"two protocol matches", mod(func(r *bundle.Rule) { r.SSH = &bundle.SSHMatch{} }), ErrInvalidRule},
		{"bad expiry", mod(func(r *bundle.Rule) { r.Expires = "next year" }), ErrInvalidRule},
		{"bad day", mod(win(bundle.TimeWindow{Days: []string{"monday"}, Start: "09:00", End: "10:00"})), ErrInvalidRule},
		{"bad start", mod(win(bundle.TimeWindow{Start: "9am", End: "10:00"})), ErrInvalidRule},
		{"bad end", mod(win(bundle.TimeWindow{Start: "09:00", End: "25:00"})), ErrInvalidRule},
		{"bad timezone", mod(win(bundle.TimeWindow{Start: "09:00", End: "10:00", Timezone: "Mars/Olympus"})), ErrInvalidRule},
		{"end of day", mod(win(bundle.TimeWindow{Start: "09:00", End: "24:00"})), nil},
		{"negative max rows", mod(func(r *bundle.Rule) { r.Conditions = &bundle.Conditions{MaxRows: -1} }), ErrInvalidRule},
		{"mask without mask", mod(func(r *bundle.Rule) { r.Effect = bundle.EffectMask; r.SQL = nil }), ErrInvalidRule},
		{"approve without approval", mod(func(r *bundle.Rule) { r.Effect = bundle.EffectApprove }), ErrInvalidRule},
		{"bad table pattern", mod(func(r *bundle.Rule) { r.SQL.Tables = []string{"a.b.c"} }), ErrInvalidRule},
		{"empty table pattern", mod(func(r *bundle.Rule) { r.SQL.Tables = []string{""} }), ErrInvalidRule},
		{"bad column pattern", mod(func(r *bundle.Rule) { r.SQL.Columns = []string{"a..b"} }), ErrInvalidRule},
		{"bad function pattern", mod(func(r *bundle.Rule) { r.SQL.Functions = []string{".x"} }), ErrInvalidRule},
		{"glob too long", mod(func(r *bundle.Rule) {
			r.SQL = nil
			r.SSH = &bundle.SSHMatch{Commands: []string{strings.Repeat("a*", 300)}}
		}), ErrInvalidRule},
		{"unknown resource in rule is indexed", mod(func(r *bundle.Rule) { r.ResolvedResources = []string{"ghost"} }), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := New(tc.b)
			if tc.err == nil {
				if err != nil || e == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("New error = %v, want %v", err, tc.err)
			}
			if e != nil {
				t.Errorf("New returned an engine with an error")
			}
		})
	}
}

// TestDecideConcurrent runs Decide from many goroutines on one engine (run
// with -race).
func TestDecideConcurrent(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	cases := decideCases()
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var d Decision
			for i := 0; i < 20*len(cases); i++ {
				tc := cases[(i+w*7)%len(cases)]
				e.Decide(tc.req, &d)
				if d.Effect != tc.want.effect || !slices.Equal(d.RuleIDs, tc.want.ruleIDs) {
					errs <- fmt.Sprintf("%s: got %s %v, want %s %v", tc.name, d.Effect, d.RuleIDs, tc.want.effect, tc.want.ruleIDs)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

// referenceDecide decides by scanning every rule without the index: the
// subject and resource checks are written out here independently.
func referenceDecide(e *Engine, req *Request) Decision {
	d := Decision{Effect: deny}
	if req == nil || req.Identity == "" {
		return d
	}
	p := &e.b.Policy
	var matched []int
	for i := range p.Rules {
		r := &p.Rules[i]
		if !slices.Contains(r.ResolvedResources, req.Resource) {
			continue
		}
		subj := len(r.Subjects) == 0
		for _, s := range r.Subjects {
			if s == "*" || s == req.Identity {
				subj = true
			}
			if g, ok := strings.CutPrefix(s, "group:"); ok && slices.Contains(req.Groups, g) {
				subj = true
			}
		}
		var tables []tableRef
		if req.SQL != nil {
			tables = splitTables(nil, req.SQL.Tables)
		}
		if subj && e.rules[i].matches(req, tables) {
			matched = append(matched, i)
		}
	}
	for _, eff := range []bundle.Effect{deny, approve, allow} {
		for _, i := range matched {
			if p.Rules[i].Effect == eff {
				d.Effect = eff
				d.RuleIDs = append(d.RuleIDs, p.Rules[i].ID)
			}
		}
		if len(d.RuleIDs) > 0 {
			break
		}
	}
	if len(d.RuleIDs) == 0 {
		d.Effect = deny
		return d
	}
	if d.Effect != deny {
		for _, i := range matched {
			if p.Rules[i].Effect == bundle.EffectMask {
				d.RuleIDs = append(d.RuleIDs, p.Rules[i].ID)
			}
		}
	}
	return d
}

// TestFastIndexMatchesReference checks the per-class candidate lists, and
// the requests they leave to the general path, against a scan of every
// rule.
func TestFastIndexMatchesReference(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t)
	if e.fast == nil {
		t.Fatal("no fast index for the test policy")
	}
	at := base
	tests := []struct {
		name string
		req  *Request
		fast bool // served by the fast index
	}{
		{"select", sqlReq("claude-coder", "orders-db", "select", "public.orders"), true},
		{"upper-case kind", sqlReq("claude-coder", "orders-db", "SELECT", "public.orders"), false},
		{"kind no rule names", sqlReq("ci-bot", "orders-db", "truncate", "orders"), true},
		{"empty kind", sqlReq("ci-bot", "orders-db", "", "orders"), true},
		{"delete without where", with(sqlReq("alice", "orders-db", "delete", "orders"), noWhere), true},
		{"sql and ssh", with(sqlReq("claude-coder", "web-host", "select"), func(r *Request) { r.SSH = &SSHFacts{Command: "rm -rf /"} }), false},
		{"no facts", &Request{Identity: "ci-bot", Groups: groupsOf["ci-bot"], Resource: "orders-db", Time: at}, true},
		{"ssh", sshReq("claude-coder", "git status", at), true},
		{"http", httpReq("claude-coder", "GET", "api.example.com", "/v1/admin/x"), true},
		{"kubernetes", k8sReq("claude-coder", "create", "pods/exec", "dev-1", "ls -la"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, ok := e.fast.class(tc.req); ok != tc.fast {
				t.Errorf("fast index serves request: %v, want %v", ok, tc.fast)
			}
			var d Decision
			e.Decide(tc.req, &d)
			ref := referenceDecide(e, tc.req)
			if d.Effect != ref.Effect || !slices.Equal(d.RuleIDs, ref.RuleIDs) {
				t.Errorf("engine %s %v, reference %s %v", d.Effect, d.RuleIDs, ref.Effect, ref.RuleIDs)
			}
			if d.Reason == "" {
				t.Error("empty reason")
			}
		})
	}
}
