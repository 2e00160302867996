// Package lint checks a compiled policy ([bundle.Policy]) for mistakes that
// compile but are wrong or risky: references to things that do not exist,
// rules that can never take effect, grants without expiry or review, write
// access for agents without approval, literal secrets, masks that can never
// apply and approvals that can never be given.
//
// [Run] is a pure function of the policy and [Options]; it never reads the
// clock (Options.Now is injected) and never panics on any policy value.
// Every [Finding] carries a stable code (GH001…, documented in docs/lint.md
// and returned by [Codes]), a severity and the "file:line:col" position of
// the declaration it is about. Findings are sorted by file, line, column and
// code, so output is deterministic.
//
// The writers ([WriteText], [WriteJSON], [WriteSARIF], [WriteGitHub]) render
// findings as compiler-style text, JSON, SARIF 2.1.0 for code scanning, and
// GitHub Actions workflow annotations.
//
// Rule meaning (subject and resource expansion, pattern coverage) comes from
// package compiler/scope, which the semantic diff shares.
package lint
