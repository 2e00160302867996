package review_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/testclock"
	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
	"github.com/gatehouse/gatehouse/runtime/review"
)

// recording runs the demo once per test binary: the real gateway in front
// of a throwaway PostgreSQL cluster, driven by the scripted agent session.
// The gateway runs on clock, which starts at testclock.Example (before the
// example grants expire, in business hours); reviews of the recording take
// their time from it too.
var recording struct {
	once  sync.Once
	res   *demo.Result
	dir   string
	err   error
	pol   *bundle.Policy
	clock func() time.Time
}

func demoRecording(t *testing.T) (*demo.Result, record.Backend, *bundle.Policy) {
	t.Helper()
	testdb.RequireIntegration(t)
	recording.once.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-review-test-")
		if err != nil {
			recording.err = err
			return
		}
		recording.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		recording.clock = testclock.Start(testclock.Example)
		recording.res, recording.err = demo.Run(ctx, demo.Options{
			PolicyDir: "../../policies", StateDir: dir,
			PostgresListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Clock: recording.clock,
		})
		if recording.err != nil {
			return
		}
		src, err := compiler.LoadDir("../../policies")
		if err != nil {
			recording.err = err
			return
		}
		c, err := compiler.Compile(src, compiler.Options{})
		if err != nil {
			recording.err = err
			return
		}
		recording.pol = &c.Bundle.Policy
	})
	if recording.err != nil {
		t.Fatalf("demo recording: %v (the demo needs PostgreSQL's initdb and postgres binaries: apt-get install postgresql)", recording.err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(recording.dir, "gatehouse.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return recording.res, st, recording.pol
}

func TestMain(m *testing.M) {
	code := m.Run()
	if recording.dir != "" {
		os.RemoveAll(recording.dir)
	}
	os.Exit(code)
}

func find(t *testing.T, rep *review.Report, name string) *review.Identity {
	t.Helper()
	for i := range rep.Identities {
		if rep.Identities[i].Name == name {
			return &rep.Identities[i]
		}
	}
	t.Fatalf("identity %s not in the review", name)
	return nil
}

func grant(t *testing.T, id *review.Identity, rule string) *review.Grant {
	t.Helper()
	for i := range id.Grants {
		if id.Grants[i].RuleID == rule {
			return &id.Grants[i]
		}
	}
	t.Fatalf("%s has no grant %s; grants: %+v", id.Name, rule, id.Grants)
	return nil
}

// expected derives, from the raw recording, what the review must report
// for one identity: it walks the events directly, without the review code.
type expected struct {
	sessions, denied, masked int
	ruleUses                 map[string]int
	ruleLast                 map[string]time.Time
	approvals                []string
}

func expect(res *demo.Result, identity string) expected {
	e := expected{ruleUses: map[string]int{}, ruleLast: map[string]time.Time{}}
	mine := map[string]bool{}
	for _, s := range res.Sessions {
		if s.Identity == identity {
			mine[s.ID] = true
			e.sessions++
		}
	}
	for _, ev := range res.Events {
		if !mine[ev.SessionID] {
			continue
		}
		if ev.Kind == record.KindApproval && !slices.Contains(e.approvals, ev.ApprovalID) {
			e.approvals = append(e.approvals, ev.ApprovalID)
		}
		if ev.Kind != record.KindCommand {
			continue
		}
		if ev.Masked {
			e.masked++
		}
		if ev.Effect == "deny" {
			e.denied++
			continue
		}
		for _, r := range ev.RuleIDs {
			e.ruleUses[r]++
			if ev.Time.After(e.ruleLast[r]) {
				e.ruleLast[r] = ev.Time
			}
		}
	}
	return e
}

func TestBuildFromDemoRecording(t *testing.T) {
	res, st, pol := demoRecording(t)
	ctx := context.Background()
	now := recording.clock().Add(time.Minute)
	rep, err := review.Build(ctx, review.Config{Reader: st, Approvals: st, Policy: pol, Now: now, Since: now.Add(-90 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	// Agents first, then services, then humans.
	var kinds []string
	for _, id := range rep.Identities {
		kinds = append(kinds, id.Kind)
	}
	if kinds[0] != "agent" || kinds[1] != "agent" || kinds[2] != "service" || kinds[len(kinds)-1] != "human" {
		t.Errorf("identity order by kind: %v", kinds)
	}

	cc := find(t, rep, "claude-coder")
	want := expect(res, "claude-coder")
	if cc.Sessions != want.sessions || cc.Sessions < 7 {
		t.Errorf("claude-coder sessions = %d, want %d (>= 7)", cc.Sessions, want.sessions)
	}
	// Four SELECTs ran through agents-read-orders: one plain, three masked.
	g := grant(t, cc, "agents-read-orders")
	if g.Uses != 4 || g.Uses != want.ruleUses["agents-read-orders"] {
		t.Errorf("agents-read-orders uses = %d, want 4 (%d in the raw recording)", g.Uses, want.ruleUses["agents-read-orders"])
	}
	if !g.LastUse.Equal(want.ruleLast["agents-read-orders"]) || g.LastUse.IsZero() {
		t.Errorf("agents-read-orders last use = %s, want %s", g.LastUse, want.ruleLast["agents-read-orders"])
	}
	var unused []string
	for _, u := range cc.UnusedGrants() {
		unused = append(unused, u.RuleID)
	}
	slices.Sort(unused)
	wantUnused := []string{"agents-explain-orders"}
	if !slices.Equal(unused, wantUnused) {
		t.Errorf("claude-coder unused grants = %v, want %v", unused, wantUnused)
	}
	if slices.ContainsFunc(cc.Grants, func(g review.Grant) bool { return g.Effect != "allow" && g.Effect != "approve" }) {
		t.Errorf("a non-grant rule is listed as a grant: %+v", cc.Grants)
	}
	// Denied: DELETE without WHERE, pg_read_file, and both statements of
	// "SELECT 1; DROP TABLE customers".
	if cc.DeniedCount != want.denied || cc.DeniedCount < 4 || len(cc.Denied) != cc.DeniedCount {
		t.Errorf("claude-coder denied = %d (%d listed), want %d (>= 4)", cc.DeniedCount, len(cc.Denied), want.denied)
	}
	if !slices.ContainsFunc(cc.Denied, func(a review.Attempt) bool {
		return strings.Contains(a.Command, "pg_read_file") && slices.Contains(a.RuleIDs, "deny-dangerous-functions")
	}) {
		t.Errorf("the pg_read_file attempt is not listed with its deny rule: %+v", cc.Denied)
	}
	// Every read of orders-db is masked: mask-customer-pii's classifiers
	// apply to every text value.
	if cc.MaskedReads != 4 || cc.MaskedReads != want.masked {
		t.Errorf("claude-coder masked reads = %d, want 4 (%d raw)", cc.MaskedReads, want.masked)
	}
	if cc.Chains.Sessions != cc.Sessions || !cc.Chains.OK() || cc.Chains.Verified != cc.Sessions {
		t.Errorf("claude-coder chains = %+v", cc.Chains)
	}
	if len(cc.Resources) != 1 || cc.Resources[0].Name != "orders-db" {
		t.Fatalf("claude-coder resources = %+v", cc.Resources)
	}
	if st := cc.Resources[0].Statements; len(st) == 0 || st[0].Name != "select" || st[0].Count != 4 {
		t.Errorf("orders-db statements = %+v, want select 4 first", st)
	}
	tables := map[string]int{}
	for _, c := range cc.Resources[0].Tables {
		tables[c.Name] = c.Count
	}
	// As the gateway records them, resolved by the backend's search path:
	// orders in steps 1, 3 and 4, customers in steps 2 and 3.
	if len(tables) != 2 || tables["public.orders"] != 3 || tables["public.customers"] != 2 {
		t.Errorf("orders-db tables = %v, want public.orders 3, public.customers 2", tables)
	}
	// Four SELECTs and one SHOW (which needs no grant), besides the denials.
	if sum := sumInts(cc.Activity); sum != cc.Commands || cc.Commands != 5+cc.DeniedCount {
		t.Errorf("activity sums to %d, commands %d, want %d", sum, cc.Commands, 5+cc.DeniedCount)
	}

	// ci-deployer: one status update, and the migration that alice
	// approved (the demo runs in business hours).
	ci := find(t, rep, "ci-deployer")
	wantCI := expect(res, "ci-deployer")
	if got := grant(t, ci, "ci-writes-orders").Uses; got != 1 {
		t.Errorf("ci-writes-orders uses = %d, want 1", got)
	}
	if mig := grant(t, ci, "ci-migrations-need-approval"); mig.Uses != 1 || len(ci.Approvals) != 1 {
		t.Fatalf("migration uses = %d, approvals = %+v; want 1 and 1", mig.Uses, ci.Approvals)
	}
	a := ci.Approvals[0]
	if a.Status != record.StatusApproved || len(a.Votes) != 1 || a.Votes[0].Approver != "alice" ||
		!strings.Contains(a.Votes[0].Reason, "additive column") || a.RuleID != "ci-migrations-need-approval" {
		t.Errorf("approval = %+v", a)
	}
	if !slices.Equal([]string{a.ID}, wantCI.approvals) {
		t.Errorf("approval ids %s, raw %v", a.ID, wantCI.approvals)
	}

	// An identity without activity: all grants unused, nothing recorded.
	co := find(t, rep, "copilot-agent")
	if co.Sessions != 0 || co.Commands != 0 || !co.LastActivity.IsZero() || len(co.UnusedGrants()) != len(co.Grants) || len(co.Grants) != 2 {
		t.Errorf("copilot-agent = %+v", co)
	}
	// Review schedule from the policy: last reviewed 2026-11-02, every 90d.
	if g := grant(t, co, "agents-read-orders"); !g.NextReview.Equal(time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("next review = %s, want 2027-01-31", g.NextReview)
	}
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestBuildOneIdentityAndRender(t *testing.T) {
	_, st, pol := demoRecording(t)
	now := recording.clock().Add(time.Minute)
	rep, err := review.Build(context.Background(), review.Config{Reader: st, Policy: pol, Now: now, Identity: "claude-coder"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Identities) != 1 || rep.Identities[0].Name != "claude-coder" {
		t.Fatalf("identities = %d", len(rep.Identities))
	}
	for _, format := range []string{"markdown", "html", "csv", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := review.Render(&buf, rep, format); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			switch format {
			case "json":
				var back review.Report
				if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Identities[0].Grants[0].RuleID == "" {
					t.Fatalf("json: %v", err)
				}
			case "csv":
				rows, err := csv.NewReader(&buf).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != 1+len(rep.Identities[0].Grants) {
					t.Errorf("csv rows = %d, want header + %d grants", len(rows), len(rep.Identities[0].Grants))
				}
			default:
				for _, s := range []string{"claude-coder", "agents-explain-orders", "UNUSED", "agents-read-orders"} {
					if !strings.Contains(out, s) {
						t.Errorf("%s output lacks %q", format, s)
					}
				}
			}
		})
	}
	if err := review.Render(&bytes.Buffer{}, rep, "pdf"); !errors.Is(err, review.ErrFormat) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	_, st, pol := demoRecording(t)
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		cfg  review.Config
		want error
	}{
		{"no reader", review.Config{Policy: pol, Now: now}, review.ErrInvalid},
		{"no policy", review.Config{Reader: st, Now: now}, review.ErrInvalid},
		{"no clock", review.Config{Reader: st, Policy: pol}, review.ErrInvalid},
		{"since after now", review.Config{Reader: st, Policy: pol, Now: now, Since: now.Add(time.Hour)}, review.ErrInvalid},
		{"unknown identity", review.Config{Reader: st, Policy: pol, Now: now, Identity: "mallory"}, review.ErrUnknownIdentity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := review.Build(context.Background(), tc.cfg); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// tampered edits one recorded event on the way out of the store, as an
// attacker with write access to the database would.
type tampered struct {
	record.Backend
	session string
}

func (t tampered) Events(ctx context.Context, id string) ([]record.Event, error) {
	evs, err := t.Backend.Events(ctx, id)
	if id == t.session && len(evs) > 0 {
		evs[0].Command = "SELECT 'nothing to see'"
	}
	return evs, err
}

func TestBrokenChainIsReported(t *testing.T) {
	t.Parallel()
	res, st, pol := demoRecording(t)
	var victim string
	for _, s := range res.Sessions {
		if s.Identity == "claude-coder" {
			victim = s.ID
			break
		}
	}
	rep, err := review.Build(context.Background(), review.Config{Reader: tampered{st, victim}, Policy: pol, Now: recording.clock().Add(time.Minute), Identity: "claude-coder"})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Identities[0].Chains
	if c.OK() || len(c.Broken) != 1 || c.Broken[0].SessionID != victim || c.Verified != c.Sessions-1 {
		t.Errorf("chains = %+v, want session %s broken", c, victim)
	}
	var buf bytes.Buffer
	if err := review.Render(&buf, rep, "markdown"); err != nil || !strings.Contains(buf.String(), "BROKEN") {
		t.Errorf("markdown does not show the broken chain (%v)", err)
	}
}

func TestGrantFlags(t *testing.T) {
	t.Parallel()
	pol := &bundle.Policy{
		Identities: []bundle.Identity{{Name: "bot", Kind: "agent", Groups: []string{"bots"}}},
		Rules: []bundle.Rule{
			{ID: "expired", Subjects: []string{"bot"}, Effect: bundle.EffectAllow, Expires: "2026-11-01"},
			{ID: "soon", Subjects: []string{"group:bots"}, Effect: bundle.EffectApprove, Expires: "2026-12-10",
				Review: &bundle.Review{Owner: "x", Every: "30d", LastReviewed: "2026-11-20"}},
			{ID: "due", Effect: bundle.EffectAllow, Review: &bundle.Review{Owner: "x", Every: "90d", LastReviewed: "2026-08-01"}},
			{ID: "never-reviewed", Subjects: []string{"*"}, Effect: bundle.EffectAllow, Review: &bundle.Review{Owner: "x", Every: "90d"}},
			{ID: "other", Subjects: []string{"someone"}, Effect: bundle.EffectAllow},
			{ID: "a-deny", Subjects: []string{"bot"}, Effect: bundle.EffectDeny},
			{ID: "a-mask", Subjects: []string{"bot"}, Effect: bundle.EffectMask},
		},
	}
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "r.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rep, err := review.Build(context.Background(), review.Config{Reader: st, Policy: pol, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	id := find(t, rep, "bot")
	type flags struct{ expired, soon, due bool }
	want := map[string]flags{
		"expired": {expired: true}, "soon": {soon: true}, "due": {due: true}, "never-reviewed": {due: true},
	}
	if len(id.Grants) != len(want) {
		t.Fatalf("grants = %+v", id.Grants)
	}
	for _, g := range id.Grants {
		if got := (flags{g.Expired, g.ExpiringSoon, g.ReviewDue}); got != want[g.RuleID] {
			t.Errorf("%s: flags %+v, want %+v", g.RuleID, got, want[g.RuleID])
		}
	}
	if grant(t, id, "soon").Via != "group:bots" || grant(t, id, "due").Via != "*" {
		t.Errorf("via: %+v", id.Grants)
	}
	if len(id.Activity) != 13 {
		t.Errorf("activity weeks = %d, want 13 for 90 days", len(id.Activity))
	}
}

// TestSuggestCompiles compiles the least-privilege suggestion for the
// demo's agent and CI identities together with the example policy's
// identities and resources: the snippet is valid policy language.
func TestSuggestCompiles(t *testing.T) {
	t.Parallel()
	_, st, pol := demoRecording(t)
	now := recording.clock().Add(time.Minute)
	rep, err := review.Build(context.Background(), review.Config{Reader: st, Policy: pol, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"claude-coder", "ci-deployer", "copilot-agent"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id := find(t, rep, name)
			snippet := review.Suggest(id, rep, review.SuggestOptions{Expires: "2027-03-01"})
			dir := t.TempDir()
			copyTree(t, "../../cue.mod", filepath.Join(dir, "cue.mod"))
			for _, f := range []string{"policy.cue", "identities.cue", "resources.cue"} {
				copyFile(t, filepath.Join("../../policies", f), filepath.Join(dir, "policies", f))
			}
			if err := os.WriteFile(filepath.Join(dir, "policies", "suggested.cue"), []byte("package policies\n\n"+snippet), 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := compiler.LoadDir(filepath.Join(dir, "policies"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := compiler.Compile(src, compiler.Options{})
			if err != nil {
				t.Fatalf("suggestion does not compile: %v\n%s", err, snippet)
			}
			rules := out.Bundle.Policy.Rules
			switch name {
			case "claude-coder":
				if len(rules) != 1 || rules[0].Effect != bundle.EffectAllow || !slices.Equal(rules[0].SQL.Statements, []string{"select"}) ||
					!slices.Equal(rules[0].SQL.Tables, []string{"public.customers", "public.orders"}) || !slices.Equal(rules[0].Subjects, []string{"claude-coder"}) {
					t.Errorf("claude-coder suggestion: %+v\n%s", rules, snippet)
				}
				for _, s := range []string{"select: 4", "table public.orders: 3", "Unused grants, not carried over: agents-explain-orders"} {
					if !strings.Contains(snippet, s) {
						t.Errorf("snippet lacks evidence %q:\n%s", s, snippet)
					}
				}
			case "ci-deployer":
				// The status update, and the approved migration.
				if len(rules) != 2 {
					t.Fatalf("ci-deployer: %d rules, want 2\n%s", len(rules), snippet)
				}
				i := slices.IndexFunc(rules, func(r bundle.Rule) bool { return r.Effect == bundle.EffectApprove })
				if i < 0 || rules[i].Approval == nil || rules[i].Approval.Group != "dba" || !slices.Equal(rules[i].SQL.Statements, []string{"alter"}) {
					t.Errorf("ci-deployer approve suggestion: %+v\n%s", rules, snippet)
				}
			case "copilot-agent":
				if len(rules) != 0 || !strings.Contains(snippet, "nothing to keep") {
					t.Errorf("copilot-agent used nothing: %+v\n%s", rules, snippet)
				}
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
