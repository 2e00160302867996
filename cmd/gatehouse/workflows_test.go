package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// gatehouseCall matches an invocation of the gatehouse binary in a shell
// script: the command word, then the rest of the line.
var gatehouseCall = regexp.MustCompile(`(?:^|[\s/"])gatehouse"?\s+([a-z][a-z-]*)((?:\s+[^\s|;&]+)*)`)

// checkRun verifies that every gatehouse command in script exists and that
// its --flags are defined.
func checkRun(t *testing.T, where, script string) int {
	t.Helper()
	calls := 0
	for _, line := range strings.Split(script, "\n") {
		for _, m := range gatehouseCall.FindAllStringSubmatch(line, -1) {
			args := append([]string{m[1]}, strings.Fields(m[2])...)
			root := newRootCmd()
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("%s: %q: no gatehouse subcommand %q", where, line, m[1])
				continue
			}
			calls++
			for _, a := range rest {
				if !strings.HasPrefix(a, "--") {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
				if cmd.Flag(name) == nil {
					t.Errorf("%s: %q: gatehouse %s has no flag --%s", where, line, cmd.Name(), name)
				}
			}
		}
	}
	return calls
}

type workflow struct {
	Name string         `yaml:"name"`
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		RunsOn string `yaml:"runs-on"`
		Steps  []step `yaml:"steps"`
	} `yaml:"jobs"`
}

type step struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]any    `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestWorkflows checks the structure of the policy workflows and the
// reusable action, and that every gatehouse command they run exists with
// the flags they pass.
func TestWorkflows(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", ".github")
	uses := map[string]bool{}
	cases := []struct {
		file    string
		trigger string
		calls   int
		actions []string
	}{
		{"workflows/policy-check.yml", "pull_request", 1, []string{"actions/checkout@v4", "actions/setup-go@v5",
			"actions/github-script@v7", "github/codeql-action/upload-sarif@v3", "actions/upload-artifact@v4"}},
		{"workflows/publish.yml", "push", 4, []string{"actions/checkout@v4", "actions/setup-go@v5"}},
	}
	for _, tc := range cases {
		var wf workflow
		readYAML(t, filepath.Join(root, tc.file), &wf)
		if wf.Name == "" || wf.On[tc.trigger] == nil || len(wf.Jobs) == 0 {
			t.Errorf("%s: name %q, triggers %v, %d jobs", tc.file, wf.Name, wf.On, len(wf.Jobs))
		}
		calls := 0
		for name, job := range wf.Jobs {
			if job.RunsOn == "" || len(job.Steps) == 0 {
				t.Errorf("%s: job %s has no runner or steps", tc.file, name)
			}
			for i, s := range job.Steps {
				if (s.Uses == "") == (s.Run == "") {
					t.Errorf("%s: job %s step %d: want exactly one of uses and run", tc.file, name, i)
				}
				uses[s.Uses] = true
				calls += checkRun(t, tc.file+": "+s.Name, s.Run)
			}
		}
		if calls != tc.calls {
			t.Errorf("%s: %d gatehouse calls, want %d", tc.file, calls, tc.calls)
		}
		for _, a := range tc.actions {
			if !uses[a] {
				t.Errorf("%s: does not use %s", tc.file, a)
			}
		}
	}

	var pc workflow
	readYAML(t, filepath.Join(root, "workflows/policy-check.yml"), &pc)
	paths, _ := pc.On["pull_request"].(map[string]any)["paths"].([]any)
	joined := ""
	for _, p := range paths {
		joined += p.(string) + " "
	}
	if !strings.Contains(joined, "policies/") || !strings.Contains(joined, "conformance/") {
		t.Errorf("policy-check paths %v", paths)
	}
	for _, j := range pc.Jobs {
		for _, s := range j.Steps {
			if s.Uses == "actions/checkout@v4" && s.With["fetch-depth"] != 0 {
				t.Errorf("checkout without full history: %v", s.With)
			}
			if s.Uses == "actions/github-script@v7" && !strings.Contains(s.With["script"].(string), "<!-- gatehouse-policy-check -->") {
				t.Error("PR comment has no hidden marker")
			}
			if strings.Contains(s.Run, "gatehouse\" check") && !strings.Contains(s.Run, "origin/$BASE_REF") {
				t.Errorf("check does not compare with the base branch: %q", s.Run)
			}
		}
	}

	var pub workflow
	readYAML(t, filepath.Join(root, "workflows/publish.yml"), &pub)
	secrets := ""
	for _, j := range pub.Jobs {
		for _, s := range j.Steps {
			for k, v := range s.Env {
				secrets += k + "=" + v + " "
			}
		}
	}
	for _, want := range []string{"secrets.GATEHOUSE_SIGNING_KEY", "secrets.GATEHOUSE_KEY_PASSWORD"} {
		if !strings.Contains(secrets, want) {
			t.Errorf("publish does not use %s", want)
		}
	}
	if branches := pub.On["push"].(map[string]any)["branches"].([]any); len(branches) != 1 || branches[0] != "main" {
		t.Errorf("publish runs on %v", branches)
	}

	var action struct {
		Name   string         `yaml:"name"`
		Inputs map[string]any `yaml:"inputs"`
		Runs   struct {
			Using string `yaml:"using"`
			Steps []struct {
				step  `yaml:",inline"`
				Shell string `yaml:"shell"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	readYAML(t, filepath.Join(root, "actions/gatehouse-check/action.yml"), &action)
	if action.Runs.Using != "composite" || action.Inputs["base"] == nil {
		t.Errorf("action: using %q, inputs %v", action.Runs.Using, action.Inputs)
	}
	calls := 0
	for _, s := range action.Runs.Steps {
		if s.Run != "" && s.Shell == "" {
			t.Errorf("action step %q has no shell", s.Name)
		}
		calls += checkRun(t, "action: "+s.Name, s.Run)
	}
	if calls != 1 {
		t.Errorf("action runs gatehouse %d times, want 1 (check)", calls)
	}
}
