package sqlclass

import (
	"slices"
	"strings"
	"testing"
)

// hasAll fails unless every want is in got.
func hasAll(t *testing.T, what string, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s %v lacks %q", what, got, w)
		}
	}
}

func classifyOne(t *testing.T, sql string) Statement {
	t.Helper()
	p, err := NewPostgres(PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Classify(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(st) != 1 {
		t.Fatalf("%d statements", len(st))
	}
	return st[0]
}

// TestFactsEveryPosition: functions, tables, columns, operators and types
// are found wherever an expression can stand.
func TestFactsEveryPosition(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, sql                 string
		funcs, tables, cols, ops  []string
		types                     []string
		dangerous                 []string
		noDangerous, wantLocking  bool
		wantReadOnly, wantWritten []string
	}{
		{name: "execute arguments", sql: "EXECUTE p(f1(1 + 2), (SELECT ssn FROM customers LIMIT 1), 3::money)",
			funcs: []string{"f1"}, tables: []string{"customers"}, cols: []string{"customers.ssn"}, ops: []string{"+"}, types: []string{"money"}},
		{name: "call arguments", sql: "CALL p(f1((SELECT a FROM t1 WHERE b > 0)))",
			funcs: []string{"p", "f1"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.b"}, ops: []string{">"}},
		{name: "declare body", sql: "DECLARE c CURSOR FOR SELECT f1(a) FROM t1 WHERE b || 'x' = 'y'",
			funcs: []string{"f1"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.b"}, ops: []string{"||", "="}},
		{name: "prepare body", sql: "PREPARE q (int) AS SELECT f1(a)::text FROM t1 WHERE b = $1",
			funcs: []string{"f1"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.b"}, ops: []string{"="}, types: []string{"text"}},
		{name: "copy query", sql: "COPY (SELECT f1(a) FROM t1 WHERE c ->> 'k' = 'v') TO STDOUT",
			funcs: []string{"f1"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.c"}, ops: []string{"->>", "="}},
		{name: "copy from where", sql: "COPY t1 FROM STDIN WHERE f1(a) > 0",
			funcs: []string{"f1"}, tables: []string{"t1"}, cols: []string{"t1.a"}, ops: []string{">"}},
		{name: "function arguments", sql: "SELECT f2(f1(a), b::s.mytype) FROM t1",
			funcs: []string{"f1", "f2"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.b"}, types: []string{"s.mytype"}},
		{name: "values", sql: "VALUES (f1((SELECT a FROM t1)), 2)",
			funcs: []string{"f1"}, tables: []string{"t1"}, cols: []string{"t1.a"}},
		{name: "insert values", sql: "INSERT INTO t2 (x) VALUES (f1((SELECT a FROM t1)))",
			funcs: []string{"f1"}, tables: []string{"t1", "t2"}, cols: []string{"t1.a", "t2.x"}},
		{name: "returning", sql: "DELETE FROM t1 WHERE a = 1 RETURNING f1(b), c OPERATOR(myschema.###) d",
			funcs: []string{"f1"}, tables: []string{"t1"}, cols: []string{"t1.b", "t1.c", "t1.d"}, ops: []string{"=", "myschema.###"}},
		{name: "on conflict", sql: "INSERT INTO t1 (a) VALUES (1) ON CONFLICT (a) WHERE f3(a) DO UPDATE SET b = f1(excluded.b) WHERE t1.c > f2(0)",
			funcs: []string{"f1", "f2", "f3"}, tables: []string{"t1"}, cols: []string{"t1.b", "t1.c"}, ops: []string{">"}},
		{name: "merge actions", sql: "MERGE INTO t1 USING t2 ON t1.a = t2.a WHEN MATCHED AND f3(t2.c) THEN UPDATE SET b = f1(t2.b) WHEN NOT MATCHED THEN INSERT (a) VALUES (f2(t2.a))",
			funcs: []string{"f1", "f2", "f3"}, tables: []string{"t1", "t2"}, cols: []string{"t2.a", "t2.b", "t2.c", "t1.a"}, ops: []string{"="}},
		{name: "window definitions", sql: "SELECT sum(a) OVER w, rank() OVER (ORDER BY f3(d)) FROM t1 WINDOW w AS (PARTITION BY f1(b) ORDER BY f2(c) ROWS BETWEEN f4(1) PRECEDING AND CURRENT ROW)",
			funcs: []string{"sum", "rank", "f1", "f2", "f3", "f4"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.b", "t1.c", "t1.d"}},
		{name: "limit offset", sql: "SELECT a FROM t1 LIMIT f1(1) OFFSET (SELECT count(*) FROM t2)",
			funcs: []string{"f1", "count"}, tables: []string{"t1", "t2"}},
		{name: "group by having", sql: "SELECT f1(a) FROM t1 GROUP BY f1(a), ROLLUP (f2(b)) HAVING f3(count(*)) > 0",
			funcs: []string{"f1", "f2", "f3"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.b"}, ops: []string{">"}},
		{name: "order by using", sql: "SELECT a FROM t1 ORDER BY f1(a) USING ~<~, b DESC",
			funcs: []string{"f1"}, tables: []string{"t1"}, ops: []string{"~<~"}},
		{name: "create table defaults and checks", sql: "CREATE TABLE t3 (a int DEFAULT f1(), b int CHECK (f2(b) > 0), c int GENERATED ALWAYS AS (f3(a)) STORED, CHECK (a < f4(b)))",
			funcs: []string{"f1", "f2", "f3", "f4"}, tables: []string{"t3"}, ops: []string{">", "<"}},
		{name: "alter table", sql: "ALTER TABLE t1 ADD COLUMN d int DEFAULT f1(), ALTER COLUMN b SET DEFAULT f2(), ADD CONSTRAINT k CHECK (f3(a) > 0), ALTER COLUMN c TYPE text USING f4(c)::text",
			funcs: []string{"f1", "f2", "f3", "f4"}, tables: []string{"t1"}, ops: []string{">"}, types: []string{"text"}},
		{name: "index expressions", sql: "CREATE INDEX i ON t1 (f1(a), (b + 1)) WHERE f2(c)",
			funcs: []string{"f1", "f2"}, tables: []string{"t1"}, ops: []string{"+"}},
		{name: "set value", sql: "SET TIME ZONE INTERVAL '+01:00' HOUR TO MINUTE", types: []string{"pg_catalog.interval"}},
		{name: "alter system set", sql: "ALTER SYSTEM SET timezone = 'UTC'"},
		{name: "alter role set", sql: "ALTER ROLE r SET search_path = a, b"},
		{name: "create table as", sql: "CREATE TABLE t4 AS SELECT f1(a) FROM t1",
			funcs: []string{"f1"}, tables: []string{"t1", "t4"}, cols: []string{"t1.a"}},
		{name: "select into", sql: "SELECT f1(a) INTO t5 FROM t1",
			funcs: []string{"f1"}, tables: []string{"t1", "t5"}, cols: []string{"t1.a"}},
		{name: "explain", sql: "EXPLAIN SELECT f1(a) FROM t1 WHERE b IN (1, 2)",
			funcs: []string{"f1"}, tables: []string{"t1"}, cols: []string{"t1.a", "t1.b"}, ops: []string{"="}},
		{name: "create view", sql: "CREATE VIEW v AS SELECT f1(a) FROM t1 WHERE b NOT IN (SELECT c FROM t2)",
			funcs: []string{"f1"}, tables: []string{"t1", "t2"}, ops: []string{"="}},
		{name: "materialized view", sql: "CREATE MATERIALIZED VIEW mv AS SELECT f1(a) FROM t1",
			funcs: []string{"f1"}, tables: []string{"t1"}},
		{name: "policy", sql: "CREATE POLICY p ON t1 USING (f1(a) = current_user) WITH CHECK (f2(b))",
			funcs: []string{"f1", "f2"}, tables: []string{"t1"}, ops: []string{"="}},
		{name: "trigger when", sql: "CREATE TRIGGER tr BEFORE UPDATE ON t1 FOR EACH ROW WHEN (f1(new.a) IS DISTINCT FROM old.a) EXECUTE FUNCTION g()",
			funcs: []string{"f1"}, tables: []string{"t1"}, ops: []string{"="}},
		{name: "rule", sql: "CREATE RULE r AS ON UPDATE TO t1 WHERE f1(new.a) DO ALSO INSERT INTO t2 VALUES (f2(new.b))",
			funcs: []string{"f1", "f2"}, tables: []string{"t1", "t2"}},
		{name: "function defaults and body", sql: "CREATE FUNCTION fn(x int DEFAULT f1()) RETURNS int LANGUAGE sql RETURN f2(x) + (SELECT count(*) FROM t1)",
			funcs: []string{"f1", "f2", "count"}, tables: []string{"t1"}, ops: []string{"+"}},
		{name: "function atomic body", sql: "CREATE FUNCTION fn() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT f1(a) FROM t1; END",
			funcs: []string{"f1"}, tables: []string{"t1"}},
		{name: "domain check", sql: "CREATE DOMAIN d AS int CHECK (f1(VALUE) > 0)", funcs: []string{"f1"}, ops: []string{">"}},
		{name: "statistics", sql: "CREATE STATISTICS s ON (f1(a)), b FROM t1", funcs: []string{"f1"}, tables: []string{"t1"}},
		{name: "partition bounds", sql: "CREATE TABLE p1 PARTITION OF t1 FOR VALUES FROM (f1(0)) TO (f2(10))",
			funcs: []string{"f1", "f2"}, tables: []string{"p1", "t1"}},
		{name: "publication where", sql: "CREATE PUBLICATION pub FOR TABLE t1 WHERE (f1(a) > 0)",
			funcs: []string{"f1"}, tables: []string{"t1"}, ops: []string{">"}},
		{name: "update multi-assign and from", sql: "UPDATE t1 SET (a, b) = (SELECT f1(x), y FROM t2 WHERE t2.id = t1.id) FROM t3 WHERE t3.k = f2(t1.k)",
			funcs: []string{"f1", "f2"}, tables: []string{"t1", "t2", "t3"}, cols: []string{"t2.x", "t2.y", "t3.k"}, ops: []string{"="}},
		{name: "delete using", sql: "DELETE FROM t1 USING t2 WHERE t1.a = f1(t2.a)",
			funcs: []string{"f1"}, tables: []string{"t1", "t2"}, cols: []string{"t2.a"}},
		{name: "join on lateral rows from", sql: "SELECT * FROM t1 JOIN t2 ON f1(t1.a) = t2.a, LATERAL (SELECT f2(t1.b)) s, ROWS FROM (f3(1), f4(2)) r",
			funcs: []string{"f1", "f2", "f3", "f4"}, tables: []string{"t1", "t2"}},
		{name: "tablesample", sql: "SELECT * FROM t1 TABLESAMPLE bernoulli (f1(10)) REPEATABLE (f2(1))",
			funcs: []string{"f1", "f2", "bernoulli"}, tables: []string{"t1"}},
		{name: "xmltable and json_table", sql: "SELECT * FROM t1, XMLTABLE('/r' PASSING f1(t1.x) COLUMNS a s.t1type PATH 'a' DEFAULT f2(1)) x, JSON_TABLE(f3(t1.j), '$' COLUMNS (b s.t2type PATH '$.b')) j",
			funcs: []string{"f1", "f2", "f3"}, tables: []string{"t1"}, cols: []string{"t1.x", "t1.j"}, types: []string{"s.t1type", "s.t2type"}},
		{name: "sql/json returning", sql: "SELECT json_value(j, '$.a' RETURNING s.mytype), xmlserialize(CONTENT x AS text) FROM t1",
			tables: []string{"t1"}, types: []string{"s.mytype", "text"}},
		{name: "distinct on, filter, within group", sql: "SELECT DISTINCT ON (f1(a)) percentile_cont(0.5) WITHIN GROUP (ORDER BY f2(b)), count(*) FILTER (WHERE f3(c)) FROM t1 GROUP BY a",
			funcs: []string{"f1", "f2", "f3", "percentile_cont", "count"}, tables: []string{"t1"}},
		{name: "cte", sql: "WITH RECURSIVE r(n) AS (SELECT f1(1) UNION ALL SELECT n + 1 FROM r WHERE n < f2(10)) SELECT * FROM r, t1",
			funcs: []string{"f1", "f2"}, tables: []string{"t1"}, ops: []string{"+", "<"}},
		{name: "case array subscript row", sql: "SELECT CASE WHEN f1(a) THEN ARRAY(SELECT f2(b) FROM t2) ELSE NULL END, (f3(c))[1], ROW(f4(d)) FROM t1",
			funcs: []string{"f1", "f2", "f3", "f4"}, tables: []string{"t1", "t2"}},
		{name: "between like similar any", sql: "SELECT a BETWEEN 1 AND 2, b NOT BETWEEN 1 AND 2, c NOT LIKE 'x', d ILIKE 'y', e SIMILAR TO 'z', f = ANY (SELECT g FROM t2), h IS DISTINCT FROM i, NULLIF(j, k) FROM t1",
			tables: []string{"t1", "t2"}, ops: []string{">=", "<=", "<", ">", "!~~", "~~*", "~", "="}},
		{name: "typed literals and casts", sql: "SELECT int '1', 'x'::varchar(10)[], CAST(a AS double precision), b::\"MyType\", c::timestamp with time zone, d::s.\"T\"[] FROM t1",
			tables: []string{"t1"}, types: []string{"pg_catalog.int4", "pg_catalog.varchar", "pg_catalog.float8", "MyType", "pg_catalog.timestamptz", "s.T"}},
		{name: "create schema elements", sql: "CREATE SCHEMA s CREATE TABLE t6 (a int DEFAULT f1()) CREATE VIEW v6 AS SELECT f2(a) FROM t6",
			funcs: []string{"f1", "f2"}, tables: []string{"t6"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := classifyOne(t, c.sql)
			hasAll(t, "functions", st.Functions, c.funcs)
			hasAll(t, "tables", append(append([]string(nil), st.TablesRead...), st.TablesWritten...), c.tables)
			hasAll(t, "columns", st.Columns, c.cols)
			hasAll(t, "operators", st.Operators, c.ops)
			hasAll(t, "types", st.Types, c.types)
			for _, f := range c.funcs {
				if strings.HasPrefix(f, "f") && !slices.Contains(st.DangerousFunctions, f) {
					t.Errorf("user function %s not dangerous: %v", f, st.DangerousFunctions)
				}
			}
			if !sortedUnique(st.Operators) || !sortedUnique(st.Types) || !sortedUnique(st.Functions) {
				t.Errorf("facts not sorted and unique: %v %v %v", st.Operators, st.Types, st.Functions)
			}
		})
	}
}

func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] <= s[i-1] {
			return false
		}
	}
	return true
}

func TestExecuteArgs(t *testing.T) {
	t.Parallel()
	st := classifyOne(t, "EXECUTE p(1, (SELECT ssn FROM customers LIMIT 1), lower((SELECT c.email FROM customers c)) || 'x', (SELECT row_to_json(o) FROM orders o))")
	if len(st.Args) != 4 {
		t.Fatalf("args = %+v", st.Args)
	}
	want := []struct {
		name     string
		sources  []ColumnRef
		wholeRow bool
	}{
		{"$1", nil, false},
		{"$2", []ColumnRef{{Table: "customers", Column: "ssn"}}, false},
		{"$3", []ColumnRef{{Table: "customers", Column: "email"}}, false},
		{"$4", []ColumnRef{{Table: "orders", Column: "*"}}, true},
	}
	for i, w := range want {
		a := st.Args[i]
		if a.Name != w.name || !slices.Equal(a.Sources, w.sources) || a.WholeRow != w.wholeRow || !a.Derived {
			t.Errorf("arg %d = %+v, want %s %v whole row %v", i, a, w.name, w.sources, w.wholeRow)
		}
	}
	if st := classifyOne(t, "EXECUTE p"); st.Args != nil {
		t.Errorf("args of EXECUTE without arguments: %+v", st.Args)
	}
}

func TestLocking(t *testing.T) {
	t.Parallel()
	cases := []struct {
		sql  string
		want bool
	}{
		{"SELECT * FROM t FOR UPDATE", true},
		{"SELECT * FROM t FOR NO KEY UPDATE OF t NOWAIT", true},
		{"SELECT * FROM t FOR SHARE SKIP LOCKED", true},
		{"SELECT * FROM t FOR KEY SHARE", true},
		{"SELECT * FROM t", false},
		{"SELECT * FROM t WHERE a IN (SELECT a FROM u FOR UPDATE)", true},
		{"SELECT * FROM (SELECT * FROM u FOR SHARE) s", true},
		{"WITH c AS (SELECT * FROM u FOR UPDATE) SELECT * FROM c", true},
		{"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u FOR UPDATE)", true},
		{"INSERT INTO t SELECT * FROM u FOR UPDATE", true},
		{"PREPARE q AS SELECT * FROM t FOR UPDATE", true},
		{"DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE", true},
		{"EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE", true},
		{"EXPLAIN SELECT * FROM t FOR UPDATE", false},
		{"COPY (SELECT * FROM t FOR UPDATE) TO STDOUT", true},
		{"CREATE TABLE x AS SELECT * FROM t FOR UPDATE", true},
		{"CREATE VIEW v AS SELECT * FROM t FOR UPDATE", false},
		{"EXECUTE q", false},
		{"SELECT 1", false},
	}
	for _, c := range cases {
		st := classifyOne(t, c.sql)
		if st.Locking != c.want {
			t.Errorf("%s: locking %v, want %v", c.sql, st.Locking, c.want)
		}
	}
	if st := classifyOne(t, "SELECT * FROM t FOR UPDATE"); st.SubKind != "select for update" {
		t.Errorf("sub kind %q", st.SubKind)
	}
}

// TestLongIdentifiers shows that pg_query truncates identifiers longer
// than 63 bytes (NAMEDATALEN-1) as PostgreSQL does, on a UTF-8 character
// boundary, quoted or not, so names reach the gateway as the backend
// stores them.
func TestLongIdentifiers(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 70)
	want := strings.Repeat("a", 63)
	upper := strings.Repeat("B", 70)
	multi := strings.Repeat("é", 40) // 80 bytes
	wantMulti := strings.Repeat("é", 31)
	cases := []struct {
		sql, want string
		get       func(Statement) string
	}{
		{"SELECT * FROM " + long, want, func(s Statement) string { return s.TablesRead[0] }},
		{"SELECT * FROM s." + long, "s." + want, func(s Statement) string { return s.TablesRead[0] }},
		{`SELECT * FROM "` + upper + `"`, upper[:63], func(s Statement) string { return s.TablesRead[0] }},
		{"SELECT * FROM x" + multi, "x" + wantMulti, func(s Statement) string { return s.TablesRead[0] }},
		{"PREPARE " + long + " AS SELECT 1", want, func(s Statement) string { return s.Name }},
		{"EXECUTE " + long, want, func(s Statement) string { return s.Name }},
		{"DEALLOCATE " + long, want, func(s Statement) string { return s.Name }},
		{"DECLARE " + multi + " CURSOR FOR SELECT 1", wantMulti, func(s Statement) string { return s.Name }},
		{`FETCH 1 FROM "` + upper + `"`, upper[:63], func(s Statement) string { return s.Name }},
		{"CLOSE " + long, want, func(s Statement) string { return s.Name }},
		{"SELECT " + long + "(1)", want, func(s Statement) string { return s.Functions[0] }},
	}
	for _, c := range cases {
		st := classifyOne(t, c.sql)
		if got := c.get(st); got != c.want {
			t.Errorf("%.40s...: got %q (%d bytes), want %q", c.sql, got, len(got), c.want)
		}
	}
}
