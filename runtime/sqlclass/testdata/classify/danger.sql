-- case: pg_read_file
SELECT pg_read_file('/etc/passwd')
-- case: lo_import and lo_export
SELECT lo_import('/etc/shadow'), lo_export(1, '/tmp/x')
-- case: dblink
SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(x int)
-- case: set_config
SELECT set_config('role', 'admin', false)
-- case: terminate backend
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'
-- case: query_to_xml hides sql
SELECT query_to_xml('SELECT * FROM secrets', true, false, '')
-- case: pg_sleep
SELECT pg_sleep(3600)
-- case: qualified dangerous function
SELECT pg_catalog.pg_reload_conf()
-- case: current_setting is harmless
SELECT current_setting('search_path')
-- case: dangerous function in where
DELETE FROM t WHERE pg_cancel_backend(42)
-- case: cursor_to_xml reads a cursor's rows as a value
SELECT cursor_to_xml('c', 10, false, false, '')
-- case: other sessions' statement texts
SELECT query FROM pg_stat_get_activity(NULL) AS a
