package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The wire bypass table: attacks written as raw protocol message batches
// (simple and extended protocol mixed at will, pipelined, FunctionCall),
// run as the agent claude-coder against a real gateway with the example
// policy. claude-coder may SELECT public.customers and public.orders, the
// columns customers.email, ssn and card_number are masked, and it may
// write nothing. Every case checks that no form of a secret reaches the
// client (rows, errors, notices, notifications, column names), that the
// database and the server did not change (see stateSnapshot), that a
// listener elsewhere received no secret, and that the connection still
// works afterwards.

// Secrets added for these cases: a customer whose values the content
// classifiers do not all recognise (an SSN with a 9xx area), so that a
// result the gateway failed to mask by column shows in plain.
var (
	sixthCustomer = []string{"zoe.quinn@example.io", "987-65-4321", "4012888888881881"}
	// shadowNote is the secret column of the table that shadows
	// public.customers for the backend role (the "$user" schema).
	shadowNote = "shadow-note-5e1f0c"
)

// Statements the cases reuse. secretQuery returns every masked column
// through an expression, so its RowDescription names no table column: only
// the statement the gateway believes runs tells it what to mask (a plain
// column would still be masked through its table OID). harmlessQuery
// returns the same shape without a secret. A gateway that confuses the two
// lets the sixth customer's SSN through, which no content classifier
// recognises.
const (
	secretQuery   = "SELECT id, ssn || '' AS a, email || '' AS b, card_number || '' AS c FROM customers"
	harmlessQuery = "SELECT 1 AS id, 'x' AS a, 'y' AS b, 'z' AS c"
	// failsAtParse is allowed by the policy and fails in the backend's
	// Parse (unknown column).
	failsAtParse = "SELECT no_such_column FROM orders"
	deniedWrite  = "DELETE FROM orders WHERE id = 1"
)

// Names that collide on the backend: equal in their first 63 bytes.
var (
	long1 = strings.Repeat("n", 63) + "1"
	long2 = strings.Repeat("n", 63) + "2"
)

// wireCase is one attack on one connection.
type wireCase struct {
	name  string
	steps []wireStep
	// expect is the outcome over the whole case (see outcome); the steps
	// state theirs too.
	expect outcome
	// both runs the case twice: as written, and with every single-Query
	// step sent through the extended protocol instead.
	both bool
	// shadow runs the case on the gateway whose backend role has a schema
	// of its own holding a customers table.
	shadow bool
}

// wireEnvSetup creates, as the superuser, what the cases attack: the sixth
// customer and an order of it, functions of every volatility and owner
// that return an SSN (SECURITY DEFINER or not, SQL and PL/pgSQL), an
// operator, a shadowing overload of a built-in name, a cast, and a
// harmless user function. The cast is between types of its own, so that
// casts to built-in types stay judged as built-ins. %[1]s is the backend
// role.
const wireEnvSetup = `
INSERT INTO customers (id, name, email, ssn, card_number) VALUES (6, 'Zoe Quinn', 'zoe.quinn@example.io', '987-65-4321', '4012888888881881');
INSERT INTO orders (customer_id, amount, status) VALUES (6, 9.99, 'new');
CREATE FUNCTION customer_ssn(int) RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT ssn FROM customers WHERE id = $1';
CREATE FUNCTION customer_ssn_stable(int) RETURNS text LANGUAGE sql STABLE AS 'SELECT ssn FROM public.customers WHERE id = $1';
CREATE FUNCTION customer_ssn_immutable(int) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ssn FROM public.customers WHERE id = $1';
ALTER FUNCTION customer_ssn_immutable(int) OWNER TO %[1]s;
CREATE FUNCTION customer_ssn_pl(int) RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$BEGIN RETURN (SELECT ssn FROM public.customers WHERE id = $1); END$$;
CREATE FUNCTION add_one(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
CREATE FUNCTION ssn_op(int, int) RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT ssn FROM public.customers WHERE id = $1';
CREATE OPERATOR public.### (LEFTARG = int, RIGHTARG = int, FUNCTION = ssn_op);
CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT ssn FROM public.customers WHERE id = $1';
CREATE FUNCTION plus_ssn(int, text) RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT ssn FROM public.customers WHERE id = $1';
CREATE OPERATOR public.+ (LEFTARG = int, RIGHTARG = text, FUNCTION = plus_ssn);
CREATE TYPE ssnref AS (id int);
CREATE TYPE ssnval AS (v text);
CREATE FUNCTION ssnref_val(ssnref) RETURNS ssnval LANGUAGE sql SECURITY DEFINER AS 'SELECT ROW(ssn)::ssnval FROM public.customers WHERE id = ($1).id';
CREATE CAST (ssnref AS ssnval) WITH FUNCTION ssnref_val(ssnref);
`

// shadowSetup gives the backend role (%[1]s) a schema of its own name: the
// default search_path ("$user", public) then resolves an unqualified
// customers there, for the backend, while the text says customers.
const shadowSetup = `
CREATE SCHEMA %[1]s;
CREATE TABLE %[1]s.customers (id int, name text, email text, ssn text, card_number text, note text);
INSERT INTO %[1]s.customers VALUES (1, 'Shadow', 'x@example.com', '000-00-0000', '0', '%[2]s');
`

// replicationOrigin is the origin name the cases try to create; cleanup
// drops it if the gateway let it through (origins are cluster-wide).
const replicationOrigin = "gatehouse_e2e_origin"

// probeSetting is the setting ALTER SYSTEM cases try to write, always to
// its default value ('none'), so that the cluster behaves the same even if
// it were reloaded; cleanup removes it from postgresql.auto.conf if it was
// not there before.
const probeSetting = "track_functions"

// wireEnv is one gateway prepared for the cases.
type wireEnv struct {
	g        *gateway
	admin    *pgx.Conn
	db       string
	forms    map[string]string
	notified *notifications
	listener *pgx.Conn
	oids     map[string]uint32
	// runs counts the case runs on this gateway.
	runs int
}

// notifications collects what a listener received.
type notifications struct {
	mu  sync.Mutex
	got []string
}

func (n *notifications) add(s string) {
	n.mu.Lock()
	n.got = append(n.got, s)
	n.mu.Unlock()
}

// drain returns what arrived since the last drain.
func (n *notifications) drain() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.got
	n.got = nil
	return out
}

// listenChannels are the channels the cases notify on.
var listenChannels = []string{"chan", "leak", "gatehouse"}

