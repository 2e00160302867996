// Package postgres is the record.Backend for deployments where several
// gateways share recordings and approvals: a pgx connection pool on one
// PostgreSQL schema (configurable, so tenants and tests can be isolated).
//
// The schema is versioned in code (migrations) and applied by Open under an
// advisory lock, so gateways starting together migrate once. Events are
// appended in one INSERT ... SELECT FROM unnest(...) per batch. JSON
// columns are text, byte for byte, so the hash chain can be recomputed from
// what is stored; times are timestamptz (microsecond precision, which is
// the precision the recorder hashes).
//
// Approval changes are announced with pg_notify inside the changing
// transaction (delivered at commit) on the channel "<schema>_approvals";
// WatchApprovals listens on a dedicated connection, so an approval given on
// one gateway releases a statement waiting on another.
package postgres
