package sqlite

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/recordtest"
)

// TestMigrateEventsToRowidTable opens a database written with schema
// version 1 (events in a WITHOUT ROWID table) and checks that version 2
// keeps every event, field for field, and still enforces one event per
// (session, seq).
func TestMigrateEventsToRowidTable(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path+"?"+pragmas)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, migrations[0]+`;
		CREATE TABLE schema_version (version INTEGER NOT NULL);
		INSERT INTO schema_version (version) VALUES (1);
		INSERT INTO sessions (id, identity, identity_kind, groups_json, claims, resource, resource_type,
			client_addr, gateway_id, bundle_revision, started_at)
		VALUES ('s1', 'agent', 'agent', '[]', '{}', 'db', 'postgres', '127.0.0.1:1', 'gw', 'rev', 1000)`); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var want []record.Event
	for seq := int64(1); seq <= 3; seq++ {
		e := record.Event{SessionID: "s1", Seq: seq, Time: base.Add(time.Duration(seq) * time.Second),
			Kind: record.KindCommand, Protocol: "postgres", Command: "SELECT 1", Facts: []byte(`{"kind":"select"}`),
			Effect: "allow", RuleIDs: []string{"r1"}, BundleRevision: "rev", Reason: "allowed", Masked: seq == 2,
			DurationMicros: 10 * seq, Rows: seq, PrevHash: "p", Hash: "h"}
		if _, err := db.ExecContext(ctx, insertSQL(1), e.SessionID, e.Seq, micros(e.Time), e.Kind, e.Protocol,
			e.Command, string(e.Facts), e.Effect, `["r1"]`, e.BundleRevision, e.Reason, e.ApprovalID, e.Masked,
			e.DurationMicros, e.Rows, e.Error, "", e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatalf("open version 1 database: %v", err)
	}
	defer s.Close()
	var v int
	if err := s.DB().QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version = %d, %v; want %d", v, err, len(migrations))
	}
	got, err := s.Events(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events after migration:\n got %+v\nwant %+v", got, want)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO events SELECT * FROM events WHERE seq = 1`); err == nil {
		t.Fatal("a second event with the same (session_id, seq) was accepted")
	}
	var cascade int
	if _, err := s.DB().ExecContext(ctx, `DELETE FROM sessions WHERE id = 's1'`); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&cascade); err != nil || cascade != 0 {
		t.Fatalf("events left after their session was deleted: %d, %v", cascade, err)
	}
}

// TestMigrateToEvidence opens a database of schema version 2, written
// before signed evidence existed, and checks that it upgrades in place:
// the old session verifies as a chain and is reported unsigned.
func TestMigrateToEvidence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", path+"?"+pragmas)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, migrations[0]+";"+migrations[1]+`;
		CREATE TABLE schema_version (version INTEGER NOT NULL);
		INSERT INTO schema_version (version) VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	sess := record.Session{ID: "old-1", Identity: "agent", IdentityKind: "agent", Resource: "db", ResourceType: "postgres",
		GatewayID: "gw", StartedAt: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)}
	evs := []record.Event{
		{Time: sess.StartedAt.Add(time.Second), Kind: record.KindCommand, Command: "SELECT 1", Effect: "allow"},
		{Time: sess.StartedAt.Add(2 * time.Second), Kind: record.KindEnd, Reason: "client closed"},
	}
	if err := record.SealChain(&sess, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO sessions (id, identity, identity_kind, groups_json, claims, resource,
		resource_type, client_addr, gateway_id, bundle_revision, started_at, ended_at, end_reason)
		VALUES (?, ?, ?, '', '', ?, ?, '', ?, '', ?, ?, ?)`, sess.ID, sess.Identity, sess.IdentityKind, sess.Resource,
		sess.ResourceType, sess.GatewayID, micros(sess.StartedAt), micros(evs[1].Time), evs[1].Reason); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if _, err := db.ExecContext(ctx, insertSQL(1), e.SessionID, e.Seq, micros(e.Time), e.Kind, e.Protocol,
			e.Command, "", e.Effect, "", e.BundleRevision, e.Reason, e.ApprovalID, e.Masked,
			e.DurationMicros, e.Rows, e.Error, "", e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatalf("open version 2 database: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	var v int
	if err := s.DB().QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version = %d, %v; want %d", v, err, len(migrations))
	}
	recordtest.CheckUpgraded(t, s, "old-1")
}
