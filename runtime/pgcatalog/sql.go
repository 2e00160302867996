package pgcatalog

import "strings"

// The catalog's own queries run on a backend the judged sessions can
// change, so they must not be open to the shadowing they detect: every
// function, type and operator is named in pg_catalog, and every operator
// is written OPERATOR(pg_catalog.op) (spelled {op} below), because an
// unqualified operator or a polymorphic built-in function loses, whatever
// the search path, to a user-defined one whose argument types match
// exactly. Relations, columns and casts between built-in types need no
// such care.
var qualify = strings.NewReplacer(
	"{=}", "OPERATOR(pg_catalog.=)",
	"{<>}", "OPERATOR(pg_catalog.<>)",
	"{<}", "OPERATOR(pg_catalog.<)",
	"{>=}", "OPERATOR(pg_catalog.>=)",
	"{~}", "OPERATOR(pg_catalog.~)",
	"{!~}", "OPERATOR(pg_catalog.!~)",
	"{<<}", "OPERATOR(pg_catalog.<<)",
	"{|}", "OPERATOR(pg_catalog.|)",
	// firstNormalOID, typed so that no operator needs a coercion.
	"{16384}", "16384::pg_catalog.oid",
	"{0}", "0::pg_catalog.oid",
	"{sys}", "'{pg_catalog,information_schema}'::pg_catalog.name[]",
)

const (
	// userProc selects the functions the snapshot holds: created after
	// initdb, or outside the two system schemas.
	userProc = `(p.oid {>=} {16384} OR NOT p.pronamespace {=} ANY (
	SELECT s.oid FROM pg_catalog.pg_namespace s WHERE s.nspname {=} ANY ({sys})))`
	// userOper selects user operators and built-in ones a user made the
	// commutator or negator of theirs (that updates the built-in's row).
	userOper = `(o.oid {>=} {16384} OR o.oprnamespace {<>} 'pg_catalog'::pg_catalog.regnamespace
	OR o.oprcom {>=} {16384} OR o.oprnegate {>=} {16384})`
	userCast = `(c.oid {>=} {16384} OR c.castfunc {>=} {16384})`
	// watchedProc is the part of userProc the fingerprint watches: the
	// functions created after initdb, read through the OID index. The rest
	// of userProc, built-in functions a superuser moved out of the system
	// schemas, is loaded but not watched; scanning all of pg_proc for it
	// would double the fingerprint's cost.
	watchedProc = `p.oid {>=} {16384}`
)

// rowHash hashes a catalog row's OID and xmin into an int4.
func rowHash(alias string) string {
	return `pg_catalog.hashint8((` + alias + `.oid::pg_catalog.int8 {<<} 32) {|} ` +
		alias + `.xmin::pg_catalog.text::pg_catalog.int8)`
}

// fingerprintSQL reads the fingerprint in one round trip. Relations and
// types are probed name by name through their (name, namespace) indexes:
// OFFSET 0 keeps the planner from turning the probes into a hash join over
// the whole catalog, which costs tens of milliseconds with 10,000 tables.
var fingerprintSQL = qualify.Replace(`SELECT n.c, n.h, p.c, p.h, o.c, o.h, k.c, k.h, r.c, r.h, t.c, t.h FROM
(SELECT pg_catalog.count(*) c, coalesce(pg_catalog.sum(` + rowHash("n") + `), 0) h FROM pg_catalog.pg_namespace n) n,
(SELECT pg_catalog.count(*) c, coalesce(pg_catalog.sum(` + rowHash("p") + `), 0) h FROM pg_catalog.pg_proc p WHERE ` + watchedProc + `) p,
(SELECT pg_catalog.count(*) c, coalesce(pg_catalog.sum(` + rowHash("o") + `), 0) h FROM pg_catalog.pg_operator o WHERE ` + userOper + `) o,
(SELECT pg_catalog.count(*) c, coalesce(pg_catalog.sum(` + rowHash("c") + `), 0) h FROM pg_catalog.pg_cast c WHERE ` + userCast + `) k,
(SELECT pg_catalog.count(*) c, coalesce(pg_catalog.sum(` + relHash + `), 0) h
	FROM pg_catalog.unnest($1::pg_catalog.name[]) AS u(n)
	CROSS JOIN LATERAL (SELECT c.oid, c.relnamespace FROM pg_catalog.pg_class c WHERE c.relname {=} u.n OFFSET 0) AS x) r,
(SELECT pg_catalog.count(*) c, coalesce(pg_catalog.sum(` + typHash + `), 0) h
	FROM pg_catalog.unnest($2::pg_catalog.name[]) AS u(n)
	CROSS JOIN LATERAL (SELECT y.oid, y.typnamespace FROM pg_catalog.pg_type y WHERE y.typname {=} u.n OFFSET 0) AS x) t`)

