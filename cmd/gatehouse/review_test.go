package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/review"
)

func TestReviewCLI(t *testing.T) {
	t.Parallel()
	store, _ := recordedStore(t)
	out, code := runSessionsCLI(t, "review", "--store", "sqlite:"+store, "--dir", "../../policies", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	var rep review.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	var cc, gone *review.Identity
	for i := range rep.Identities {
		switch rep.Identities[i].Name {
		case "claude-coder":
			cc = &rep.Identities[i]
		case "ci-bot":
			gone = &rep.Identities[i]
		}
	}
	// claude-coder's recorded commands name rule r1, which is no grant of
	// the policy: every grant is unused.
	if cc == nil || cc.Sessions != 1 || cc.Commands != 3 || len(cc.UnusedGrants()) != len(cc.Grants) || len(cc.Grants) != 2 {
		t.Errorf("claude-coder: %+v", cc)
	}
	// ci-bot is recorded but not in the policy: listed last, flagged.
	if gone == nil || gone.InPolicy || rep.Identities[len(rep.Identities)-1].Name != "ci-bot" {
		t.Errorf("ci-bot: %+v", gone)
	}

	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"review", "--store", "sqlite:" + store, "--dir", "../../policies", "--identity", "claude-coder"}, exitOK, "agents-explain-orders"},
		{[]string{"review", "--store", "sqlite:" + store, "--dir", "../../policies", "--identity", "claude-coder", "--format", "csv"}, exitOK, "identity,kind,sessions"},
		{[]string{"review", "--store", "sqlite:" + store, "--dir", "../../policies", "--identity", "claude-coder", "--suggest"}, exitOK, "nothing to keep"},
		{[]string{"review", "--store", "sqlite:" + store, "--dir", "../../policies", "--suggest"}, exitUsage, "--suggest needs --identity"},
		{[]string{"review", "--store", "sqlite:" + store, "--dir", "../../policies", "--format", "pdf"}, exitUsage, "unknown format"},
		{[]string{"review", "--store", "sqlite:" + store, "--dir", "../../policies", "--since", "later"}, exitUsage, "--since"},
		{[]string{"review", "--store", "sqlite:" + store, "--dir", "../../policies", "--identity", "mallory"}, exitError, "unknown identity"},
	}
	for _, tc := range cases {
		out, code := runSessionsCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}

func TestReviewCertifyCLI(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, dir := range []string{"policies", "cue.mod"} {
		if err := os.CopyFS(filepath.Join(root, dir), os.DirFS(filepath.Join("..", "..", dir))); err != nil {
			t.Fatal(err)
		}
	}
	dec := filepath.Join(root, "decisions.json")
	if err := os.WriteFile(dec, []byte(`{"agents-explain-orders": "revoke", "agents-read-orders": "keep"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "policies")
	out, code := runSessionsCLI(t, "review", "certify", "--dir", dir, "--decisions", dec, "--reviewer", "carol", "--date", "2026-11-27")
	if code != exitOK || !strings.Contains(out, "revoke agents-explain-orders") {
		t.Fatalf("exit %d: %s", code, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "rules.cue"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"agents-explain-orders"`) || !strings.Contains(string(data), `last_reviewed: "2026-11-27"`) {
		t.Errorf("rules.cue after certify:\n%s", data)
	}
	if out, code := runSessionsCLI(t, "build", "--dir", dir, "-o", filepath.Join(root, "b.json")); code != exitOK {
		t.Errorf("the certified policy does not build: %s", out)
	}
	for _, args := range [][]string{
		{"review", "certify", "--dir", dir, "--decisions", dec},
		{"review", "certify", "--dir", dir, "--reviewer", "carol"},
		{"review", "certify", "--dir", dir, "--reviewer", "carol", "--decisions", dec, "--date", "27.11.2026"},
	} {
		if out, code := runSessionsCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want usage:\n%s", args, code, out)
		}
	}
}

func TestAskDecisions(t *testing.T) {
	t.Parallel()
	pol, _, err := reviewPolicy("../../policies", "")
	if err != nil {
		t.Fatal(err)
	}
	var grants []string
	for _, r := range pol.Rules {
		if r.Effect == "allow" || r.Effect == "approve" {
			grants = append(grants, r.ID)
		}
	}
	// keep the first grant, revoke the second, shorten the third (after a
	// bad date and a bad answer), skip the rest.
	answers := "k\nr\ns tomorrow\nmaybe\ns 2027-01-01\n"
	var out strings.Builder
	dec, err := askDecisions(strings.NewReader(answers), &out, pol)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != 3 || dec[grants[0]].Action != "keep" || dec[grants[1]].Action != "revoke" ||
		dec[grants[2]].Action != "shorten" || dec[grants[2]].Expires != "2027-01-01" {
		t.Errorf("decisions %+v\n%s", dec, out.String())
	}
	if !strings.Contains(out.String(), "want a date YYYY-MM-DD") || !strings.Contains(out.String(), "answer k, r, s DATE or Enter") {
		t.Errorf("prompts:\n%s", out.String())
	}
}
