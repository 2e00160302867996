-- Objects a DBA created in the judged database, one group per test case.
-- Each case loads only the groups it names (-- group: NAME starts one).

-- group: shadow-upper
CREATE FUNCTION public.upper(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';

-- group: myschema
CREATE SCHEMA myschema;
CREATE FUNCTION myschema.f(integer) RETURNS integer LANGUAGE plpgsql STABLE AS 'BEGIN RETURN $1; END';

-- group: customer-ssn
CREATE TABLE public.customers (id integer PRIMARY KEY, ssn text);
CREATE FUNCTION public.customer_ssn(integer) RETURNS text LANGUAGE sql SECURITY DEFINER
	AS 'SELECT ssn FROM public.customers WHERE id = $1';

-- group: operator
CREATE FUNCTION public.hash_combine(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 # $2';
CREATE OPERATOR public.### (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.hash_combine);
CREATE FUNCTION public.text_plus(text, integer) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1 || $2';
CREATE OPERATOR public.+ (LEFTARG = text, RIGHTARG = integer, FUNCTION = public.text_plus);
CREATE OPERATOR public.#< (RIGHTARG = text, FUNCTION = pg_catalog.upper);

-- group: casts
CREATE TYPE public.money2 AS (cents bigint);
CREATE FUNCTION public.money2_from_int(integer) RETURNS public.money2 LANGUAGE sql IMMUTABLE AS 'SELECT ROW($1::bigint)::public.money2';
CREATE CAST (integer AS public.money2) WITH FUNCTION public.money2_from_int(integer);
CREATE DOMAIN public.price AS public.money2;
CREATE DOMAIN public.price2 AS public.price;

-- group: implicit-cast
CREATE TYPE public.celsius AS (deg numeric);
CREATE FUNCTION public.celsius_to_numeric(public.celsius) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT ($1).deg';
CREATE CAST (public.celsius AS numeric) WITH FUNCTION public.celsius_to_numeric(public.celsius) AS IMPLICIT;
CREATE FUNCTION public.celsius_to_text(public.celsius) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ($1).deg::text';
CREATE CAST (public.celsius AS text) WITH FUNCTION public.celsius_to_text(public.celsius) AS ASSIGNMENT;

-- group: user-schema
CREATE TABLE public.customers (id integer PRIMARY KEY);
CREATE TABLE public.orders (id integer PRIMARY KEY);

-- group: pg-class
CREATE TABLE public.pg_class (x integer);

-- group: mixed-case
CREATE TABLE public."Mixed" (x integer);
CREATE FUNCTION public."Upper"(integer) RETURNS integer LANGUAGE sql AS 'SELECT $1';
CREATE SCHEMA "Sales";
CREATE TABLE "Sales".orders (x integer);

-- group: long-names
CREATE TABLE public.a_table_name_that_is_longer_than_sixty_three_bytes_and_gets_truncated_x (x integer);

-- group: pg-catalog-function
CREATE FUNCTION pg_catalog.gh_leak(integer) RETURNS integer LANGUAGE sql AS 'SELECT $1';

-- group: role-schema
CREATE SCHEMA AUTHORIZATION CURRENT_USER;
DO $$ BEGIN EXECUTE format('CREATE TABLE %I.customers (id integer PRIMARY KEY)', current_user); END $$;

-- group: dotted
CREATE FUNCTION public."a.b"() RETURNS integer LANGUAGE sql AS 'SELECT 1';
