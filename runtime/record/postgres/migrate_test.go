package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/recordtest"
)

// TestMigrateToEvidence writes a schema of version 1, from before signed
// evidence existed, and checks that Open upgrades it in place: the old
// session verifies as a chain and is reported unsigned.
func TestMigrateToEvidence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testdb.Postgres(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sess := record.Session{ID: "old-1", Identity: "agent", IdentityKind: "agent", Resource: "db", ResourceType: "postgres",
		GatewayID: "gw", StartedAt: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)}
	evs := []record.Event{
		{Time: sess.StartedAt.Add(time.Second), Kind: record.KindCommand, Command: "SELECT 1", Effect: "allow"},
		{Time: sess.StartedAt.Add(2 * time.Second), Kind: record.KindEnd, Reason: "client closed"},
	}
	if err := record.SealChain(&sess, evs); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE SCHEMA gatehouse`, `SET search_path TO gatehouse`, migrations[0],
		`CREATE TABLE schema_version (version integer NOT NULL)`, `INSERT INTO schema_version VALUES (1)`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO sessions (id, identity, identity_kind, groups_json, claims, resource,
		resource_type, client_addr, gateway_id, bundle_revision, started_at, ended_at, end_reason)
		VALUES ($1, $2, $3, '', '', $4, $5, '', $6, '', $7, $8, $9)`, sess.ID, sess.Identity, sess.IdentityKind,
		sess.Resource, sess.ResourceType, sess.GatewayID, sess.StartedAt, evs[1].Time, evs[1].Reason); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if _, err := conn.Exec(ctx, `INSERT INTO events VALUES ($1, $2, $3, $4, $5, $6, '', $7, '', $8, $9, $10, $11, $12, $13, $14, '', $15, $16)`,
			e.SessionID, e.Seq, e.Time, e.Kind, e.Protocol, e.Command, e.Effect, e.BundleRevision, e.Reason, e.ApprovalID,
			e.Masked, e.DurationMicros, e.Rows, e.Error, e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(ctx, Config{DSN: dsn})
	if err != nil {
		t.Fatalf("open version 1 schema: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	var v int
	if err := s.Pool().QueryRow(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version = %d, %v; want %d", v, err, len(migrations))
	}
	recordtest.CheckUpgraded(t, s, "old-1")
}
