package sqlclass

import (
	_ "embed"
	"strings"
)

//go:generate go test -run TestBuiltinFunctionsCatalog -update-functions .

// builtinFunctionsFile is the allow-list of built-in functions that only
// read, one name per line after a header of '#' lines. It is generated
// from PostgreSQL 15's catalog; see internal/funclist for the rules, the
// reviewed exclusions and the curated additions.
//
//go:embed builtin_functions.txt
var builtinFunctionsFile string

var builtinFunctions = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, line := range strings.Split(builtinFunctionsFile, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = struct{}{}
		}
	}
	return m
}()

// BuiltinReadFunction reports whether name, as it appears in
// Statement.Functions ("lower", "pg_catalog.lower"), is a built-in
// PostgreSQL function known to only read what a read grant covers: its
// every overload in pg_catalog is immutable or stable (or it is one of a
// few inert volatile ones such as random and clock_timestamp), and it is
// not one of the reviewed exceptions (server files, large objects, other
// sessions' activity, SQL or tables named in strings, object definitions,
// replication, settings). A name qualified with any schema but pg_catalog
// is never built in.
//
// Unqualified names are resolved by the server along search_path, where
// pg_catalog comes first unless listed later; a same-named function in
// another schema with a better-matching signature would still be chosen,
// which only a look at the server's catalog can rule out.
func BuiltinReadFunction(name string) bool {
	name = strings.TrimPrefix(name, "pg_catalog.")
	_, ok := builtinFunctions[name]
	return ok
}

// builtinCall judges a called function by its name parts as the parser
// gives them (so a quoted name holding a dot, "pg_catalog.lower", is one
// part and not built in).
func builtinCall(parts []string) bool {
	switch len(parts) {
	case 1:
		_, ok := builtinFunctions[parts[0]]
		return ok
	case 2:
		_, ok := builtinFunctions[parts[1]]
		return ok && parts[0] == "pg_catalog"
	}
	return false
}
