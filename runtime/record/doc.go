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
//     SessionRecorder. Its Reserve returns a Reservation: room for events
//     the session will record; Reservation.Record assigns Seq and the hash
//     chain and queues the event in that room. (SessionRecorder.Record
//     does the same without a reservation and refuses when no room is free
//     at once.) Run batches the queue into the Store.
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
// # Signed evidence
//
// A writer of the store can rewrite a session and recompute its hashes,
// or delete it whole; the chain alone does not show that. With
// Config.Signer (the gateway's Ed25519 key) the recorder also stores:
//
//   - a Seal per ended session, signed in End (never per event): the
//     session's HeaderHash, the seq and hash of its end event, and the
//     end's time and reason (EncodeSeal). It is written with the end,
//     through the spool if need be.
//   - Checkpoints, every Config.CheckpointInterval or
//     Config.CheckpointEvents written events: the head (last seq and
//     hash, and the end if the session ended) of every session the writer
//     has written since the previous checkpoint, signed
//     (EncodeCheckpoint). A gateway's checkpoints form a chain by Seq and
//     PrevHash. The writer notes a head only after the store accepted it,
//     so a checkpoint never names what the store lacks. A checkpoint also
//     carries the retention cut-off (Retain), so that audits tell a
//     deletion by retention from any other.
//
// AuditSession and AuditAll check, against a KeyRing of trusted public
// keys: every chain; every seal (signature, and that it matches the stored
// head and end); every checkpoint (hash, signature, no gap in the chain,
// optional anchors known from outside the store); and that every session
// a checkpoint names is present with at least the events it recorded.
// What a writer of the store can still hide is in docs/security-model.md:
// in short, what no signature covers yet (events and sessions written
// after the last checkpoint a verifier knows of, unsealed sessions
// without RequireSignatures) or everything, with the gateway's key.
//
// # Delivery guarantee
//
// Every event passed to Record or Reservation.Record is written to the
// store, written to the spool (when Config.SpoolDir is set), or the call
// returned an error. The gateway makes that error come before the command
// runs: it calls Reserve before forwarding a command, and a command whose
// Reserve failed is denied and never forwarded; when the command's outcome
// arrives, Reservation.Record cannot fail for lack of room or a failing
// store, only for programmer errors (an invalid event, a used-up
// reservation) or races the gateway must prevent (recording after End or
// Close). So every command that ran is recorded, and nothing is dropped
// silently.
//
// The writer retries failed batches with backoff. By default the recorder
// fails closed: after Config.FailAfter consecutive failures that no spool
// absorbs, Reserve, Record and StartSession return ErrRecorderUnavailable
// at once (never waiting on a dead store) and the proxy denies with it;
// events already reserved are still accepted and queued. With
// Config.FailOpen they keep accepting while there is room, without
// waiting. If events accepted earlier still cannot be written or spooled
// when Close's deadline passes, Close (and Run) return ErrUnflushed with
// their number and log it. Store writes are idempotent (same session, seq
// and hash), so a batch is simply retried after an ambiguous failure and
// spooled batches are replayed in order, also after a restart.
//
// # Flow control
//
// Every queued item (session header or event) holds a slot from its
// reservation until the writer has written or spooled it. One session may
// hold at most Config.SessionQueue slots, all sessions together at most
// Config.QueueSize. A session that outruns the store waits in Reserve (so
// its proxy stops reading that client) instead of filling a queue shared
// with the others, who keep getting slots as the writer frees them.
//
// Waiting is first come, first served across sessions, in one list: when
// slots are freed, waiters are served in order; a waiter whose own session
// is at its cap is passed over (it waits for its own events, not for
// anybody else's), and nobody overtakes the first waiter that needs room
// under the global cap. A session that keeps reserving thus queues behind
// those already waiting; with one reserving goroutine per session, the
// sessions blocked on the global cap are served round robin.
//
// The session's end is never refused for lack of room: End waits for a
// slot at most Config.CloseTimeout and then queues the end event past the
// caps (at most one item per session). StartSession waits for a slot for
// the header. Close refuses waiters, voids open reservations, and flushes
// everything recorded.
//
// Healthy reports a full queue as unavailable, which suits callers of the
// non-blocking Record; Available reports only a closed recorder or a
// failing store, the states in which Reserve refuses.
//
// # Concurrency
//
// Recorder, SessionRecorder and Reservation methods are safe for
// concurrent use; events of one session are chained in the order their
// Record calls take the session's lock. A Reservation may be used from
// another goroutine than the one that reserved it. Store implementations
// are safe for concurrent use.
package record
