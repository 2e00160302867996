package sqlclass

import (
	"errors"
	"fmt"
)

// Classifier classifies a query string. Implementations are safe for
// concurrent use. The returned statements are shared and must not be
// modified.
type Classifier interface {
	// Classify returns one Statement per statement of sql, in order. Input
	// with only comments and whitespace yields no statements and no error.
	// Unparseable input yields an error wrapping ErrUnparseable.
	Classify(sql string) ([]Statement, error)
}

var (
	// ErrUnparseable is wrapped by every error for input the parser rejects.
	ErrUnparseable = errors.New("unparseable SQL")
	// ErrTooLarge is returned for query strings beyond the configured bound.
	ErrTooLarge = errors.New("SQL text too large")
	// ErrTooComplex is returned when the parse tree nests deeper than
	// MaxDepth, or when the pre-scan estimates that it would nest deeper
	// than PostgresConfig.MaxNesting (then the error is a *NestingError).
	ErrTooComplex = errors.New("SQL statement too deeply nested")
)

// ParseError is the parser's complaint about a query. It wraps
// ErrUnparseable.
type ParseError struct {
	// Message is the parser's message, e.g. `syntax error at or near "FRM"`.
	Message string
	// Position is the 1-based character position of the error in the query
	// (0 when the parser gives none).
	Position int
}

func (e *ParseError) Error() string {
	if e.Position > 0 {
		return fmt.Sprintf("unparseable SQL at position %d: %s", e.Position, e.Message)
	}
	return "unparseable SQL: " + e.Message
}

// Unwrap makes errors.Is(err, ErrUnparseable) true.
func (e *ParseError) Unwrap() error { return ErrUnparseable }

// Statement is the classification of one SQL statement. Slices are sorted
// and free of duplicates, except OutputColumns, which is in output order.
type Statement struct {
	// Text is the statement's own text, trimmed of surrounding whitespace.
	Text string `json:"text"`
	// Kind is the lower-case statement kind: select, insert, update, delete,
	// merge, create, alter, drop, truncate, copy, grant, revoke, set, reset,
	// show, call, do, explain, prepare, execute, deallocate, declare, fetch,
	// close, listen, notify, unlisten, transaction, vacuum, analyze, lock,
	// comment or utility.
	Kind string `json:"kind"`
	// SubKind refines Kind: "create table", "set role", "copy to",
	// "select into", "select for update", "explain analyze", "begin", ...
	SubKind string `json:"sub_kind,omitempty"`
	// Name is the object the statement is about when it is not a table: the
	// prepared statement of PREPARE/EXECUTE/DEALLOCATE, the cursor of
	// DECLARE/FETCH/CLOSE, the setting of SET/RESET/SHOW, the channel of
	// LISTEN/NOTIFY/UNLISTEN, the procedure of CALL, the savepoint of
	// SAVEPOINT/RELEASE/ROLLBACK TO, the function of CREATE FUNCTION.
	Name string `json:"name,omitempty"`
	// TablesRead and TablesWritten are relations (tables, views, sequences,
	// ...), schema-qualified as written. CTE names are not tables.
	TablesRead    []string `json:"tables_read,omitempty"`
	TablesWritten []string `json:"tables_written,omitempty"`
	// Columns are the referenced columns: "table.column", "?.column" when
	// the relation is ambiguous, "table.*" for star and whole-row references.
	Columns []string `json:"columns,omitempty"`
	// FilterColumns are the columns (as in Columns) whose values decide
	// which rows a statement returns or in which order, without flowing
	// into an output column: those referenced in WHERE, JOIN conditions,
	// GROUP BY, HAVING, ORDER BY, DISTINCT ON, window definitions and
	// LIMIT, and the outputs of subqueries used there. A condition on a
	// masked column reveals something of its values even when the column
	// itself is never returned.
	FilterColumns []string `json:"filter_columns,omitempty"`
	// Functions are all called functions: through a call (aggregates and
	// window functions included), through SQL syntax the parser turns into
	// a call (SUBSTRING(x FROM y) is "substring", TRIM is "btrim", AT TIME
	// ZONE "timezone", LIKE ... ESCAPE "pg_catalog.like_escape"), or as a
	// TABLESAMPLE method. Names are as the parser gives them (unquoted
	// parts lower case, quoted parts as written) and schema-qualified as
	// written; a part holding a dot or a double quote is written quoted
	// ("\"pg_catalog.lower\""). DDL that only names a function (CREATE
	// TRIGGER, GRANT ON FUNCTION) does not call it.
	Functions []string `json:"functions,omitempty"`
	// DangerousFunctions are the called functions that are not known pure
	// reads, that is every function a policy must grant by name: all of
	// Functions except those for which BuiltinReadFunction is true
	// (built-in pg_catalog functions, unqualified or qualified
	// "pg_catalog.", on the allow-list), plus the pseudo-functions "copy
	// program" and "copy file" for COPY to or from a program or a
	// server-side file. (The JSON name is kept from when this was a short
	// deny-list, for recorded sessions.)
	DangerousFunctions []string `json:"dangerous_functions,omitempty"`
	// Operators are the operators the statement uses, as the server will
	// look them up: symbolic names as written ("+", "||", "->>"),
	// "myschema.###" for OPERATOR(myschema.###); LIKE, ILIKE and SIMILAR TO
	// as "~~", "~~*" and "~" (negated: "!~~", "!~~*", "!~"); IN, IS
	// DISTINCT FROM and IN (subquery) as "=", NOT IN (list) as "<>";
	// BETWEEN as ">=" and "<=", NOT BETWEEN as "<" and ">"; the operators
	// of ORDER BY ... USING and of op ANY/ALL (subquery) too. Any of them
	// may be user-defined.
	Operators []string `json:"operators,omitempty"`
	// Types are the types values are converted to: explicit casts (x::t,
	// CAST(x AS t)), typed literals (t 'literal'), RETURNING t of SQL/JSON
	// functions, XMLSERIALIZE, and the column types of XMLTABLE and
	// JSON_TABLE (each may run a user-defined type's input or cast
	// function). Names as for Functions, without array bounds or type
	// modifiers; SQL-standard type names the grammar treats as keywords
	// come out as the parser resolves them ("integer" and "int" are
	// "pg_catalog.int4", "varchar(10)" is "pg_catalog.varchar",
	// "timestamp with time zone" is "pg_catalog.timestamptz").
	Types []string `json:"types,omitempty"`
	// Locking reports a row-locking clause (FOR UPDATE, FOR NO KEY UPDATE,
	// FOR SHARE, FOR KEY SHARE) anywhere in a query the statement runs or,
	// for PREPARE and DECLARE, will run: top level, subqueries, CTEs, and
	// the statement inside PREPARE, DECLARE, COPY (query), CREATE TABLE AS
	// and EXPLAIN ANALYZE (not plain EXPLAIN, CREATE VIEW or other DDL,
	// which store or show a query without running it). EXECUTE locks as
	// its prepared statement does.
	Locking bool `json:"locking,omitempty"`
	// HasWhere reports whether an UPDATE or DELETE has a WHERE clause
	// (including WHERE CURRENT OF).
	HasWhere bool `json:"has_where,omitempty"`
	// Language is the body language of DO and CREATE FUNCTION/PROCEDURE.
	// Their bodies are opaque: nothing inside them is classified.
	Language string `json:"language,omitempty"`
	// Copy describes a COPY statement.
	Copy *Copy `json:"copy,omitempty"`
	// Inner is the wrapped statement of EXPLAIN, PREPARE, DECLARE CURSOR,
	// COPY (query) and CREATE TABLE AS / SELECT INTO.
	Inner *Statement `json:"inner,omitempty"`
	// OutputColumns describe the columns of the rows the statement returns
	// or, for wrappers, will return (FETCH of a DECLAREd cursor, EXECUTE of
	// a PREPAREd statement, COPY (query) TO) or, for CREATE TABLE AS, the
	// columns of the new table. Nil for statements without row output.
	OutputColumns []OutputColumn `json:"output_columns,omitempty"`
	// Args are, for EXECUTE, its arguments in order ("$1", "$2", ...), each
	// with the table columns its value is computed from (EXECUTE p((SELECT
	// ssn FROM customers LIMIT 1)) carries customers.ssn into $1), so that
	// lineage can follow a parameter into the prepared statement's output.
	Args []OutputColumn `json:"args,omitempty"`
}

