package sqlclass

import (
	"context"
	"flag"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/sqlclass/internal/funclist"
	"github.com/jackc/pgx/v5"
)

var updateFunctions = flag.Bool("update-functions", false, "rewrite builtin_functions.txt from the local PostgreSQL catalog")

// loadCatalog reads the pg_catalog functions of the test server.
func loadCatalog(t *testing.T) ([]funclist.Proc, string) {
	t.Helper()
	dsn := testdb.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version string
	if err := conn.QueryRow(ctx, "SELECT 'PostgreSQL ' || current_setting('server_version')").Scan(&version); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, funclist.Query)
	if err != nil {
		t.Fatal(err)
	}
	procs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (funclist.Proc, error) {
		var p funclist.Proc
		err := r.Scan(&p.Name, &p.Volatility, &p.Kind, &p.TakesInternal)
		return p, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) < 1000 {
		t.Fatalf("only %d pg_catalog functions", len(procs))
	}
	return procs, version
}

// TestBuiltinFunctionsCatalog checks the embedded allow-list against the
// local server's catalog: every name exists in pg_catalog, none has a
// volatile overload unless curated, none is excluded. With
// -update-functions it rewrites the list from the catalog first.
func TestBuiltinFunctionsCatalog(t *testing.T) {
	procs, version := loadCatalog(t)
	if *updateFunctions {
		if !strings.HasPrefix(version, "PostgreSQL 15.") {
			t.Fatalf("the allow-list is generated from PostgreSQL 15, the server is %s", version)
		}
		if err := os.WriteFile("builtin_functions.txt", funclist.Render(funclist.Build(procs), "PostgreSQL 15"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("builtin_functions.txt rewritten; run the tests again without -update-functions")
	}
	type info struct{ volatile, exists bool }
	catalog := map[string]*info{}
	for _, p := range procs {
		in := catalog[p.Name]
		if in == nil {
			in = &info{}
			catalog[p.Name] = in
		}
		in.exists = true
		in.volatile = in.volatile || p.Volatility == "v" || p.Kind == "p"
	}
	if len(builtinFunctions) < 1000 {
		t.Fatalf("allow-list holds only %d names", len(builtinFunctions))
	}
	for name := range builtinFunctions {
		in := catalog[name]
		_, curated := funclist.CuratedEntry(name)
		switch {
		case in == nil:
			t.Errorf("%s is not a function in pg_catalog", name)
		case in.volatile && !curated:
			t.Errorf("%s has a volatile overload (or is a procedure)", name)
		}
		if e, ok := funclist.ExcludedEntry(name); ok {
			t.Errorf("%s is excluded (%s: %s)", name, e.Name, e.Reason)
		}
	}
	for _, e := range funclist.Curated {
		if catalog[e.Name] == nil || !BuiltinReadFunction(e.Name) {
			t.Errorf("curated %s missing from the catalog or the list", e.Name)
		}
	}
	// What the catalog would change, for the reviewer of a new server.
	want := funclist.Build(procs)
	var added, removed []string
	for _, n := range want {
		if _, ok := builtinFunctions[n]; !ok {
			added = append(added, n)
		}
	}
	wantSet := map[string]bool{}
	for _, n := range want {
		wantSet[n] = true
	}
	for n := range builtinFunctions {
		if !wantSet[n] {
			removed = append(removed, n)
		}
	}
	sort.Strings(removed)
	if len(added)+len(removed) > 0 {
		t.Logf("%s would add %v and remove %v", version, added, removed)
	}
}

// TestBuiltinFunctionsFile checks the embedded file's form.
func TestBuiltinFunctionsFile(t *testing.T) {
	t.Parallel()
	var names []string
	for _, line := range strings.Split(builtinFunctionsFile, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line != strings.TrimSpace(line) || strings.ContainsAny(line, ". \t") {
			t.Errorf("malformed line %q", line)
		}
		names = append(names, line)
	}
	if !strings.HasPrefix(builtinFunctionsFile, "# ") || !strings.Contains(builtinFunctionsFile, "-update-functions") {
		t.Error("header comment missing")
	}
	if !sort.StringsAreSorted(names) {
		t.Error("names not sorted")
	}
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			t.Errorf("duplicate %s", names[i])
		}
	}
	for _, e := range funclist.Excluded {
		for _, n := range names {
			if e.Matches(n) {
				t.Errorf("%s is on the list but excluded by %s", n, e.Name)
			}
		}
	}
	if len(funclist.Excluded) == 0 || len(funclist.Curated) == 0 {
		t.Fatal("empty exclusion or curated list")
	}
	for _, e := range append(append([]funclist.Entry(nil), funclist.Excluded...), funclist.Curated...) {
		if e.Reason == "" {
			t.Errorf("%s has no reason", e.Name)
		}
	}
}

func TestBuiltinReadFunction(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		want bool
	}{
		{"lower", true},
		{"pg_catalog.lower", true},
		{"now", true},
		{"count", true},
		{"row_number", true},
		{"current_setting", true},
		{"random", true},
		{"clock_timestamp", true},
		{"gen_random_uuid", true},
		{"btrim", true},
		{"timezone", true},
		{"like_escape", true},
		{"pg_catalog.like_escape", true},
		{"public.lower", false},
		{"myschema.now", false},
		{"pg_catalog.pg_catalog.lower", false},
		{"Lower", false},
		{"customer_ssn", false},
		{"lo_create", false},
		{"lo_get", false},
		{"pg_import_system_collations", false},
		{"pg_replication_origin_create", false},
		{"pg_replication_origin_oid", false},
		{"pg_stat_reset", false},
		{"pg_stat_get_activity", false},
		{"pg_notify", false},
		{"pg_read_file", false},
		{"query_to_xml", false},
		{"table_to_xml", false},
		{"cursor_to_xml", false},
		{"ts_stat", false},
		{"ts_rewrite", false},
		{"pg_get_functiondef", false},
		{"pg_get_viewdef", false},
		{"pg_get_expr", false},
		{"set_config", false},
		{"nextval", false},
		{"txid_current", false},
		{"pg_sleep", false},
		{"dblink", false},
		{"int4recv", false},
		{"eqsel", false},
		{"copy program", false},
		{"", false},
	}
	for _, c := range cases {
		if got := BuiltinReadFunction(c.name); got != c.want {
			t.Errorf("BuiltinReadFunction(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
