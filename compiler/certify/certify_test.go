package certify_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/compiler/certify"
	"github.com/gatehouse/gatehouse/compiler/diff"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

var reviewDate = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// policyRepo copies the example policies and the CUE module into a fresh
// Git repository with one commit and returns its root.
func policyRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"policies", "cue.mod"} {
		copyDir(t, filepath.Join("..", "..", dir), filepath.Join(root, dir))
	}
	repo, err := git.PlainInit(root, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "carol", Email: "carol@example.com", When: reviewDate.Add(-24 * time.Hour)}
	if _, err := wt.Commit("policies", &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		t.Fatal(err)
	}
	return root
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func compile(t *testing.T, dir string) (*compiler.Source, *bundle.Policy) {
	t.Helper()
	src, err := compiler.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatalf("compile %s: %v", dir, err)
	}
	return src, &res.Bundle.Policy
}

func rule(t *testing.T, p *bundle.Policy, id string) *bundle.Rule {
	t.Helper()
	for i := range p.Rules {
		if p.Rules[i].ID == id {
			return &p.Rules[i]
		}
	}
	return nil
}

const decisionsYAML = `
dba-business-hours: keep
agents-explain-orders: revoke
auditors-read-orders: revoke
ci-writes-orders: {shorten: {expires: "2027-01-15"}}
agents-read-orders: {action: keep, expires: "2027-06-01"}
`

