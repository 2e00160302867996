// Package scope answers questions about what a compiled policy rule covers:
// which identities its subjects expand to (through groups and "*"), which
// resources its resource list expands to (through tags and "*"), and whether
// one rule's command match is at least as wide as another's.
//
// It is shared by the policy linter (compiler/lint) and the semantic access
// diff (compiler/diff), so both agree on what a rule means. Everything here
// works on a [bundle.Policy] and never on CUE.
//
// Coverage is decided pattern by pattern and list by list: pattern a covers
// pattern b when every concrete value that b matches is also matched by a.
// The checks are sound (a "covers" answer is always right) but not complete:
// two lists whose union covers a pattern that neither covers alone are
// reported as not covering. Callers use coverage to prove that something is
// redundant or unchanged, so a false "not covered" only costs an extra
// report, never a missed one.
//
// An [Index] is immutable after [NewIndex] and safe for concurrent use.
package scope
