package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// outcome is what a bypass case must end with.
type outcome int

const (
	// denied: at least one step is refused by the gateway (SQLSTATE 42501).
	denied outcome = iota
	// allowed: every step succeeds (its results masked where needed).
	allowed
	// either: the gateway may refuse or the backend may fail; only the
	// leak and write checks apply.
	either
)

func (o outcome) String() string {
	return [...]string{"denied", "allowed", "either"}[o]
}

// bypassCase is one attack: statements run in order on one connection.
// Steps prefixed "COPY-OUT " run as COPY ... TO STDOUT through the copy
// sub-protocol.
type bypassCase struct {
	name   string
	steps  []string
	expect outcome
	// simpleOnly runs the case only in the simple protocol (multi-statement
	// strings, which the extended protocol rejects by design).
	simpleOnly bool
}

// bypassCases are the attacks run as the agent claude-coder, whose grant
// is SELECT on public.customers and public.orders with the PII columns
// masked (policies/rules.cue).
var bypassCases = []bypassCase{
	// Plain reads and aliases: masked, not denied.
	{name: "plain column", steps: []string{"SELECT email, ssn, card_number FROM customers"}, expect: allowed},
	{name: "column alias", steps: []string{"SELECT email AS e, ssn AS s FROM customers"}, expect: allowed},
	{name: "table alias", steps: []string{"SELECT c.email FROM customers c"}, expect: allowed},
	{name: "qualified table", steps: []string{"SELECT public.customers.email FROM public.customers"}, expect: allowed},
	{name: "quoted identifiers", steps: []string{`SELECT "email" FROM "public"."customers"`}, expect: allowed},
	{name: "star", steps: []string{"SELECT * FROM customers"}, expect: allowed},
	{name: "TABLE command", steps: []string{"TABLE customers"}, expect: allowed},
	{name: "column alias list on table", steps: []string{"SELECT e FROM customers AS c(i, n, e)"}, expect: allowed},
	{name: "function over column alias list", steps: []string{"SELECT md5(e), upper(s) FROM customers AS c(i, n, e, s)"}, expect: allowed},
	{name: "star of aliased subquery", steps: []string{"SELECT x.* FROM (SELECT * FROM customers) x"}, expect: allowed},
	{name: "column of star subquery", steps: []string{"SELECT x.email FROM (SELECT * FROM customers) x"}, expect: allowed},
	{name: "composite field access", steps: []string{"SELECT (c).email, (c).ssn FROM customers c"}, expect: allowed},
	{name: "ambiguous join column", steps: []string{"SELECT email, status FROM customers, orders WHERE orders.customer_id = customers.id"}, expect: allowed},

	// Casts.
	{name: "cast to bytea", steps: []string{"SELECT email::bytea FROM customers"}, expect: allowed},
	{name: "cast to varchar", steps: []string{"SELECT ssn::varchar(20), card_number::char(20) FROM customers"}, expect: allowed},
	{name: "cast to name", steps: []string{"SELECT email::name FROM customers"}, expect: allowed},
	{name: "CAST syntax", steps: []string{"SELECT CAST(email AS text) FROM customers"}, expect: allowed},
	{name: "collate", steps: []string{`SELECT email COLLATE "C" FROM customers`}, expect: allowed},

	// Functions over masked columns: derived values are masked too.
	{name: "lower", steps: []string{"SELECT lower(email), upper(ssn) FROM customers"}, expect: allowed},
	{name: "md5", steps: []string{"SELECT md5(email), md5(card_number) FROM customers"}, expect: allowed},
	{name: "sha256", steps: []string{"SELECT encode(sha256(email::bytea), 'hex') FROM customers"}, expect: allowed},
	{name: "substr", steps: []string{"SELECT substr(email, 1, 40), substring(ssn from 1 for 11) FROM customers"}, expect: allowed},
	{name: "concat", steps: []string{"SELECT concat('x', email), 'y' || ssn FROM customers"}, expect: allowed},
	{name: "format", steps: []string{"SELECT format('%s/%s', email, card_number) FROM customers"}, expect: allowed},
	{name: "string_agg", steps: []string{"SELECT string_agg(email, ',') FROM customers"}, expect: allowed},
	{name: "array_agg", steps: []string{"SELECT array_agg(ssn) FROM customers"}, expect: allowed},
	{name: "array constructor", steps: []string{"SELECT ARRAY[email, ssn] FROM customers"}, expect: allowed},
	{name: "base64", steps: []string{"SELECT encode(convert_to(email, 'UTF8'), 'base64') FROM customers"}, expect: allowed},
	{name: "reverse and translate", steps: []string{"SELECT reverse(email), translate(ssn, '-', '') FROM customers"}, expect: allowed},
	{name: "case and coalesce", steps: []string{"SELECT CASE WHEN id > 0 THEN email END, coalesce(ssn, '') FROM customers"}, expect: allowed},
	{name: "window function", steps: []string{"SELECT first_value(email) OVER (ORDER BY id) FROM customers"}, expect: allowed},
	{name: "xmlelement", steps: []string{"SELECT xmlelement(name e, email) FROM customers"}, expect: allowed},

	// Whole rows and JSON constructors.
	{name: "whole row", steps: []string{"SELECT c FROM customers c"}, expect: allowed},
	{name: "whole row as text", steps: []string{"SELECT c::text FROM customers c"}, expect: allowed},
	{name: "row_to_json", steps: []string{"SELECT row_to_json(c) FROM customers c"}, expect: allowed},
	{name: "to_jsonb", steps: []string{"SELECT to_jsonb(c.*) FROM customers c"}, expect: allowed},
	{name: "json_build_object", steps: []string{"SELECT json_build_object('e', email, 's', ssn) FROM customers"}, expect: allowed},
	{name: "json_agg", steps: []string{"SELECT json_agg(c) FROM customers c"}, expect: allowed},
	{name: "json field of row", steps: []string{"SELECT to_json(c)->>'email' FROM customers c"}, expect: allowed},
	{name: "row constructor", steps: []string{"SELECT ROW(email, ssn)::text FROM customers"}, expect: allowed},

	// CTEs, subqueries, set operations.
	{name: "cte", steps: []string{"WITH x AS (SELECT email AS e FROM customers) SELECT e FROM x"}, expect: allowed},
	{name: "cte column aliases", steps: []string{"WITH x(a, b) AS (SELECT id, email FROM customers) SELECT b FROM x"}, expect: allowed},
	{name: "recursive cte", steps: []string{"WITH RECURSIVE r(n, e) AS (SELECT 1, (SELECT email FROM customers LIMIT 1) UNION ALL SELECT n + 1, e FROM r WHERE n < 2) SELECT e FROM r"}, expect: allowed},
	{name: "scalar subquery", steps: []string{"SELECT (SELECT email FROM customers WHERE id = o.customer_id) FROM orders o"}, expect: allowed},
	{name: "IN subquery", steps: []string{"SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE email LIKE '%@%')"}, expect: allowed},
	{name: "EXISTS subquery", steps: []string{"SELECT id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)"}, expect: allowed},
	{name: "lateral", steps: []string{"SELECT l.e FROM orders o, LATERAL (SELECT email AS e FROM customers c WHERE c.id = o.customer_id) l"}, expect: allowed},
	{name: "union with harmless table", steps: []string{"SELECT status FROM orders UNION ALL SELECT email FROM customers"}, expect: allowed},
	{name: "union with constants", steps: []string{"SELECT 'x' UNION SELECT ssn FROM customers"}, expect: allowed},
	{name: "values join", steps: []string{"SELECT v.x FROM (VALUES (1)) v(x) JOIN customers c ON true UNION ALL SELECT card_number::int8 FROM customers"}, expect: either},

	{name: "array subquery", steps: []string{"SELECT ARRAY(SELECT email FROM customers)"}, expect: allowed},
	{name: "values with subquery", steps: []string{"VALUES ((SELECT ssn FROM customers ORDER BY id LIMIT 1))"}, expect: allowed},
	{name: "unnest in from", steps: []string{"SELECT u FROM customers, LATERAL unnest(ARRAY[email, ssn]) u"}, expect: allowed},
	{name: "function over aggregated subquery", steps: []string{"SELECT * FROM unnest((SELECT array_agg(card_number) FROM customers))"}, expect: allowed},
	{name: "jsonb path over row", steps: []string{"SELECT jsonb_path_query(to_jsonb(c), '$.email') FROM customers c"}, expect: allowed},
	{name: "json_each over row", steps: []string{"SELECT j.value FROM customers c, json_each_text(row_to_json(c)) j"}, expect: allowed},
	{name: "lag window", steps: []string{"SELECT lag(email) OVER (ORDER BY id), lead(ssn) OVER (ORDER BY id) FROM customers"}, expect: allowed},
	{name: "grouping sets", steps: []string{"SELECT email, count(*) FROM customers GROUP BY GROUPING SETS ((email), ())"}, expect: allowed},
	{name: "distinct on", steps: []string{"SELECT DISTINCT ON (email) email FROM customers"}, expect: allowed},
	{name: "order by masked column", steps: []string{"SELECT id FROM customers ORDER BY email"}, expect: allowed},
	{name: "string_to_array split", steps: []string{"SELECT string_to_array(email, '@') FROM customers"}, expect: allowed},
	{name: "regexp_replace", steps: []string{"SELECT regexp_replace(card_number, '(.)', '\\1 ', 'g') FROM customers"}, expect: allowed},

	// COPY.
	{name: "COPY table to stdout", steps: []string{"COPY-OUT COPY customers TO STDOUT"}, expect: denied},
	{name: "COPY query to stdout", steps: []string{"COPY-OUT COPY (SELECT email FROM customers) TO STDOUT"}, expect: denied},
	{name: "COPY to server file", steps: []string{"COPY customers TO '/tmp/gatehouse-e2e-leak.txt'"}, expect: denied},
	{name: "COPY from program", steps: []string{"COPY orders FROM PROGRAM 'true'"}, expect: denied},

	// Cursors and prepared statements.
	{name: "cursor", steps: []string{"BEGIN", "DECLARE cur CURSOR FOR SELECT email, ssn FROM customers", "FETCH ALL FROM cur", "CLOSE cur", "COMMIT"}, expect: allowed, simpleOnly: true},
	{name: "cursor not declared here", steps: []string{"FETCH ALL FROM some_cursor"}, expect: denied},
	{name: "cursor_to_xml", steps: []string{"BEGIN", "DECLARE cx CURSOR FOR SELECT md5(email) FROM customers", "SELECT cursor_to_xml('cx', 10, false, false, '')"}, expect: denied, simpleOnly: true},
	{name: "prepare execute", steps: []string{"PREPARE p1 AS SELECT email, card_number FROM customers", "EXECUTE p1"}, expect: allowed, simpleOnly: true},
	{name: "execute unknown", steps: []string{"EXECUTE not_prepared_here"}, expect: denied},
	{name: "prepare delete", steps: []string{"PREPARE d AS DELETE FROM orders WHERE id = 1"}, expect: denied},

	// Writes in every disguise.
	{name: "multi-statement", steps: []string{"SELECT 1; DELETE FROM orders"}, expect: denied, simpleOnly: true},
	{name: "multi-statement bounded", steps: []string{"SELECT 1; DELETE FROM orders WHERE id = 1"}, expect: denied, simpleOnly: true},
	{name: "block comment", steps: []string{"/**/DELETE FROM orders WHERE id = 2"}, expect: denied},
	{name: "line comment", steps: []string{"-- harmless\n DELETE FROM orders WHERE id = 3"}, expect: denied},
	{name: "mixed case", steps: []string{"DeLeTe FrOm orders WHERE id = 4"}, expect: denied},
	{name: "quoted table", steps: []string{`UPDATE "orders" SET status = 'x' WHERE id = 5`}, expect: denied},
	{name: "data-modifying cte", steps: []string{"WITH d AS (DELETE FROM orders WHERE id = 6 RETURNING *) SELECT * FROM d"}, expect: denied},
	{name: "select into", steps: []string{"SELECT * INTO stolen FROM customers"}, expect: denied},
	{name: "create table as", steps: []string{"CREATE TABLE stolen AS SELECT * FROM customers"}, expect: denied},
	{name: "insert", steps: []string{"INSERT INTO orders (customer_id, amount) VALUES (1, 1)"}, expect: denied},
	{name: "truncate", steps: []string{"TRUNCATE orders"}, expect: denied},
	{name: "explain analyze delete", steps: []string{"EXPLAIN ANALYZE DELETE FROM orders"}, expect: denied},
	{name: "explain analyze bounded delete", steps: []string{"EXPLAIN (ANALYZE) DELETE FROM orders WHERE id = 7"}, expect: denied},
	{name: "select for update", steps: []string{"SELECT id FROM orders WHERE id = 8 FOR UPDATE"}, expect: either},
	{name: "transaction then write", steps: []string{"BEGIN", "UPDATE orders SET status = 'x' WHERE id = 9", "COMMIT"}, expect: denied},

	// Procedural code and session state.
	{name: "DO block", steps: []string{"DO $$ BEGIN DELETE FROM orders; END $$"}, expect: denied},
	{name: "DO block in plain SQL language", steps: []string{"DO LANGUAGE plpgsql 'BEGIN PERFORM 1; END'"}, expect: denied},
	{name: "CALL", steps: []string{"CALL some_procedure()"}, expect: denied},
	{name: "create function", steps: []string{"CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS 'SELECT email FROM customers LIMIT 1'"}, expect: denied},
	{name: "SET ROLE", steps: []string{"SET ROLE postgres"}, expect: denied},
	{name: "SET SESSION AUTHORIZATION", steps: []string{"SET SESSION AUTHORIZATION postgres"}, expect: denied},
	{name: "SET search_path", steps: []string{"SET search_path TO pg_temp, public"}, expect: denied},
	{name: "SET standard_conforming_strings", steps: []string{"SET standard_conforming_strings = off"}, expect: denied},
	{name: "SET client_encoding", steps: []string{"SET client_encoding = 'SJIS'"}, expect: denied},
	{name: "set_config", steps: []string{"SELECT set_config('search_path', 'pg_temp', false)"}, expect: denied},
	{name: "current_setting", steps: []string{"SELECT current_setting('search_path'), current_user"}, expect: allowed},
	{name: "RESET ALL", steps: []string{"RESET ALL"}, expect: denied},
	{name: "LISTEN", steps: []string{"LISTEN leak"}, expect: denied},
	{name: "COMMIT PREPARED of another session", steps: []string{"COMMIT PREPARED 'someone_elses'"}, expect: denied},
	{name: "ROLLBACK PREPARED of another session", steps: []string{"ROLLBACK PREPARED 'someone_elses'"}, expect: denied},

	// Dangerous functions.
	{name: "pg_read_file", steps: []string{"SELECT pg_read_file('/etc/passwd')"}, expect: denied},
	{name: "pg_read_file qualified", steps: []string{"SELECT pg_catalog.pg_read_file('/etc/hostname')"}, expect: denied},
	{name: "lo_import", steps: []string{"SELECT lo_import('/etc/passwd')"}, expect: denied},
	{name: "lo_from_bytea", steps: []string{"SELECT lo_from_bytea(0, email::bytea) FROM customers"}, expect: denied},
	{name: "dblink", steps: []string{"SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(x int)"}, expect: denied},
	{name: "pg_terminate_backend", steps: []string{"SELECT pg_terminate_backend(pg_backend_pid())"}, expect: denied},
	{name: "query_to_xml", steps: []string{"SELECT query_to_xml('SELECT md5(email) FROM customers', true, true, '')"}, expect: denied},
	{name: "table_to_xml", steps: []string{"SELECT table_to_xml('customers', true, true, '')"}, expect: denied},
	{name: "pg_sleep", steps: []string{"SELECT pg_sleep(0)"}, expect: denied},

	// Views and catalogs.
	{name: "view over customers", steps: []string{"SELECT * FROM customer_contacts"}, expect: denied},
	{name: "view over customers qualified", steps: []string{"SELECT contact FROM public.customer_contacts"}, expect: denied},
	{name: "pg_stats most common values", steps: []string{"SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'"}, expect: denied},
	{name: "pg_stats qualified", steps: []string{"SELECT histogram_bounds::text FROM pg_catalog.pg_stats"}, expect: denied},
	{name: "pg_statistic", steps: []string{"SELECT stavalues1::text FROM pg_catalog.pg_statistic"}, expect: denied},
	{name: "information_schema", steps: []string{"SELECT column_name FROM information_schema.columns"}, expect: denied},
	{name: "pg_stat_activity", steps: []string{"SELECT query FROM pg_stat_activity"}, expect: denied},
	{name: "pg_stat_get_activity", steps: []string{"SELECT query FROM pg_stat_get_activity(NULL) AS a"}, expect: denied},
	{name: "pg_shadow", steps: []string{"SELECT passwd FROM pg_shadow"}, expect: denied},

	// Error texts as a channel.
	{name: "cast error carries value", steps: []string{"SELECT email::int FROM customers"}, expect: either},
	{name: "cast error in where", steps: []string{"SELECT id FROM customers WHERE ssn::int > 0"}, expect: either},
	{name: "cast error of derived value", steps: []string{"SELECT md5(email)::int FROM customers"}, expect: either},
	{name: "division by zero oracle", steps: []string{"SELECT 1/0 FROM customers WHERE email LIKE 'a%'"}, expect: either},
	{name: "json error carries value", steps: []string{"SELECT email::json FROM customers"}, expect: either},

	// Unparseable text.
	{name: "unparseable", steps: []string{"SELEC email FROM customers"}, expect: denied},
	{name: "unterminated", steps: []string{"SELECT 'x FROM customers"}, expect: denied},
	{name: "backslash quote", steps: []string{`SELECT 'a\'' ; DELETE FROM orders WHERE id > 0; --'`}, expect: allowed, simpleOnly: true},
}

