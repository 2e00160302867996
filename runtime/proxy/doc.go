// Package proxy is the protocol-independent half of every data path:
// authenticate the caller, classify each command, decide, pause for
// approval, plan masking, and record.
//
// Protocol packages (runtime/proxy/pg, ...) hold wire handling only. They
// call a Pipeline once per connection (Authenticate) and the returned
// Session once per command (CheckSQL, then Done when the command completes).
//
//	client ──token──▶ Pipeline.Authenticate ─▶ identity.Verify ─▶ identity.Resolve ─▶ record.StartSession
//	client ──SQL────▶ Session.CheckSQL ─▶ sqlclass ─▶ engine.Decide (per statement) ─▶ combine
//	                                   └▶ deny: record now, client sees the reason
//	                                   └▶ approve: approval.Create, NOTICE, Wait
//	                                   └▶ allow: masks planned by the protocol package
//	backend ──result▶ Session.Done ─▶ record (rows, duration, error)
//
// Invariants:
//   - Fail closed. No active bundle, an unparseable command, a recorder that
//     cannot take events, an unknown prepared statement or cursor: deny, with
//     a reason the client sees.
//   - A string of several statements is judged statement by statement and
//     denied as a whole if any part is denied; nothing of it reaches the
//     backend.
//   - Each decision uses the engine active when the command arrived; a
//     bundle reload never changes a decision in flight.
//   - Credentials are resolved here (ResolveCredential) and handed to the
//     protocol package for the backend login only; they never appear in an
//     error, log line or recording.
package proxy
