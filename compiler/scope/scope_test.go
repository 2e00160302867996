package scope

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestGlobCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"*", "anything", true},
		{"git *", "git status", true},
		{"git *", "git *", true},
		{"git *", "git log *", true},
		{"git log *", "git *", false},
		{"/api/v1/*", "/api/v1/users/*", true},
		{"/api/v1/*", "/api/v2/users", false},
		{"a?c", "abc", true},
		{"a?c", "a*c", false},
		{"a*c", "a?c", true},
		{"abc", "a*c", false},
		{"*.example.com", "api.example.com", true},
		{"api.example.com", "*.example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.a+" ⊇ "+tc.b, func(t *testing.T) {
			t.Parallel()
			if got := GlobCovers(tc.a, tc.b); got != tc.want {
				t.Fatalf("GlobCovers(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestTableAndColumnCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    CoverFunc
		a, b string
		want bool
	}{
		{"any table", TableCovers, "*", "public.orders", true},
		{"schema wildcard", TableCovers, "public.*", "public.orders", true},
		{"schema wildcard other schema", TableCovers, "public.*", "audit.orders", false},
		{"unqualified covers qualified", TableCovers, "orders", "public.orders", true},
		{"qualified does not cover unqualified", TableCovers, "public.orders", "orders", false},
		{"case-insensitive", TableCovers, "Orders", "public.orders", true},
		{"table overlap", TableOverlaps, "public.orders", "orders", true},
		{"table no overlap", TableOverlaps, "public.orders", "payments", false},
		{"any table column", ColumnCovers, "*.email", "customers.email", true},
		{"three part column", ColumnCovers, "customers.email", "public.customers.email", true},
		{"other column", ColumnCovers, "customers.email", "customers.phone", false},
		{"narrow does not cover wide", ColumnCovers, "customers.email", "*.email", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.f(tc.a, tc.b); got != tc.want {
				t.Fatalf("(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestMatchCovers(t *testing.T) {
	t.Parallel()
	sel := &bundle.Rule{SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"orders"}}}
	tests := []struct {
		name string
		a, b *bundle.Rule
		want bool
	}{
		{"no match covers sql", &bundle.Rule{}, sel, true},
		{"sql does not cover no match", sel, &bundle.Rule{}, false},
		{"wider statements", &bundle.Rule{SQL: &bundle.SQLMatch{Statements: []string{"*"}}}, sel, true},
		{"other statement", &bundle.Rule{SQL: &bundle.SQLMatch{Statements: []string{"update"}}}, sel, false},
		{"without_where narrower", &bundle.Rule{SQL: &bundle.SQLMatch{WithoutWhere: true}}, sel, false},
		{"columns restrict", sel, &bundle.Rule{SQL: &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"orders"}, Columns: []string{"orders.id"}}}, true},
		{"protocol mismatch", sel, &bundle.Rule{SSH: &bundle.SSHMatch{Commands: []string{"ls"}}}, false},
		{"ssh shell keyword", &bundle.Rule{SSH: &bundle.SSHMatch{Commands: []string{"*"}}}, &bundle.Rule{SSH: &bundle.SSHMatch{Commands: []string{"shell"}}}, false},
		{"http", &bundle.Rule{HTTP: &bundle.HTTPMatch{Methods: []string{"GET", "HEAD"}, Paths: []string{"/v1/*"}}},
			&bundle.Rule{HTTP: &bundle.HTTPMatch{Methods: []string{"get"}, Paths: []string{"/v1/users"}}}, true},
		{"kubernetes namespaces", &bundle.Rule{Kubernetes: &bundle.KubernetesMatch{Verbs: []string{"get"}, Namespaces: []string{"dev-*"}}},
			&bundle.Rule{Kubernetes: &bundle.KubernetesMatch{Verbs: []string{"get"}, Namespaces: []string{"prod"}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MatchCovers(tc.a, tc.b); got != tc.want {
				t.Fatalf("MatchCovers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIndexExpansion(t *testing.T) {
	t.Parallel()
	p := &bundle.Policy{
		Identities: []bundle.Identity{{Name: "a"}, {Name: "b", Groups: []string{"g2"}}, {Name: "c"}},
		Groups:     []bundle.Group{{Name: "g1", Members: []string{"a", "ghost"}}, {Name: "g2"}},
		Resources:  []bundle.Resource{{Name: "r1", Tags: []string{"prod"}}, {Name: "r2", Tags: []string{"prod", "pii"}}, {Name: "r3"}},
	}
	ix := NewIndex(p)
	tests := []struct {
		name        string
		subjects    bool
		refs        []string
		want        []string
		wantUnknown []Unknown
	}{
		{"empty subjects mean all", true, nil, []string{"a", "b", "c"}, nil},
		{"groups both ways", true, []string{"group:g1", "group:g2"}, []string{"a", "b"}, nil},
		{"unknowns", true, []string{"c", "group:nope", "zed"}, []string{"c"}, []Unknown{{RefGroup, "nope"}, {RefIdentity, "zed"}}},
		{"tags", false, []string{"tag:prod"}, []string{"r1", "r2"}, nil},
		{"wildcard resources", false, []string{"*", "tag:nope"}, []string{"r1", "r2", "r3"}, []Unknown{{RefTag, "nope"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			var unk []Unknown
			if tc.subjects {
				got, unk = ix.Subjects(tc.refs)
			} else {
				got, unk = ix.Resources(tc.refs)
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(unk, tc.wantUnknown) {
				t.Fatalf("got %v %v, want %v %v", got, unk, tc.want, tc.wantUnknown)
			}
		})
	}
}

func TestParseEvery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want float64 // hours; 0 means error
	}{
		{"90d", 90 * 24}, {"2w", 14 * 24}, {"36h", 36}, {"0d", 0}, {"-1d", 0}, {"d", 0}, {"soon", 0}, {"-5h", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			d, err := ParseEvery(tc.in)
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("ParseEvery(%q) = %v, want error", tc.in, d)
				}
				return
			}
			if err != nil || d.Hours() != tc.want {
				t.Fatalf("ParseEvery(%q) = %v, %v", tc.in, d, err)
			}
		})
	}
}
