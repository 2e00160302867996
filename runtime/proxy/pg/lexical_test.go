package pg_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// roundTrip sends msgs and reads until n ReadyForQuery, returning the rows'
// first values and the errors' SQLSTATEs and messages.
func roundTrip(t *testing.T, pc *pgconn.PgConn, n int, msgs ...pgproto3.FrontendMessage) (rows []string, errs []string) {
	t.Helper()
	fe := pc.Frontend()
	for _, m := range msgs {
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = pc.Conn().SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = pc.Conn().SetReadDeadline(time.Time{}) }()
	for n > 0 {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			rows = append(rows, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			errs = append(errs, m.Code+" "+m.Message)
		case *pgproto3.ReadyForQuery:
			n--
		}
	}
	return rows, errs
}

// TestSessionEncodingAndStrings: the gateway reads client text in the
// session's real client_encoding and standard_conforming_strings, taken
// from the backend's reports, and waits for the backend's answer to a SET
// before it classifies what follows.
func TestSessionEncodingAndStrings(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	hooks := newHooks()
	e := startProxy(t, hooks, nil)
	pc, err := pgconn.Connect(ctx, e.dsn(testToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(context.Background()) })
	q := func(s string) *pgproto3.Query { return &pgproto3.Query{String: s} }

	if _, errs := roundTrip(t, pc, 1, q("SET client_encoding = 'LATIN1'")); len(errs) > 0 {
		t.Fatalf("SET client_encoding: %v", errs)
	}
	rows, errs := roundTrip(t, pc, 1, q("SELECT '\xe9t\xe9'"))
	if len(errs) > 0 || len(rows) != 1 || rows[0] != "\xe9t\xe9" {
		t.Fatalf("LATIN1 text: rows %q errs %v", rows, errs)
	}
	// The marker is found in the text the judge saw, converted to UTF-8.
	if _, errs := roundTrip(t, pc, 1, q("SELECT '\xe9DENYME'")); len(errs) != 1 || !strings.HasPrefix(errs[0], "42501") {
		t.Fatalf("denied LATIN1 text: %v", errs)
	}
	checked := hooks.Sessions()[0].Checked()
	if !containsString(checked, "SELECT 'éDENYME'") {
		t.Fatalf("the judge saw %q; want the UTF-8 text", checked)
	}

	// Shift_JIS: 0x95 0x5C is one character whose second byte is a
	// backslash. Read byte by byte it would escape the closing quote.
	if _, errs := roundTrip(t, pc, 1, q("SET client_encoding = 'SJIS'")); len(errs) > 0 {
		t.Fatalf("SET client_encoding SJIS: %v", errs)
	}
	rows, errs = roundTrip(t, pc, 1, q("SELECT '\x95\x5c' AS x"))
	if len(errs) > 0 || len(rows) != 1 || rows[0] != "\x95\x5c" {
		t.Fatalf("SJIS text: rows %q errs %v", rows, errs)
	}
	if _, errs := roundTrip(t, pc, 1, q("SET client_encoding = 'UTF8'")); len(errs) > 0 {
		t.Fatal(errs)
	}

	// standard_conforming_strings off: texts with a backslash are refused,
	// others pass.
	if _, errs := roundTrip(t, pc, 1, q("SET standard_conforming_strings = off")); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, errs := roundTrip(t, pc, 1, q(`SELECT 'a\'' ; SELECT 'DENYME'; --'`)); len(errs) != 1 || !strings.HasPrefix(errs[0], "0A000") {
		t.Fatalf("backslash with standard_conforming_strings off: %v", errs)
	}
	if rows, errs := roundTrip(t, pc, 1, q("SELECT 'plain'")); len(errs) > 0 || len(rows) != 1 {
		t.Fatalf("plain text: %q %v", rows, errs)
	}
	// Pipelined: the SELECT after the SET is classified only once the
	// backend reported the new value, so its backslash is allowed.
	rows, errs = roundTrip(t, pc, 2, q("SET standard_conforming_strings = on"), q(`SELECT 'a\'`))
	if len(errs) > 0 || len(rows) != 1 || rows[0] != `a\` {
		t.Fatalf("pipelined after SET on: rows %q errs %v", rows, errs)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSearchPathFromBackend: the session learns its effective search path
// from the backend at login, and forgets it when a statement may change it.
func TestSearchPathFromBackend(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	hooks := newHooks()
	e := startProxy(t, hooks, nil)
	pc, err := pgconn.Connect(ctx, e.dsn(testToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(context.Background()) })
	s := hooks.Sessions()[0]
	if got := s.SearchPath(); strings.Join(got, ",") != "pg_catalog,public" {
		t.Fatalf("search path at login: %q, want pg_catalog,public", got)
	}
	if _, errs := roundTrip(t, pc, 1, &pgproto3.Query{String: "SELECT 1; SET search_path = public"}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := s.SearchPath(); got != nil {
		t.Fatalf("search path after SET: %q, want unknown (nil)", got)
	}
}
