package compiler

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// fixedTime is the source time used where a test needs stable bytes.
var fixedTime = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func compileExample(t *testing.T) *Result {
	t.Helper()
	src, err := LoadDir("../policies")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	src.Time = fixedTime
	res, err := Compile(src, Options{})
	if err != nil {
		var ie *InvalidPolicyError
		if errors.As(err, &ie) {
			t.Fatalf("example policies do not compile:\n%s", ie.Diagnostics)
		}
		t.Fatalf("Compile: %v", err)
	}
	return res
}

func TestExamplePolicies(t *testing.T) {
	t.Parallel()
	res := compileExample(t)
	if len(res.Diagnostics) != 0 {
		t.Errorf("unexpected diagnostics:\n%s", res.Diagnostics)
	}
	p := &res.Bundle.Policy
	if got := len(p.Identities); got != 8 {
		t.Errorf("identities: got %d, want 8", got)
	}
	if got := len(p.Resources); got != 1 {
		t.Errorf("resources: got %d, want 1 (only types with a data path)", got)
	}
	ids := map[string]bundle.Identity{}
	for _, id := range p.Identities {
		ids[id.Name] = id
	}
	if g := ids["claude-coder"].Groups; strings.Join(g, ",") != "coding-agents" {
		t.Errorf("claude-coder groups: %v", g)
	}
	if g := ids["ci-deployer"].Groups; len(g) != 0 {
		t.Errorf("ci-deployer groups: %v", g)
	}
	if !strings.HasPrefix(ids["alice"].Pos, "policies/identities.cue:") {
		t.Errorf("alice pos %q", ids["alice"].Pos)
	}
	rules := map[string]bundle.Rule{}
	for _, r := range p.Rules {
		rules[r.ID] = r
	}
	if got := strings.Join(rules["deny-unbounded-writes"].ResolvedResources, ","); got != "orders-db" {
		t.Errorf("tag:sql resolves to %q", got)
	}
	if got := rules["dba-after-hours-approval"].Approval; got == nil || got.Timeout != "15m" || got.Count != 1 {
		t.Errorf("default approval timeout/count not applied: %+v", got)
	}
	if m := rules["mask-customer-pii"].Mask; m.Style != "partial" || m.Binary != "null" || m.Predicates != "deny" {
		t.Errorf("mask options wrong: %+v", m)
	}
	var cls []string
	for _, c := range p.Classifiers {
		cls = append(cls, c.Name)
		_, builtin := builtinClassifiers[c.Name]
		if c.Builtin != builtin || c.Pattern == "" {
			t.Errorf("classifier %s: builtin=%v pattern=%q", c.Name, c.Builtin, c.Pattern)
		}
	}
	if got := strings.Join(cls, ","); got != "credit_card,email,order_ref,secret,us_ssn" {
		t.Errorf("classifiers %s", got)
	}
	if len(res.Tests) < len(p.Rules) {
		t.Errorf("%d policy tests for %d rules", len(res.Tests), len(p.Rules))
	}
	// Every rule is named by at least one test expectation.
	named := map[string]bool{}
	for _, tc := range res.Tests {
		for _, id := range tc.Expect.Rules {
			named[id] = true
			if _, ok := rules[id]; !ok {
				t.Errorf("test %q expects unknown rule %q", tc.Name, id)
			}
		}
	}
	for id := range rules {
		if !named[id] {
			t.Errorf("rule %s is not covered by a policy test", id)
		}
	}
	m := res.Bundle.Manifest
	if m.Serial != uint64(fixedTime.Unix()) || !m.NotBefore.Equal(fixedTime) || !m.Expires.Equal(fixedTime.Add(DefaultValidFor)) {
		t.Errorf("manifest times: %+v", m)
	}
	if !strings.HasPrefix(m.Revision, "dir:sha256:") || m.Revision != "dir:"+m.SourceDigest {
		t.Errorf("revision %q source digest %q", m.Revision, m.SourceDigest)
	}
	data, err := bundle.Encode(res.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "policies.bundle.json", data)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	src := &Source{Dir: ".", Time: fixedTime, Files: map[string][]byte{
		"p.cue": []byte("package p\nidentities: a: {kind: \"agent\", match: subject: \"a\"}\n"),
	}}
	res, err := Compile(src, Options{Serial: 42, ValidFor: time.Hour, CompilerVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Bundle.Manifest
	if m.Serial != 42 || !m.Expires.Equal(fixedTime.Add(time.Hour)) || m.CompilerVersion != "test" {
		t.Errorf("options not applied: %+v", m)
	}
	if res.Bundle.Policy.Settings.Audience != DefaultAudience {
		t.Errorf("default audience not filled: %+v", res.Bundle.Policy.Settings)
	}
	src.Time = time.Time{}
	if _, err := Compile(src, Options{}); !errors.Is(err, ErrNoSourceTime) {
		t.Errorf("zero time: got %v, want ErrNoSourceTime", err)
	}
	if _, err := Compile(&Source{Time: fixedTime}, Options{}); !errors.Is(err, ErrNoPolicyFiles) {
		t.Errorf("no files: got %v, want ErrNoPolicyFiles", err)
	}
}

// TestInvalidPolicies compiles each testdata/invalid/NAME.cue as the only
// file of a policy directory and compares the diagnostics with
// testdata/invalid/NAME.golden.
func TestInvalidPolicies(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/invalid/*.cue")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".cue")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src := &Source{Dir: "policies", Time: fixedTime, Files: map[string][]byte{"policies/" + name + ".cue": data}}
			res, err := Compile(src, Options{})
			if err == nil {
				t.Fatalf("compiled without error: %d rules", len(res.Bundle.Policy.Rules))
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not match ErrInvalidPolicy", err)
			}
			var ie *InvalidPolicyError
			if !errors.As(err, &ie) || len(ie.Diagnostics) == 0 {
				t.Fatalf("no diagnostics in %v", err)
			}
			for _, d := range ie.Diagnostics {
				if d.Pos.File != "policies/"+name+".cue" || d.Pos.Line == 0 || d.Pos.Col == 0 {
					t.Errorf("diagnostic without a position in the policy file: %s", d)
				}
			}
			if !sort.SliceIsSorted(ie.Diagnostics, func(i, j int) bool {
				a, b := ie.Diagnostics[i].Pos, ie.Diagnostics[j].Pos
				return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
			}) {
				t.Errorf("diagnostics not sorted:\n%s", ie.Diagnostics)
			}
			golden(t, filepath.Join("invalid", name+".golden"), []byte(ie.Diagnostics.String()))
		})
	}
}

// TestSchemaImportWithoutModule checks that a repository without cue.mod
// may still import the schema: the compiler supplies both.
func TestSchemaImportWithoutModule(t *testing.T) {
	t.Parallel()
	src, err := LoadDir("testdata/valid/noimport")
	if err != nil {
		t.Fatal(err)
	}
	// LoadDir finds this repository's cue.mod; drop it to simulate a
	// repository that has none.
	files := map[string][]byte{}
	for name, data := range src.Files {
		if rel, ok := strings.CutPrefix(name, "compiler/testdata/valid/noimport/"); ok {
			files[rel] = data
		}
	}
	for _, s := range []*Source{
		src,
		{Dir: ".", Time: fixedTime, Files: files},
	} {
		res, err := Compile(s, Options{})
		if err != nil {
			t.Fatalf("Compile (%d files): %v", len(s.Files), err)
		}
		r := res.Bundle.Policy.Rules[0]
		if got := strings.Join(r.ResolvedResources, ","); got != "db" {
			t.Errorf("resolved resources %q, want db (unknown names dropped)", got)
		}
		if got := strings.Join(r.Resources, ","); got != "missing,tag:prod" {
			t.Errorf("resources as written %q", got)
		}
		if got := strings.Join(r.SQL.Statements, ","); got != "select" {
			t.Errorf("statements not lower-cased: %q", got)
		}
	}
}

func TestDeterministicDirBuild(t *testing.T) {
	t.Parallel()
	var first []byte
	for i := 0; i < 3; i++ {
		data, err := bundle.Encode(compileExample(t).Bundle)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = data
			continue
		}
		if !bytes.Equal(first, data) {
			t.Fatalf("build %d differs from the first build", i)
		}
	}
}

func TestSortedOutput(t *testing.T) {
	t.Parallel()
	p := compileExample(t).Bundle.Policy
	names := func(n int, f func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	check := func(what string, s []string) {
		t.Helper()
		if !sort.StringsAreSorted(s) {
			t.Errorf("%s not sorted: %v", what, s)
		}
	}
	check("identities", names(len(p.Identities), func(i int) string { return p.Identities[i].Name }))
	check("groups", names(len(p.Groups), func(i int) string { return p.Groups[i].Name }))
	check("resources", names(len(p.Resources), func(i int) string { return p.Resources[i].Name }))
	check("classifiers", names(len(p.Classifiers), func(i int) string { return p.Classifiers[i].Name }))
	for _, g := range p.Groups {
		check("group "+g.Name, g.Members)
	}
	for _, id := range p.Identities {
		check("identity groups "+id.Name, id.Groups)
		check("identity roles "+id.Name, id.Roles)
	}
	for i, r := range p.Rules {
		if r.Index != i {
			t.Errorf("rule %s has index %d at position %d", r.ID, r.Index, i)
		}
		if r.Pos == "" {
			t.Errorf("rule %s has no position", r.ID)
		}
		check(r.ID+" subjects", r.Subjects)
		check(r.ID+" resources", r.Resources)
		check(r.ID+" resolved", r.ResolvedResources)
		if r.SQL != nil {
			check(r.ID+" statements", r.SQL.Statements)
			check(r.ID+" tables", r.SQL.Tables)
			check(r.ID+" columns", r.SQL.Columns)
			check(r.ID+" functions", r.SQL.Functions)
		}
		if r.SSH != nil {
			check(r.ID+" commands", r.SSH.Commands)
		}
		if r.HTTP != nil {
			check(r.ID+" methods", r.HTTP.Methods)
			check(r.ID+" paths", r.HTTP.Paths)
		}
		if r.Kubernetes != nil {
			check(r.ID+" verbs", r.Kubernetes.Verbs)
			check(r.ID+" k8s resources", r.Kubernetes.Resources)
		}
		if r.Mask != nil {
			check(r.ID+" mask columns", r.Mask.Columns)
			check(r.ID+" mask classifiers", r.Mask.Classifiers)
			check(r.ID+" mask json paths", r.Mask.JSONPaths)
		}
	}
	// The first rule in the file is the first rule in the bundle.
	if p.Rules[0].ID != "deny-unbounded-writes" || !strings.HasPrefix(p.Rules[0].Pos, "policies/rules.cue:") {
		t.Errorf("first rule %s at %s", p.Rules[0].ID, p.Rules[0].Pos)
	}
}

func TestDiagnosticString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    Diagnostic
		want string
	}{
		{"full", Diagnostic{Pos: Pos{File: "policies/a.cue", Line: 3, Col: 7}, Code: CodeSchema, Message: "x: bad"}, "policies/a.cue:3:7: schema: x: bad"},
		{"file only", Diagnostic{Pos: Pos{File: "policies"}, Code: CodeLoad, Message: "m"}, "policies: load: m"},
		{"no pos", Diagnostic{Code: CodeEval, Message: "m"}, "-: eval: m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.d.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSchemaSelectsValue checks that the compiled values are those of the
// policy unified with the schema, also where the policy alone would give
// another value (a default the schema rules out) or none (a disjunction
// the schema narrows to one value).
func TestSchemaSelectsValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		decl string
		kind string
		want string
	}{
		{"plain", "", `"human"`, "human"},
		{"default kept", "", `*"human" | "agent"`, "human"},
		{"default ruled out by the schema", "", `*"robot" | "agent"`, "agent"},
		{"disjunction narrowed by the schema", "", `"robot" | "service"`, "service"},
		{"default in a reference", `_kind: *"robot" | "service"`, `_kind`, "service"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			policy := "package p\n" + tc.decl + "\nidentities: a: {kind: " + tc.kind + ", match: subject: \"a\"}\n"
			src := &Source{Dir: ".", Time: fixedTime, Files: map[string][]byte{"p.cue": []byte(policy)}}
			res, err := Compile(src, Options{})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := res.Bundle.Policy.Identities[0].Kind; got != tc.want {
				t.Errorf("kind %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSchemaSuppliesNoValues guards the cheaper export of the policy
// package alone: it is only taken while the schema adds no values.
func TestSchemaSuppliesNoValues(t *testing.T) {
	t.Parallel()
	if schemaSuppliesValues() {
		t.Fatal("the schema supplies values (a default, a regular field or a comprehension): every compile exports the slower unified value")
	}
	tests := []struct {
		name string
		src  string
		want bool
	}{
		{"constraints only", "package s\n#A: {a?: string, b!: int & >=1, [string]: _, #c: 1, _d: 2}", false},
		{"default", "package s\n#A: {a?: *\"x\" | string}", true},
		{"regular field", "package s\n#A: {a: string}", true},
		{"nested regular field", "package s\n#A: {a?: {b: 1}}", true},
		{"comprehension", "package s\n#A: {if true {a?: 1}}", true},
		{"syntax error", "package s\n#A: {", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := suppliesValues(tc.src); got != tc.want {
				t.Errorf("suppliesValues = %v, want %v", got, tc.want)
			}
		})
	}
}
