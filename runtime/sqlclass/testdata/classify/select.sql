-- case: simple select
SELECT id, email FROM customers WHERE id = 1
-- case: qualified table
SELECT c.id FROM public.customers c
-- case: quoted identifiers keep case
SELECT "Email" FROM "Customers"
-- case: mixed case keywords
SeLeCt Id FrOm Customers
-- case: alias on column
SELECT email AS e FROM customers
-- case: star
SELECT * FROM customers
-- case: table star with join
SELECT c.*, o.total FROM customers c JOIN orders o ON o.customer_id = c.id
-- case: star over join
SELECT * FROM customers c JOIN orders o USING (id)
-- case: ambiguous column in join
SELECT email, total FROM customers c, orders o WHERE c.id = o.customer_id
-- case: whole row reference
SELECT c FROM customers c
-- case: row_to_json whole row
SELECT row_to_json(c) FROM customers c
-- case: to_json of table star
SELECT to_json(c.*) FROM customers c
-- case: json_agg
SELECT json_agg(c.email) FROM customers c
-- case: json_build_object
SELECT json_build_object('e', email, 'n', name) AS doc FROM customers
-- case: lower of column
SELECT lower(email) FROM customers
-- case: concatenation
SELECT email || '' AS x FROM customers
-- case: substr
SELECT substr(ssn, 1, 3) FROM people
-- case: substring sql syntax
SELECT substring(ssn FROM 1 FOR 3) FROM people
-- case: cast
SELECT email::text, id::bigint AS big FROM customers
-- case: case and coalesce
SELECT CASE WHEN id > 1 THEN email ELSE name END, coalesce(phone, email) FROM customers
-- case: aggregate with group by and order by alias
SELECT country, count(*) AS n FROM customers GROUP BY country ORDER BY n DESC
-- case: string_agg and array_agg
SELECT string_agg(email, ','), array_agg(ssn) FROM people
-- case: concat and format
SELECT concat(first, last), format('%s', email) FROM customers
-- case: subquery in from
SELECT s.e FROM (SELECT email AS e FROM customers) s
-- case: subquery star in from
SELECT * FROM (SELECT id, email FROM customers) AS s
-- case: subquery in where
SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE email LIKE '%@x.com')
-- case: scalar subquery in select list
SELECT o.id, (SELECT c.email FROM customers c WHERE c.id = o.customer_id) FROM orders o
-- case: exists subquery
SELECT id FROM orders o WHERE EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id)
-- case: correlated reference to outer
SELECT o.id FROM orders o WHERE o.total > (SELECT avg(total) FROM orders WHERE customer_id = o.customer_id)
-- case: cte is not a table
WITH recent AS (SELECT id, email FROM customers WHERE created > now() - interval '1 day') SELECT email FROM recent
-- case: cte star
WITH r AS (SELECT email FROM customers) SELECT * FROM r
-- case: cte shadowing a table name
WITH customers AS (SELECT 1 AS id) SELECT id FROM customers
-- case: recursive cte
WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT n FROM t
-- case: union merges sources
SELECT email FROM customers UNION SELECT contact FROM suppliers
-- case: intersect and except
SELECT id FROM a INTERSECT SELECT id FROM b EXCEPT SELECT id FROM c
-- case: function in from
SELECT * FROM generate_series(1, 10) AS g(n)
-- case: lateral function over column
SELECT c.id, t.tag FROM customers c, LATERAL unnest(c.tags) AS t(tag)
-- case: values
VALUES (1, 'a'), (2, 'b')
-- case: select without from
SELECT 1, now()
-- case: select for update
SELECT * FROM accounts WHERE id = 1 FOR UPDATE
-- case: window function
SELECT id, rank() OVER (PARTITION BY country ORDER BY created) FROM customers
-- case: count star
SELECT count(*) FROM customers
-- case: schema qualified function
SELECT public.mask_email(email) FROM customers
-- case: column qualified by schema and table
SELECT public.customers.email FROM public.customers
-- case: tablesample
SELECT id FROM customers TABLESAMPLE SYSTEM (10)
-- case: distinct on
SELECT DISTINCT ON (country) country, email FROM customers ORDER BY country, created DESC
-- case: row constructor
SELECT ROW(id, email) FROM customers
-- case: jsonb path on column
SELECT profile->>'email' FROM users
-- case: subquery in from over star over table
SELECT x.email FROM (SELECT * FROM customers) x
-- case: alias column list on a table hides which column is meant
SELECT md5(e), i FROM customers AS c(i, n, e)
