package pgcatalog

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testdb"
)

func TestJudge(t *testing.T) {
	t.Parallel()
	type want struct {
		grant     []string
		opaque    bool
		tables    []string
		missing   []string
		unknown   []string
		functions []string // Qualified(args) of Result.Functions
	}
	cases := []struct {
		name   string
		groups []string
		// session runs on the judged session before its search path is read.
		session []string
		req     Request
		want    want
		check   func(t *testing.T, r Result)
	}{{
		name: "built-in calls, nothing shadowed",
		req:  Request{Functions: []string{"lower", "count", "pg_catalog.upper", "now"}, Operators: []string{"+", "=", "pg_catalog.||"}},
	}, {
		name:   "public.upper(int) shadows the built-in for unqualified calls",
		groups: []string{"shadow-upper"},
		req:    Request{Functions: []string{"upper", "lower"}},
		want:   want{grant: []string{"public.upper"}, opaque: true, functions: []string{"public.upper(integer)"}},
	}, {
		name:   "a shadowing function is listed whatever the search path",
		groups: []string{"shadow-upper", "myschema"},
		// myschema is not on this path; public.upper is listed anyway
		// because overloads resolve across the path by argument types.
		session: []string{"SET search_path = myschema"},
		req:     Request{Functions: []string{"upper"}},
		want:    want{grant: []string{"public.upper"}, opaque: true, functions: []string{"public.upper(integer)"}},
	}, {
		name:   "qualified built-in call is not shadowed",
		groups: []string{"shadow-upper"},
		req:    Request{Functions: []string{"pg_catalog.upper"}},
	}, {
		name:   "qualified user function",
		groups: []string{"myschema"},
		req:    Request{Functions: []string{"myschema.f", "f"}},
		want:   want{grant: []string{"myschema.f"}, opaque: true, functions: []string{"myschema.f(integer)"}},
		check: func(t *testing.T, r Result) {
			f := r.Functions[0]
			if f.Kind != "function" || f.Volatility != "stable" || f.Language != "plpgsql" || f.SecurityDefiner {
				t.Errorf("function details = %+v", f)
			}
		},
	}, {
		name: "qualified call of a function that does not exist is granted by name and unknown",
		req:  Request{Functions: []string{"other.g"}},
		want: want{grant: []string{"other.g"}, opaque: true, unknown: []string{"other.g"}},
	}, {
		name:   "SECURITY DEFINER function",
		groups: []string{"customer-ssn"},
		req:    Request{Functions: []string{"customer_ssn"}, Tables: []string{"customers"}},
		want: want{grant: []string{"public.customer_ssn"}, opaque: true, tables: []string{"public.customers"},
			functions: []string{"public.customer_ssn(integer)"}},
		check: func(t *testing.T, r Result) {
			f := r.Functions[0]
			if !f.SecurityDefiner || f.Language != "sql" || f.Volatility != "volatile" || f.Owner == "" || f.OID < firstNormalOID {
				t.Errorf("function details = %+v", f)
			}
		},
	}, {
		name:   "user operator ###",
		groups: []string{"operator"},
		req:    Request{Operators: []string{"###"}},
		want:   want{grant: []string{"public.hash_combine"}, opaque: true, functions: []string{"public.hash_combine(integer, integer)"}},
	}, {
		name:   "qualified user operator",
		groups: []string{"operator"},
		req:    Request{Operators: []string{"public.###"}},
		want:   want{grant: []string{"public.hash_combine"}, opaque: true, functions: []string{"public.hash_combine(integer, integer)"}},
	}, {
		name:   "user operator named like a built-in",
		groups: []string{"operator"},
		req:    Request{Operators: []string{"+"}},
		want:   want{grant: []string{"public.text_plus"}, opaque: true, functions: []string{"public.text_plus(text, integer)"}},
	}, {
		name:   "user operator backed by a built-in function",
		groups: []string{"operator"},
		req:    Request{Operators: []string{"#<"}},
		want:   want{grant: []string{"pg_catalog.upper"}, opaque: true},
	}, {
		name:   "built-in operators with user operators present",
		groups: []string{"operator"},
		req:    Request{Operators: []string{"-", "pg_catalog.+"}},
	}, {
		name:   "unknown operator",
		groups: []string{"operator"},
		req:    Request{Operators: []string{"@@@@", "myschema.###"}},
		want:   want{opaque: true, unknown: []string{"@@@@", "myschema.###"}},
	}, {
		name:   "explicit cast to a user type with a cast function",
		groups: []string{"casts"},
		req:    Request{Types: []string{"money2"}},
		want:   want{grant: []string{"public.money2_from_int"}, opaque: true, functions: []string{"public.money2_from_int(integer)"}},
	}, {
		name:   "explicit cast to an array of the user type, qualified",
		groups: []string{"casts"},
		req:    Request{Types: []string{"public.money2[]"}},
		want:   want{grant: []string{"public.money2_from_int"}, opaque: true, functions: []string{"public.money2_from_int(integer)"}},
	}, {
		name:   "explicit cast to a domain over a domain over the user type",
		groups: []string{"casts"},
		req:    Request{Types: []string{"price2"}},
		want:   want{grant: []string{"public.money2_from_int"}, opaque: true, functions: []string{"public.money2_from_int(integer)"}},
	}, {
		name:   "function-style cast",
		groups: []string{"casts"},
		req:    Request{Functions: []string{"money2"}},
		want:   want{grant: []string{"public.money2_from_int"}, opaque: true, functions: []string{"public.money2_from_int(integer)"}},
	}, {
		name:   "explicit casts to other types run no user function",
		groups: []string{"casts"},
		req:    Request{Types: []string{"integer", "text", "pg_catalog.int4", "varchar(10)", "other.money2"}},
	}, {
		name:   "implicit and assignment user casts apply to every statement",
		groups: []string{"implicit-cast"},
		req:    Request{Tables: []string{"pg_class"}},
		want: want{grant: []string{"public.celsius_to_numeric", "public.celsius_to_text"}, opaque: true,
			tables:    []string{"pg_catalog.pg_class"},
			functions: []string{"public.celsius_to_numeric(celsius)", "public.celsius_to_text(celsius)"}},
	}, {
		name:   "user-created cast with a built-in function applies to every statement",
		groups: []string{"builtin-cast-function"},
		req:    Request{Functions: []string{"lower"}},
		want:   want{grant: []string{"pg_catalog.lo_import"}, opaque: true},
	}, {
		name:   `"$user" schema holds a same-named table`,
		groups: []string{"user-schema", "role-schema"},
		req:    Request{Tables: []string{"customers", "orders", "public.customers"}},
		check: func(t *testing.T, r Result) {
			if r.Tables[0] == "public.customers" || !strings.HasSuffix(r.Tables[0], ".customers") {
				t.Errorf("customers resolved to %q, want the role's schema", r.Tables[0])
			}
			if r.Tables[1] != "public.orders" || r.Tables[2] != "public.customers" {
				t.Errorf("tables = %q", r.Tables)
			}
			if r.Missing != nil || r.Opaque {
				t.Errorf("missing = %q, opaque = %v", r.Missing, r.Opaque)
			}
		},
	}, {
		name:   "missing tables",
		groups: []string{"myschema"},
		req:    Request{Tables: []string{"nosuch", "myschema.nosuch", "nosuch"}},
		want: want{tables: []string{"public.nosuch", "myschema.nosuch", "public.nosuch"},
			missing: []string{"public.nosuch", "myschema.nosuch"}},
	}, {
		name:    "missing table is created in the first schema of the path",
		groups:  []string{"myschema"},
		session: []string{"SET search_path = nosuchschema, myschema, public"},
		req:     Request{Tables: []string{"t"}},
		want:    want{tables: []string{"myschema.t"}, missing: []string{"myschema.t"}},
	}, {
		name:   "pg_class resolves to pg_catalog even with public.pg_class",
		groups: []string{"pg-class"},
		req:    Request{Tables: []string{"pg_class", "public.pg_class"}},
		want:   want{tables: []string{"pg_catalog.pg_class", "public.pg_class"}},
	}, {
		name:    "pg_class resolves to public when pg_catalog comes later in the path",
		groups:  []string{"pg-class"},
		session: []string{"SET search_path = public, pg_catalog"},
		req:     Request{Tables: []string{"pg_class", "pg_namespace"}},
		want:    want{tables: []string{"public.pg_class", "pg_catalog.pg_namespace"}},
	}, {
		name:    "temporary table shadows every schema",
		groups:  []string{"user-schema"},
		session: []string{"CREATE TEMP TABLE customers (id integer)"},
		req:     Request{Tables: []string{"customers", "pg_temp.customers", "orders"}},
		check: func(t *testing.T, r Result) {
			if !strings.HasPrefix(r.Tables[0], "pg_temp_") || r.Tables[0] != r.Tables[1] || r.Tables[2] != "public.orders" {
				t.Errorf("tables = %q", r.Tables)
			}
			if r.Missing != nil {
				t.Errorf("missing = %q", r.Missing)
			}
		},
	}, {
		name:   "mixed-case quoted names compare exactly",
		groups: []string{"mixed-case"},
		req: Request{Tables: []string{"Mixed", "mixed", "Sales.orders", "sales.orders"},
			Functions: []string{"Upper"}},
		want: want{grant: []string{"public.Upper"}, opaque: true,
			tables:    []string{"public.Mixed", "public.mixed", "Sales.orders", "sales.orders"},
			missing:   []string{"public.mixed", "sales.orders"},
			functions: []string{"public.Upper(integer)"}},
	}, {
		name:   "lower-case call does not reach a quoted mixed-case function",
		groups: []string{"mixed-case"},
		req:    Request{Functions: []string{"upper"}},
	}, {
		name:   "names longer than 63 bytes are truncated as PostgreSQL stores them",
		groups: []string{"long-names"},
		req:    Request{Tables: []string{"a_table_name_that_is_longer_than_sixty_three_bytes_and_gets_truncated_x_and_more"}},
		want:   want{tables: []string{"public.a_table_name_that_is_longer_than_sixty_three_bytes_and_gets_tru"}},
	}, {
		name:   "user function a superuser created in pg_catalog",
		groups: []string{"pg-catalog-function"},
		req:    Request{Functions: []string{"gh_leak", "pg_catalog.gh_leak"}},
		want:   want{grant: []string{"pg_catalog.gh_leak"}, opaque: true, functions: []string{"pg_catalog.gh_leak(integer)"}},
	}, {
		name:   "column read in functional notation is unknown",
		groups: []string{"customer-ssn"},
		req:    Request{Functions: []string{"ssn"}, Tables: []string{"customers"}},
		want:   want{opaque: true, unknown: []string{"ssn"}, tables: []string{"public.customers"}},
	}, {
		name: "function-style cast to a built-in type is known",
		req:  Request{Functions: []string{"int4", "json"}},
	}, {
		name:   "quoted function name holding a dot is read both ways",
		groups: []string{"dotted"},
		req:    Request{Functions: []string{"a.b"}},
		want:   want{grant: []string{"a.b", "public.a.b"}, opaque: true, functions: []string{"public.a.b()"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := database(t, tc.groups...)
			c := newCatalog(t, pool(t, dsn), nil)
			req := tc.req
			req.SearchPath = sessionPath(t, dsn, tc.session...)
			got, err := c.Judge(ctxT(t), &req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, got)
				return
			}
			w := tc.want
			if len(req.Tables) > 0 && w.tables == nil {
				t.Fatalf("case lists tables but no expected resolution")
			}
			var fns []string
			for _, f := range got.Functions {
				fns = append(fns, f.Qualified()+"("+f.Args+")")
			}
			if !slices.Equal(got.NeedGrant, w.grant) || got.Opaque != w.opaque || !slices.Equal(got.Tables, w.tables) ||
				!slices.Equal(got.Missing, w.missing) || !slices.Equal(got.Unknown, w.unknown) || !slices.Equal(fns, w.functions) {
				t.Errorf("path %q\ngot  grant=%q opaque=%v tables=%q missing=%q unknown=%q functions=%q\nwant grant=%q opaque=%v tables=%q missing=%q unknown=%q functions=%q",
					req.SearchPath, got.NeedGrant, got.Opaque, got.Tables, got.Missing, got.Unknown, fns,
					w.grant, w.opaque, w.tables, w.missing, w.unknown, w.functions)
			}
		})
	}
}

