-- case: create table
CREATE TABLE t (id int PRIMARY KEY, email text DEFAULT current_user CHECK (email <> ''))
-- case: create table like
CREATE TABLE t2 (LIKE customers INCLUDING ALL)
-- case: create index
CREATE INDEX ON customers (lower(email))
-- case: create view
CREATE VIEW v AS SELECT id, email FROM customers
-- case: create materialized view
CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM orders
-- case: alter table
ALTER TABLE customers ADD COLUMN note text
-- case: rename table
ALTER TABLE customers RENAME TO clients
-- case: drop table
DROP TABLE IF EXISTS customers, public.orders CASCADE
-- case: drop index
DROP INDEX idx_email
-- case: drop function
DROP FUNCTION f(int)
-- case: create function
CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql AS $$ SELECT x FROM secrets $$
-- case: create extension
CREATE EXTENSION dblink
-- case: create schema
CREATE SCHEMA app
-- case: create trigger
CREATE TRIGGER trg BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION audit()
-- case: create sequence
CREATE SEQUENCE s
-- case: drop database
DROP DATABASE prod
-- case: refresh materialized view
REFRESH MATERIALIZED VIEW mv
