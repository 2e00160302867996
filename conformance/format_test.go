package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

const (
	hdr  = `{"format":"gatehouse.sessions/v1","sessions":1,"events":1}`
	sess = `{"session":{"id":"s1","identity":"claude-coder","resource":"orders-db","resource_type":"postgres","started_at":"2026-11-27T10:00:00Z"}}`
	evt  = `{"event":{"seq":1,"time":"2026-11-27T10:00:01Z","protocol":"postgres","command":"SELECT 1","decision":{"effect":"allow"}}}`
)

func TestReadSessionsRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		input string
		line  int
		err   error
	}{
		{"empty file", "", 1, ErrMalformed},
		{"no header", sess + "\n" + evt + "\n", 1, ErrFormatVersion},
		{"future version", `{"format":"gatehouse.sessions/v2","sessions":0,"events":0}` + "\n", 1, ErrFormatVersion},
		{"unknown header field", `{"format":"gatehouse.sessions/v1","sessions":1,"events":1,"extra":1}` + "\n", 1, ErrUnknownField},
		{"malformed json", hdr + "\n" + sess + "\n" + `{"event":{"seq":1,` + "\n", 3, ErrMalformed},
		{"unknown event field", hdr + "\n" + sess + "\n" + strings.Replace(evt, `"seq":1`, `"seq":1,"sql":"x"`, 1) + "\n", 3, ErrUnknownField},
		{"unknown line kind", hdr + "\n" + `{"approval":{}}` + "\n", 2, ErrUnknownField},
		{"both kinds", hdr + "\n" + `{"session":` + sess[11:len(sess)-1] + `,"event":` + evt[9:len(evt)-1] + "}\n", 2, ErrMalformed},
		{"event before session", hdr + "\n" + evt + "\n", 2, ErrMalformed},
		{"bad effect", hdr + "\n" + sess + "\n" + strings.Replace(evt, `"allow"`, `"maybe"`, 1) + "\n", 3, ErrMalformed},
		{"seq out of order", `{"format":"gatehouse.sessions/v1","sessions":1,"events":2}` + "\n" + sess + "\n" + evt + "\n" + evt + "\n", 4, ErrMalformed},
		{"session without identity", hdr + "\n" + strings.Replace(sess, `"claude-coder"`, `""`, 1) + "\n", 2, ErrMalformed},
		{"truncated", `{"format":"gatehouse.sessions/v1","sessions":2,"events":1}` + "\n" + sess + "\n" + evt + "\n", 3, ErrMalformed},
		{"blank line", hdr + "\n" + sess + "\n\n" + evt + "\n", 3, ErrMalformed},
		{"trailing data", hdr + "\n" + sess + " {}\n" + evt + "\n", 2, ErrMalformed},
		{"line too long", hdr + "\n" + sess + "\n" + strings.Replace(evt, "SELECT 1", strings.Repeat("x", MaxLineBytes), 1) + "\n", 3, ErrLineTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ReadSessions(strings.NewReader(tc.input), "f.jsonl")
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if fe.Line != tc.line || !errors.Is(err, tc.err) {
				t.Errorf("error %q at line %d, want line %d wrapping %v", err, fe.Line, tc.line, tc.err)
			}
			if !strings.HasPrefix(err.Error(), "f.jsonl:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestReadSessionsAccepts(t *testing.T) {
	t.Parallel()
	c, err := ReadSessions(strings.NewReader(hdr+"\r\n"+sess+"\n"+evt), "ok.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sessions) != 1 || len(c.Sessions[0].Events) != 1 || c.Sessions[0].Events[0].Line != 3 {
		t.Errorf("corpus %+v", c)
	}
	var b bytes.Buffer
	if err := WriteSessions(&b, c); err != nil {
		t.Fatal(err)
	}
	again, err := ReadSessions(&b, "again.jsonl")
	if err != nil || again.Statements() != 1 {
		t.Fatalf("round trip: %v", err)
	}
}

// TestExportFromSQLite writes a recording into a real SQLite store and
// exports it, plain and anonymized.
func TestExportFromSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "rec.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := record.Timestamp(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	s := &record.Session{ID: record.NewID(start), Identity: "claude-coder", IdentityKind: "agent", Groups: []string{"coding-agents"},
		Claims: map[string]any{"sub": "0c5f6e2a"}, Resource: "orders-db", ResourceType: "postgres", ClientAddr: "10.1.2.3:5555",
		GatewayID: "gw", BundleRevision: "rev1", StartedAt: start}
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	facts := json.RawMessage(`{"kind":"select","tables_read":["customers"],"columns":["customers.email"]}`)
	evs := []record.Event{
		{Time: start.Add(time.Second), Kind: record.KindCommand, Protocol: "postgres", Command: "SELECT email FROM customers WHERE name = 'Ada'",
			Facts: facts, Effect: "allow", RuleIDs: []string{"agents-read-orders", "mask-customer-pii"}, Masked: true, Rows: 1,
			Results: json.RawMessage(`[["a***@example.com"]]`)},
		{Time: start.Add(2 * time.Second), Kind: record.KindCommand, Protocol: "postgres", Command: "SELECT 1",
			Effect: "deny", Reason: "not executed: another statement in the same message was denied"},
		{Time: start.Add(3 * time.Second), Kind: record.KindEnd, Reason: "client closed"},
	}
	if err := record.SealChain(s, evs); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	c, err := Export(ctx, st, ExportOptions{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sessions) != 1 || len(c.Sessions[0].Events) != 2 {
		t.Fatalf("exported %+v", c.Sessions)
	}
	e := c.Sessions[0].Events[0]
	if !e.Decision.Masked || e.Command != evs[0].Command || string(e.Facts) != string(facts) || c.Sessions[0].Events[1].Collateral != true {
		t.Errorf("events %+v", c.Sessions[0].Events)
	}
	var b bytes.Buffer
	if err := WriteSessions(&b, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "a***@example.com") || strings.Contains(b.String(), "results") {
		t.Error("export contains results")
	}
	if _, err := ReadSessions(&b, "export.jsonl"); err != nil {
		t.Fatalf("export does not read back: %v", err)
	}

	an, err := Export(ctx, st, ExportOptions{Anonymize: true, Key: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := WriteSessions(&b, an); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, leak := range []string{"claude-coder", "10.1.2.3", "0c5f6e2a", "'Ada'"} {
		if strings.Contains(out, leak) {
			t.Errorf("anonymized export contains %q:\n%s", leak, out)
		}
	}
	as := an.Sessions[0]
	if !strings.HasPrefix(as.Identity, "identity-") || !strings.HasSuffix(as.ClientAddr, ":5555") ||
		as.Events[0].Command != "SELECT email FROM customers WHERE name = $1" || !an.Header.Anonymized {
		t.Errorf("anonymized session %+v", as)
	}
	// Consistent: the same key gives the same pseudonyms.
	again, _ := Export(ctx, st, ExportOptions{Anonymize: true, Key: []byte("0123456789abcdef")})
	if again.Sessions[0].Identity != as.Identity {
		t.Error("pseudonyms differ between exports with one key")
	}
	// Anonymized sessions replay by their recorded groups.
	rc, err := ReadSessions(&b, "anon.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	res := replay(t, rc, nil, currentPolicy(t))
	if len(res.Changes) != 0 || res.Skipped != 1 {
		t.Errorf("anonymized replay: %+v", res.Changes)
	}
}

func TestLoadSessionsDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.jsonl", hdr+"\n"+sess+"\n"+evt+"\n")
	writeFile(t, dir, "b.jsonl", hdr+"\n"+sess+"\n"+`{"event":{"seq":1}}`+"\n")
	_, err := LoadSessions(dir)
	var fe *FormatError
	if !errors.As(err, &fe) || filepath.Base(fe.File) != "b.jsonl" || fe.Line != 3 {
		t.Errorf("error %v, want b.jsonl:3", err)
	}
	if _, err := LoadSessions(t.TempDir()); !errors.Is(err, ErrNoSessions) {
		t.Errorf("empty directory: %v", err)
	}
}
