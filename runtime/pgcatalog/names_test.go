package pgcatalog

import (
	"strings"
	"testing"
)

func TestTruncateIdent(t *testing.T) {
	t.Parallel()
	// Expected values are what PostgreSQL 15 returns for text::name.
	cases := []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("x", 63), strings.Repeat("x", 63)},
		{strings.Repeat("x", 64), strings.Repeat("x", 63)},
		{"é" + strings.Repeat("x", 61) + "éé", "é" + strings.Repeat("x", 61)},
		{"x" + strings.Repeat("é", 40), "x" + strings.Repeat("é", 31)},
	}
	for _, c := range cases {
		if got := truncateIdent(c.in); got != c.want {
			t.Errorf("truncateIdent(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSplitName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, schema, name string
		ok               bool
	}{
		{"t", "", "t", true},
		{"s.t", "s", "t", true},
		{"db.s.t", "s", "t", true},
		{"Mixed", "", "Mixed", true},
		{"", "", "", false},
		{".t", "", "", false},
		{"s.", "", "", false},
		{"a.b.c.d", "", "", false},
		{".s.t", "", "", false},
	}
	for _, c := range cases {
		s, n, ok := splitName(c.in)
		if s != c.schema || n != c.name || ok != c.ok {
			t.Errorf("splitName(%q) = %q, %q, %v; want %q, %q, %v", c.in, s, n, ok, c.schema, c.name, c.ok)
		}
	}
}

func TestSplitOperator(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, schema, name string
		ok               bool
	}{
		{"+", "", "+", true},
		{"myschema.###", "myschema", "###", true},
		{"db.myschema.###", "myschema", "###", true},
		{"", "", "", false},
		{"myschema.", "", "", false},
	}
	for _, c := range cases {
		s, n, ok := splitOperator(c.in)
		if s != c.schema || n != c.name || ok != c.ok {
			t.Errorf("splitOperator(%q) = %q, %q, %v; want %q, %q, %v", c.in, s, n, ok, c.schema, c.name, c.ok)
		}
	}
}

func TestTypeName(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, schema, name, alias string }{
		{"mytype", "", "mytype", ""},
		{"public.mytype[]", "public", "mytype", ""},
		{"varchar(10)[][]", "", "varchar", ""},
		{"character varying(10)", "", "character varying", "varchar"},
		{"timestamp(3) with time zone", "", "timestamp with time zone", "timestamptz"},
		{"integer", "", "integer", "int4"},
		{"int array", "", "int", "int4"},
		{"numeric(10, 2)", "", "numeric", ""},
	}
	for _, c := range cases {
		s, n, a, ok := typeName(c.in)
		if !ok || s != c.schema || n != c.name || a != c.alias {
			t.Errorf("typeName(%q) = %q, %q, %q, %v; want %q, %q, %q", c.in, s, n, a, ok, c.schema, c.name, c.alias)
		}
	}
}