// Relations and types are hashed by OID and namespace only: the name is
// the key, and other changes (new columns, grants, ANALYZE) do not change
// what a name resolves to.
const (
	relHash = `pg_catalog.hashint8((x.oid::pg_catalog.int8 {<<} 32) {|} x.relnamespace::pg_catalog.int8)`
	typHash = `pg_catalog.hashint8((x.oid::pg_catalog.int8 {<<} 32) {|} x.typnamespace::pg_catalog.int8)`
)

var schemasSQL = `SELECT n.oid, n.nspname::pg_catalog.text FROM pg_catalog.pg_namespace n`

var functionsSQL = qualify.Replace(`SELECT p.oid, n.nspname::pg_catalog.text, p.proname::pg_catalog.text,
	p.prokind::pg_catalog.text, p.provolatile::pg_catalog.text, p.prosecdef, l.lanname::pg_catalog.text,
	pg_catalog.pg_get_userbyid(p.proowner)::pg_catalog.text, pg_catalog.pg_get_function_identity_arguments(p.oid)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid {=} p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid {=} p.prolang
WHERE ` + userProc)

var builtinSQL = qualify.Replace(`SELECT DISTINCT 'f', proname::pg_catalog.text FROM pg_catalog.pg_proc WHERE oid {<} {16384}
UNION ALL SELECT DISTINCT 'o', oprname::pg_catalog.text FROM pg_catalog.pg_operator WHERE oid {<} {16384}
UNION ALL SELECT DISTINCT 't', typname::pg_catalog.text FROM pg_catalog.pg_type WHERE oid {<} {16384}`)

// operatorsSQL lists, for each operator userOper selects, the functions
// using it may run: its own function; its restriction and join estimators
// (they run while planning); and the function of its commutator and
// negator, which the planner may substitute. The last column says whether
// to report the function: always for the function of a user-defined
// operator (even a built-in function: an operator can make
// pg_catalog.lo_import look like arithmetic), otherwise only when the
// function itself is user-defined.
var operatorsSQL = qualify.Replace(`WITH ops AS (
	SELECT o.oid, o.oprnamespace, o.oprname, o.oprcode, o.oprrest, o.oprjoin, o.oprcom, o.oprnegate,
		(o.oid {>=} {16384} OR o.oprnamespace {<>} 'pg_catalog'::pg_catalog.regnamespace) AS usr
	FROM pg_catalog.pg_operator o WHERE ` + userOper + `
), fns AS (
	SELECT ops.oid, ops.oprcode::pg_catalog.oid AS f, ops.usr AS always FROM ops
	UNION SELECT ops.oid, ops.oprrest::pg_catalog.oid, false FROM ops
	UNION SELECT ops.oid, ops.oprjoin::pg_catalog.oid, false FROM ops
	UNION SELECT ops.oid, a.oprcode::pg_catalog.oid,
		(a.oid {>=} {16384} OR a.oprnamespace {<>} 'pg_catalog'::pg_catalog.regnamespace)
		FROM ops JOIN pg_catalog.pg_operator a ON a.oid {=} ops.oprcom OR a.oid {=} ops.oprnegate
)
SELECT ops.oid, n.nspname::pg_catalog.text, ops.oprname::pg_catalog.text, p.oid, pn.nspname::pg_catalog.text,
	p.proname::pg_catalog.text, fns.always OR p.oid {>=} {16384} OR NOT pn.nspname {=} ANY ({sys})
FROM ops
JOIN pg_catalog.pg_namespace n ON n.oid {=} ops.oprnamespace
JOIN fns ON fns.oid {=} ops.oid
JOIN pg_catalog.pg_proc p ON p.oid {=} fns.f
JOIN pg_catalog.pg_namespace pn ON pn.oid {=} p.pronamespace
ORDER BY ops.oid`)

// castsSQL lists casts that run a function and were created by a user or
// run a user-defined function. Casts without a function (binary-coercible
// or through the types' text I/O) run none.
var castsSQL = qualify.Replace(`SELECT c.castsource, sn.nspname::pg_catalog.text, st.typname::pg_catalog.text,
	c.casttarget, tn.nspname::pg_catalog.text, tt.typname::pg_catalog.text,
	c.castcontext::pg_catalog.text, p.oid, pn.nspname::pg_catalog.text, p.proname::pg_catalog.text
FROM pg_catalog.pg_cast c
JOIN pg_catalog.pg_type st ON st.oid {=} c.castsource
JOIN pg_catalog.pg_namespace sn ON sn.oid {=} st.typnamespace
JOIN pg_catalog.pg_type tt ON tt.oid {=} c.casttarget
JOIN pg_catalog.pg_namespace tn ON tn.oid {=} tt.typnamespace
JOIN pg_catalog.pg_proc p ON p.oid {=} c.castfunc
JOIN pg_catalog.pg_namespace pn ON pn.oid {=} p.pronamespace
WHERE c.castmethod {=} 'f' AND ` + userCast)

