// Package recordtest is the compliance suite every record.Store
// implementation passes: sessions, events, ordering, hash-chain
// verification and tamper detection, retention, approvals and their
// notifications, and the Recorder on top of the store (load without loss,
// with and without reservations; fail-closed behaviour; spool replay).
//
// Usage from an implementation's test:
//
//	func TestCompliance(t *testing.T) {
//		recordtest.Run(t, newStore, recordtest.WithRawSQL(execRaw))
//	}
//
// newStore returns a fresh, empty store for each subtest and registers its
// Close with t.Cleanup; the store must also implement record.Backend.
// WithRawSQL lets the tamper tests edit rows behind the store's back.
package recordtest