// Copy describes a COPY statement.
type Copy struct {
	// Direction is "to" (server to client or file) or "from".
	Direction string `json:"direction"`
	// Table is the table as written; empty for COPY (query) TO.
	Table string `json:"table,omitempty"`
	// Columns is the column list as written, if any.
	Columns []string `json:"columns,omitempty"`
	// Query is true for COPY (query) TO.
	Query bool `json:"query,omitempty"`
	// Program is true for COPY ... PROGRAM: the server runs a shell command.
	Program bool `json:"program,omitempty"`
	// Target is "stdin", "stdout", "file" or "program".
	Target string `json:"target"`
	// Filename is the server-side file or the program command line.
	Filename string `json:"filename,omitempty"`
	// Format is "text", "csv" or "binary".
	Format string `json:"format"`
}

// OutputColumn says where one output column's values come from.
type OutputColumn struct {
	// Name is the column's output name ("?column?" when PostgreSQL would
	// invent one, "*" for a star that could not be expanded).
	Name string `json:"name"`
	// Sources are the table columns the value is computed from. A star or
	// whole-row source has Column "*". Sorted, no duplicates.
	Sources []ColumnRef `json:"sources,omitempty"`
	// Star is true when the entry stands for the expansion of table.* or *
	// over a real table, whose columns are only known from the
	// RowDescription (table OID, attribute number). It may expand to zero
	// or more actual output columns.
	Star bool `json:"star,omitempty"`
	// WholeRow is true when the value contains a whole row of a table
	// (SELECT c FROM customers c, row_to_json(c), to_json(c.*)).
	WholeRow bool `json:"whole_row,omitempty"`
	// Derived is true when the value is an expression, not a plain column.
	Derived bool `json:"derived,omitempty"`
}

// ColumnRef is a column of a table as written in the query. Table is "?"
// when it could not be determined.
type ColumnRef struct {
	Table  string `json:"table"`
	Column string `json:"column"`
}
