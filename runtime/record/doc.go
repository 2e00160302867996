// Package record records every gateway session: who connected to what, when,
// and every command with its decision, rule ids, bundle revision, duration,
// rows and error (results only when policy asks, already masked). It also
// persists approval requests and votes, so that several gateways share them.
//
// # Types
//
//   - Session is the header of one connection; Event is one step of it.
//   - Store (write side), Reader (read side and retention), ApprovalStore
//     and ApprovalWatcher are the interfaces at the seam; Backend composes
//     them. Implementations: record/sqlite (default, embedded) and
//     record/postgres (shared by several gateways). Both pass the
//     compliance suite in record/recordtest.
//   - Recorder is what proxies call on the hot path. StartSession returns a
//     SessionRecorder whose Record assigns Seq and the hash chain and
//     enqueues without blocking; Run batches the queue into the Store.
//
// # Hash chain
//
// Each session's events form a chain in Seq order:
//
//	Hash = hex(sha256(PrevHash || EncodeEvent(event)))
//
// The first event's PrevHash is HeaderHash(session), the hash of the
// canonical encoding of the immutable header fields; the session's end is
// recorded as a final KindEnd event whose Reason and Time must match the
// header's EndReason and EndedAt. Verify recomputes the chain from what the
// store returns, so editing, deleting or reordering any event, or editing
// the header, is detected and reported with the session and seq. Removing
// trailing events of a session that is still open cannot be detected.
// Timestamps are hashed at microsecond precision in UTC (Timestamp), the
// precision every store keeps; JSON fields are hashed as the compact bytes
// that stores keep verbatim.
//
// # Delivery guarantee
//
// Every event passed to Record is written to the store, written to the
// spool (when Config.SpoolDir is set), or its Record call returned an
// error, in which case the proxy denies the command. The writer retries
// failed batches with backoff; by default the recorder fails closed: after
// Config.FailAfter consecutive failures that no spool absorbs, Record
// returns ErrRecorderUnavailable. A full queue always refuses. If events
// accepted earlier still cannot be written or spooled when Close's deadline
// passes, Close (and Run) return ErrUnflushed with their number and log it.
// Store writes are idempotent (same session, seq and hash), so a batch is
// simply retried after an ambiguous failure and spooled batches are
// replayed in order, also after a restart.
//
// # Concurrency
//
// Recorder and SessionRecorder methods are safe for concurrent use; events
// of one session are chained in the order Record is called. Store
// implementations are safe for concurrent use.
package record
