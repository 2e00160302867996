// Package sqlite is the default record.Backend: an embedded SQLite database
// (modernc.org/sqlite, pure Go) in WAL mode, with zero set-up.
//
// One connection writes (SQLite allows one writer at a time; serialising
// in the pool avoids busy waits) and a small pool of query-only
// connections reads concurrently. The schema is versioned in code
// (migrations) and applied by Open. Times are stored as Unix microseconds;
// JSON columns are stored as text, byte for byte, so the hash chain can be
// recomputed from what is stored.
//
// WatchApprovals is an in-process broadcast: it sees the changes made
// through this Store value. Several gateways that share approvals use the
// PostgreSQL store instead.
package sqlite
