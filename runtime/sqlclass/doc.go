// Package sqlclass classifies PostgreSQL statements for policy decisions and
// result masking.
//
// A Classifier turns one query string (which may hold several statements)
// into one Statement per statement: its kind ("select", "delete",
// "transaction", ...), the tables it reads and writes, the columns,
// functions, operators and types it uses, the functions a policy must
// grant by name (DangerousFunctions: every function that BuiltinReadFunction
// does not know as a built-in pure read), whether it takes row locks, and,
// for statements that return rows, where each output column comes from
// (OutputColumns), which the masker uses to decide what to hide; for
// EXECUTE, where each argument comes from (Args).
//
// Postgres parses with the PostgreSQL parser itself (pg_query, cgo). Parsing
// costs tens of microseconds, so the proxy wraps it in a Cache, a bounded LRU
// keyed by the query text that returns shared, immutable results.
//
// Invariants:
//
//   - Unparseable input yields an error wrapping ErrUnparseable (a *ParseError
//     with the parser's message and position); the caller denies. Input that
//     holds only comments or whitespace yields zero statements and no error.
//   - Classification never panics on any input: every node of the parse tree
//     is checked before use, and nesting beyond MaxDepth is an error.
//   - No client text reaches libpg_query's C code (Parse, and Normalize for
//     cache keys) before a linear Go pre-scan (nestingBound) has bounded
//     the depth of the tree it would build: the C code recurses on the
//     thread's stack, where an overflow kills the process. Texts over
//     PostgresConfig.MaxNesting are rejected with a *NestingError
//     (ErrTooComplex). See DefaultMaxNesting for the measured thresholds.
//   - Reporting errs on the side of more: a name that could be a table is
//     reported as a table; a column that cannot be attributed to one relation
//     is reported as "?.column" and, in OutputColumns, carries every relation
//     in scope as a candidate source.
//   - Statements are immutable once returned; callers must not modify them,
//     because the Cache hands the same values to every caller.
//
// Naming conventions: tables are schema-qualified as written
// ("public.orders" if written so, "orders" if not); unquoted identifiers are
// lower case (the parser folds them), quoted identifiers keep their case.
// Columns are "table.column" with the table as written, "?.column" when the
// relation is ambiguous, "table.*" for star and whole-row references.
// Functions, operators and types are named as the parser gives them
// (unquoted parts lower case, quoted parts as written) and
// schema-qualified as written; a part holding a dot is quoted. Functions
// the parser generates for SQL syntax (SUBSTRING(x FROM y), EXTRACT, ...)
// are reported without their implicit "pg_catalog." prefix. Identifiers
// longer than 63 bytes arrive truncated as PostgreSQL truncates them
// (pg_query does it, on a UTF-8 character boundary).
//
// Lexical settings: libpg_query lexes with standard_conforming_strings on
// (and backslash_quote on), the pre-scan and the Go normaliser do the
// same. The C library has a parse call with options to turn them off, but
// pg_query_go v6.2.5 does not bind it, so the classifier cannot follow a
// session that turns standard_conforming_strings off; the gateway keeps
// it on (docs/security-model.md).
//
// Wrapping statements (EXPLAIN, PREPARE, DECLARE CURSOR, COPY (query),
// CREATE TABLE AS) carry the wrapped statement in Inner and also copy its
// tables, columns and functions up, so a policy that looks only at the
// outer statement still sees everything the statement touches. EXPLAIN
// ANALYZE executes its statement, so its Kind is the inner statement's
// kind (SubKind "explain analyze").
package sqlclass
