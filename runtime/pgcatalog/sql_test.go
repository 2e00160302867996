package pgcatalog

import (
	"regexp"
	"strings"
	"testing"
)

// Every operator in the catalog's queries is OPERATOR(pg_catalog.op) and
// every function call is qualified; TestCatalogQueriesIgnoreSearchPath
// shows why against a real backend, this guards edits.
func TestSQLQualified(t *testing.T) {
	t.Parallel()
	queries := map[string]string{
		"fingerprint": fingerprintSQL, "schemas": schemasSQL, "functions": functionsSQL, "builtin": builtinSQL,
		"operators": operatorsSQL, "casts": castsSQL, "relations": relationsSQL, "types": typesSQL,
		"probe": probeSQL, "search path": searchPathSQL,
	}
	// An operator character sequence not inside OPERATOR(...) or a string.
	strip := regexp.MustCompile(`OPERATOR\(pg_catalog\.[^)]+\)|'[^']*'|::[a-z_.]+(\[\])?|\$[0-9]+`)
	bareOp := regexp.MustCompile(`[=<>~!|+\-*/#@%^&]+`)
	// A call: an identifier followed by "(", other than keywords and
	// pg_catalog-qualified names.
	call := regexp.MustCompile(`([a-z_.]+)\(`)
	keywords := map[string]bool{"coalesce": true, "in": true, "exists": true, "as": true, "from": true,
		"lateral": true, "and": true, "or": true, "not": true, "select": true, "any": true, "u": true, "t": true,
		"over": true, "when": true, "then": true, "else": true, "on": true, "where": true, "join": true, "with": true}
	for name, q := range queries {
		if strings.Contains(q, "{") && !strings.Contains(q, "'{") {
			t.Errorf("%s: unexpanded placeholder in %s", name, q)
		}
		rest := strip.ReplaceAllString(q, " ")
		for _, op := range bareOp.FindAllString(rest, -1) {
			if op != "*" { // count(*)
				t.Errorf("%s: bare operator %q", name, op)
			}
		}
		for _, m := range call.FindAllStringSubmatch(strings.ToLower(rest), -1) {
			if f := m[1]; !strings.HasPrefix(f, "pg_catalog.") && !keywords[f] {
				t.Errorf("%s: unqualified call %q", name, f)
			}
		}
	}
}
