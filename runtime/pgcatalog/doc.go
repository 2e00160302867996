// Package pgcatalog tells the gateway what a PostgreSQL backend resolves
// the names of a statement to, from the backend's own catalog.
//
// The classifier reports names as written: "customers", "upper",
// "myschema.f", "###". The backend resolves them through the session's
// search path and its catalog, which the gateway does not otherwise see:
// an unqualified table may live in the schema named after the role
// ("$user"), a built-in-looking call upper(id) may reach a user-defined
// public.upper(integer), and customer_ssn(id) may be a SECURITY DEFINER
// function reading a table the caller may not. A Catalog answers, for one
// database, with the backend's answers.
//
// # What Judge guarantees
//
// For a Request (the names one statement uses and the session's search
// path) Judge returns:
//
//   - NeedGrant: every user-defined function the statement may run, by
//     qualified name. "User-defined" means created after initdb (OID of
//     16384 or more, which includes functions a superuser created in
//     pg_catalog and those of extensions) or living outside pg_catalog and
//     information_schema. An unqualified call lists every user-defined
//     function of that name in every non-temporary schema, whatever the
//     search path: PostgreSQL picks among all functions of the name on the
//     path by argument types, which the gateway does not know, so a user
//     function can win over a built-in even behind pg_catalog. A qualified
//     call outside the system schemas is listed as written even if no such
//     function exists. Operators list the functions they run (their own,
//     user-defined selectivity estimators, and those of user-defined
//     commutators and negators, which the planner may substitute). Casts:
//     the function of every user-created cast, or cast with a user
//     function, to each explicit target type (domains followed to their
//     base type, arrays to their element type, and a call f(x) considered
//     as a function-style cast to a type f); and of every implicit or
//     assignment cast, for every statement, because PostgreSQL inserts
//     those without any cast in the text.
//   - Opaque: NeedGrant or Unknown is not empty; the gateway cannot see
//     what such a function reads and treats the output as sensitive.
//   - Tables: each relation as PostgreSQL resolves it: the first schema of
//     the path holding a relation (of any kind) of that name, pg_catalog
//     first when the path does not name it, the session's temporary schema
//     as current_schemas(true) places it, "pg_temp.x" as that schema.
//     Names found nowhere are qualified with the schema they would be
//     created in and listed in Missing.
//   - Unknown: functions and operators the catalog does not hold, even
//     when asked again for this call (nonexistent ones, and f(t), which
//     PostgreSQL reads as the column t.f when no function f takes t).
//
// Names are compared as PostgreSQL compares them: exactly, after the
// parser's folding of unquoted identifiers (done by the classifier, not
// here), each part truncated to 63 bytes at a character boundary as
// PostgreSQL stores it (a UTF-8 database is assumed).
//
// # Freshness
//
// The snapshot (user functions, operators and casts, the names of built-in
// functions, operators and types, and the schemas) is loaded on first use.
// Relations and types are not loaded whole, since a database may hold
// 100,000 of them: the names a Judge needs are looked up in one batched
// query and cached for the snapshot's lifetime, negative answers included
// (at most MaxNames per cache; a full cache is emptied and refilled).
//
// A snapshot is used without asking the backend for at most
// RefreshInterval. After that the next Judge runs a fingerprint query: for
// pg_namespace and the user rows of pg_proc, pg_operator and pg_cast, the
// number of rows and the sum of a hash of each row's OID and xmin (every
// CREATE, ALTER, RENAME, OWNER TO and DROP changes one or the other), and
// for the cached relation and type names the OIDs and schemas of the
// pg_class and pg_type rows bearing them. The snapshot is reloaded only
// when that changed. One check or load runs at a time; callers that need
// it wait for it (or for their context), the others keep using a snapshot
// still fresh. Invalidate makes the next Judge reload without asking: the
// gateway calls it after forwarding DDL, so a session sees its own changes
// at its next statement.
//
// A change made by another client (not through the gateway) is seen
// within RefreshInterval, with one exception that closes most of that
// window: when a result rests on an absence (a function, operator or
// function-style cast the snapshot does not know, a relation the cache
// holds as missing), Judge first runs a probe, one indexed query for just
// those names, and if any of them now exists it checks the fingerprint
// and reloads before answering. What stays open for up to RefreshInterval
// is a change to a name already known: a new overload such as
// public.upper(integer) next to the built-in upper, a function altered to
// SECURITY DEFINER, a new user cast, a same-named table created in a
// schema earlier in the path. During that window the gateway judges a
// statement by the catalog as it was up to RefreshInterval earlier. A
// caller that must close it for a statement calls Invalidate first, at
// the price of a reload.
//
// # The catalog's own queries
//
// They run as the resource's role, whose objects and search path an agent
// may influence, so they are written to mean the same thing on any search
// path: every function, type and operator is named in pg_catalog
// (OPERATOR(pg_catalog.=) and so on), since an exact-typed user operator or
// a monomorphic user unnest would win over a built-in wherever it stands
// in the path. A test runs them with a schema of look-alikes first.
//
// Give the Catalog its own pool, prepared with ConfigurePool: the queries
// take array parameters, for which PostgreSQL otherwise replans on every
// execution, and planning is most of their cost.
//
// # Costs
//
// Measured with BenchmarkCatalog on a database with 1,000 user functions
// and 10,000 tables (40,000 pg_class rows) on the development machine: 2
// shared cores under a load average of 9 to 14, where a SELECT 1 round
// trip took 85 to 190 µs; PostgreSQL 15 on the same host; pool prepared
// with ConfigurePool. Ranges are over three runs.
//
//   - Judge on a warm snapshot, names cached: 2 to 8 µs, 3 to 7
//     allocations, no query.
//   - Fingerprint check (once per RefreshInterval when Judge is called):
//     4 to 6 ms with no cached names, 7 to 11 ms with 100, 15 to 23 ms
//     with 1,000 (about 15 µs more per cached name). With the default 2 s
//     interval that is 0.2% to 1% of one backend core.
//   - Probe for an absent name: 0.3 to 1.3 ms (2 to 8 ms without
//     ConfigurePool, replanned every time).
//   - Relation lookup, 10 names in one batch: 0.3 to 0.9 ms.
//   - Full load: 40 to 90 ms, 1.2 MB allocated (the built-in names are
//     most of it).
//
// # Limits
//
//   - Functions reached through objects the statement names are the
//     object owner's choice and are not reported: views, rules, triggers,
//     column defaults, generated columns, check constraints, row-level
//     security policies, domain constraints, type input/output functions,
//     and the implementation of ORDER BY, DISTINCT, GROUP BY, joins and
//     indexes through a user type's operator classes. A rule that grants a
//     table grants what its owner attached to it.
//   - Bodies of functions run are not seen (that is what Opaque means).
//   - Built-in objects are trusted by OID: a superuser who replaces a
//     built-in function's body in place (CREATE OR REPLACE of a pg_catalog
//     function keeps its OID) is not detected. A built-in function a
//     superuser moved out of the system schemas is loaded as user-defined,
//     but later changes to it do not change the fingerprint.
//   - Owner names are those at the last load; renaming a role does not
//     change the fingerprint.
//   - The classifier writes quoted names containing a dot like qualified
//     names. For functions both readings are considered; for relations the
//     qualified reading is used.
//   - Names are taken as the classifier reports them. A classifier that
//     lower-cases a quoted function name ("Upper"(x) reported as upper)
//     makes it match the built-in here: the case must be kept upstream.
//   - The search path is the caller's: it must be re-read (SearchPath)
//     after anything that changes it, including the creation of the
//     session's first temporary object, which adds its temporary schema in
//     front of the path.
package pgcatalog
