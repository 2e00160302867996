-- case: explain select
EXPLAIN SELECT * FROM customers
-- case: explain analyze delete
EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1
-- case: explain analyze false
EXPLAIN (ANALYZE false) DELETE FROM orders
-- case: explain options analyze delete without where
EXPLAIN (ANALYZE, BUFFERS) DELETE FROM orders
-- case: prepare select
PREPARE q(int) AS SELECT email FROM customers WHERE id = $1
-- case: prepare delete
PREPARE d AS DELETE FROM customers
-- case: execute
EXECUTE q(1)
-- case: deallocate
DEALLOCATE q
-- case: declare cursor
DECLARE cur CURSOR FOR SELECT ssn FROM people
-- case: fetch
FETCH 10 FROM cur
-- case: move
MOVE NEXT IN cur
-- case: close
CLOSE cur
-- case: begin commit
BEGIN; SELECT 1; COMMIT
-- case: savepoint and rollback to
SAVEPOINT s1; ROLLBACK TO SAVEPOINT s1
-- case: set role
SET ROLE admin
-- case: set session authorization
SET SESSION AUTHORIZATION postgres
-- case: set search path
SET search_path TO evil, public
-- case: set local
SET LOCAL statement_timeout = '5s'
-- case: reset role
RESET ROLE
-- case: show
SHOW search_path
-- case: call procedure
CALL app.refresh_all(1)
-- case: do block
DO $$ BEGIN DELETE FROM customers; END $$
-- case: do block other language
DO LANGUAGE plperlu $$ system('id') $$
-- case: listen notify unlisten
LISTEN jobs; NOTIFY jobs, 'x'; UNLISTEN *
-- case: vacuum
VACUUM ANALYZE customers
-- case: analyze
ANALYZE public.orders
-- case: lock
LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE
-- case: comment on table
COMMENT ON TABLE customers IS 'people'
-- case: grant
GRANT SELECT ON customers TO analyst
-- case: revoke
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC
-- case: grant role
GRANT admin TO agent
-- case: create role
CREATE ROLE agent LOGIN PASSWORD 'x'
-- case: alter system
ALTER SYSTEM SET log_statement = 'none'
-- case: checkpoint
CHECKPOINT
-- case: load
LOAD 'auto_explain'
-- case: discard
DISCARD ALL
