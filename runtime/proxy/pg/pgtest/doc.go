// Package pgtest holds reusable fakes for testing the PostgreSQL proxy: a
// Hooks implementation driven by markers in the SQL text, a column-masking
// RowRewriter, and a scripted in-memory backend. It is imported only by
// tests and never linked into the gateway binary.
package pgtest
