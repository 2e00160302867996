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
-- case: large object creation
SELECT lo_create(0)
-- case: collation import
SELECT pg_import_system_collations('public')
-- case: replication origin
SELECT pg_replication_origin_create('x')
-- case: statistics reset
SELECT pg_stat_reset()
-- case: notify carries data out
SELECT pg_notify('c', ssn) FROM customers
-- case: user-defined function
SELECT customer_ssn(id) FROM orders
-- case: built-in reads are not dangerous
SELECT lower(email), now(), count(*), row_number() OVER (ORDER BY id), pg_catalog.upper(name), random() FROM customers GROUP BY email, id, name
-- case: built-in name in another schema
SELECT public.lower(email), myschema.now() FROM customers
-- case: quoted names are exact
SELECT "Lower"(email), "pg_catalog.lower"(email), "pg_catalog"."lower"(email) FROM customers
-- case: special syntax reaches catalog functions
SELECT substring(email FROM 2 FOR 3), extract(year FROM created), overlay(name PLACING 'x' FROM 1 FOR 1), position('@' IN email), trim(BOTH ' ' FROM name), created AT TIME ZONE 'UTC', email LIKE 'a%' ESCAPE '!', email SIMILAR TO 'a%', (created, created) OVERLAPS (created, created), collation for (name), normalize(name), name IS NORMALIZED FROM customers
-- case: aggregates and window functions
SELECT string_agg(email, ',' ORDER BY id), percentile_cont(0.5) WITHIN GROUP (ORDER BY total), sum(total) FILTER (WHERE total > 0) OVER w, customer_rank(id) OVER w FROM orders WINDOW w AS (PARTITION BY customer_id)
-- case: table_to_xml reads a table named by a string
SELECT table_to_xml('secrets', true, false, '')
-- case: object definitions
SELECT pg_get_functiondef('f'::regproc), pg_get_viewdef('v'), pg_get_expr(adbin, adrelid) FROM pg_attrdef
-- case: tablesample method from an extension
SELECT * FROM orders TABLESAMPLE system_rows(10)
-- case: nextval writes
INSERT INTO orders (id) VALUES (nextval('orders_id_seq'))
