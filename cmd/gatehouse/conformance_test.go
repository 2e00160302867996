package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	examplePolicies = filepath.Join("..", "..", "policies")
	exampleSessions = filepath.Join("..", "..", "conformance", "sessions")
	exampleCases    = filepath.Join("..", "..", "conformance", "cases")
)

// narrowAgents takes customers out of the agents' read grant.
func narrowAgents(t *testing.T, repoDir string) {
	t.Helper()
	path := filepath.Join(repoDir, "policies", "rules.cue")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := `sql: {statements: ["select"], tables: ["public.customers", "public.orders"]}`
	if !strings.Contains(string(data), old) {
		t.Fatalf("example rules.cue no longer contains %q; update this test", old)
	}
	data = []byte(strings.Replace(string(data), old, `sql: {statements: ["select"], tables: ["public.orders"]}`, 1))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTestCommand(t *testing.T) {
	t.Parallel()
	failing := policyCopy(t)
	if err := os.WriteFile(filepath.Join(failing, "policies", "zz_tests.cue"), []byte(`package policies
tests: "agents may drop": {
	request: {identity: "claude-coder", resource: "orders-db", sql: "DROP TABLE orders", time: "2026-12-01T10:00:00+01:00"}
	expect: effect: "allow"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		wantOut string
	}{
		{"examples pass", []string{"test", "--dir", examplePolicies, "--cases", exampleCases}, exitOK, "passed, 0 failed"},
		{"failing test", []string{"test", "--dir", filepath.Join(failing, "policies"), "--cases", exampleCases}, exitTestFailure, "FAIL agents may drop"},
		{"junit", []string{"test", "--dir", examplePolicies, "--cases", exampleCases, "--format", "junit"}, exitOK, "<testsuite name=\"gatehouse.policy-tests\""},
		{"bad format", []string{"test", "--dir", examplePolicies, "--format", "tap"}, exitUsage, ""},
		{"invalid policy", []string{"test", "--dir", t.TempDir()}, exitInvalidPolicy, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, code, _ := run(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d (want %d), stdout lacks %q?\n%s\nstderr:\n%s", code, tc.code, tc.wantOut, out, stderr)
			}
		})
	}
}

func TestReplayCommand(t *testing.T) {
	t.Parallel()
	narrow := policyCopy(t)
	narrowAgents(t, narrow)
	ack := filepath.Join(t.TempDir(), "expected.cue")
	if err := os.WriteFile(ack, []byte(`expected: [{kind: "newly_denied", rule: "agents-read-orders", reason: "agents read customers through the reporting view"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(t.TempDir(), "none.cue")
	tests := []struct {
		name    string
		args    []string
		code    int
		wantOut string
	}{
		{"unchanged", []string{"replay", "--sessions", exampleSessions, "--base", examplePolicies, "--head", examplePolicies, "--expected", none}, exitOK, "No behavioural change"},
		{"against the recording", []string{"replay", "--sessions", exampleSessions, "--head", examplePolicies, "--expected", none}, exitOK, "No behavioural change"},
		{"undeclared change", []string{"replay", "--sessions", exampleSessions, "--base", examplePolicies, "--head", filepath.Join(narrow, "policies"), "--expected", none}, exitTestFailure, "| Newly denied |"},
		{"declared change", []string{"replay", "--sessions", exampleSessions, "--base", examplePolicies, "--head", filepath.Join(narrow, "policies"), "--expected", ack}, exitOK, "acknowledged: agents read customers"},
		{"json", []string{"replay", "--sessions", exampleSessions, "--base", examplePolicies, "--head", filepath.Join(narrow, "policies"), "--expected", none, "--format", "json"}, exitTestFailure, `"kind": "newly_denied"`},
		{"bad format", []string{"replay", "--format", "html"}, exitUsage, ""},
		{"malformed sessions", []string{"replay", "--sessions", filepath.Join("..", "..", "go.mod"), "--head", examplePolicies}, exitError, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, code, err := run(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d (want %d, err %v), stdout lacks %q?\n%s\nstderr:\n%s", code, tc.code, err, tc.wantOut, out, stderr)
			}
			if tc.name == "malformed sessions" && !strings.Contains(err.Error(), "go.mod:1:") {
				t.Errorf("error %v does not name the line", err)
			}
		})
	}
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	narrow := policyCopy(t)
	narrowAgents(t, narrow)
	dir := t.TempDir()
	report, sarif, junit := filepath.Join(dir, "report.md"), filepath.Join(dir, "lint.sarif"), filepath.Join(dir, "junit.xml")
	common := []string{"--sessions", exampleSessions, "--cases", exampleCases, "--expected", filepath.Join(dir, "none.cue"), "--now", "2026-11-27"}

	out, stderr, code, _ := run(t, append([]string{"check", "--base", examplePolicies, "--head", examplePolicies}, common...)...)
	if code != exitOK || !strings.Contains(out, "# Gatehouse policy check: passed") || !strings.Contains(out, "No behavioural change") {
		t.Fatalf("unchanged policy: exit %d\n%s\n%s", code, out, stderr)
	}

	args := append([]string{"check", "--repo", narrow, "--base", examplePolicies, "--report", report, "--sarif", sarif, "--junit", junit}, common...)
	out, stderr, code, _ = run(t, args...)
	if code != exitTestFailure || out != "" {
		t.Fatalf("narrowed policy: exit %d, stdout %q\n%s", code, out, stderr)
	}
	md, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"policy tests | ", "Newly denied", "Semantic access diff", "agent reads customers masked"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	var suites struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Failures int    `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(data, &suites); err != nil || len(suites.Suites) != 2 || suites.Suites[0].Failures == 0 || suites.Suites[1].Failures == 0 {
		t.Errorf("junit %v: %+v", err, suites)
	}
	if s, err := os.ReadFile(sarif); err != nil || !strings.Contains(string(s), `"version": "2.1.0"`) {
		t.Errorf("sarif %v: %.200s", err, s)
	}

	broken := policyCopy(t)
	if err := os.WriteFile(filepath.Join(broken, "policies", "zz.cue"), []byte("package policies\nrules: 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code, _ = run(t, append([]string{"check", "--repo", broken, "--base", examplePolicies}, common...)...)
	if code != exitInvalidPolicy || !strings.Contains(out, "compile | **invalid**") {
		t.Errorf("broken policy: exit %d\n%s", code, out)
	}
}