var relationsSQL = qualify.Replace(`SELECT u.i, x.relnamespace, ` + relHash + `
FROM pg_catalog.unnest($1::pg_catalog.name[]) WITH ORDINALITY AS u(n, i)
CROSS JOIN LATERAL (SELECT c.oid, c.relnamespace FROM pg_catalog.pg_class c WHERE c.relname {=} u.n OFFSET 0) AS x`)

// typesSQL finds the types of each name and follows domains down to their
// base type: a cast to a domain is a cast to its base type.
var typesSQL = qualify.Replace(`WITH RECURSIVE t(i, nsp, oid, cur, typtype, base, h) AS (
	SELECT u.i, x.typnamespace, x.oid, x.oid, x.typtype, x.typbasetype, ` + typHash + `
	FROM pg_catalog.unnest($1::pg_catalog.name[]) WITH ORDINALITY AS u(n, i)
	CROSS JOIN LATERAL (SELECT y.oid, y.typnamespace, y.typtype, y.typbasetype
		FROM pg_catalog.pg_type y WHERE y.typname {=} u.n OFFSET 0) AS x
	UNION ALL
	SELECT t.i, t.nsp, t.oid, b.oid, b.typtype, b.typbasetype, t.h
	FROM t JOIN pg_catalog.pg_type b ON b.oid {=} t.base
	WHERE t.typtype {=} 'd'
)
SELECT t.i, t.nsp, t.oid, t.cur,
	coalesce((SELECT e.typelem FROM pg_catalog.pg_type e WHERE e.oid {=} t.cur AND e.typcategory {=} 'A'), {0}), t.h
FROM t WHERE t.typtype {<>} 'd'`)

// probeSQL counts, for the names a result found absent, the catalog rows
// that would now make them present, with the same reach as Judge: an
// unqualified function or operator in any non-temporary schema, a
// qualified one in its schema (pg_temp: any temporary schema; pg_catalog
// and information_schema: also any built-in of the name), a type in any
// schema when unqualified; and the current rows of the relation names.
var probeSQL = qualify.Replace(`SELECT
(SELECT pg_catalog.count(*) FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.name[])) AS u(s, n)
	JOIN pg_catalog.pg_proc x ON x.proname {=} u.n
	JOIN pg_catalog.pg_namespace ns ON ns.oid {=} x.pronamespace
	WHERE CASE WHEN u.s {=} '' THEN ns.nspname {!~} '^pg_temp_'
		WHEN u.s {=} 'pg_temp' THEN ns.nspname {~} '^pg_temp_'
		WHEN u.s {=} ANY ({sys}) THEN ns.nspname {=} u.s OR x.oid {<} {16384}
		ELSE ns.nspname {=} u.s END),
(SELECT pg_catalog.count(*) FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.name[])) AS u(s, n)
	JOIN pg_catalog.pg_operator x ON x.oprname {=} u.n
	JOIN pg_catalog.pg_namespace ns ON ns.oid {=} x.oprnamespace
	WHERE CASE WHEN u.s {=} '' THEN ns.nspname {!~} '^pg_temp_'
		WHEN u.s {=} 'pg_temp' THEN ns.nspname {~} '^pg_temp_'
		WHEN u.s {=} 'pg_catalog' THEN ns.nspname {=} u.s OR x.oid {<} {16384}
		ELSE ns.nspname {=} u.s END),
(SELECT pg_catalog.count(*) FROM ROWS FROM (pg_catalog.unnest($5::pg_catalog.text[]), pg_catalog.unnest($6::pg_catalog.name[])) AS u(s, n)
	JOIN pg_catalog.pg_type x ON x.typname {=} u.n
	JOIN pg_catalog.pg_namespace ns ON ns.oid {=} x.typnamespace
	WHERE CASE WHEN u.s {=} '' THEN true
		WHEN u.s {=} 'pg_temp' THEN ns.nspname {~} '^pg_temp_'
		ELSE ns.nspname {=} u.s END),
r.c, r.h FROM
(SELECT pg_catalog.count(*) c, coalesce(pg_catalog.sum(` + relHash + `), 0) h
	FROM pg_catalog.unnest($7::pg_catalog.name[]) AS u(n)
	CROSS JOIN LATERAL (SELECT c.oid, c.relnamespace FROM pg_catalog.pg_class c WHERE c.relname {=} u.n OFFSET 0) AS x) r`)

const searchPathSQL = `SELECT pg_catalog.current_schemas(true)`