func newWireEnv(t *testing.T, ctx context.Context, shadow bool) *wireEnv {
	t.Helper()
	g := startGateway(t, gatewayOptions{})
	env := &wireEnv{g: g, admin: g.admin(t, ctx), oids: map[string]uint32{}}
	cfg, err := pgx.ParseConfig(g.adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	env.db = cfg.Database
	secrets := append(append([]string(nil), sampleSecrets...), sixthCustomer...)
	if _, err := env.admin.Exec(ctx, fmt.Sprintf(wireEnvSetup, pgx.Identifier{g.backendUser}.Sanitize()), pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if shadow {
		if _, err := env.admin.Exec(ctx, fmt.Sprintf(shadowSetup, pgx.Identifier{g.backendUser}.Sanitize(), shadowNote), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("shadow setup: %v", err)
		}
		secrets = append(secrets, shadowNote)
	}
	env.forms = forbiddenForms(secrets)
	for _, f := range []string{"customer_ssn(int)", "lo_create(oid)", "pg_read_file(text)", "lower(text)"} {
		var oid uint32
		if err := env.admin.QueryRow(ctx, "SELECT $1::regprocedure::oid", f).Scan(&oid); err != nil {
			t.Fatal(err)
		}
		env.oids[f] = oid
	}
	// A listener elsewhere: nothing the agent does may reach it with a
	// secret.
	env.notified = &notifications{}
	lcfg, err := pgx.ParseConfig(g.adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	lcfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		env.notified.add(n.Channel + ": " + n.Payload)
	}
	env.listener, err = pgx.ConnectConfig(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.listener.Close(context.Background()) })
	for _, ch := range listenChannels {
		if _, err := env.listener.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// The role owns a function: drop it before the role is dropped.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, g.adminDSN)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{g.backendUser}.Sanitize())
	})
	var probeBefore int
	if err := env.admin.QueryRow(ctx, "SELECT count(*) FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf'", probeSetting).Scan(&probeBefore); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Cluster-wide leftovers of a case the gateway let through.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, g.adminDSN)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1", replicationOrigin)
		var n int
		if conn.QueryRow(ctx, "SELECT count(*) FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf'", probeSetting).Scan(&n) == nil && n > 0 && probeBefore == 0 {
			_, _ = conn.Exec(ctx, "ALTER SYSTEM RESET "+probeSetting)
		}
	})
	return env
}

