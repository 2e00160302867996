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

-- group: hostile
-- Objects that would take over the catalog's own queries if they named
-- functions, operators or types through the search path: each raises.
CREATE SCHEMA evil;
CREATE FUNCTION evil.boom_bool2(oid, integer) RETURNS boolean LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked oid/int comparison''; END';
CREATE OPERATOR evil.>= (LEFTARG = oid, RIGHTARG = integer, FUNCTION = evil.boom_bool2);
CREATE OPERATOR evil.< (LEFTARG = oid, RIGHTARG = integer, FUNCTION = evil.boom_bool2);
CREATE FUNCTION evil.boom_oid(oid, oid) RETURNS boolean LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked oid =''; END';
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.boom_oid);
CREATE OPERATOR evil.<> (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.boom_oid);
CREATE FUNCTION evil.boom_name(name, name) RETURNS boolean LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked name =''; END';
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.boom_name);
CREATE FUNCTION evil.boom_name_text(name, text) RETURNS boolean LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked name/text''; END';
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = text, FUNCTION = evil.boom_name_text);
CREATE OPERATOR evil.!~ (LEFTARG = name, RIGHTARG = text, FUNCTION = evil.boom_name_text);
CREATE FUNCTION evil.boom_char("char", "char") RETURNS boolean LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked char =''; END';
CREATE OPERATOR evil.= (LEFTARG = "char", RIGHTARG = "char", FUNCTION = evil.boom_char);
CREATE FUNCTION evil.boom_shl(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked <<''; END';
CREATE OPERATOR evil.<< (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.boom_shl);
CREATE FUNCTION evil.boom_or(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked |''; END';
CREATE OPERATOR evil.| (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.boom_or);
CREATE FUNCTION evil.unnest(name[]) RETURNS SETOF name LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked unnest''; END';
CREATE FUNCTION evil.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked unnest''; END';
CREATE FUNCTION evil.hashint8(bigint) RETURNS integer LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked hashint8''; END';
CREATE FUNCTION evil.sum_step(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked sum''; END';
CREATE AGGREGATE evil.sum(integer) (SFUNC = evil.sum_step, STYPE = bigint);
CREATE FUNCTION evil.current_schemas(boolean) RETURNS name[] LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked current_schemas''; END';
CREATE FUNCTION evil.pg_get_userbyid(oid) RETURNS name LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''hijacked pg_get_userbyid''; END';
CREATE TABLE evil.pg_proc (oid oid, proname name);
CREATE TABLE evil.pg_class (oid oid, relname name);

-- group: builtin-cast-function
-- A cast a superuser created with a built-in function: assigning a text
-- to an oid column would read a server file into a large object.
CREATE CAST (text AS oid) WITH FUNCTION pg_catalog.lo_import(text) AS ASSIGNMENT;
