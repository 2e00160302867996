package sqlclass

import "strings"

// dangerous is the built-in list of functions reported in
// Statement.DangerousFunctions, matched by their unqualified lower-case
// name whatever schema they are called with (a look-alike in another schema
// is flagged too: reporting more is the safe side). Why each is listed:
//
//   - Server file system access: pg_read_file, pg_read_binary_file,
//     pg_ls_dir and the pg_ls_*dir family, pg_stat_file, pg_file_write,
//     pg_file_rename, pg_file_unlink (adminpack), lo_import, lo_export.
//   - Large-object contents, which bypass table policies: lo_get, lo_put,
//     lo_from_bytea, lo_open, lo_unlink, loread, lowrite.
//   - Remote connections and remote SQL: dblink and every dblink_* function.
//   - Configuration and other sessions: set_config (the function form of
//     SET, including SET ROLE-like settings), pg_terminate_backend,
//     pg_cancel_backend, pg_reload_conf, pg_rotate_logfile, pg_promote,
//     pg_switch_wal, pg_create_restore_point.
//   - Functions that run SQL given as a string, hidden from classification:
//     query_to_xml, query_to_xmlschema, query_to_xml_and_xmlschema,
//     table_to_xml (and its schema/database variants read tables named by
//     string), cursor_to_xml and cursor_to_xmlschema (read an open cursor
//     whose rows the proxy never sees as a result), ts_stat, ts_rewrite.
//   - Other sessions' statement texts, which carry their literals:
//     pg_stat_get_activity, pg_stat_get_backend_activity and the
//     pg_stat_statements function (the views over them are tables, which a
//     grant must name).
//   - Replication slots, which stream every change regardless of table
//     policy: pg_create_logical_replication_slot,
//     pg_create_physical_replication_slot, pg_drop_replication_slot,
//     pg_logical_slot_get_changes, pg_logical_slot_peek_changes and their
//     binary variants, pg_replication_slot_advance.
//   - pg_sleep, pg_sleep_for, pg_sleep_until: an agent can hold a backend,
//     its locks and a proxy connection for as long as it likes; policies
//     usually want to deny that.
//
// current_setting and similar read-only introspection are harmless and not
// listed. COPY ... PROGRAM and COPY to or from a server file are reported as
// the pseudo-functions "copy program" and "copy file".
var dangerous = map[string]struct{}{}

func init() {
	for _, n := range []string{
		"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_ls_logdir",
		"pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir",
		"pg_ls_logicalsnapdir", "pg_ls_logicalmapdir", "pg_ls_replslotdir",
		"pg_stat_file", "pg_file_write", "pg_file_rename", "pg_file_unlink",
		"pg_file_sync", "lo_import", "lo_export", "lo_get", "lo_put",
		"lo_from_bytea", "lo_open", "lo_unlink", "loread", "lowrite",
		"set_config", "pg_terminate_backend", "pg_cancel_backend",
		"pg_reload_conf", "pg_rotate_logfile", "pg_promote", "pg_switch_wal",
		"pg_create_restore_point", "query_to_xml", "query_to_xmlschema",
		"query_to_xml_and_xmlschema", "table_to_xml", "table_to_xmlschema",
		"table_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xmlschema",
		"schema_to_xml_and_xmlschema", "database_to_xml",
		"database_to_xmlschema", "database_to_xml_and_xmlschema",
		"cursor_to_xml", "cursor_to_xmlschema", "pg_stat_get_activity",
		"pg_stat_get_backend_activity", "pg_stat_statements", "ts_stat",
		"ts_rewrite", "pg_create_logical_replication_slot",
		"pg_create_physical_replication_slot", "pg_drop_replication_slot",
		"pg_logical_slot_get_changes", "pg_logical_slot_peek_changes",
		"pg_logical_slot_get_binary_changes",
		"pg_logical_slot_peek_binary_changes", "pg_replication_slot_advance",
		"pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot",
		"pg_sleep", "pg_sleep_for", "pg_sleep_until",
	} {
		dangerous[n] = struct{}{}
	}
}

// DangerousFunctionNames returns the built-in dangerous function list
// (unqualified names; any name starting with "dblink" is also dangerous).
func DangerousFunctionNames() []string {
	out := make([]string, 0, len(dangerous)+1)
	for n := range dangerous {
		out = append(out, n)
	}
	out = append(out, "dblink*")
	sortStrings(out)
	return out
}

// isDangerous reports whether the (possibly qualified) lower-case function
// name is on the list.
func isDangerous(name string) bool {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	if strings.HasPrefix(name, "dblink") {
		return true
	}
	_, ok := dangerous[name]
	return ok
}
