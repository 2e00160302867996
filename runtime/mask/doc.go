// Package mask hides sensitive values in query results.
//
// A Masker is built once per bundle from the policy's classifiers
// (Config.Classifiers). For each statement whose decision carries masking,
// the proxy builds a Plan from the decision's MaskSpecs, the statement's
// output columns (converted from sqlclass.OutputColumn, field by field) and
// the RowDescription fields; the Plan then rewrites every DataRow
// (RewriteDataRow) or COPY text line (RewriteCopyLine).
//
// Per output column the plan decides:
//
//   - Clear: the value passes (content classifiers and JSON paths still run
//     on text values).
//   - Mask: the value is replaced by the masking style's text: "***"
//     (redact; the length is not preserved, so it leaks nothing), a keyed
//     digest "h:" + 16 hex digits (hash; equal inputs give equal outputs so
//     joins and grouping still work, and the key keeps dictionary attacks
//     out), or the last 4 characters preceded by "*" for each hidden
//     character (partial; values shorter than 8 characters are fully
//     redacted). JSON columns get the mask as a JSON string. Non-text
//     columns (numbers, dates, ...) become NULL, because a client could
//     not parse a mask text in them.
//   - Null: binary-format values of masked columns become NULL (or, when a
//     spec says binary "deny", NewPlan returns ErrDeny).
//
// A column is resolved through the Catalog when its RowDescription field
// carries a table OID; otherwise from the statement's output columns by
// position. Derived columns (expressions, aggregates, casts, JSON and row
// constructors) over a masked source are masked: never left clear. When a
// column cannot be resolved at all and the statement touched a table with
// masked columns, it is masked (fail safe) and the plan says why.
//
// When several MaskSpecs apply they are merged: the union of columns,
// classifiers and JSON paths; binary "deny" wins over "null"; the strongest
// style wins (redact over hash over partial).
//
// Content classifiers are RE2 patterns compiled once; a match must also
// pass the classifier's validator (Luhn for card numbers, ISO 13616 mod 97
// for IBANs). Values that cannot match (no '@' for email, too few digits
// for card numbers, SSNs, IBANs and phone numbers) skip the regex.
//
// COPY: text format is rewritten field by field with COPY escapes decoded
// and re-encoded; CSV and binary COPY cannot be rewritten safely, so a plan
// that would have to change anything in them is refused with ErrDeny.
//
// Concurrency: a Masker and a Plan are immutable after construction and
// safe for concurrent use. RewriteDataRow modifies its argument in place.
package mask