func TestJudgeBadNames(t *testing.T) {
	t.Parallel()
	dsn := database(t)
	c := newCatalog(t, pool(t, dsn), nil)
	for _, r := range []Request{
		{Functions: []string{""}},
		{Functions: []string{"a.b.c.d"}},
		{Tables: []string{".t"}},
		{Tables: []string{"s."}},
		{Operators: []string{"myschema."}},
	} {
		if _, err := c.Judge(ctxT(t), &r); !errors.Is(err, ErrName) {
			t.Errorf("Judge(%+v) error = %v, want ErrName", r, err)
		}
	}
}

func TestJudgeUnavailable(t *testing.T) {
	t.Parallel()
	dsn := database(t)
	// A database that does not exist: the pool connects lazily and every
	// query fails.
	bad := strings.Replace(dsn, "/gh_test_", "/gh_missing_", 1)
	c := newCatalog(t, pool(t, bad), nil)
	_, err := c.Judge(ctxT(t), &Request{Functions: []string{"lower"}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Judge error = %v, want ErrUnavailable", err)
	}
	if _, err := SearchPath(ctxT(t), pool(t, bad)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("SearchPath error = %v, want ErrUnavailable", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("New without querier: %v", err)
	}
	if _, err := New(Config{Querier: &counting{}, RefreshInterval: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("New with negative interval: %v", err)
	}
	cfg := Config{Querier: &counting{}}
	if err := cfg.Validate(); err != nil || cfg.RefreshInterval != DefaultRefreshInterval || cfg.MaxNames != DefaultMaxNames ||
		cfg.Clock == nil || cfg.Logger == nil {
		t.Errorf("defaults not filled: %+v, %v", cfg, err)
	}
}

// The catalog's own queries run on sessions whose search path puts a
// schema full of look-alike operators, functions and tables before
// pg_catalog: they must still read the real catalog.
func TestCatalogQueriesIgnoreSearchPath(t *testing.T) {
	t.Parallel()
	dsn := database(t, "hostile", "shadow-upper", "operator", "casts", "user-schema")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, dsn, "ALTER DATABASE "+strings.TrimPrefix(u.Path, "/")+` SET search_path = evil, "$user", public, pg_catalog`)
	// Sanity: the hostile objects do take over unqualified catalog SQL.
	p := pool(t, dsn)
	var n int64
	if err := p.QueryRow(ctxT(t), "SELECT count(*) FROM pg_catalog.pg_proc p WHERE p.oid >= 16384").Scan(&n); err == nil ||
		!strings.Contains(err.Error(), "hijacked") {
		t.Fatalf("unqualified query was not taken over (err %v): the test proves nothing", err)
	}

	clk := newClock()
	c := newCatalog(t, p, clk)
	path, err := SearchPath(ctxT(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if path[0] != "evil" {
		t.Fatalf("search path = %q", path)
	}
	req := Request{
		Functions:  []string{"upper", "nosuch"},
		Operators:  []string{"###", "+", "@@@@"},
		Types:      []string{"price2"},
		Tables:     []string{"customers", "pg_proc", "nosuch"},
		SearchPath: path,
	}
	check := func(round string) {
		r, err := c.Judge(ctxT(t), &req)
		if err != nil {
			t.Fatalf("%s: %v", round, err)
		}
		wantGrant := []string{"public.hash_combine", "public.money2_from_int", "public.text_plus", "public.upper"}
		if !slices.Equal(r.NeedGrant, wantGrant) || !slices.Equal(r.Unknown, []string{"@@@@", "nosuch"}) ||
			!slices.Equal(r.Tables, []string{"public.customers", "evil.pg_proc", "evil.nosuch"}) {
			t.Fatalf("%s: %+v", round, r)
		}
	}
	check("load")
	clk.Advance(DefaultRefreshInterval)
	check("fingerprint and probe")
	c.Invalidate()
	check("reload")
}
