package conformance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

var (
	currentOnce sync.Once
	currentRes  *compiler.Result
	currentErr  error
)

// current compiles the repository's policies once per test binary.
func current(t testing.TB) *compiler.Result {
	t.Helper()
	currentOnce.Do(func() {
		src, err := compiler.LoadDir("../policies")
		if err != nil {
			currentErr = err
			return
		}
		currentRes, currentErr = compiler.Compile(src, compiler.Options{})
	})
	if currentErr != nil {
		t.Fatal(currentErr)
	}
	return currentRes
}

// currentPolicy returns the current policy as a replay side.
func currentPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := Compiled("policies", current(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// variant returns the current policy changed by edit (on a deep copy), as
// a bundle-level policy change.
func variant(t testing.TB, ref string, edit func(p *bundle.Policy)) *Policy {
	t.Helper()
	raw, err := json.Marshal(current(t).Bundle)
	if err != nil {
		t.Fatal(err)
	}
	var b bundle.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	edit(&b.Policy)
	for i := range b.Policy.Rules {
		b.Policy.Rules[i].Index = i
	}
	b.Manifest.Revision = ref
	p, err := NewPolicy(ref, &b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func removeRule(id string) func(p *bundle.Policy) {
	return func(p *bundle.Policy) {
		p.Rules = slices.DeleteFunc(p.Rules, func(r bundle.Rule) bool { return r.ID == id })
	}
}

func ruleByID(p *bundle.Policy, id string) *bundle.Rule {
	for i := range p.Rules {
		if p.Rules[i].ID == id {
			return &p.Rules[i]
		}
	}
	return nil
}

// corpus loads the committed corpus.
func corpus(t testing.TB) *Corpus {
	t.Helper()
	c, err := LoadSessions("sessions")
	if err != nil {
		t.Fatal(err)
	}
	if c.Statements() < 50 {
		t.Fatalf("committed corpus has %d statements; want the recorded demo and workloads", c.Statements())
	}
	return c
}

func replay(t testing.TB, c *Corpus, base, head *Policy) *Result {
	t.Helper()
	res, err := Replay(context.Background(), c, base, head, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func groupOf(r *Report, k Kind) *Group {
	for i := range r.Groups {
		if r.Groups[i].Kind == k {
			return &r.Groups[i]
		}
	}
	return nil
}
