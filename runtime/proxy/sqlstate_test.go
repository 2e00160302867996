package proxy

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// Resolve is shared by the gateway and conformance replay; its refusals must
// not depend on the policy.
func TestSQLStateResolve(t *testing.T) {
	t.Parallel()
	c, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	state := NewSQLState()
	classify := func(sql string) []sqlclass.Statement {
		t.Helper()
		st, err := c.Classify(sql)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, tc := range []struct {
		sql, deny, kind string
	}{
		{"SET standard_conforming_strings = off", "", "set"},
		{"RESET client_encoding", "", "reset"},
		{"SET search_path = public", "", "set"},
		{"EXECUTE p1", "not prepared through this gateway", ""},
		{"FETCH 1 FROM c1", "not declared through this gateway", ""},
		{"PREPARE p1 AS DELETE FROM orders WHERE id = $1", "", "delete"},
	} {
		st := classify(tc.sql)[0]
		target, derr := state.Resolve(&st)
		switch {
		case tc.deny != "" && (derr == nil || !strings.Contains(derr.Message, tc.deny)):
			t.Errorf("%s: got %v, want a denial naming %q", tc.sql, derr, tc.deny)
		case tc.deny == "" && derr != nil:
			t.Errorf("%s: unexpected denial %v", tc.sql, derr)
		case tc.deny == "" && target.Kind != tc.kind:
			t.Errorf("%s: resolved kind %q, want %q", tc.sql, target.Kind, tc.kind)
		}
	}
	// After PREPARE is committed, EXECUTE resolves to the prepared write.
	state.Commit(classify("PREPARE p1 AS DELETE FROM orders WHERE id = $1"))
	st := classify("EXECUTE p1(3)")[0]
	if target, derr := state.Resolve(&st); derr != nil || target.Kind != "delete" {
		t.Fatalf("EXECUTE after PREPARE: %+v %v", target.Kind, derr)
	}
	state.Commit(classify("DEALLOCATE p1"))
	if _, derr := state.Resolve(&st); derr == nil {
		t.Fatal("EXECUTE after DEALLOCATE was not denied")
	}
}

func TestImplicitlyAllowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind, sub string
		want      bool
	}{
		{"transaction", "begin", true},
		{"transaction", "commit", true},
		{"transaction", "prepare transaction", true},
		{"transaction", "commit prepared", false},
		{"transaction", "rollback prepared", false},
		{"deallocate", "", true},
		{"close", "close all", true},
		{"show", "", true},
		{"select", "", false},
		{"set", "", false},
	} {
		if got := ImplicitlyAllowed(tc.kind, tc.sub); got != tc.want {
			t.Errorf("%s/%s: %v, want %v", tc.kind, tc.sub, got, tc.want)
		}
	}
}