// stateSnapshot describes, part by part, everything an agent under a
// read-only grant must not be able to change: table contents, relations,
// schemas, functions, operators, casts and types, large objects,
// collations, replication origins, statistics reset times, sequence
// positions, advisory locks held in the database, prepared transactions,
// and the settings a new connection of the backend role sees (including
// per-role and per-database settings and postgresql.auto.conf).
func (env *wireEnv) stateSnapshot(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	out := map[string]string{}
	one := func(label, sql string) {
		var v string
		if err := env.admin.QueryRow(ctx, sql).Scan(&v); err != nil {
			t.Fatalf("snapshot %s: %v", label, err)
		}
		out[label] = v
	}
	one("relations", `SELECT coalesce(string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' ORDER BY 1), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'`)
	one("schemas", `SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace`)
	one("functions", `SELECT coalesce(string_agg(p.oid::regprocedure::text || ':' || p.provolatile::text || ':' || p.prosecdef::text || ':' || md5(p.prosrc), ',' ORDER BY 1), '')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`)
	one("operators", `SELECT count(*)::text FROM pg_operator`)
	one("casts", `SELECT count(*)::text FROM pg_cast`)
	one("types", `SELECT count(*)::text FROM pg_type`)
	one("extensions", `SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension`)
	one("large objects", `SELECT count(*)::text || ':' || coalesce(string_agg(oid::text, ',' ORDER BY oid), '') FROM pg_largeobject_metadata`)
	one("collations", `SELECT count(*)::text FROM pg_collation`)
	one("replication origins", `SELECT coalesce(string_agg(roname, ',' ORDER BY roname), '') FROM pg_replication_origin`)
	one("stats reset", `SELECT concat_ws(',',
		(SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database()),
		(SELECT stats_reset::text FROM pg_stat_bgwriter),
		(SELECT stats_reset::text FROM pg_stat_archiver),
		(SELECT stats_reset::text FROM pg_stat_wal),
		(SELECT max(stats_reset)::text FROM pg_stat_slru))`)
	one("sequences", `SELECT coalesce(string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value::text, 'null'), ',' ORDER BY 1), '') FROM pg_sequences`)
	one("advisory locks", `SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	one("prepared transactions", `SELECT count(*)::text FROM pg_prepared_xacts`)
	one("role and database settings", `SELECT coalesce(string_agg(setdatabase::text || '/' || setrole::text || '=' || array_to_string(setconfig, ';'), ',' ORDER BY 1), '') FROM pg_db_role_setting`)
	one("auto.conf", `SELECT coalesce(string_agg(name || '=' || coalesce(setting, ''), ',' ORDER BY seqno), '') FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'`)

	// Table contents, every table outside the catalogs (temporary tables
	// of other sessions cannot be read and show in relations).
	rows, err := env.admin.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%' ORDER BY 1`)
	if err != nil {
		t.Fatalf("snapshot tables: %v", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("snapshot tables: %v", err)
	}
	for _, tb := range tables {
		one("table "+tb, fmt.Sprintf(`SELECT count(*)::text || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t`, tb))
	}

	// Settings as a new connection of the backend role sees them.
	cfg, err := pgx.ParseConfig(env.g.adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = env.g.backendUser, env.g.backendPassword
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("snapshot settings: connect as the backend role: %v", err)
	}
	defer conn.Close(context.Background())
	var settings string
	if err := conn.QueryRow(ctx, `SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings`).Scan(&settings); err != nil {
		t.Fatalf("snapshot settings: %v", err)
	}
	out["new connection settings"] = settings
	return out
}

// diffSnapshots describes the parts that differ.
func diffSnapshots(before, after map[string]string) []string {
	var out []string
	for k, b := range before {
		if a, ok := after[k]; !ok {
			out = append(out, fmt.Sprintf("%s: gone (was %s)", k, clip(b, 300)))
		} else if a != b {
			out = append(out, fmt.Sprintf("%s:\n    before %s\n    after  %s", k, clip(b, 600), clip(a, 600)))
		}
	}
	for k, a := range after {
		if _, ok := before[k]; !ok {
			out = append(out, fmt.Sprintf("%s: new %s", k, clip(a, 300)))
		}
	}
	slices.Sort(out)
	return out
}

// wireCases are the attacks. env supplies the names that depend on the
// test database (function OIDs, the database name).
func wireCases(env *wireEnv) []wireCase {
	ssnOID, loCreateOID, readFileOID, lowerOID := env.oids["customer_ssn(int)"], env.oids["lo_create(oid)"], env.oids["pg_read_file(text)"], env.oids["lower(text)"]
	return []wireCase{
		// ---- The attack report, case by case. ----

		{name: "report: PREPARE then Bind the SQL-level statement", expect: allowed, steps: []wireStep{
			Q(wantOK, "PREPARE p AS SELECT id, email, ssn, card_number FROM customers"),
			X(wantOK, bind("", "p"), describeP(""), execute(""), syncMsg()),
			// A named portal the client does not describe.
			X(wantOK, bind("q", "p"), execute("q"), syncMsg()),
		}},
		{name: "report: DECLARE WITH HOLD then Describe and Execute the portal", expect: allowed, steps: []wireStep{
			Q(wantOK, "DECLARE c1 CURSOR WITH HOLD FOR SELECT id, email, ssn, card_number FROM customers"),
			X(wantOK, describeP("c1"), execute("c1"), syncMsg()),
		}},
		{name: "report: DECLARE WITH HOLD then Execute the portal undescribed", expect: allowed, steps: []wireStep{
			Q(wantOK, "DECLARE c1 SCROLL CURSOR WITH HOLD FOR "+secretQuery),
			X(wantOK, executeN("c1", 2), syncMsg()),
			X(wantOK, execute("c1"), syncMsg()),
		}},
		{name: "report: Parse again as something denied keeps the first", expect: denied, steps: []wireStep{
			X(wantOK, parse("t", secretQuery), syncMsg()),
			X(wantDenied, parse("t", deniedWrite), syncMsg()),
			X(wantOK, bind("", "t"), describeP(""), execute(""), syncMsg()),
		}},
		{name: "report: Parse again denied in the same batch", expect: denied, steps: []wireStep{
			X(wantDenied, parse("t", secretQuery), parse("t", deniedWrite), syncMsg()),
			X(wantOK, bind("", "t"), execute(""), syncMsg()),
		}},
		{name: "report: Parse again rejected by the backend keeps the first", expect: either, steps: []wireStep{
			X(wantOK, parse("t", secretQuery), syncMsg()),
			X(wantError, parse("t", harmlessQuery), syncMsg()),
			X(wantOK, bind("", "t"), describeP(""), execute(""), syncMsg()),
		}},
		{name: "report: failed second PREPARE keeps the first", expect: either, steps: []wireStep{
			Q(wantOK, "PREPARE x AS "+secretQuery),
			Q(wantError, "PREPARE x AS "+harmlessQuery),
			Q(wantOK, "EXECUTE x"),
			X(wantOK, bind("", "x"), execute(""), syncMsg()),
		}},
		{name: "report: quoted names keep case", expect: allowed, steps: []wireStep{
			Q(wantOK, "PREPARE y AS "+secretQuery),
			Q(wantOK, `PREPARE "Y" AS `+harmlessQuery),
			Q(wantOK, "EXECUTE y"),
			Q(wantOK, `EXECUTE "Y"`),
			X(wantOK, bind("", "y"), execute(""), syncMsg()),
		}},
		{name: "report: quoted names keep case, reversed", expect: allowed, steps: []wireStep{
			Q(wantOK, `PREPARE "Y" AS `+secretQuery),
			Q(wantOK, "PREPARE y AS "+harmlessQuery),
			Q(wantOK, `EXECUTE "Y"`),
			X(wantOK, bind("", "Y"), execute(""), syncMsg()),
		}},
		{name: "report: EXECUTE of the folded name of a quoted statement", expect: either, steps: []wireStep{
			Q(wantOK, `PREPARE "Y" AS `+secretQuery),
			Q(wantError, "EXECUTE y"),
		}},
		{name: "report: message failing at statement 1 changes no statement", expect: either, steps: []wireStep{
			Q(wantOK, "PREPARE z AS "+secretQuery),
			Q(wantError, "SELECT 1/0; DEALLOCATE z; PREPARE z AS "+harmlessQuery),
			Q(wantOK, "EXECUTE z"),
		}},
		{name: "report: failing re-DECLARE keeps the cursor", expect: either, steps: []wireStep{
			Q(wantOK, "DECLARE k CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantError, "DECLARE k CURSOR WITH HOLD FOR "+harmlessQuery),
			Q(wantOK, "FETCH ALL k"),
		}},
		{name: "report: message failing at statement 1 changes no cursor", expect: either, steps: []wireStep{
			Q(wantOK, "DECLARE k SCROLL CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantError, "SELECT 1/0; CLOSE k; DECLARE k CURSOR WITH HOLD FOR "+harmlessQuery),
			Q(wantOK, "FETCH ALL k"),
			Q(wantOK, "MOVE ABSOLUTE 0 IN k"),
			X(wantOK, execute("k"), syncMsg()),
		}},
		{name: "report: query_to_xml in an EXECUTE argument", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "PREPARE e1(text) AS SELECT $1"),
			Q(wantDenied, "EXECUTE e1(query_to_xml('SELECT reverse(ssn) AS r, email, card_number FROM customers', true, false, ''))"),
		}},
		{name: "report: SECURITY DEFINER function returning ssn", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT customer_ssn(id) FROM orders"),
		}},
		{name: "report: SECURITY DEFINER function value in a cast error", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT customer_ssn(1)::int"),
			Q(wantDenied, "SELECT customer_ssn(6)::int"),
		}},
		{name: "report: pg_notify of every secret", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT pg_notify('chan', ssn || ' ' || email || ' ' || card_number) FROM customers"),
		}},
		{name: "report: lo_create", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT lo_create(0)")}},
		{name: "report: pg_import_system_collations", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT pg_import_system_collations('public')")}},
		{name: "report: pg_replication_origin_create", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT pg_replication_origin_create('"+replicationOrigin+"')")}},
		{name: "report: pg_stat_reset", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT pg_stat_reset()")}},
		{name: "report: pg_read_file in an EXECUTE argument", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "PREPARE e2(text) AS SELECT $1"),
			Q(wantDenied, "EXECUTE e2(pg_read_file('/etc/hostname'))"),
		}},
		{name: "report: lo_import in an EXECUTE argument", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "PREPARE e2(text) AS SELECT $1"),
			Q(wantDenied, "EXECUTE e2(lo_import('/etc/hostname')::text)"),
		}},
		{name: "report: set_config in an EXECUTE argument", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "PREPARE e2(text) AS SELECT $1"),
			Q(wantDenied, "EXECUTE e2(set_config('search_path', 'pg_temp, public', false))"),
		}},
		{name: "report: SELECT FOR UPDATE", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT id FROM orders WHERE id = 8 FOR UPDATE"),
		}},

		// ---- Session state desynchronisation, by message and failure point. ----

		{name: "Close S then Bind", expect: either, steps: []wireStep{
			X(wantOK, parse("s", secretQuery), syncMsg()),
			X(wantOK, closeS("s"), syncMsg()),
			X(wantError, bind("", "s"), execute(""), syncMsg()),
		}},
		{name: "Close S and re-Parse harmless", expect: allowed, steps: []wireStep{
			X(wantOK, parse("s", secretQuery), syncMsg()),
			X(wantOK, closeS("s"), parse("s", harmlessQuery), syncMsg()),
			X(wantOK, bind("", "s"), execute(""), syncMsg()),
		}},
		{name: "Close S skipped after a failed Parse", expect: either, steps: []wireStep{
			X(wantOK, parse("s", secretQuery), syncMsg()),
			X(wantError, parse("u", failsAtParse), closeS("s"), parse("s", harmlessQuery), syncMsg()),
			X(wantOK, bind("", "s"), describeP(""), execute(""), syncMsg()),
		}},
		{name: "Close S skipped after a denied Parse", expect: denied, steps: []wireStep{
			X(wantOK, parse("s", secretQuery), syncMsg()),
			X(wantDenied, parse("u", deniedWrite), closeS("s"), parse("s", harmlessQuery), syncMsg()),
			X(wantOK, bind("", "s"), describeP(""), execute(""), syncMsg()),
		}},
		{name: "Close P then Execute", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("s", secretQuery), bind("q", "s"), syncMsg()),
			X(wantOK, closeP("q"), syncMsg()),
			X(wantError, execute("q"), syncMsg()),
		}},
		{name: "Close P skipped then Execute", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("s", secretQuery), parse("h", harmlessQuery), bind("q", "s"), syncMsg()),
			Q(wantOK, "SAVEPOINT a"),
			X(wantError, parse("u", failsAtParse), closeP("q"), bind("q", "h"), syncMsg()),
			Q(wantOK, "ROLLBACK TO a"),
			X(wantOK, execute("q"), syncMsg()),
		}},
		{name: "DEALLOCATE ALL then Bind a protocol statement", expect: either, steps: []wireStep{
			X(wantOK, parse("s", secretQuery), syncMsg()),
			Q(wantOK, "DEALLOCATE ALL"),
			X(wantError, bind("", "s"), execute(""), syncMsg()),
		}},
		{name: "DEALLOCATE ALL in a failing message still drops", expect: either, steps: []wireStep{
			Q(wantOK, "PREPARE z AS "+secretQuery),
			Q(wantError, "DEALLOCATE ALL; SELECT 1/0"),
			Q(wantOK, "PREPARE z AS "+harmlessQuery),
			Q(wantOK, "EXECUTE z"),
		}},
		{name: "DEALLOCATE through the extended protocol then Bind", expect: either, steps: []wireStep{
			X(wantOK, parse("s", secretQuery), syncMsg()),
			E(wantOK, "DEALLOCATE s"),
			X(wantError, bind("", "s"), execute(""), syncMsg()),
		}},
		// DISCARD is a utility statement the example policy does not grant
		// agents: when it is refused, the names it would drop still exist.
		{name: "DISCARD ALL then use a holdable cursor", expect: either, steps: []wireStep{
			Q(wantOK, "DECLARE h SCROLL CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantAny, "DISCARD ALL"),
			ifDenied(2, wantOK, Q(wantError, "FETCH ALL h")),
			ifDenied(2, wantOK, Q(wantError, "MOVE ABSOLUTE 0 IN h")),
			ifDenied(2, wantOK, X(wantError, execute("h"), syncMsg())),
		}},
		{name: "DISCARD ALL then re-create the names harmless", expect: either, steps: []wireStep{
			Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantOK, "PREPARE z AS "+secretQuery),
			Q(wantAny, "DISCARD ALL"),
			ifDenied(3, wantError, Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR "+harmlessQuery)),
			ifDenied(3, wantError, Q(wantOK, "PREPARE z AS "+harmlessQuery)),
			Q(wantOK, "FETCH ALL h"),
			Q(wantOK, "EXECUTE z"),
		}},
		{name: "CLOSE ALL then Execute a bound portal", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("s", secretQuery), bind("q", "s"), syncMsg()),
			Q(wantOK, "CLOSE ALL"),
			X(wantError, execute("q"), syncMsg()),
		}},
		{name: "CLOSE ALL run by a portal keeps that portal", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE c CURSOR FOR "+secretQuery),
			X(wantOK, parse("", "CLOSE ALL"), bind("cl", ""), execute("cl"), syncMsg()),
			Q(wantOK, "DECLARE c CURSOR FOR "+secretQuery),
			Q(wantOK, "FETCH ALL c"),
		}},
		{name: "unnamed statement dropped by a simple Query", expect: either, steps: []wireStep{
			X(wantOK, parse("", secretQuery), syncMsg()),
			Q(wantOK, "SELECT 1"),
			X(wantError, bind("", ""), execute(""), syncMsg()),
		}},
		{name: "unnamed statement dropped by a failed Parse", expect: either, steps: []wireStep{
			X(wantOK, parse("", secretQuery), syncMsg()),
			X(wantError, parse("", failsAtParse), syncMsg()),
			X(wantError, bind("", ""), execute(""), syncMsg()),
		}},
		{name: "unnamed statement dropped by a Query in the same batch", expect: either, steps: []wireStep{
			X(wantError, parse("", secretQuery), query("SELECT 1"), bind("", ""), describeP(""), execute(""), syncMsg()),
		}},
		{name: "portal after COMMIT", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("s", secretQuery), bind("q", "s"), syncMsg()),
			Q(wantOK, "COMMIT"),
			X(wantError, execute("q"), syncMsg()),
		}},
		{name: "portal after ROLLBACK", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("s", secretQuery), bind("q", "s"), syncMsg()),
			Q(wantOK, "ROLLBACK"),
			X(wantError, execute("q"), syncMsg()),
		}},
		{name: "portal after ROLLBACK TO SAVEPOINT", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "SAVEPOINT a"),
			X(wantOK, parse("s", secretQuery), bind("q", "s"), syncMsg()),
			Q(wantOK, "ROLLBACK TO a"),
			X(wantError, execute("q"), syncMsg()),
		}},
		{name: "cursor closed and re-declared in a rolled back savepoint", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE c CURSOR FOR "+harmlessQuery),
			Q(wantOK, "SAVEPOINT a"),
			Q(wantOK, "CLOSE c"),
			Q(wantOK, "DECLARE c CURSOR FOR "+secretQuery),
			Q(wantOK, "ROLLBACK TO a"),
			Q(wantError, "FETCH ALL c"),
		}},
		{name: "cursor from before a savepoint survives ROLLBACK TO", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE c CURSOR FOR "+secretQuery),
			Q(wantOK, "SAVEPOINT a"),
			Q(wantOK, "FETCH 1 c"),
			Q(wantError, "SELECT 1/0"),
			Q(wantOK, "ROLLBACK TO a"),
			Q(wantOK, "FETCH ALL c"),
		}},
		{name: "WITH HOLD cursor survives COMMIT", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE h SCROLL CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantOK, "COMMIT"),
			Q(wantOK, "FETCH 2 h"),
			X(wantOK, execute("h"), syncMsg()),
			Q(wantOK, "FETCH ABSOLUTE 6 h"),
		}},
		{name: "WITH HOLD cursor of a rolled back transaction", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantOK, "ROLLBACK"),
			Q(wantError, "FETCH ALL h"),
		}},
		{name: "WITH HOLD cursor of an earlier transaction survives ROLLBACK", expect: allowed, steps: []wireStep{
			Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantOK, "BEGIN"),
			Q(wantOK, "ROLLBACK"),
			Q(wantOK, "FETCH ALL h"),
		}},
		{name: "failed COMMIT of a holdable cursor", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR SELECT ssn, email, card_number, 1/(id-6) FROM customers"),
			Q(wantError, "COMMIT"),
			Q(wantError, "FETCH ALL h"),
			X(wantError, execute("h"), syncMsg()),
		}},
		{name: "failed COMMIT after closing an older holdable cursor", expect: either, steps: []wireStep{
			Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR "+harmlessQuery),
			Q(wantOK, "BEGIN"),
			Q(wantOK, "CLOSE h"),
			Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR SELECT ssn, email, card_number, 1/(id-6) FROM customers"),
			Q(wantError, "COMMIT"),
			Q(wantError, "FETCH ALL h"),
		}},
		{name: "long statement names collide on the backend", expect: allowed, steps: []wireStep{
			X(wantOK, parse(long1, harmlessQuery), syncMsg()),
			X(wantOK, closeS(long2), syncMsg()),
			X(wantOK, parse(long2, secretQuery), syncMsg()),
			X(wantOK, bind("", long1), describeP(""), execute(""), syncMsg()),
		}},
		{name: "long statement names in PREPARE and EXECUTE", expect: allowed, steps: []wireStep{
			Q(wantOK, "PREPARE "+long1+" AS "+harmlessQuery),
			Q(wantOK, "DEALLOCATE "+long2),
			Q(wantOK, "PREPARE "+long2+" AS "+secretQuery),
			Q(wantOK, "EXECUTE "+long1),
		}},
		{name: "long cursor names collide on the backend", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE "+long1+" CURSOR FOR "+harmlessQuery),
			Q(wantOK, "CLOSE "+long2),
			Q(wantOK, "DECLARE "+long2+" CURSOR FOR "+secretQuery),
			X(wantOK, execute(long1), syncMsg()),
		}},
		{name: "long portal names collide on the backend", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("h", harmlessQuery), parse("s", secretQuery), bind(long1, "h"), syncMsg()),
			X(wantOK, closeP(long2), bind(long2, "s"), syncMsg()),
			X(wantOK, execute(long1), syncMsg()),
			Q(wantOK, "CLOSE "+long2),
		}},
		{name: "Parse of FETCH before the cursor exists", expect: allowed, steps: []wireStep{
			X(wantOK, parse("f", "FETCH ALL c"), syncMsg()),
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE c CURSOR FOR "+secretQuery),
			X(wantOK, bind("", "f"), describeP(""), execute(""), syncMsg()),
		}},
		{name: "Parse of FETCH then the cursor re-declared", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantOK, "DECLARE c CURSOR FOR "+harmlessQuery),
			X(wantOK, parse("f", "FETCH ALL c"), bind("fp", "f"), syncMsg()),
			Q(wantOK, "CLOSE c"),
			Q(wantOK, "DECLARE c CURSOR FOR "+secretQuery),
			X(wantOK, bind("", "f"), execute(""), syncMsg()),
		}},
		{name: "DECLARE through the extended protocol then FETCH", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			E(wantOK, "DECLARE c CURSOR FOR "+secretQuery),
			Q(wantOK, "FETCH ALL c"),
		}},
		{name: "DECLARE WITH HOLD through the extended protocol then FETCH", expect: allowed, steps: []wireStep{
			E(wantOK, "DECLARE c CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantOK, "FETCH ALL c"),
		}},
		{name: "DECLARE in the same message as FETCH", expect: allowed, steps: []wireStep{
			Q(wantOK, "DECLARE c CURSOR FOR "+secretQuery+"; FETCH ALL c"),
		}},
		{name: "DECLARE, CLOSE and re-DECLARE in one message", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN; DECLARE c CURSOR FOR "+harmlessQuery+"; CLOSE c; DECLARE c CURSOR FOR "+secretQuery+"; FETCH ALL c"),
		}},
		{name: "PREPARE through the extended protocol then Bind", expect: allowed, steps: []wireStep{
			E(wantOK, "PREPARE p2 AS "+secretQuery),
			X(wantOK, bind("", "p2"), describeP(""), execute(""), syncMsg()),
			Q(wantOK, "EXECUTE p2"),
		}},
		{name: "EXECUTE of a protocol-level statement", expect: allowed, steps: []wireStep{
			X(wantOK, parse("s3", secretQuery), syncMsg()),
			Q(wantOK, "EXECUTE s3"),
			E(wantOK, "EXECUTE s3"),
		}},
		{name: "FETCH of a protocol-level portal", expect: allowed, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("s", secretQuery), bind("q4", "s"), syncMsg()),
			Q(wantOK, "FETCH 2 q4"),
			E(wantOK, "FETCH ALL q4"),
		}},
		{name: "CREATE TABLE AS EXECUTE", expect: denied, steps: []wireStep{
			Q(wantOK, "PREPARE p AS "+secretQuery),
			Q(wantDenied, "CREATE TABLE stolen AS EXECUTE p"),
			E(wantDenied, "CREATE TABLE stolen AS EXECUTE p"),
		}},
		{name: "EXPLAIN ANALYZE EXECUTE of a prepared write", expect: denied, steps: []wireStep{
			Q(wantDenied, "PREPARE w AS "+deniedWrite),
			Q(wantError, "EXPLAIN ANALYZE EXECUTE w"),
			X(wantDenied, parse("w", deniedWrite), syncMsg()),
			Q(wantError, "EXPLAIN ANALYZE EXECUTE w"),
			E(wantError, "EXPLAIN ANALYZE EXECUTE w"),
		}},
		{name: "EXPLAIN ANALYZE EXECUTE of a prepared nextval", expect: denied, steps: []wireStep{
			Q(wantDenied, "PREPARE w AS SELECT nextval('orders_id_seq')"),
			Q(wantError, "EXPLAIN ANALYZE EXECUTE w"),
		}},
		{name: "reserved name prefix", expect: denied, steps: []wireStep{
			X(wantDenied, parse("__gatehouse_denied", secretQuery), syncMsg()),
			Q(wantDenied, "PREPARE __gatehouse_denied AS SELECT 1"),
			Q(wantDenied, "DECLARE __gatehouse_c CURSOR WITH HOLD FOR SELECT 1"),
			X(wantOK, parse("s", secretQuery), syncMsg()),
			X(wantDenied, bind("__gatehouse_p", "s"), syncMsg()),
			E(wantDenied, "PREPARE __gatehouse_denied AS SELECT 1"),
			// The deny substitute still works afterwards.
			X(wantDenied, parse("", deniedWrite), bind("", ""), execute(""), syncMsg()),
		}},
		{name: "Query after a failed Parse before Sync is skipped", expect: either, steps: []wireStep{
			Q(wantOK, "PREPARE z AS "+secretQuery),
			XN(wantError, 1, parse("", failsAtParse), query("DEALLOCATE z; PREPARE z AS "+harmlessQuery), syncMsg()),
			Q(wantOK, "EXECUTE z"),
		}},
		{name: "Query after a denied Parse before Sync never runs", expect: denied, steps: []wireStep{
			XN(wantDenied, 1, parse("", deniedWrite), query(deniedWrite), query(secretQuery), syncMsg()),
		}},
		{name: "portal reference after a Query skipped by the backend", expect: either, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			X(wantOK, parse("s", secretQuery), bind("q", "s"), syncMsg()),
			XN(wantError, 1, parse("", failsAtParse), query("SELECT 1"), execute("q"), syncMsg()),
		}},
		{name: "statement reference after a Query skipped by the backend", expect: either, steps: []wireStep{
			XN(wantError, 1, parse("", failsAtParse), query("PREPARE z AS "+harmlessQuery), bind("", "z"), execute(""), syncMsg()),
			Q(wantError, "EXECUTE z"),
		}},
		{name: "EXECUTE of protocol-prepared DEALLOCATE and PREPARE", expect: either, steps: []wireStep{
			Q(wantOK, "PREPARE x AS "+harmlessQuery),
			X(wantOK, parse("d", "DEALLOCATE x"), parse("p", "PREPARE x AS "+secretQuery), syncMsg()),
			Q(wantAny, "EXECUTE d"),
			Q(wantAny, "EXECUTE p"),
			Q(wantAny, "EXECUTE x"),
			X(wantAny, bind("", "x"), execute(""), syncMsg()),
		}},
		{name: "EXECUTE of protocol-prepared CLOSE and DECLARE", expect: either, steps: []wireStep{
			Q(wantOK, "DECLARE k CURSOR WITH HOLD FOR "+harmlessQuery),
			X(wantOK, parse("cl", "CLOSE k"), parse("dk", "DECLARE k CURSOR WITH HOLD FOR "+secretQuery), syncMsg()),
			Q(wantAny, "EXECUTE cl"),
			Q(wantAny, "EXECUTE dk"),
			Q(wantAny, "FETCH ALL k"),
		}},
		{name: "EXECUTE of a protocol-prepared DEALLOCATE ALL", expect: either, steps: []wireStep{
			Q(wantOK, "PREPARE x AS "+harmlessQuery),
			X(wantOK, parse("da", "DEALLOCATE ALL"), syncMsg()),
			Q(wantAny, "EXECUTE da"),
			Q(wantOK, "PREPARE x AS "+secretQuery),
			Q(wantOK, "EXECUTE x"),
		}},
		{name: "FETCH refused in an aborted transaction keeps the cursor", expect: either, steps: []wireStep{
			Q(wantOK, "DECLARE h CURSOR WITH HOLD FOR "+secretQuery),
			Q(wantOK, "BEGIN"),
			Q(wantError, "SELECT 1/0"),
			Q(wantError, "FETCH 1 h"),
			Q(wantOK, "ROLLBACK"),
			Q(wantOK, "FETCH ALL h"),
		}},
		{name: "pipelined Bind across a Sync", expect: allowed, steps: []wireStep{
			X(wantOK, parse("s", secretQuery), syncMsg(), bind("", "s"), describeP(""), execute(""), syncMsg()),
		}},
		{name: "pipelined failed re-Parse across Syncs", expect: either, steps: []wireStep{
			X(wantError, parse("s", secretQuery), syncMsg(), parse("s", harmlessQuery), syncMsg(), bind("", "s"), execute(""), syncMsg()),
		}},
		{name: "pipelined skipped Close across Syncs", expect: either, steps: []wireStep{
			X(wantError, parse("s", secretQuery), syncMsg(), parse("u", failsAtParse), closeS("s"), parse("s", harmlessQuery), syncMsg(),
				bind("", "s"), describeP(""), execute(""), syncMsg()),
		}},
		{name: "pipelined simple PREPARE then Bind", expect: allowed, steps: []wireStep{
			X(wantOK, query("PREPARE pz AS "+secretQuery), bind("", "pz"), execute(""), syncMsg()),
		}},
		{name: "pipelined failing message then Bind", expect: either, steps: []wireStep{
			X(wantError, query("PREPARE pz AS "+secretQuery), query("SELECT 1/0; DEALLOCATE pz; PREPARE pz AS "+harmlessQuery),
				bind("", "pz"), execute(""), syncMsg()),
		}},
		{name: "pipelined DECLARE then Execute of the cursor", expect: allowed, steps: []wireStep{
			X(wantOK, query("BEGIN; DECLARE c CURSOR FOR "+secretQuery), describeP("c"), execute("c"), syncMsg()),
		}},
		{name: "FunctionCall of a SECURITY DEFINER function", expect: denied, steps: []wireStep{
			X(wantDenied, fcall(ssnOID, "6")),
		}},
		{name: "FunctionCall of lo_create", expect: denied, steps: []wireStep{
			X(wantDenied, fcall(loCreateOID, "0")),
		}},
		{name: "FunctionCall of pg_read_file", expect: denied, steps: []wireStep{
			X(wantDenied, fcall(readFileOID, "/etc/hostname")),
		}},
		{name: "FunctionCall of lower", expect: denied, steps: []wireStep{
			X(wantDenied, fcall(lowerOID, "abc")),
		}},
		{name: "FunctionCall in a pipeline", expect: denied, steps: []wireStep{
			X(wantDenied, parse("s", secretQuery), syncMsg(), fcall(ssnOID, "6"), bind("", "s"), execute(""), syncMsg()),
		}},

		// ---- Functions: volatile built-ins that write, harmless ones, user-defined. ----

		{name: "nextval", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT nextval('orders_id_seq')")}},
		{name: "setval", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT setval('orders_id_seq', 1000)")}},
		{name: "pg_advisory_lock", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT pg_advisory_lock(42)")}},
		{name: "lo_from_bytea", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT lo_from_bytea(0, '\\x00')")}},
		{name: "pg_notify plain", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT pg_notify('gatehouse', 'hello')")}},
		{name: "NOTIFY statement", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "NOTIFY leak, 'x'")}},
		{name: "set_config in ORDER BY", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders ORDER BY set_config('search_path', 'pg_temp', false)")}},
		{name: "pg_stat_reset_shared", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT pg_stat_reset_shared('bgwriter')")}},
		{name: "pg_stat_reset_single_table_counters", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT pg_stat_reset_single_table_counters('orders'::regclass)")}},
		{name: "harmless built-ins stay allowed", expect: allowed, both: true, steps: []wireStep{
			Q(wantOK, "SELECT lower(status), md5(status), now(), random() < 2, current_setting('search_path') FROM orders"),
		}},
		{name: "harmless built-ins over masked columns", expect: allowed, both: true, steps: []wireStep{
			Q(wantOK, "SELECT lower(email), md5(ssn), length(card_number), card_number::text FROM customers"),
		}},
		{name: "built-in upper(text) beside a public.upper(int) overload", expect: allowed, both: true, steps: []wireStep{
			Q(wantOK, "SELECT upper(status) FROM orders"),
		}},
		{name: "shadowing overload public.upper(int)", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT upper(customer_id) FROM orders"),
		}},
		{name: "user function, STABLE and not SECURITY DEFINER", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT customer_ssn_stable(customer_id) FROM orders"),
		}},
		{name: "user function, IMMUTABLE, owned by the backend role", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT customer_ssn_immutable(customer_id) FROM orders"),
		}},
		{name: "user function in PL/pgSQL", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT customer_ssn_pl(customer_id) FROM orders"),
		}},
		{name: "user function, schema-qualified", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT public.customer_ssn(6)"),
		}},
		{name: "harmless user function is not granted", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT add_one(id) FROM orders"),
		}},
		{name: "user-defined operator", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT customer_id ### 0 FROM orders"),
		}},
		{name: "user-defined overload of a built-in operator", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT customer_id + 'x'::text FROM orders"),
		}},
		{name: "user-defined cast", expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "SELECT (ROW(6)::ssnref::ssnval).v"),
		}},

		// ---- A function that reads secrets, in every position. ----

		{name: "position: WHERE oracle", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders WHERE customer_ssn(customer_id) LIKE '9%'")}},
		{name: "position: ORDER BY", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders ORDER BY customer_ssn(customer_id)")}},
		{name: "position: GROUP BY and HAVING", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT count(*) FROM orders GROUP BY customer_ssn(customer_id) HAVING max(customer_ssn(customer_id)) > ''")}},
		{name: "position: LIMIT", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders LIMIT length(customer_ssn(6))")}},
		{name: "position: VALUES", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "VALUES (customer_ssn(6))")}},
		{name: "position: CTE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "WITH x AS (SELECT customer_ssn(6) AS s) SELECT s FROM x")}},
		{name: "position: scalar subquery", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT (SELECT customer_ssn(6)) AS s")}},
		{name: "position: JOIN condition", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT o.id FROM orders o JOIN orders p ON customer_ssn(o.customer_id) = customer_ssn(p.customer_id)")}},
		{name: "position: LATERAL function in FROM", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT s FROM orders, LATERAL customer_ssn(orders.customer_id) AS s")}},
		{name: "position: function in FROM", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT * FROM customer_ssn(6)")}},
		{name: "position: EXECUTE argument", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "PREPARE e3(text) AS SELECT $1"),
			Q(wantDenied, "EXECUTE e3(customer_ssn(6))"),
		}},
		{name: "position: DECLARE body", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantDenied, "DECLARE c CURSOR FOR SELECT customer_ssn(6)"),
			Q(wantError, "FETCH ALL c"),
		}},
		{name: "position: COPY (query)", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "COPY (SELECT customer_ssn(6)) TO STDOUT")}},
		{name: "position: writer in WHERE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders WHERE pg_try_advisory_lock(id)")}},
		{name: "position: writer in LIMIT", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders LIMIT nextval('orders_id_seq')")}},
		{name: "position: writer in VALUES", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "VALUES (lo_create(0))")}},
		{name: "position: writer in CTE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "WITH x AS (SELECT lo_create(0)) SELECT * FROM x")}},
		{name: "position: writer in subquery", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT (SELECT pg_stat_reset())")}},
		{name: "position: writer in GROUP BY", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT count(*) FROM orders GROUP BY setval('orders_id_seq', 500)")}},
		{name: "position: writer in LATERAL", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT * FROM orders, LATERAL (SELECT set_config('search_path', 'pg_temp', false)) s")}},
		{name: "position: writer in DECLARE body", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantDenied, "DECLARE c CURSOR FOR SELECT nextval('orders_id_seq')"),
			Q(wantError, "FETCH ALL c"),
		}},
		{name: "position: writer in an EXECUTE argument of a protocol statement", expect: denied, steps: []wireStep{
			X(wantOK, parse("s", "SELECT $1::text"), syncMsg()),
			Q(wantDenied, "EXECUTE s(pg_advisory_lock(7)::text)"),
		}},

		// ---- Row locks. ----

		{name: "FOR NO KEY UPDATE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders FOR NO KEY UPDATE")}},
		{name: "FOR SHARE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders FOR SHARE")}},
		{name: "FOR KEY SHARE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT id FROM orders FOR KEY SHARE")}},
		{name: "FOR UPDATE of customers", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT email FROM customers WHERE id = 6 FOR UPDATE")}},
		{name: "FOR UPDATE in a subquery", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT * FROM (SELECT id FROM orders FOR UPDATE) s")}},
		{name: "FOR SHARE in a CTE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "WITH l AS (SELECT id FROM orders FOR SHARE) SELECT * FROM l")}},
		{name: "FOR UPDATE in PREPARE", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "PREPARE l AS SELECT id FROM orders FOR UPDATE")}},
		{name: "FOR UPDATE in DECLARE", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantDenied, "DECLARE c CURSOR FOR SELECT id FROM orders FOR UPDATE"),
		}},
		{name: "LOCK TABLE", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantDenied, "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"),
		}},
		{name: "LOCK TABLE in ACCESS SHARE mode", expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantDenied, "LOCK TABLE customers IN ACCESS SHARE MODE"),
		}},

		// ---- Settings a new connection would see. ----

		{name: "ALTER ROLE SET", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "ALTER ROLE CURRENT_USER SET search_path = pg_temp, public")}},
		{name: "ALTER DATABASE SET", expect: denied, both: true, steps: []wireStep{Q(wantDenied, "ALTER DATABASE "+pgx.Identifier{env.db}.Sanitize()+" SET search_path = pg_temp, public")}},
		{name: "ALTER SYSTEM SET", expect: denied, steps: []wireStep{Q(wantDenied, "ALTER SYSTEM SET "+probeSetting+" = 'none'")}},

		// ---- Table resolution by the backend's search_path ("$user"). ----

		{name: "shadow: column only the shadow table has", shadow: true, expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT note FROM customers")}},
		{name: "shadow: star of the shadow table", shadow: true, expect: denied, both: true, steps: []wireStep{Q(wantDenied, "SELECT * FROM customers")}},
		{name: "shadow: PREPARE over the shadow table", shadow: true, expect: denied, both: true, steps: []wireStep{
			Q(wantDenied, "PREPARE sp AS SELECT note, email FROM customers"),
		}},
		{name: "shadow: DECLARE over the shadow table", shadow: true, expect: denied, both: true, steps: []wireStep{
			Q(wantOK, "BEGIN"),
			Q(wantDenied, "DECLARE c CURSOR FOR SELECT note FROM customers"),
		}},
		{name: "shadow: qualified public table stays allowed", shadow: true, expect: allowed, both: true, steps: []wireStep{
			Q(wantOK, "SELECT id, email, ssn, card_number FROM public.customers"),
		}},
		{name: "shadow: unshadowed table stays allowed", shadow: true, expect: allowed, both: true, steps: []wireStep{
			Q(wantOK, "SELECT id, status FROM orders"),
		}},
	}
}

