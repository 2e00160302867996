// Package archtest checks the import rules of docs/architecture.md, so the
// layering cannot erode silently: the runtime never links the compiler or
// CUE, leaf packages stay leaves, and only runtime/server wires components.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/gatehouse/gatehouse/"

// allowed maps a package (relative to the module) to the module packages it
// may import directly. Subpackages inherit their parent's entry unless they
// have their own. "*" allows any module package.
var allowed = map[string][]string{
	"runtime/bundle":       {},
	"runtime/bundle/fetch": {},
	"runtime/engine":       {"runtime/bundle"},
	// Test support packages: reusable fakes and generators, never linked
	// into the binary.
	"runtime/engine/enginetest": {"runtime/engine", "runtime/bundle"},
	"runtime/identity":          {"runtime/bundle"},
	"runtime/sqlclass":          {"runtime/bundle", "runtime/sqlclass"},
	"runtime/pgcatalog":         {},
	"runtime/mask":              {"runtime/bundle"},
	"runtime/record":            {"runtime/bundle", "runtime/record"},
	"runtime/approval":          {"runtime/record", "runtime/bundle"},
	"runtime/review":            {"runtime/record", "runtime/bundle"},
	"runtime/ui":                {"runtime/identity", "runtime/approval", "runtime/record", "runtime/review", "runtime/bundle"},
	"runtime/proxy": {"runtime/engine", "runtime/identity", "runtime/approval", "runtime/record",
		"runtime/sqlclass", "runtime/mask", "runtime/bundle"},
	"runtime/proxy/pg": {"runtime/proxy", "runtime/engine", "runtime/identity", "runtime/approval",
		"runtime/record", "runtime/sqlclass", "runtime/mask", "runtime/bundle", "runtime/pgcatalog", "runtime/proxy/pg"},
	"runtime/server": {"runtime"},
	"compiler":       {"runtime/bundle", "runtime/engine", "compiler"},
	"conformance":    {"runtime", "compiler", "conformance", "internal/demo"},
	"internal":       {"*"},
	"cmd":            {"*"},
	"bench":          {"*"},
	"scripts":        {"*"},
}

// forbiddenInRuntime are import path prefixes no runtime package may use.
var forbiddenInRuntime = []string{"cuelang.org/", module + "compiler", module + "conformance", module + "cmd"}

func rulesFor(pkg string) ([]string, bool) {
	for p := pkg; p != "."; {
		if r, ok := allowed[p]; ok {
			return r, true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return nil, false
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "|")
		rel := strings.TrimPrefix(path, module)
		if rel == path {
			continue
		}
		rules, ok := rulesFor(rel)
		if !ok {
			if rel == "github.com/gatehouse/gatehouse" || rel == strings.TrimSuffix(module, "/") {
				continue
			}
			t.Errorf("%s: no import rule (add it to archtest and docs/architecture.md)", rel)
			continue
		}
		checked++
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(rel, "runtime/") {
				for _, f := range forbiddenInRuntime {
					if strings.HasPrefix(imp, f) {
						t.Errorf("%s imports %s: the runtime never links the compiler, CUE or the CLI", rel, imp)
					}
				}
			}
			dep, isModule := strings.CutPrefix(imp, module)
			if !isModule || strings.HasPrefix(dep, "internal/testdb") {
				continue
			}
			if !permitted(rel, dep, rules) {
				t.Errorf("%s imports %s, which its import rule does not allow", rel, dep)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked; go list output looks wrong:\n%s", checked, out)
	}
}

func permitted(pkg, dep string, rules []string) bool {
	if dep == pkg || strings.HasPrefix(dep, pkg+"/") {
		return true // own subpackages
	}
	for _, r := range rules {
		if r == "*" || dep == r || strings.HasPrefix(dep, r+"/") {
			return true
		}
	}
	return false
}
