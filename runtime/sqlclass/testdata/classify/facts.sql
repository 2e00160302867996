-- case: locking in a cte
WITH c AS (SELECT id FROM orders WHERE status = 'new' FOR UPDATE SKIP LOCKED) SELECT * FROM c
-- case: locking in a prepared statement
PREPARE take AS SELECT id FROM orders WHERE id = $1 FOR NO KEY UPDATE
-- case: locking in a cursor
DECLARE c CURSOR FOR SELECT * FROM orders FOR SHARE
-- case: explain without analyze takes no locks
EXPLAIN SELECT * FROM orders FOR UPDATE
-- case: operators as the server looks them up
SELECT a + b, c || d, e ->> 'k', f OPERATOR(myschema.###) g, h BETWEEN 1 AND 2, i NOT LIKE 'x%', j IN (1, 2), k NOT IN (3) FROM t ORDER BY a USING >
-- case: types of casts and typed literals
SELECT x::mytype, CAST(y AS s."Money"), int '1', z::varchar(10)[], interval '1' day FROM t
-- case: execute arguments carry lineage
EXECUTE q((SELECT ssn FROM customers WHERE id = 1), lower((SELECT email FROM customers LIMIT 1)), 42)
