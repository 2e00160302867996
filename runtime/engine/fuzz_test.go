package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// FuzzDecide feeds random facts to the hand-built policy. Properties: Decide
// never panics; the effect is allow, deny or approve; a matching deny rule
// always wins; and the indexed decision equals a scan of every rule.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(0), "claude-coder", "coding-agents", "orders-db", "select", "public.orders,secrets", "customers.email", "pg_read_file", true, "", int64(0))
	f.Add(uint8(1), "ci-bot", "", "web-host", "", "", "", "", false, "rm -rf /", int64(3600*24*2))
	f.Add(uint8(2), "claude-coder", "coding-agents", "api", "GET", "api.example.com:443", "", "", false, "/v1/../admin", int64(-3600))
	f.Add(uint8(3), "claude-coder", "coding-agents", "cluster", "create", "pods/exec", "dev-1", "", false, "ls -la", int64(60))
	f.Add(uint8(0), "alice", "dba", "orders-db", "delete", "orders", "", "", false, "", int64(1<<40))
	e := newTestEngine(f)
	f.Fuzz(func(t *testing.T, proto uint8, identity, groups, resource, a, b, c, fn string, flag bool, s string, offset int64) {
		req := &Request{Identity: identity, Resource: resource, Time: base.Add(time.Duration(offset) * time.Second)}
		if groups != "" {
			req.Groups = strings.Split(groups, ",")
		}
		switch proto % 5 {
		case 0:
			req.SQL = &SQLFacts{Kind: a, Tables: split(b), Columns: split(c), Functions: split(fn), HasWhere: flag}
		case 1:
			req.SSH = &SSHFacts{Command: s}
		case 2:
			req.HTTP = &HTTPFacts{Method: a, Host: b, Path: s}
		case 3:
			req.Kubernetes = &KubernetesFacts{Verb: a, Resource: b, Namespace: c, Command: s}
		}
		var d Decision
		e.Decide(req, &d)
		switch d.Effect {
		case bundle.EffectAllow, bundle.EffectDeny, bundle.EffectApprove:
		default:
			t.Fatalf("effect %q", d.Effect)
		}
		if d.Reason == "" {
			t.Fatalf("empty reason")
		}
		ref := referenceDecide(e, req)
		if ref.Effect == bundle.EffectDeny && len(ref.RuleIDs) > 0 && d.Effect != bundle.EffectDeny {
			t.Fatalf("deny rules %v match but effect is %s", ref.RuleIDs, d.Effect)
		}
		if ref.Effect != d.Effect || !slices.Equal(ref.RuleIDs, d.RuleIDs) {
			t.Fatalf("reference %s %v, engine %s %v", ref.Effect, ref.RuleIDs, d.Effect, d.RuleIDs)
		}
		if d.Effect == bundle.EffectDeny && (len(d.Masks) > 0 || d.Approval != nil || d.MaxRows != 0) {
			t.Fatalf("deny carries grant details: %+v", d)
		}
		if d.Effect == bundle.EffectApprove && d.Approval == nil {
			t.Fatalf("approve without approval")
		}
	})
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// FuzzGlob checks that the glob matcher never panics and that its fast
// paths agree with the general automaton.
func FuzzGlob(f *testing.F) {
	f.Add("/v1/**", byte('/'), "/v1/a/b")
	f.Add("git *", byte(0), "git status")
	f.Add("*.example.com", byte('.'), "a.example.com")
	f.Fuzz(func(t *testing.T, pattern string, sep byte, in string) {
		g, err := compileGlob(pattern, sep, false)
		if err != nil {
			return
		}
		got := g.match(in)
		n, err := compileGlob(pattern+"?", sep, false)
		if err != nil {
			return
		}
		n.toks = n.toks[:len(n.toks)-1]
		n.kind = globNFA
		if want := n.match(in); got != want {
			t.Fatalf("match(%q, sep %q, %q): fast path %v, automaton %v", pattern, sep, in, got, want)
		}
	})
}
