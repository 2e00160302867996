// Command compare reads two `go test -json` streams of the same test suite,
// one run directly against PostgreSQL and one through Gatehouse, and prints
// a side-by-side summary: tests passed, failed and skipped in each run, the
// tests that pass directly but not through the gateway counted by failure
// message and each with the first lines of its output, the other
// differences, and the tests that pass both ways but take at least -slow
// seconds longer through the gateway (often a failure in disguise: a wait
// that ended at the test's own deadline).
//
// It exits 1 when a test that passes directly does not pass through the
// gateway (fails, is skipped, or has no result because its test binary
// died) and the test is not on the allow-list of deliberate differences;
// 2 on bad input (unreadable files, a malformed allow-list, a direct run
// without a single passing test, which means the environment is broken).
//
// The allow-list has one entry per line: a package path relative to the
// suite's module ("." for the root package), a test or example name, and a
// reason, separated by white space; `#` starts a comment. An entry for a
// test covers its subtests. An entry without a reason is an error, so every
// accepted difference says why:
//
//	. TestConnect  the gateway logs in with the resource's database and user (docs/security-model.md, Identity)
//
// scripts/pgx-suite.sh builds and runs it; see docs/compatibility.md.
package main
