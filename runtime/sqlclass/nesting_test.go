package sqlclass

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// treeDepth is the depth of a parse tree in the unit nestingBound bounds:
// nested messages, not counting the Node wrapper (a oneof with no C
// counterpart).
func treeDepth(tree *pg_query.ParseResult) int {
	d := 0
	for _, st := range tree.GetStmts() {
		d = max(d, msgDepth(st.ProtoReflect()))
	}
	return d
}

func msgDepth(m protoreflect.Message) int {
	d := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				d = max(d, msgDepth(l.Get(i).Message()))
			}
		default:
			d = max(d, msgDepth(v.Message()))
		}
		return true
	})
	if m.Descriptor().Name() == "Node" {
		return d
	}
	return d + 1
}

// checkBound parses sql (which must be shallow enough for pg_query) and
// fails if nestingBound is below the real depth. It returns the bound and
// the depth (-1 when the text does not parse).
func checkBound(t testing.TB, sql string) (bound, depth int) {
	t.Helper()
	bound = nestingBound(sql, 1<<30)
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return bound, -1
	}
	depth = treeDepth(tree)
	if bound < depth {
		t.Errorf("bound %d below real depth %d for %q", bound, depth, clip(sql))
	}
	return bound, depth
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// boundCases exercise each rule of nestingBound; every one must parse.
var boundCases = []string{
	"SELECT 1",
	"SELECT 1+1+1+1+1+1+1+1+1+1",
	"SELECT - - - - - x FROM t",
	"SELECT -+-+-+-x FROM t",
	"SELECT NOT NOT NOT NOT true",
	"SELECT ~ ~ ~ ~ 1",
	"SELECT x::int::text::int::text FROM t",
	"SELECT CAST(CAST(x AS int) AS text) FROM t",
	"SELECT x->'a'->'b'->>'c' FROM t",
	"SELECT 1 OPERATOR(pg_catalog.+) 2 OPERATOR(pg_catalog.+) 3",
	"SELECT OPERATOR(pg_catalog.-) OPERATOR(pg_catalog.-) 1",
	"SELECT x COLLATE \"C\" COLLATE \"C\" FROM t",
	"SELECT x AT TIME ZONE 'UTC' AT TIME ZONE 'UTC' AT LOCAL FROM t",
	"SELECT x IS NULL, x IS NOT NULL, x ISNULL, x NOTNULL, x IS TRUE, x IS DISTINCT FROM y, x IS JSON OBJECT FROM t",
	"SELECT NOT x IS NOT DISTINCT FROM y FROM t",
	"SELECT a LIKE b ESCAPE c, a NOT ILIKE b, a SIMILAR TO b ESCAPE c, a NOT SIMILAR TO b FROM t",
	"SELECT a BETWEEN b AND c, a NOT BETWEEN SYMMETRIC b AND c FROM t",
	"SELECT a BETWEEN b AND NOT a BETWEEN b AND NOT a BETWEEN b AND NOT a BETWEEN b AND c FROM t",
	"SELECT a BETWEEN b + 1 AND c + 1 AND d OR e BETWEEN f AND g FROM t",
	"SELECT x IN (1, 2, 3), x NOT IN (SELECT 1), x = ANY (ARRAY[1]), x > ALL (SELECT 1), x < SOME (SELECT 2) FROM t",
	"SELECT (a, b) OVERLAPS (c, d) FROM t",
	"SELECT x[1][2][3], (x)[1], (x).a.b, (x).*, x[1:2], (f(x))[1].a FROM t",
	"SELECT ARRAY[ARRAY[ARRAY[1, 2], ARRAY[3]]]",
	"SELECT ARRAY(SELECT ARRAY(SELECT 1))",
	"SELECT CASE WHEN a THEN CASE WHEN b THEN CASE x WHEN 1 THEN 2 ELSE 3 END END ELSE 4 END FROM t",
	"SELECT CASE WHEN a OR b OR CASE WHEN c OR d THEN 1 END = 1 THEN 1 END FROM t",
	"SELECT f(g(h(i(1))))",
	"SELECT ((((((1))))))",
	"SELECT (SELECT (SELECT (SELECT 1)))",
	"SELECT 1 UNION SELECT 2 UNION ALL SELECT 3 INTERSECT SELECT 4 EXCEPT SELECT 5",
	"SELECT a, b FROM t UNION SELECT c, d FROM u UNION SELECT e, f FROM v WHERE x OR y UNION SELECT 1, 2",
	"(SELECT 1 UNION SELECT 2) UNION (SELECT 3 UNION SELECT 4) ORDER BY 1 LIMIT 1",
	"SELECT * FROM a JOIN b ON x OR y JOIN c ON p AND q LEFT JOIN d USING (i) CROSS JOIN e NATURAL JOIN f",
	"SELECT * FROM a, b JOIN c ON true, (d JOIN e ON true) JOIN f ON true",
	"SELECT * FROM a JOIN b JOIN c ON true ON true",
	"SELECT * FROM a JOIN LATERAL (SELECT * FROM b JOIN c ON true) s ON true JOIN ROWS FROM (f(1) AS (x int), g(2)) r ON true",
	"SELECT count(*) FILTER (WHERE x > 1) OVER (PARTITION BY a ORDER BY b ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
	"SELECT string_agg(x, ',' ORDER BY y USING <), percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t",
	"SELECT json_arrayagg(x ORDER BY y RETURNING jsonb) OVER (ORDER BY z) FROM t",
	"SELECT json_objectagg(k : v ABSENT ON NULL) FILTER (WHERE k > 1) OVER (PARTITION BY a ORDER BY b) FROM t",
	"SELECT json_object('a' VALUE x FORMAT JSON, 'b' : y), json_array(1, 2 RETURNING jsonb) FROM t",
	"SELECT json_query(x, '$.a' PASSING y AS z RETURNING jsonb WITH WRAPPER DEFAULT '1' ON EMPTY ERROR ON ERROR) FROM t",
	"SELECT * FROM JSON_TABLE(x, '$' PASSING 1 AS a COLUMNS (a int PATH '$.a' DEFAULT 1 + 1 ON ERROR, NESTED PATH '$.b' COLUMNS (c text))) jt",
	"SELECT * FROM XMLTABLE('/a' PASSING x COLUMNS a int PATH 'a' DEFAULT 1 + 1, b text) xt",
	"SELECT xmlelement(NAME a, xmlattributes(x AS b), xmlforest(y AS c)), x IS DOCUMENT FROM t",
	"SELECT int '1', interval '1' day to second, timestamp(3) with time zone '2020-01-01', x::numeric(10, 2)[] FROM t",
	"SELECT f(a => 1, b := 2), f(VARIADIC ARRAY[1])",
	"SELECT t.and, t.or, t.end, 1 AS or, 2 AS and, 3 AS end FROM t WHERE t.when = 1 AND t.then = 2",
	"SELECT E'a\\'' || 'b' || $$c$$ || $t$d$t$ || U&'\\0061' || B'01' || X'1F' || N'x' || 'x'\n'y'",
	"SELECT 1 /* -- ( */ + -- )\n 2",
	"SELECT x FROM t WHERE id = 1 OR id = 2 OR id = 3 AND (x OR y) AND NOT z",
	"WITH a AS (SELECT 1), b AS MATERIALIZED (SELECT * FROM a) SELECT * FROM b",
	"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SEARCH DEPTH FIRST BY n SET o SELECT * FROM r",
	"INSERT INTO t (a, b) VALUES (1, 2), (3, 4) ON CONFLICT (a) WHERE b > 0 DO UPDATE SET (a, b) = (SELECT 1, 2) WHERE t.a > 1 RETURNING *",
	"INSERT INTO t SELECT * FROM u UNION SELECT * FROM v",
	"UPDATE t SET a = b + 1, c[1] = 2, d.e = 3 FROM u WHERE t.id = u.id RETURNING a, b",
	"DELETE FROM t USING u WHERE t.id = u.id AND EXISTS (SELECT 1) RETURNING *",
	"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED AND u.x > 1 OR u.y THEN UPDATE SET a = u.a + 1 WHEN NOT MATCHED THEN INSERT (a) VALUES (u.a) WHEN MATCHED THEN DELETE",
	"EXPLAIN (ANALYZE, FORMAT JSON) CREATE TABLE x AS EXECUTE p(1 + 1, 2)",
	"EXPLAIN DECLARE c CURSOR FOR SELECT 1",
	"PREPARE p (int) AS INSERT INTO t SELECT $1 ON CONFLICT (a) DO UPDATE SET (a, b) = (SELECT 1, 2)",
	"DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t FOR UPDATE",
	"COPY (SELECT * FROM t WHERE x > 1) TO STDOUT WITH (FORMAT csv)",
	"CREATE SCHEMA s CREATE TABLE t (a int DEFAULT 1 + 1 CHECK (a > 0)) CREATE VIEW v AS WITH c AS (SELECT 1) SELECT * FROM c",
	"CREATE TABLE t (a int GENERATED ALWAYS AS IDENTITY (START WITH 1), b numeric(10, 2) DEFAULT (1 + 2) * 3 NOT NULL REFERENCES u (x) ON DELETE SET DEFAULT (b), CHECK (a > 0 AND b < 10), EXCLUDE USING gist (a WITH =) WHERE (a > 1)) PARTITION BY RANGE ((a + 1))",
	"CREATE TABLE p PARTITION OF t FOR VALUES FROM (1 + 1) TO (MAXVALUE)",
	"ALTER TABLE t ADD COLUMN c int DEFAULT 1 + 2 * 3 CHECK (c > 0), ALTER COLUMN d SET DEFAULT -1, ALTER COLUMN e TYPE text USING e::text || 'x'",
	"CREATE INDEX i ON t USING btree ((a + b), lower(c) text_pattern_ops DESC NULLS LAST) INCLUDE (d) WITH (fillfactor = 10) WHERE a > 0 AND b IS NOT NULL",
	"CREATE FUNCTION f(a int DEFAULT 1 + 1) RETURNS int LANGUAGE sql RETURN a + 1",
	"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; INSERT INTO t VALUES (CASE WHEN true THEN 1 END); END",
	"CREATE RULE r AS ON UPDATE TO t WHERE old.a <> new.a DO ALSO (INSERT INTO u SELECT * FROM v UNION SELECT * FROM w; NOTIFY c)",
	"CREATE TRIGGER tr AFTER UPDATE OF a ON t FOR EACH ROW WHEN (old.a IS DISTINCT FROM new.a) EXECUTE FUNCTION f(1, 'x')",
	"CREATE POLICY p ON t USING (a = current_user AND b IN (SELECT 1)) WITH CHECK (c > 0)",
	"CREATE PUBLICATION p FOR TABLE t (a, b) WHERE (a > 1 AND b < 2)",
	"CREATE VIEW v AS SELECT * FROM t WHERE a > 1 WITH CHECK OPTION",
	"CREATE MATERIALIZED VIEW v AS SELECT 1 WITH NO DATA",
	"ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO u",
	"GRANT SELECT (a, b), UPDATE (c) ON t TO u WITH GRANT OPTION",
	"SET search_path TO a, b; SET LOCAL x = 1; RESET ALL; SHOW x",
	"CALL p(1 + 1, f(2))",
	"DO $$ BEGIN RAISE NOTICE '%', 1; END $$",
	"SELECT 1 FROM t FOR UPDATE OF t NOWAIT",
	"SELECT a FROM t GROUP BY GROUPING SETS ((a, b), ROLLUP (c, d), CUBE (e)) HAVING count(*) > 1",
	"SELECT * FROM t TABLESAMPLE bernoulli (10 + 1) REPEATABLE (1)",
	"VALUES (1, 2), (3, 4) ORDER BY 1 LIMIT 1 OFFSET 1",
	"TABLE t",
	"SELECT $1::int + $2",
	"DELETE FROM t WHERE CURRENT OF c",
	"SELECT coalesce(a, b), nullif(a, b), greatest(a, b), least(a, b), grouping(a) FROM t GROUP BY a, b",
	"SELECT substring(x FROM 1 FOR 2), extract(year FROM x), overlay(x PLACING y FROM 1 FOR 2), position(x IN y), trim(BOTH x FROM y) FROM t",
	"SELECT ROW(1, 2), (1, 2) = (3, 4), ROW(1) IS NULL",
	"SELECT x FROM t ORDER BY x COLLATE \"C\" DESC, y USING > NULLS FIRST",
	"SELECT DISTINCT ON (a, b) a FROM t",
	"SELECT * INTO TEMP u FROM t",
	"CREATE TABLE u AS SELECT * FROM t WITH NO DATA",
	"CREATE TYPE c AS (a int, b text); CREATE DOMAIN d AS int CHECK (VALUE > 0 AND VALUE < 10)",
	"CREATE STATISTICS s ON (a + b), c FROM t",
	"COMMENT ON TABLE t IS 'x'",
	"SELECT 1; SELECT 2 UNION SELECT 3;",
}