// TestWireBypass runs the wire bypass table as claude-coder.
func TestWireBypass(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	mainEnv := newWireEnv(t, ctx, false)
	shadowEnv := newWireEnv(t, ctx, true)
	cases := wireCases(mainEnv)
	names := map[string]bool{}
	runs := 0
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		env := mainEnv
		if c.shadow {
			env = shadowEnv
		}
		variants := []struct {
			name  string
			steps []wireStep
		}{{"", c.steps}}
		if c.both {
			ext := make([]wireStep, len(c.steps))
			for i, s := range c.steps {
				ext[i] = s.asExtended()
			}
			variants = []struct {
				name  string
				steps []wireStep
			}{{"/simple", c.steps}, {"/extended", ext}}
		}
		for _, v := range variants {
			runs++
			t.Run(c.name+v.name, func(t *testing.T) {
				env.runs++
				runWireCase(t, ctx, env, c, v.steps)
			})
		}
	}
	t.Logf("%d cases, %d runs", len(cases), runs)
	if len(cases) < 100 {
		t.Errorf("%d cases, want at least 100", len(cases))
	}
	// The recordings hold no secret either (errors, reasons, facts).
	for _, env := range []*wireEnv{mainEnv, shadowEnv} {
		env.g.stop()
		if env.runs == 0 {
			continue // filtered out with -run
		}
		for _, e := range env.g.recordedEvents(t, ctx) {
			if l := leaks(e.Error+" "+e.Reason+" "+string(e.Facts), env.forms); len(l) > 0 {
				t.Errorf("LEAK %v in the recording: %+v", l, e)
			}
		}
	}
}

