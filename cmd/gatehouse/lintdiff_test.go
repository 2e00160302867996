package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"

	"github.com/gatehouse/gatehouse/internal/testrepo"
)

// policyCopy copies cue.mod and the example policies into a new temporary
// repository directory and returns it.
func policyCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testrepo.CopyExample(t, filepath.Join("..", ".."), dir)
	return dir
}

// widenAgents lets the coding agents insert into the tables they read.
func widenAgents(t *testing.T, repoDir string) {
	t.Helper()
	testrepo.EditFile(t, filepath.Join(repoDir, "policies", "rules.cue"),
		`sql: {statements: ["select"], tables: ["public.customers", "public.orders"]}`,
		`sql: {statements: ["insert", "select"], tables: ["public.customers", "public.orders"]}`)
}

func TestLintCommand(t *testing.T) {
	t.Parallel()
	risky := policyCopy(t)
	widenAgents(t, risky)
	broken := policyCopy(t)
	if err := os.WriteFile(filepath.Join(broken, "policies", "zz.cue"), []byte("package policies\nrules: 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	examples := filepath.Join("..", "..", "policies")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"example passes", []string{"lint", "--dir", examples, "--now", "2026-11-27"}, exitOK, ""},
		{"agent write fails", []string{"lint", "--dir", filepath.Join(risky, "policies"), "--now", "2026-11-27"}, exitFindings, "error GH030: rule \"agents-read-orders\""},
		{"github format", []string{"lint", "--dir", filepath.Join(risky, "policies"), "--format", "github", "--now", "2026-11-27"}, exitFindings, "::error file="},
		{"far future expires grants", []string{"lint", "--dir", examples, "--now", "2030-01-01"}, exitOK, "warning GH022"},
		{"invalid policy", []string{"lint", "--dir", filepath.Join(broken, "policies")}, exitInvalidPolicy, ""},
		{"bad format", []string{"lint", "--dir", examples, "--format", "xml"}, exitUsage, ""},
		{"bad now", []string{"lint", "--dir", examples, "--now", "tomorrow"}, exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, code, _ := run(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, stderr)
			}
			if tc.wantOut == "" && tc.wantCode == exitOK && out != "" {
				t.Fatalf("want no findings, got:\n%s", out)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Fatalf("stdout lacks %q:\n%s", tc.wantOut, out)
			}
		})
	}
}

func TestLintCommandSARIF(t *testing.T) {
	t.Parallel()
	risky := policyCopy(t)
	widenAgents(t, risky)
	out, _, code, _ := run(t, "lint", "--dir", filepath.Join(risky, "policies"), "--format", "sarif", "--now", "2026-11-27")
	if code != exitFindings {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		Version string
		Runs    []struct {
			Results []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("sarif is not JSON: %v", err)
	}
	if doc.Version != "2.1.0" || len(doc.Runs) != 1 || len(doc.Runs[0].Results) == 0 {
		t.Fatalf("sarif document: %s", out)
	}
	r := doc.Runs[0].Results[0]
	pl := r.Locations[0].PhysicalLocation
	if r.RuleID != "GH030" || !strings.HasSuffix(pl.ArtifactLocation.URI, "rules.cue") || pl.Region.StartLine == 0 {
		t.Fatalf("result: %+v", r)
	}
}

func TestDiffCommand(t *testing.T) {
	t.Parallel()
	// A Git repository with two commits: the example, then a widening.
	repoDir := policyCopy(t)
	repo, err := git.PlainInit(repoDir, false)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	base := testrepo.CommitAll(t, repo, "example", t0)
	widenAgents(t, repoDir)
	head := testrepo.CommitAll(t, repo, "agents insert", t0.Add(time.Hour))
	examples := filepath.Join("..", "..", "policies")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"revisions, escalation fails", []string{"diff", "--repo", repoDir, "--fail-on-escalation", base, head}, exitFindings, "allow insert on public.orders"},
		{"revisions, report only", []string{"diff", "--repo", repoDir, base, head}, exitOK, "## Gatehouse access diff"},
		{"revisions, way back", []string{"diff", "--repo", repoDir, "--fail-on-escalation", head, base}, exitOK, "`lost`"},
		{"directories", []string{"diff", "--fail-on-escalation", examples, repoDir}, exitFindings, "`gained`"},
		{"same directory", []string{"diff", "--fail-on-escalation", examples, examples}, exitOK, "No change in effective access."},
		{"json", []string{"diff", "--repo", repoDir, "--format", "json", base, head}, exitOK, `"kind": "gained"`},
		{"unknown revision", []string{"diff", "--repo", repoDir, base, "no-such-branch"}, exitInvalidPolicy, ""},
		{"one argument", []string{"diff", base}, exitUsage, ""},
		{"bad format", []string{"diff", "--format", "html", examples, examples}, exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, code, _ := run(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, stderr)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Fatalf("stdout lacks %q:\n%s", tc.wantOut, out)
			}
		})
	}
}
