// Package funclist derives sqlclass's allow-list of built-in functions that
// only read (builtin_functions.txt) from a PostgreSQL catalog, and holds
// the reviewed exceptions. It has no database code: the caller runs Query
// and passes the rows to Build (sqlclass's catalog test does, and
// rewrites the file with -update-functions).
package funclist

import (
	"fmt"
	"sort"
	"strings"
)

// Query lists the functions initdb created in pg_catalog (OIDs below
// FirstNormalObjectId, 16384: extensions installed into pg_catalog later
// do not count), one row per overload: name, volatility, kind and whether
// it takes an argument of type internal.
const Query = `SELECT p.proname::text, p.provolatile::text, p.prokind::text,
       'internal'::regtype = ANY (p.proargtypes::oid[]) AS takes_internal
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.oid < 16384
ORDER BY 1`

// Proc is one overload of a pg_catalog function.
type Proc struct {
	Name string
	// Volatility is provolatile: "i" immutable, "s" stable, "v" volatile.
	Volatility string
	// Kind is prokind: "f" function, "a" aggregate, "w" window, "p"
	// procedure.
	Kind string
	// TakesInternal: an argument of type internal, which SQL cannot
	// produce (planner support, type receive, index and table access
	// method functions).
	TakesInternal bool
}

// Entry is a function name (or a prefix ending in "*") and why it is
// listed.
type Entry struct {
	Name, Reason string
}