func runWireCase(t *testing.T, ctx context.Context, env *wireEnv, c wireCase, steps []wireStep) {
	before := env.stateSnapshot(t, ctx)
	conn := env.g.connect(t, ctx, "claude-coder", nil)
	pc := conn.PgConn()
	var seen, transcript strings.Builder
	denials, failures := 0, 0
	broken := false
	stepDenied := make([]bool, len(steps)+1)
	for i, s := range steps {
		res, err := runWireStep(ctx, pc, s, &seen)
		fmt.Fprintf(&transcript, "  step %d: %s\n    <- %s\n", i+1, describeMsgs(s.msgs), res)
		if err != nil {
			t.Errorf("step %d: %v\n%s", i+1, err, transcript.String())
			broken = true
			break
		}
		denials += res.denials
		failures += res.failures
		stepDenied[i+1] = res.denials > 0
		w := s.want
		if s.deniedStep > 0 && stepDenied[s.deniedStep] {
			w = s.wantIfDenied
		}
		switch {
		case w == wantOK && res.denials+res.failures > 0:
			t.Errorf("step %d: want success, got errors %v", i+1, res.errs)
		case w == wantDenied && res.denials == 0:
			t.Errorf("step %d: want a gatehouse denial, got %v", i+1, res.errs)
		case w == wantError && res.denials+res.failures == 0:
			t.Errorf("step %d: want an error (the statement must not run), got none", i+1)
		}
	}
	if found := leaks(seen.String(), env.forms); len(found) > 0 {
		t.Errorf("LEAK: %v reached the client", found)
	}
	switch c.expect {
	case denied:
		if denials == 0 {
			t.Errorf("want a gatehouse denial in the case, got none (%d backend errors)", failures)
		}
	case allowed:
		if denials+failures > 0 {
			t.Errorf("want every step to succeed, got %d denials and %d backend errors", denials, failures)
		}
	}
	if !broken {
		t.Logf("transcript:\n%s", transcript.String())
	}
	if !broken {
		// The connection stays usable after anything.
		if _, err := conn.Exec(ctx, "ROLLBACK", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Errorf("ROLLBACK after the case: %v", err)
		} else {
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				var one int
				if err := conn.QueryRow(ctx, "SELECT 1", mode).Scan(&one); err != nil || one != 1 {
					t.Errorf("connection unusable after the case (%v): %v", mode, err)
				}
			}
		}
	}
	// A listener elsewhere got no secret. Any notification committed
	// before now reaches the listener before its next ReadyForQuery.
	if _, err := env.listener.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("listener: %v", err)
	}
	for _, n := range env.notified.drain() {
		if found := leaks(n, env.forms); len(found) > 0 {
			t.Errorf("LEAK: a listener received %v: %s", found, clip(n, 300))
		} else {
			t.Logf("a listener received %q", clip(n, 200))
		}
	}
	after := env.stateSnapshot(t, ctx)
	if d := diffSnapshots(before, after); len(d) > 0 {
		t.Errorf("the database or server changed:\n  %s", strings.Join(d, "\n  "))
	}
}