func TestNestingBoundSound(t *testing.T) {
	t.Parallel()
	for _, sql := range boundCases {
		bound, depth := checkBound(t, sql)
		if depth < 0 {
			t.Errorf("case does not parse: %q", sql)
		}
		if bound > DefaultMaxNesting {
			t.Errorf("bound %d above the default limit for %q", bound, sql)
		}
	}
}

// TestNestingBoundCorpus checks the bound against every statement of the
// golden inputs, and of the .sql files in GATEHOUSE_SQLCLASS_CORPUS when
// set (for example PostgreSQL's regression tests).
func TestNestingBoundCorpus(t *testing.T) {
	t.Parallel()
	golden, err := filepath.Glob("testdata/classify/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for _, file := range golden {
		for _, c := range readCases(t, file) {
			stmts = append(stmts, c.Input)
		}
	}
	if dir := os.Getenv("GATEHOUSE_SQLCLASS_CORPUS"); dir != "" {
		files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			stmts = append(stmts, corpusStatements(string(data))...)
		}
	}
	checked, worst := 0, 0
	{
		for _, sql := range stmts {
			bound, depth := checkBound(t, sql)
			if depth >= 0 {
				checked++
				worst = max(worst, bound)
			}
		}
	}
	t.Logf("%d statements checked, largest bound %d", checked, worst)
	if checked < 100 {
		t.Fatalf("only %d statements parsed", checked)
	}
}

