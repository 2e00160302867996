package engine

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestGlob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern string
		sep     byte
		fold    bool
		in      string
		want    bool
	}{
		{"git *", 0, false, "git status", true},
		{"git *", 0, false, "git", false},
		{"git *", 0, false, "git log -- a/b", true},
		{"* rm -rf *", 0, false, "cd / && rm -rf /", true},
		{"* rm -rf *", 0, false, "rm -rf /", false},
		{"ls", 0, false, "ls", true},
		{"ls", 0, false, "ls -la", false},
		{"l?", 0, false, "ls", true},
		{"*", 0, false, "", true},
		{"a*b*c", 0, false, "aXbYc", true},
		{"a*b*c", 0, false, "aXbY", false},
		{"a*a*a*a*a*b", 0, false, strings.Repeat("a", 200), false},
		{"/v1/*", '/', false, "/v1/orders", true},
		{"/v1/*", '/', false, "/v1/orders/1", false},
		{"/v1/**", '/', false, "/v1/orders/1", true},
		{"/v1/**", '/', false, "/v1/", true},
		{"/v1/**", '/', false, "/v1", false},
		{"/v1/*/items", '/', false, "/v1/o/items", true},
		{"/v1/*/items", '/', false, "/v1/o/p/items", false},
		{"/v1/**/items", '/', false, "/v1/o/p/items", true},
		{"/v1/**/items", '/', false, "/v1/items", false},
		{"/v?/x", '/', false, "/v1/x", true},
		{"/v?/x", '/', false, "///x", false},
		{"*.example.com", '.', true, "API.example.com", true},
		{"*.example.com", '.', true, "a.b.example.com", false},
		{"**.example.com", '.', true, "a.b.example.com", true},
		{"API.example.com", '.', true, "api.EXAMPLE.com", true},
		{"dev-*", 0, false, "dev-1", true},
		{"dev-*", 0, false, "prod", false},
		{"*/exec", '/', false, "pods/exec", true},
		{"*/exec", '/', false, "pods", false},
		{"***", '/', false, "a/b", true},
	}
	for _, tc := range cases {
		t.Run(tc.pattern+"~"+tc.in, func(t *testing.T) {
			t.Parallel()
			g, err := compileGlob(tc.pattern, tc.sep, tc.fold)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if got := g.match(tc.in); got != tc.want {
				t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.in, got, tc.want)
			}
			// The general matcher agrees with the fast paths.
			n := g
			if n.kind != globNFA {
				n.kind = globNFA
				n.toks = tokens(tc.pattern, tc.sep, tc.fold)
				if got := n.match(tc.in); got != tc.want {
					t.Errorf("nfa match(%q, %q) = %v, want %v", tc.pattern, tc.in, got, tc.want)
				}
			}
		})
	}
}

// tokens recompiles pattern and returns its token list (fast paths drop it).
func tokens(pattern string, sep byte, fold bool) []globTok {
	g, _ := compileGlob(pattern+"?", sep, fold)
	return g.toks[:len(g.toks)-1]
}

func TestCanonicalPath(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"/":           true,
		"/a/b":        true,
		"/a/b/":       true,
		"":            false,
		"a/b":         false,
		"/a//b":       false,
		"/a/./b":      false,
		"/a/../b":     false,
		"/a/..":       false,
		"/..":         false,
		"/a\\b":       false,
		"/a%2e%2e/b":  false,
		"/a%2Fb":      false,
		"/a%5cb":      false,
		"/a%20b":      true,
		"/a/.hidden":  true,
		"/a/..b":      true,
		"/%":          true,
		"/abc%2":      true,
		"/x/%2E%2e/y": false,
	}
	for in, want := range cases {
		if got := canonicalPath(in); got != want {
			t.Errorf("canonicalPath(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSplitNames(t *testing.T) {
	t.Parallel()
	tables := map[string][2]string{
		"orders":          {"public", "orders"},
		"s.orders":        {"s", "orders"},
		"db.s.orders":     {"s", "orders"},
		"":                {"public", ""},
		"trailing.":       {"trailing", ""},
		"a.b.c.d":         {"c", "d"},
		".leading":        {"", "leading"},
		"public.orders":   {"public", "orders"},
		"reporting.daily": {"reporting", "daily"},
	}
	for in, want := range tables {
		if s, tb := splitTable(in); s != want[0] || tb != want[1] {
			t.Errorf("splitTable(%q) = %q, %q, want %q", in, s, tb, want)
		}
	}
	cols := map[string][3]string{
		"email":                  {"", "", "email"},
		"customers.email":        {"public", "customers", "email"},
		"crm.customers.email":    {"crm", "customers", "email"},
		"db.crm.customers.email": {"crm", "customers", "email"},
	}
	for in, want := range cols {
		if s, tb, c := splitColumn(in); s != want[0] || tb != want[1] || c != want[2] {
			t.Errorf("splitColumn(%q) = %q, %q, %q, want %q", in, s, tb, c, want)
		}
	}
}

func TestColumnMatching(t *testing.T) {
	t.Parallel()
	m, err := compileSQL(&bundle.SQLMatch{Columns: []string{"*.ssn", "customers.email", "crm.people.*"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cols  []string
		grant bool
		want  bool
	}{
		{[]string{"customers.email"}, true, true},
		{[]string{"customers.email", "orders.ssn"}, true, true},
		{[]string{"customers.email", "customers.name"}, true, false},
		{[]string{"crm.people.name"}, true, true},
		{[]string{"people.name"}, true, false}, // schema public, not crm
		{[]string{"email"}, true, false},       // unattributed: a grant does not cover it
		{[]string{"email"}, false, true},       // a denial does
		{[]string{"ssn"}, true, true},          // *.ssn has no table to check
		{[]string{"customers.name"}, false, false},
		{[]string{"customers.name", "x.ssn"}, false, true},
		{nil, false, false},
		{nil, true, true},
	}
	for _, tc := range cases {
		if got := m.matchColumns(tc.cols, tc.grant); got != tc.want {
			t.Errorf("matchColumns(%q, grant=%v) = %v, want %v", tc.cols, tc.grant, got, tc.want)
		}
	}
}

func TestPack8(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh", "abcdefghi", "public", "t05"} {
		var want uint64
		for i := 0; i < len(s) && i < 8; i++ {
			want |= uint64(s[i]) << (8 * i)
		}
		if got := pack8(s); got != want {
			t.Errorf("pack8(%q) = %#x, want %#x", s, got, want)
		}
	}
}