// TestStateSnapshotSeesChanges makes, as the superuser, each kind of change
// the wire bypass table must detect, and checks that stateSnapshot reports
// it in the part that covers it (and that an unchanged server reports
// nothing).
func TestStateSnapshotSeesChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := newWireEnv(t, ctx, false)
	role := pgx.Identifier{env.g.backendUser}.Sanitize()
	db := pgx.Identifier{env.db}.Sanitize()
	if d := diffSnapshots(env.stateSnapshot(t, ctx), env.stateSnapshot(t, ctx)); len(d) > 0 {
		t.Fatalf("an unchanged server differs between two snapshots:\n  %s", strings.Join(d, "\n  "))
	}
	cases := []struct {
		part       string
		change     string
		undo       string
		systemWide bool // needs the probe setting absent from postgresql.auto.conf
	}{
		{part: "table public.orders", change: "UPDATE orders SET status = 'x' WHERE id = 1"},
		{part: "relations", change: "CREATE TABLE snapshot_probe (x int)"},
		{part: "functions", change: "CREATE FUNCTION snapshot_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'"},
		{part: "operators", change: "CREATE OPERATOR public.#@# (LEFTARG = int, RIGHTARG = int, FUNCTION = int4pl)"},
		{part: "types", change: "CREATE TYPE snapshot_probe_t AS (x int)"},
		{part: "large objects", change: "SELECT lo_create(0)"},
		{part: "collations", change: `CREATE COLLATION snapshot_probe_c FROM "C"`},
		{part: "replication origins", change: "SELECT pg_replication_origin_create('" + replicationOrigin + "')", undo: "SELECT pg_replication_origin_drop('" + replicationOrigin + "')"},
		{part: "stats reset", change: "SELECT pg_stat_reset()"},
		{part: "sequences", change: "SELECT nextval('orders_id_seq')"},
		{part: "advisory locks", change: "SELECT pg_advisory_lock(4242)", undo: "SELECT pg_advisory_unlock(4242)"},
		{part: "role and database settings", change: "ALTER ROLE " + role + " SET work_mem = '1234kB'"},
		{part: "new connection settings", change: "ALTER DATABASE " + db + " SET statement_timeout = '12345s'"},
		{part: "auto.conf", change: "ALTER SYSTEM SET " + probeSetting + " = 'none'", undo: "ALTER SYSTEM RESET " + probeSetting, systemWide: true},
	}
	var probeSet int
	if err := env.admin.QueryRow(ctx, "SELECT count(*) FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf'", probeSetting).Scan(&probeSet); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.systemWide && probeSet > 0 {
			t.Errorf("%s is already set in postgresql.auto.conf: the ALTER SYSTEM check cannot run on this server", probeSetting)
			continue
		}
		before := env.stateSnapshot(t, ctx)
		if _, err := env.admin.Exec(ctx, c.change); err != nil {
			t.Fatalf("%s: %v", c.change, err)
		}
		after := env.stateSnapshot(t, ctx)
		if c.undo != "" {
			if _, err := env.admin.Exec(ctx, c.undo); err != nil {
				t.Fatalf("%s: %v", c.undo, err)
			}
		}
		if before[c.part] == after[c.part] {
			t.Errorf("%s: the snapshot part %q did not change (%s)", c.change, c.part, clip(after[c.part], 200))
		}
	}
}