// corpusStatements splits a SQL file into statements with libpg_query's
// scanner-based splitter, dropping psql meta-command lines.
func corpusStatements(data string) []string {
	var lines []string
	for _, l := range strings.Split(data, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "\\") {
			continue
		}
		lines = append(lines, l)
	}
	stmts, err := pg_query.SplitWithScanner(strings.Join(lines, "\n"), true)
	if err != nil {
		return nil
	}
	return stmts
}

func TestNestingError(t *testing.T) {
	t.Parallel()
	p, err := NewPostgres(PostgresConfig{MaxNesting: 50})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Classify("SELECT 1" + strings.Repeat("+1", 100))
	var ne *NestingError
	if !errors.Is(err, ErrTooComplex) || !errors.As(err, &ne) {
		t.Fatalf("err = %v, want a *NestingError", err)
	}
	if ne.Limit != 50 || ne.Estimate <= 100 {
		t.Fatalf("estimate %d, limit %d", ne.Estimate, ne.Limit)
	}
	if !strings.Contains(err.Error(), "50") || !strings.Contains(err.Error(), itoa(ne.Estimate)) {
		t.Fatalf("error text %q lacks the estimate or the limit", err)
	}
	if err := CheckNesting("SELECT 1"+strings.Repeat("+1", 25_000), 0); !errors.Is(err, ErrTooComplex) {
		t.Errorf("CheckNesting of the attack: %v", err)
	}
	if err := CheckNesting("SELECT 1"+strings.Repeat("+1", 3_000), 1<<30); !errors.Is(err, ErrTooComplex) {
		t.Errorf("CheckNesting above MaxNestingLimit: %v", err)
	}
	if err := CheckNesting("SELECT lower(email) FROM customers WHERE id = 1", 0); err != nil {
		t.Errorf("CheckNesting of a plain query: %v", err)
	}
	for _, bad := range []int{-1, MaxNestingLimit + 1} {
		if _, err := NewPostgres(PostgresConfig{MaxNesting: bad}); err == nil {
			t.Errorf("MaxNesting %d accepted", bad)
		}
	}
}

