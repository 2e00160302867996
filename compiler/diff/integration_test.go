package diff_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/compiler/diff"
	"github.com/gatehouse/gatehouse/compiler/lint"
	"github.com/gatehouse/gatehouse/internal/testrepo"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// repoRoot is the module root, where the example policies live.
const repoRoot = "../.."

func compileRev(t *testing.T, repo, rev string) *bundle.Policy {
	t.Helper()
	src, err := compiler.LoadGit(repo, rev, "policies")
	if err != nil {
		t.Fatalf("load %s: %v", rev, err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatalf("compile %s: %v", rev, err)
	}
	return &res.Bundle.Policy
}

// TestGitEscalation builds two commits of a policy repository and checks
// that the diff between them reports the escalation in the second one.
func TestGitEscalation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	testrepo.CopyExample(t, repoRoot, dir)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	base := testrepo.CommitAll(t, repo, "example policy", t0)

	rules := filepath.Join(dir, "policies", "rules.cue")
	// Agents may now also read payments, and the SSN column is no longer
	// masked.
	testrepo.EditFile(t, rules, `tables: ["public.customers", "public.orders"]}`, `tables: ["public.customers", "public.orders", "public.payments"]}`)
	testrepo.EditFile(t, rules, `"customers.ssn", `, ``)
	head := testrepo.CommitAll(t, repo, "widen agent access", t0.Add(time.Hour))

	bp, hp := compileRev(t, dir, base), compileRev(t, dir, head)
	rep := diff.Compare(bp, hp)
	esc := rep.Escalations()
	var gained, unmasked bool
	for _, c := range esc {
		switch {
		case c.Kind == diff.KindGained && c.Identity == "claude-coder" && c.Resource == "orders-db" &&
			c.Access != nil && c.Access.Action == "select" && c.Access.Object == "public.payments":
			gained = true
			if !slices.Equal(c.HeadRules, []string{"agents-read-orders"}) || c.IdentityKind != "agent" {
				t.Errorf("gained change: %+v", c)
			}
		case c.Kind == diff.KindMaskRemoved && c.Identity == "claude-coder" && strings.Contains(c.Detail, "customers.ssn"):
			unmasked = true
		}
	}
	if !gained || !unmasked {
		t.Fatalf("escalations lack the payments grant (%v) or the SSN mask removal (%v):\n%+v", gained, unmasked, esc)
	}
	for _, c := range rep.Changes {
		if c.Kind == diff.KindLost || c.Kind == diff.KindDenyRemoved || c.Kind == diff.KindIdentityAdded {
			t.Errorf("unexpected change %+v", c)
		}
	}

	// The way back narrows access: nothing escalates.
	if back := diff.Compare(hp, bp); len(back.Escalations()) != 0 {
		t.Fatalf("reverting reports escalations: %+v", back.Escalations())
	}
	// The same commit compared with itself has no changes.
	if same := diff.Compare(bp, compileRev(t, dir, base)); !same.Empty() {
		t.Fatalf("same revision differs: %+v", same.Changes)
	}
}

// TestExamplePolicyLint checks that the example policy passes lint and that
// a risky edit to it is reported at the right place.
func TestExamplePolicyLint(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	src, err := compiler.LoadDir(filepath.Join(repoRoot, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fs := lint.Run(&res.Bundle.Policy, lint.Options{Now: now}); fs.HasErrors() {
		t.Fatalf("example policy has lint errors: %+v", fs)
	}

	dir := t.TempDir()
	testrepo.CopyExample(t, repoRoot, dir)
	testrepo.EditFile(t, filepath.Join(dir, "policies", "rules.cue"),
		`sql: {statements: ["select"], tables: ["public.customers", "public.orders"]}`,
		`sql: {statements: ["select", "insert"], tables: ["public.customers", "public.orders"]}`)
	src, err = compiler.LoadDir(filepath.Join(dir, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs := lint.Run(&res.Bundle.Policy, lint.Options{Now: now})
	var found *lint.Finding
	for i, f := range fs {
		if f.Code == lint.CodeAgentWrite && f.RuleID == "agents-read-orders" {
			found = &fs[i]
		}
	}
	if found == nil {
		t.Fatalf("no GH030 for agents-read-orders: %+v", fs)
	}
	loc := found.Location()
	if !strings.HasSuffix(loc.File, "rules.cue") || loc.Line == 0 {
		t.Fatalf("finding position %q does not point into rules.cue", found.Pos)
	}
}