// TestBypass runs every case as claude-coder, in the simple and the
// extended protocol, and checks that no sensitive value reaches the client
// and that nothing in the database changed.
func TestBypass(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := g.admin(t, ctx)
	// A view created by someone else over the masked columns.
	if _, err := admin.Exec(ctx, "CREATE VIEW customer_contacts AS SELECT id, email AS contact, ssn AS tax_id FROM customers"); err != nil {
		t.Fatal(err)
	}
	// Statistics that hold the most common e-mail values.
	if _, err := admin.Exec(ctx, "ANALYZE customers"); err != nil {
		t.Fatal(err)
	}
	// Queries of other sessions that carry secrets in their text.
	if _, err := admin.Exec(ctx, "SELECT count(*) FROM customers WHERE email = 'ada@example.com'"); err != nil {
		t.Fatal(err)
	}
	before := g.checksum(t, ctx, admin)
	forms := forbidden()
	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{{"simple", pgx.QueryExecModeSimpleProtocol}, {"extended", pgx.QueryExecModeCacheStatement}}
	names := map[string]bool{}
	total := 0
	for _, c := range bypassCases {
		if names[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		for _, m := range modes {
			if c.simpleOnly && m.mode != pgx.QueryExecModeSimpleProtocol {
				continue
			}
			total++
			t.Run(c.name+"/"+m.name, func(t *testing.T) {
				runBypassCase(t, ctx, g, c, m.mode, forms)
			})
		}
	}
	if total < 120 {
		t.Errorf("ran %d case runs, want at least 120", total)
	}
	if after := g.checksum(t, ctx, admin); after != before {
		t.Errorf("database changed:\nbefore %s\nafter  %s", before, after)
	}
	// Every case was recorded, and the recorded outcomes (errors, reasons,
	// facts) hold no secret either. Command texts are what the agent sent.
	g.stop()
	events := g.recordedEvents(t, ctx)
	commands := 0
	for _, e := range events {
		if e.Kind == "command" {
			commands++
		}
		if l := leaks(e.Error+" "+e.Reason+" "+string(e.Facts), forms); len(l) > 0 {
			t.Errorf("LEAK %v in the recording: %+v", l, e)
		}
	}
	if commands < total {
		t.Errorf("recorded %d commands, want at least %d", commands, total)
	}
}

func runBypassCase(t *testing.T, ctx context.Context, g *gateway, c bypassCase, mode pgx.QueryExecMode, forms map[string]string) {
	var notices []string
	conn := g.connect(t, ctx, "claude-coder", &notices)
	var seen strings.Builder // everything the server sent back
	var denials, failures int
	for _, step := range c.steps {
		err := runStep(ctx, conn, step, mode, &seen)
		if err == nil {
			continue
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Fatalf("step %q: non-server error %v", step, err)
		}
		fmt.Fprintf(&seen, "\nERROR %s %s %s %s %s %s %s %s\n", pe.Code, pe.Message, pe.Detail, pe.Hint, pe.Where, pe.SchemaName+pe.TableName+pe.ColumnName, pe.ConstraintName, pe.DataTypeName)
		// The gateway's refusals carry the SQLSTATE a client expects for
		// the cause (42501 policy, 42601 unparseable, 26000/34000 unknown
		// statement or cursor, 54000 too complex) and always say so.
		if strings.HasPrefix(pe.Message, "gatehouse denied") {
			denials++
		} else {
			failures++
			t.Logf("step %q failed: %s %s", step, pe.Code, pe.Message)
		}
	}
	seen.WriteString(strings.Join(notices, "\n"))
	if found := leaks(seen.String(), forms); len(found) > 0 {
		t.Errorf("LEAK: %v reached the client:\n%s", found, clip(seen.String(), 2000))
	}
	switch c.expect {
	case denied:
		if denials == 0 {
			t.Errorf("want a gatehouse denial, got none (%d backend errors):\n%s", failures, clip(seen.String(), 1000))
		}
	case allowed:
		if denials+failures > 0 {
			t.Errorf("want every step to succeed:\n%s", clip(seen.String(), 1000))
		}
	}
	// The connection stays usable after any error.
	if _, err := conn.Exec(ctx, "ROLLBACK", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("ROLLBACK after the case: %v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1", mode).Scan(&one); err != nil || one != 1 {
		t.Fatalf("connection unusable after the case: %v", err)
	}
}

// runStep runs one statement and appends every returned value to seen.
func runStep(ctx context.Context, conn *pgx.Conn, step string, mode pgx.QueryExecMode, seen *strings.Builder) error {
	if sql, ok := strings.CutPrefix(step, "COPY-OUT "); ok {
		var buf bytes.Buffer
		_, err := conn.PgConn().CopyTo(ctx, &buf, sql)
		seen.Write(buf.Bytes())
		return err
	}
	rows, err := conn.Query(ctx, step, mode)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		for _, v := range rows.RawValues() {
			seen.Write(v)
			seen.WriteByte('\t')
			// Binary values: also their hex form.
			fmt.Fprintf(seen, "%x\t", v)
		}
		seen.WriteByte('\n')
	}
	return rows.Err()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