// randomSQL builds random, often unparenthesised compositions of the
// constructs nestingBound counts, so that precedence and associativity
// decide the tree's shape.
type randomSQL struct{ r *rand.Rand }

func (g randomSQL) expr(d int) string {
	if d <= 0 {
		return [...]string{"1", "x", "'a'", "t.c", "$1", "NULL", "true"}[g.r.IntN(7)]
	}
	e := func() string { return g.expr(d - 1 - g.r.IntN(2)) }
	switch g.r.IntN(30) {
	case 0:
		return e() + " + " + e()
	case 1:
		return e() + " || " + e()
	case 2:
		return e() + " -> " + e()
	case 3:
		return e() + " OPERATOR(pg_catalog.*) " + e()
	case 4:
		return "- " + e()
	case 5:
		return "NOT " + e()
	case 6:
		return e() + "::int"
	case 7:
		return e() + ` COLLATE "C"`
	case 8:
		return e() + " AT TIME ZONE 'UTC'"
	case 9:
		return e() + " IS NOT NULL"
	case 10:
		return e() + " IS DISTINCT FROM " + e()
	case 11:
		return e() + " BETWEEN " + g.expr(1) + " AND " + e()
	case 12:
		return e() + " OR " + e()
	case 13:
		return e() + " AND " + e()
	case 14:
		return "CASE WHEN " + e() + " THEN " + e() + " ELSE " + e() + " END"
	case 15:
		return "(" + e() + ")"
	case 16:
		return "f(" + e() + ", " + e() + ")"
	case 17:
		return "ARRAY[" + e() + "]"
	case 18:
		return "(" + e() + ")[1]"
	case 19:
		return "(SELECT " + e() + " FROM t WHERE " + e() + ")"
	case 20:
		return e() + " IN (" + e() + ", " + e() + ")"
	case 21:
		return e() + " = ANY (SELECT " + e() + ")"
	case 22:
		return e() + " LIKE " + e() + " ESCAPE " + e()
	case 23:
		return e() + " NOT SIMILAR TO " + e()
	case 24:
		return "(" + e() + ").f"
	case 25:
		return e() + " < " + e()
	case 26:
		return "EXISTS (SELECT 1 FROM t JOIN u ON " + e() + " JOIN v ON " + e() + ")"
	case 27:
		return e() + " IS TRUE"
	case 28:
		return "(SELECT " + e() + " UNION SELECT " + e() + ")"
	}
	return e() + " * " + e()
}

