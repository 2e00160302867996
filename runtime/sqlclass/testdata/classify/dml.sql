-- case: insert values
INSERT INTO orders (id, total) VALUES (1, 9.5)
-- case: insert without column list
INSERT INTO orders VALUES (1, 9.5)
-- case: insert select
INSERT INTO archive.orders SELECT * FROM orders WHERE created < '2020-01-01'
-- case: insert returning
INSERT INTO customers (email) VALUES ('a@b.c') RETURNING id, email
-- case: insert on conflict do update
INSERT INTO counters (k, v) VALUES ('a', 1) ON CONFLICT (k) DO UPDATE SET v = counters.v + excluded.v
-- case: update with where
UPDATE customers SET email = lower(email) WHERE id = 7
-- case: update without where
UPDATE customers SET active = false
-- case: update from
UPDATE orders o SET status = 'x' FROM customers c WHERE c.id = o.customer_id AND c.banned
-- case: delete with where
DELETE FROM sessions WHERE expires < now()
-- case: delete without where
DELETE FROM sessions
-- case: delete hidden by block comment
/* harmless */ DELETE FROM audit_log
-- case: delete after line comment
-- just a select
DELETE FROM audit_log WHERE true
-- case: mixed case delete
DeLeTe FrOm "Customers"
-- case: delete using
DELETE FROM orders o USING customers c WHERE o.customer_id = c.id AND c.email = 'x'
-- case: delete returning
DELETE FROM customers WHERE id = 1 RETURNING *
-- case: cte with delete inside select
WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING email) SELECT email FROM d
-- case: cte with delete without where inside select
WITH d AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM d
-- case: cte with update and insert
WITH u AS (UPDATE stock SET qty = qty - 1 WHERE sku = 'a' RETURNING sku) INSERT INTO moves (sku) SELECT sku FROM u
-- case: merge
MERGE INTO customers t USING staging s ON t.id = s.id WHEN MATCHED THEN UPDATE SET email = s.email WHEN NOT MATCHED THEN INSERT (id, email) VALUES (s.id, s.email)
-- case: select into
SELECT * INTO backup_customers FROM customers
-- case: create table as
CREATE TABLE copy_customers AS SELECT email, lower(name) AS n FROM customers
-- case: truncate
TRUNCATE orders, public.refunds
-- case: update where current of
UPDATE customers SET email = 'x' WHERE CURRENT OF cur