// Matches reports whether name is the entry's name or starts with its
// prefix.
func (e Entry) Matches(name string) bool {
	if p, ok := strings.CutSuffix(e.Name, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return name == e.Name
}

// Excluded are immutable or stable pg_catalog functions that a read grant
// must still not cover, and, for the record, the volatile ones the old
// deny-list named (volatile functions are out by the rule already).
var Excluded = []Entry{
	// Server files and paths.
	{"pg_read_*", "contents of server files"},
	{"pg_ls_*", "listings of server directories"},
	{"pg_stat_file", "metadata of server files"},
	{"pg_current_logfile", "path of the server log"},
	{"pg_relation_filepath", "server file path of a relation"},
	{"pg_tablespace_location", "server file system path of a tablespace"},
	{"pg_config", "server build configuration and installation paths"},
	{"pg_available_extensions", "reads extension control files from the server's file system"},
	{"pg_available_extension_versions", "reads extension control files from the server's file system"},
	{"pg_extension_update_paths", "reads extension scripts from the server's file system"},
	{"pg_hba_file_rules", "contents of the server's pg_hba.conf"},
	{"pg_ident_file_mappings", "contents of the server's pg_ident.conf"},
	{"pg_show_all_file_settings", "contents of the server's configuration files"},
	{"pg_control_*", "contents of the server's control file"},
	// Large objects: their contents bypass table grants.
	{"lo_*", "large-object contents and management"},
	{"loread", "large-object contents"},
	{"lowrite", "writes large-object contents"},
	// Other sessions and the server's activity.
	{"pg_stat_*", "statistics and activity of the server and other sessions, with their query texts (the pg_stat_* views are tables a grant must name)"},
	{"pg_current_snapshot", "in-progress transaction IDs of other sessions"},
	{"txid_current_snapshot", "in-progress transaction IDs of other sessions"},
	{"pg_blocking_pids", "process IDs of other sessions"},
	{"pg_safe_snapshot_blocking_pids", "process IDs of other sessions"},
	{"pg_lock_status", "locks held by other sessions"},
	{"pg_prepared_xact", "other sessions' prepared transactions"},
	{"pg_xact_status", "commit status of other sessions' transactions"},
	{"txid_status", "commit status of other sessions' transactions"},
	{"pg_xact_commit_timestamp*", "commit times of other sessions' transactions"},
	{"pg_last_committed_xact", "the server's last committed transaction"},
	{"pg_get_backend_memory_contexts", "server memory internals"},
	{"pg_log_backend_memory_contexts", "writes another backend's memory contexts to the server log"},
	{"pg_get_shmem_allocations", "server memory internals"},
	{"pg_notification_queue_usage", "state of other sessions' notifications"},
	{"inet_client_addr", "network address of the backend connection, which the gateway fronts"},
	{"inet_client_port", "network address of the backend connection, which the gateway fronts"},
	{"inet_server_addr", "network address of the backend, which the gateway fronts"},
	{"inet_server_port", "network address of the backend, which the gateway fronts"},
	// SQL run from strings, or tables named by strings: what they read is
	// out of the classifier's sight.
	{"query_to_xml", "runs SQL given as a string"},
	{"query_to_xmlschema", "runs SQL given as a string"},
	{"query_to_xml_and_xmlschema", "runs SQL given as a string"},
	{"cursor_to_xml", "reads an open cursor's rows as a value"},
	{"cursor_to_xmlschema", "reads an open cursor's definition"},
	{"table_to_xml", "reads a table named by a string"},
	{"table_to_xmlschema", "reads a table's definition named by a string"},
	{"table_to_xml_and_xmlschema", "reads a table named by a string"},
	{"schema_to_xml", "reads every table of a schema named by a string"},
	{"schema_to_xmlschema", "reads the definitions of a schema's tables"},
	{"schema_to_xml_and_xmlschema", "reads every table of a schema named by a string"},
	{"database_to_xml", "reads every table of the database"},
	{"database_to_xmlschema", "reads the definitions of the database's tables"},
	{"database_to_xml_and_xmlschema", "reads every table of the database"},
	{"ts_stat", "runs SQL given as a string"},
	{"ts_rewrite", "runs SQL given as a string (two-argument form)"},
	{"dblink*", "remote connections and remote SQL (extension)"},
	// Object definitions and sources.
	{"pg_get_functiondef", "source of a function"},
	{"pg_get_function_sqlbody", "source of a function"},
	{"pg_get_function_arguments", "a function's argument list with its default expressions"},
	{"pg_get_function_arg_default", "a function's default argument expressions"},
	{"pg_get_viewdef", "definition of a view"},
	{"pg_get_ruledef", "definition of a rule"},
	{"pg_get_triggerdef", "definition of a trigger"},
	{"pg_get_indexdef", "definition of an index, with its expressions and predicate"},
	{"pg_get_constraintdef", "definition of a constraint, with its expressions"},
	{"pg_get_partkeydef", "definition of a partition key"},
	{"pg_get_partition_constraintdef", "definition of a partition's bounds"},
	{"pg_get_statisticsobjdef*", "definition of an extended statistics object"},
	{"pg_get_expr", "decompiles stored expressions: defaults, constraints, policy conditions"},
	// Validators run during CREATE, on other objects' definitions.
	{"fmgr_c_validator", "validates a function definition; not a read"},
	{"fmgr_internal_validator", "validates a function definition; not a read"},
	{"fmgr_sql_validator", "analyses another function's SQL body"},
	{"plpgsql_validator", "analyses another function's body"},
	{"postgresql_fdw_validator", "validates foreign-data wrapper options; not a read"},
	// Settings, session state and transaction state.
	{"set_config", "changes a setting, including role-like ones"},
	{"setseed", "changes the session's random state"},
	{"pg_current_xact_id", "assigns a transaction ID, a write on the server"},
	{"txid_current", "assigns a transaction ID, a write on the server"},
	{"pg_export_snapshot", "exports the transaction's snapshot to other sessions"},
	{"pg_advisory_*", "takes or releases advisory locks"},
	{"pg_try_advisory_*", "takes advisory locks"},
	{"nextval", "advances a sequence"},
	{"setval", "sets a sequence"},
	{"currval", "reads a sequence's session state"},
	{"lastval", "reads a sequence's session state"},
	{"pg_notify", "sends a notification to other sessions"},
	{"pg_sleep*", "holds a backend, its locks and a gateway connection"},
	// Server administration.
	{"pg_terminate_backend", "terminates other sessions"},
	{"pg_cancel_backend", "cancels other sessions' statements"},
	{"pg_reload_conf", "reloads the server configuration"},
	{"pg_rotate_logfile*", "rotates the server log"},
	{"pg_promote", "promotes a standby"},
	{"pg_switch_wal", "forces a WAL switch"},
	{"pg_create_restore_point", "writes a restore point"},
	{"pg_backup_*", "starts or stops a backup"},
	{"pg_import_system_collations", "creates collations"},
	// Replication: slots stream every change whatever the table grants.
	{"pg_replication_*", "replication origins and slots"},
	{"pg_get_replication_slots", "the server's replication slots"},
	{"pg_logical_*", "logical decoding and messages"},
	{"pg_create_*", "creates replication slots or restore points"},
	{"pg_drop_replication_slot", "drops a replication slot"},
	{"pg_copy_*", "copies replication slots"},
}

// Curated are volatile pg_catalog functions that read and write nothing a
// grant protects; they are on the allow-list although the rule would keep
// them off.
var Curated = []Entry{
	{"random", "a number from the session's generator"},
	{"clock_timestamp", "the current time"},
	{"timeofday", "the current time as text"},
	{"gen_random_uuid", "a random UUID"},
	{"pg_is_in_recovery", "whether the server is a standby; volatile only because that can change"},
	{"bernoulli", "built-in TABLESAMPLE method, reached only through TABLESAMPLE on a table that is judged as read"},
	{"system", "built-in TABLESAMPLE method, reached only through TABLESAMPLE on a table that is judged as read"},
}

// ExcludedEntry returns the exclusion that covers name, if any.
func ExcludedEntry(name string) (Entry, bool) {
	for _, e := range Excluded {
		if e.Matches(name) {
			return e, true
		}
	}
	return Entry{}, false
}

// CuratedEntry returns the curated entry of name, if any.
func CuratedEntry(name string) (Entry, bool) {
	for _, e := range Curated {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// Build returns the allow-list, sorted: the names of which every overload
// is immutable or stable and none is a procedure, minus the names whose
// every overload takes an internal argument (SQL cannot call them with a
// real value) and the Excluded names, plus the Curated names that exist.
func Build(procs []Proc) []string {
	type agg struct{ pure, callable, exists bool }
	byName := map[string]*agg{}
	for _, p := range procs {
		a := byName[p.Name]
		if a == nil {
			a = &agg{pure: true}
			byName[p.Name] = a
		}
		a.exists = true
		if (p.Volatility != "i" && p.Volatility != "s") || p.Kind == "p" {
			a.pure = false
		}
		if !p.TakesInternal {
			a.callable = true
		}
	}
	var out []string
	for name, a := range byName {
		_, excluded := ExcludedEntry(name)
		_, curated := CuratedEntry(name)
		if curated || (a.pure && a.callable && !excluded) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Render formats the allow-list file: a header saying how it was made,
// then one name per line.
func Render(names []string, server string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Built-in PostgreSQL functions that only read: sqlclass.BuiltinReadFunction.\n")
	fmt.Fprintf(&b, "# Generated from the pg_catalog of %s by\n", server)
	b.WriteString("#   go test ./runtime/sqlclass -run TestBuiltinFunctionsCatalog -update-functions\n")
	b.WriteString("# (rules: runtime/sqlclass/internal/funclist): functions initdb created in\n")
	b.WriteString("# pg_catalog whose every overload is immutable or stable and not a procedure,\n")
	b.WriteString("# minus those only callable with internal arguments and the reviewed\n")
	b.WriteString("# exclusions (funclist.Excluded), plus a curated few volatile ones that read\n")
	b.WriteString("# and write nothing (funclist.Curated). Do not edit by hand.\n")
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