func (g randomSQL) statement(d int) string {
	switch g.r.IntN(6) {
	case 0:
		return "SELECT " + g.expr(d) + ", " + g.expr(d) + " FROM t JOIN u ON " + g.expr(d) + " WHERE " + g.expr(d) +
			" UNION SELECT " + g.expr(d) + ", 1 ORDER BY 1"
	case 1:
		return "UPDATE t SET a = " + g.expr(d) + " WHERE " + g.expr(d) + " RETURNING " + g.expr(d)
	case 2:
		return "INSERT INTO t VALUES (" + g.expr(d) + "), (" + g.expr(d) + ") ON CONFLICT (a) DO UPDATE SET b = " + g.expr(d)
	case 3:
		return "MERGE INTO t USING u ON " + g.expr(d) + " WHEN MATCHED AND " + g.expr(d) + " THEN UPDATE SET a = " + g.expr(d) +
			" WHEN NOT MATCHED THEN INSERT VALUES (" + g.expr(d) + ")"
	case 4:
		return "CREATE TABLE t (a int DEFAULT " + g.expr(d) + " CHECK (" + g.expr(d) + "))"
	}
	return "SELECT " + g.expr(d)
}

// TestNestingBoundRandom checks the bound against the real depth of
// thousands of random statements (those that parse).
func TestNestingBoundRandom(t *testing.T) {
	t.Parallel()
	g := randomSQL{rand.New(rand.NewPCG(1, 2))}
	parsed := 0
	for i := 0; i < 6000; i++ {
		sql := g.statement(1 + g.r.IntN(9))
		if _, depth := checkBound(t, sql); depth >= 0 {
			parsed++
		}
		if t.Failed() {
			return
		}
	}
	if parsed < 1000 {
		t.Fatalf("only %d random statements parsed", parsed)
	}
	t.Logf("%d random statements parsed and bounded", parsed)
}
