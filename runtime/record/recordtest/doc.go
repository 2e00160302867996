// Package recordtest is the compliance suite every record.Store
// implementation passes: sessions, events, ordering, hash-chain
// verification and tamper detection, retention, approvals and their
// notifications, the Recorder on top of the store (load without loss,
// with and without reservations; fail-closed behaviour; spool replay), and
// the signed evidence: seals, checkpoint chains and their audit, with a
// table of tamperings (tamper.go) that the audit must detect or, for the
// documented window, let pass. Key and KeyRing give fixed test keys;
// CheckUpgraded checks a store upgraded from before signed evidence.
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
