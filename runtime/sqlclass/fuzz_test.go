package sqlclass

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// deepSeeds are large and deeply nested inputs, generated here so that the
// seed corpus on disk stays small.
func deepSeeds() []string {
	return []string{
		rep("(", 100_000) + "1" + rep(")", 100_000),
		"SELECT " + rep("(", 100_000) + "1" + rep(")", 100_000),
		"SELECT 1" + rep("+1", 25_000),
		"SELECT 1" + rep(" OPERATOR(pg_catalog.+) 1", 2_000),
		"SELECT x" + rep("->'a'", 5_000) + " FROM t",
		"SELECT " + rep("- ", 5_000) + "x",
		"SELECT 1" + rep("::int", 5_000),
		"SELECT 1" + rep(" UNION SELECT 1", 5_000),
		"SELECT 1 FROM t" + rep(" JOIN t ON true", 5_000),
		"SELECT " + rep("CASE WHEN true THEN ", 1_000) + "1" + rep(" END", 1_000),
		"SELECT a" + rep(" BETWEEN b AND NOT a", 1_000) + " FROM t",
		"SELECT '" + rep("x", 1<<20-16) + "'",
		"SELECT $$" + rep("(", 1<<20-20) + "$$",
		"SELECT E'" + rep(`\'(`, 300_000) + "'",
		"SELECT 1 /* " + rep("(", 500_000) + " */",
		"SELECT " + rep("ARRAY[", 3_000) + "1" + rep("]", 3_000),
		"SELECT 1 WHERE " + rep("a = 1 OR ", 20_000) + "true",
	}
}

// FuzzClassify checks that classification never panics and yields either
// a statement list or an error.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "", ";", "/* x */ DELETE FROM t",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"COPY (SELECT * FROM t) TO STDOUT", "EXPLAIN ANALYZE UPDATE t SET a = 1",
		"SELECT row_to_json(c) FROM customers c", "SELECT * FROM a, LATERAL (SELECT a.x) s",
		"PREPARE p AS SELECT $1", "DO $$ BEGIN END $$", "SELEC 1",
	} {
		f.Add(s)
	}
	for _, s := range deepSeeds() {
		f.Add(s)
	}
	if files, err := filepath.Glob("testdata/classify/*.sql"); err == nil {
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(string(data))
			}
		}
	}
	p, err := NewPostgres(PostgresConfig{MaxQueryBytes: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := p.Classify(sql)
		if err != nil {
			if stmts != nil {
				t.Fatalf("error %v with statements", err)
			}
			if !errors.Is(err, ErrUnparseable) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTooComplex) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		for _, st := range stmts {
			if st.Kind == "" {
				t.Fatalf("statement without kind: %+v", st)
			}
		}
	})
}

// FuzzClassifyDeep feeds large and deep texts to the classifier and its
// cache with the default bounds. Property: the process survives (if the
// pre-scan accepted a text too deep for libpg_query's C code, the fuzzing
// process would die); a text the pre-scan rejects is rejected with
// ErrTooComplex; any other outcome is statements or a classified error.
func FuzzClassifyDeep(f *testing.F) {
	for _, s := range deepSeeds() {
		f.Add(s)
	}
	f.Add("SELECT (1 + (2 * (3 - 4)))")
	p, err := NewPostgres(PostgresConfig{})
	if err != nil {
		f.Fatal(err)
	}
	c := NewCache(p, 64)
	f.Fuzz(func(t *testing.T, sql string) {
		tooDeep := nestingBound(sql, p.maxNesting) > p.maxNesting
		for _, cl := range []Classifier{p, c} {
			stmts, err := cl.Classify(sql)
			switch {
			case err == nil:
				if tooDeep {
					t.Fatal("accepted a text the pre-scan rejects")
				}
			case stmts != nil:
				t.Fatalf("error %v with statements", err)
			case tooDeep && len(sql) <= p.maxBytes && !errors.Is(err, ErrTooComplex) && !errors.Is(err, ErrUnparseable):
				t.Fatalf("too deep, but err = %v", err)
			case !errors.Is(err, ErrUnparseable) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTooComplex):
				t.Fatalf("unexpected error class: %v", err)
			}
		}
		p.normalize(sql)
	})
}

// FuzzNestingBound checks the pre-scan against libpg_query: its lexer
// agrees with libpg_query's scanner on literals, keywords and operator
// tokens, and, for texts it accepts (so parsing them is safe), its bound
// is at least the depth of the parse tree.
func FuzzNestingBound(f *testing.F) {
	for _, s := range lexCases {
		f.Add(s)
	}
	for _, s := range boundCases {
		f.Add(s)
	}
	for _, s := range []string{
		"SELECT a BETWEEN b AND NOT c BETWEEN d AND e OR f",
		"SELECT CASE WHEN a OR b THEN c ELSE d END AND e",
		"SELECT 1 AS or, t.and FROM t JOIN u ON x OR y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if len(sql) > 4096 || strings.IndexByte(sql, 0) >= 0 {
			return
		}
		compareLexer(t, sql)
		bound := nestingBound(sql, MaxNestingLimit)
		if bound > MaxNestingLimit {
			return
		}
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return
		}
		if d := treeDepth(tree); d > bound {
			t.Fatalf("bound %d below real depth %d", bound, d)
		}
	})
}