// TestApplyCompilesAndDiffShowsOnlyRevocations is the contract of
// recertification: the edited policy compiles, and against the old policy
// it loses exactly the revoked grants; everything else that changes is an
// expiry.
func TestApplyCompilesAndDiffShowsOnlyRevocations(t *testing.T) {
	t.Parallel()
	root := policyRepo(t)
	dir := filepath.Join(root, "policies")
	src, old := compile(t, dir)
	dec, err := certify.ParseDecisions(strings.NewReader(decisionsYAML))
	if err != nil {
		t.Fatal(err)
	}
	res, err := certify.Apply(src, old, dec, certify.Options{Reviewer: "carol", Date: reviewDate})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || res.Files["policies/rules.cue"] == nil {
		t.Fatalf("changed files: %v", keys(res.Files))
	}
	if err := certify.Write(root, res); err != nil {
		t.Fatal(err)
	}
	_, head := compile(t, dir)

	revoked := []string{"agents-explain-orders", "auditors-read-orders"}
	for _, id := range revoked {
		if rule(t, head, id) != nil {
			t.Errorf("revoked rule %s is still in the policy", id)
		}
	}
	if len(head.Rules) != len(old.Rules)-2 {
		t.Errorf("rules: %d, want %d", len(head.Rules), len(old.Rules)-2)
	}

	rep := diff.Compare(old, head)
	lostRules := map[string]bool{}
	for _, c := range rep.Changes {
		switch c.Kind {
		case diff.KindLost:
			for _, r := range c.BaseRules {
				if !slices.Contains(revoked, r) {
					t.Errorf("lost access through a rule that was not revoked: %+v", c)
				}
				lostRules[r] = true
			}
		case diff.KindExpiryExtended, diff.KindExpiryShortened:
		default:
			t.Errorf("unexpected change %s: %s", c.Kind, c.Detail)
		}
	}
	for _, r := range revoked {
		if !lostRules[r] {
			t.Errorf("the diff does not show the revoked grant %s as lost", r)
		}
	}
	var shortened, extended bool
	for _, c := range rep.Changes {
		shortened = shortened || (c.Kind == diff.KindExpiryShortened && slices.Contains(c.BaseRules, "ci-writes-orders"))
		extended = extended || (c.Kind == diff.KindExpiryExtended && slices.Contains(c.BaseRules, "agents-read-orders"))
	}
	if !shortened || !extended {
		t.Errorf("expiry changes missing (shortened %v, extended %v): %+v", shortened, extended, rep.Changes)
	}

	// Kept: the review is recorded; the expiry is the later of the current
	// one and the review date plus the interval (2027-12-31 vs 2027-02-25).
	kept := rule(t, head, "dba-business-hours")
	if kept.Expires != "2027-12-31" || kept.Review == nil || kept.Review.LastReviewed != "2026-11-27" ||
		kept.Review.Reviewer != "carol" || kept.Review.Owner != "dba" || kept.Review.Every != "90d" {
		t.Errorf("kept rule: expires %s, review %+v", kept.Expires, kept.Review)
	}
	if r := rule(t, head, "agents-read-orders"); r.Expires != "2027-06-01" || r.Review.LastReviewed != "2026-11-27" {
		t.Errorf("kept with explicit date: %+v %+v", r.Expires, r.Review)
	}
	if r := rule(t, head, "ci-writes-orders"); r.Expires != "2027-01-15" || r.Review.LastReviewed != "2026-11-02" {
		t.Errorf("shortened: expires %s, review %+v", r.Expires, r.Review)
	}
	// Untouched rules keep their shared review reference.
	text := string(res.Files["policies/rules.cue"])
	if !strings.Contains(text, "---- orders-db") || !strings.Contains(text, "---- guard rails") {
		t.Errorf("section comments around revoked rules were lost:\n%s", text)
	}
	if strings.Count(text, "review:  _dbaReview") < 2 {
		t.Errorf("untouched rules lost their shared review reference:\n%s", text)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestApplyRejects(t *testing.T) {
	t.Parallel()
	root := policyRepo(t)
	src, pol := compile(t, filepath.Join(root, "policies"))
	stale := &compiler.Source{Root: src.Root, Dir: src.Dir, Files: map[string][]byte{}, Time: src.Time}
	for k, v := range src.Files {
		stale.Files[k] = v
	}
	stale.Files["policies/rules.cue"] = append([]byte("// a new first line\n"), src.Files["policies/rules.cue"]...)
	opts := certify.Options{Reviewer: "carol", Date: reviewDate}
	cases := []struct {
		name string
		src  *compiler.Source
		dec  certify.Decisions
		opts certify.Options
		want error
	}{
		{"unknown rule", src, certify.Decisions{"nope": {Action: "keep"}}, opts, certify.ErrUnknownRule},
		{"deny rule", src, certify.Decisions{"deny-agent-ddl": {Action: "revoke"}}, opts, certify.ErrNotGrant},
		{"mask rule", src, certify.Decisions{"mask-customer-pii": {Action: "keep"}}, opts, certify.ErrNotGrant},
		{"shorten later", src, certify.Decisions{"auditors-read-orders": {Action: "shorten", Expires: "2028-01-01"}}, opts, certify.ErrDecisions},
		{"shorten into the past", src, certify.Decisions{"auditors-read-orders": {Action: "shorten", Expires: "2026-11-01"}}, opts, certify.ErrDecisions},
		{"keep until the past", src, certify.Decisions{"auditors-read-orders": {Action: "keep", Expires: "2026-01-01"}}, opts, certify.ErrDecisions},
		{"no reviewer", src, certify.Decisions{"auditors-read-orders": {Action: "keep"}}, certify.Options{Date: reviewDate}, certify.ErrDecisions},
		{"no date", src, certify.Decisions{"auditors-read-orders": {Action: "keep"}}, certify.Options{Reviewer: "carol"}, certify.ErrDecisions},
		{"source changed since compiling", stale, certify.Decisions{"auditors-read-orders": {Action: "revoke"}}, opts, certify.ErrSource},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := certify.Apply(tc.src, pol, tc.dec, tc.opts); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseDecisions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want certify.Decisions
		err  bool
	}{
		{"yaml", decisionsYAML, certify.Decisions{
			"dba-business-hours": {Action: "keep"}, "agents-explain-orders": {Action: "revoke"}, "auditors-read-orders": {Action: "revoke"},
			"ci-writes-orders": {Action: "shorten", Expires: "2027-01-15"}, "agents-read-orders": {Action: "keep", Expires: "2027-06-01"},
		}, false},
		{"json", `{"a": "revoke", "b": {"shorten": {"expires": "2027-01-01"}}}`, certify.Decisions{
			"a": {Action: "revoke"}, "b": {Action: "shorten", Expires: "2027-01-01"},
		}, false},
		{"empty", ``, nil, true},
		{"unknown action", `a: extend`, nil, true},
		{"shorten without date", `a: shorten`, nil, true},
		{"bad date", `a: {shorten: {expires: "next week"}}`, nil, true},
		{"revoke with date", `a: {action: revoke, expires: "2027-01-01"}`, nil, true},
		{"unknown key", `a: {action: keep, until: "2027-01-01"}`, nil, true},
		{"not a map", `[keep]`, nil, true},
		{"number", `a: 3`, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := certify.ParseDecisions(strings.NewReader(tc.in))
			if tc.err {
				if !errors.Is(err, certify.ErrDecisions) {
					t.Fatalf("err = %v, want ErrDecisions", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: %+v, want %+v", k, got[k], v)
				}
			}
		})
	}
	big := strings.NewReader("a: keep\n" + strings.Repeat("#", certify.MaxDecisionsSize))
	if _, err := certify.ParseDecisions(big); !errors.Is(err, certify.ErrDecisions) {
		t.Errorf("oversized file: %v", err)
	}
}

func TestCommitOnBranch(t *testing.T) {
	t.Parallel()
	root := policyRepo(t)
	src, pol := compile(t, filepath.Join(root, "policies"))
	opts := certify.Options{Reviewer: "carol", Date: reviewDate}
	res, err := certify.Apply(src, pol, certify.Decisions{"agents-explain-orders": {Action: "revoke"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	msg := certify.Summary(res, opts)
	id, err := certify.Commit(root, res, certify.CommitOptions{Branch: "review/2026-11", Message: msg,
		AuthorName: "carol", AuthorEmail: "carol@example.com", When: reviewDate})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := git.PlainOpen(root)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName("review/2026-11"), true)
	if err != nil || ref.Hash().String() != id {
		t.Fatalf("branch: %v %v, want %s", ref, err, id)
	}
	c, err := repo.CommitObject(ref.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Message, "revoke agents-explain-orders") || c.NumParents() != 1 {
		t.Errorf("commit message %q, parents %d", c.Message, c.NumParents())
	}
	f, err := c.File("policies/rules.cue")
	if err != nil {
		t.Fatal(err)
	}
	content, _ := f.Contents()
	if strings.Contains(content, `"agents-explain-orders"`) {
		t.Error("the committed rules.cue still has the revoked rule")
	}
	// The committed policy compiles from Git.
	gsrc, err := compiler.LoadGit(root, "review/2026-11", "policies")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compiler.Compile(gsrc, compiler.Options{}); err != nil {
		t.Fatalf("committed policy: %v", err)
	}
	if _, err := certify.Commit(root, res, certify.CommitOptions{Branch: "review/2026-11", Message: msg, AuthorName: "carol", When: reviewDate}); !errors.Is(err, certify.ErrBranchExists) {
		t.Errorf("second commit on the same branch: %v", err)
	}
}
