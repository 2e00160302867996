// Package conformance tests a policy change against what agents really did
// before it merges.
//
// It has four parts:
//
//   - The recorded-session format gatehouse.sessions/v1 (ReadSessions,
//     WriteSessions, LoadSessions, Export): JSON lines, a header first, then
//     each session followed by its command events with the recorded facts
//     and decision. Reading is strict: unknown versions and fields,
//     malformed or oversized lines and truncated files are *FormatError
//     values with the file and line; nothing is half-loaded. Export reads a
//     record.Reader and can pseudonymise identities, client addresses,
//     claims and SQL literals.
//   - Replay: every event is re-decided under a base and a head Policy
//     (a bundle file, a policy directory or a Git revision, see LoadPolicy)
//     exactly as the gateway decides: each distinct SQL text is classified
//     once with the runtime's classifier and converted with proxy.Facts;
//     EXECUTE and FETCH resolve through proxy.SQLState per session;
//     implicitly allowed kinds (proxy.ImplicitlyAllowed) need no grant;
//     the recorded event time drives expiries and time windows. Sessions
//     are replayed in parallel by a worker pool; the Result keeps corpus
//     order. BuildReport groups changes by Kind, applies the expected
//     changes (LoadExpected) and renders Markdown, JSON and JUnit.
//   - Policy unit tests (RunTests): the policy's own `tests` and the cases
//     of conformance/cases, decided through the same path.
//   - Check: the pull-request pipeline (compile, lint, tests, semantic
//     diff, replay) with one combined report.
//
// Invariants: replaying a corpus under the policy it was recorded with
// reproduces every recorded decision (effect, rule ids, masked flag);
// output order never depends on the number of workers; a Policy is
// immutable and safe for concurrent use.
//
// Expected-change and case files are CUE (JSON is valid CUE); they are
// evaluated here with cuelang.org/go, the only use of CUE outside the
// compiler.
package conformance
