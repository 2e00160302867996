package pg

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// A small language over sessionState for the table below: each step makes
// one confirmed change, as the backend reader does when the backend has
// answered.

type stateStep func(t *testing.T, s *sessionState)

func prep(name string) stateStep {
	return func(_ *testing.T, s *sessionState) {
		s.apply(&op{ns: nsStmt, kind: opSet, name: nameKey(name), stmt: &prepared{text: "PREPARE " + name}})
	}
}

func parsed(name string) stateStep {
	return func(_ *testing.T, s *sessionState) {
		s.apply(&op{ns: nsStmt, kind: opParse, name: nameKey(name), stmt: &prepared{text: "Parse " + name}})
	}
}

func parseFailed(name string) stateStep {
	return func(_ *testing.T, s *sessionState) {
		s.fail(&op{ns: nsStmt, kind: opParse, name: nameKey(name), stmt: &prepared{text: "failed Parse " + name}})
	}
}

func dealloc(name string) stateStep {
	return func(_ *testing.T, s *sessionState) { s.apply(&op{ns: nsStmt, kind: opDel, name: nameKey(name)}) }
}

func deallocAll() stateStep {
	return func(_ *testing.T, s *sessionState) { s.apply(&op{ns: nsStmt, kind: opDelAll}) }
}

func declare(name string, hold bool) stateStep {
	return func(_ *testing.T, s *sessionState) {
		s.apply(&op{ns: nsPortal, kind: opSet, name: nameKey(name), portal: &portal{text: "DECLARE " + name, cursor: true, holdable: hold}})
	}
}

func bound(name string) stateStep {
	return func(_ *testing.T, s *sessionState) {
		s.apply(&op{ns: nsPortal, kind: opSet, name: nameKey(name), portal: &portal{text: "Bind " + name}})
	}
}

func closed(name string) stateStep {
	return func(_ *testing.T, s *sessionState) { s.apply(&op{ns: nsPortal, kind: opDel, name: nameKey(name)}) }
}

// closeAllFrom is CLOSE ALL run by the portal named keep ("" : a simple
// Query, which keeps nothing).
func closeAllFrom(keep string) stateStep {
	return func(t *testing.T, s *sessionState) {
		var k *portal
		if keep != "" {
			k = s.portals[nameKey(keep)]
			if k == nil {
				t.Fatalf("no portal %q to run CLOSE ALL", keep)
			}
		}
		s.apply(&op{ns: nsPortal, kind: opDelAll, keep: k})
	}
}

func dropUnnamed() stateStep {
	return func(_ *testing.T, s *sessionState) { s.apply(&op{kind: opDropUnnamed}) }
}

// tx runs a transaction-control statement that completed with tag, as
// conn.transaction does.
func tx(subKind, name, tag string) stateStep {
	return func(_ *testing.T, s *sessionState) {
		c := &conn{state: s}
		s.mu.Lock()
		c.transaction(&sqlclass.Statement{Kind: "transaction", SubKind: subKind, Name: name}, tag)
		s.mu.Unlock()
	}
}

func commit() stateStep                { return tx("commit", "", "COMMIT") }
func rollback() stateStep              { return tx("rollback", "", "ROLLBACK") }
func savepointStep(n string) stateStep { return tx("savepoint", n, "SAVEPOINT") }
func release(n string) stateStep       { return tx("release", n, "RELEASE") }
func rollbackTo(n string) stateStep    { return tx("rollback to", n, "ROLLBACK") }

// failTx marks the transaction failed (an error in it).
func failTx() stateStep {
	return func(_ *testing.T, s *sessionState) { s.tx.failed = true }
}

// idle is ReadyForQuery 'I' after an implicit transaction (autocommit):
// it ends whatever transaction was open, committed unless it failed.
func idle() stateStep {
	return func(_ *testing.T, s *sessionState) { s.endXact(!s.tx.failed) }
}

// TestSessionStateTransactions checks the transaction rules of the model
// against PostgreSQL's: which portals and statements survive COMMIT,
// ROLLBACK, savepoints and DEALLOCATE/CLOSE ALL.
func TestSessionStateTransactions(t *testing.T) {
	t.Parallel()
	long1, long2 := strings.Repeat("x", 63)+"1", strings.Repeat("x", 63)+"2"
	cases := []struct {
		name    string
		steps   []stateStep
		stmts   []string
		portals []string
		unnamed bool
	}{
		{name: "commit drops portals and keeps holdable cursors",
			steps:   []stateStep{declare("c", false), bound("p"), declare("h", true), commit()},
			portals: []string{"h"}},
		{name: "abort drops holdable cursors of its own transaction",
			steps: []stateStep{declare("h", true), bound("p"), rollback()}},
		{name: "abort keeps holdable cursors of earlier transactions",
			steps:   []stateStep{declare("h", true), commit(), declare("c", false), declare("h2", true), rollback()},
			portals: []string{"h"}},
		{name: "COMMIT of a failed transaction rolls back",
			steps: []stateStep{declare("h", true), failTx(), tx("commit", "", "ROLLBACK")}},
		{name: "autocommit statement keeps a holdable cursor",
			steps:   []stateStep{declare("h", true), idle()},
			portals: []string{"h"}},
		{name: "failed autocommit statement drops a holdable cursor of its transaction",
			steps: []stateStep{declare("h", true), failTx(), idle()}},
		{name: "statements survive commit and abort",
			steps: []stateStep{prep("a"), parsed("b"), commit(), prep("c"), rollback()},
			stmts: []string{"a", "b", "c"}},
		{name: "rollback to drops portals created since the savepoint",
			steps:   []stateStep{declare("a", false), savepointStep("sp"), declare("b", false), bound("p"), rollbackTo("sp")},
			portals: []string{"a"}},
		{name: "the savepoint stays after rollback to",
			steps:   []stateStep{declare("a", false), savepointStep("sp"), rollbackTo("sp"), declare("b", false), rollbackTo("sp")},
			portals: []string{"a"}},
		{name: "rollback to an outer savepoint drops inner ones",
			steps: []stateStep{savepointStep("a"), declare("x", false), savepointStep("b"), declare("y", false), rollbackTo("a")}},
		{name: "rollback to an inner savepoint keeps the outer portals",
			steps:   []stateStep{savepointStep("a"), declare("x", false), savepointStep("b"), declare("y", false), rollbackTo("b")},
			portals: []string{"x"}},
		{name: "a released savepoint's portals belong to the parent",
			steps:   []stateStep{savepointStep("a"), declare("x", false), release("a"), savepointStep("b"), declare("y", false), rollbackTo("b")},
			portals: []string{"x"}},
		{name: "release of an outer savepoint releases the inner ones",
			steps:   []stateStep{savepointStep("a"), savepointStep("b"), declare("x", false), release("a"), savepointStep("c"), rollbackTo("c")},
			portals: []string{"x"}},
		{name: "duplicate savepoint names: the innermost is rolled back to",
			steps:   []stateStep{savepointStep("a"), declare("x", false), savepointStep("a"), declare("y", false), rollbackTo("a")},
			portals: []string{"x"}},
		{name: "duplicate savepoint names: release uncovers the outer one",
			steps: []stateStep{savepointStep("a"), declare("x", false), savepointStep("a"), release("a"), rollbackTo("a")}},
		{name: "rollback to drops a holdable cursor declared in the savepoint",
			steps:   []stateStep{declare("h0", true), savepointStep("a"), declare("h", true), rollbackTo("a"), commit()},
			portals: []string{"h0"}},
		{name: "rollback to keeps a holdable cursor of an earlier transaction",
			steps:   []stateStep{declare("h", true), commit(), savepointStep("a"), rollbackTo("a"), commit()},
			portals: []string{"h"}},
		{name: "commit ends the savepoints",
			steps:   []stateStep{savepointStep("a"), commit(), declare("h", true), rollbackTo("a"), commit()},
			portals: []string{"h"}},
		{name: "DEALLOCATE ALL keeps the unnamed statement",
			steps: []stateStep{parsed(""), parsed("a"), prep("b"), deallocAll()}, unnamed: true},
		{name: "DEALLOCATE drops one statement",
			steps: []stateStep{prep("a"), prep("b"), dealloc("a")}, stmts: []string{"b"}},
		{name: "CLOSE ALL from a simple query drops every portal",
			steps: []stateStep{declare("h", true), declare("c", false), bound("p"), closeAllFrom("")}},
		{name: "CLOSE ALL run by a portal keeps that portal",
			steps: []stateStep{declare("c", false), bound("runner"), closeAllFrom("runner")}, portals: []string{"runner"}},
		{name: "CLOSE drops one cursor",
			steps: []stateStep{declare("a", false), declare("b", false), closed("a")}, portals: []string{"b"}},
		{name: "a failed Parse of the unnamed statement drops it",
			steps: []stateStep{parsed(""), parseFailed("")}},
		{name: "a failed Parse of a named statement keeps the old one",
			steps: []stateStep{parsed("s"), parseFailed("s")}, stmts: []string{"s"}},
		{name: "a simple query drops the unnamed statement and portal",
			steps: []stateStep{parsed(""), bound(""), parsed("s"), dropUnnamed()}, stmts: []string{"s"}},
		{name: "names compared on 63 bytes",
			steps: []stateStep{prep(long1), dealloc(long2), declare(long1, true), prep(long2)},
			stmts: []string{long1[:63]}, portals: []string{long1[:63]}},
		{name: "names compared exactly (case)",
			steps: []stateStep{prep("s"), prep("S"), dealloc("s"), declare("c", true), declare("C", true), closed("C")},
			stmts: []string{"S"}, portals: []string{"c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSessionState('I')
			for _, step := range tc.steps {
				step(t, s)
			}
			got := s.snapshot()
			if !slices.Equal(got.Statements, tc.stmts) {
				t.Errorf("statements %q, want %q", got.Statements, tc.stmts)
			}
			if !slices.Equal(got.Portals, tc.portals) {
				t.Errorf("portals %q, want %q", got.Portals, tc.portals)
			}
			if got.Unnamed != tc.unnamed {
				t.Errorf("unnamed statement %v, want %v", got.Unnamed, tc.unnamed)
			}
		})
	}
}

// TestSessionStateSpeculation checks what the client reader sees of
// changes the backend has not confirmed yet.
func TestSessionStateSpeculation(t *testing.T) {
	t.Parallel()
	s := newSessionState('I')
	old := &prepared{text: "old"}
	s.stmts["s"] = old
	s.stmts[""] = &prepared{text: "unnamed"}

	// A pending re-Parse is seen speculatively, with its epoch.
	np := &prepared{text: "new"}
	reparse := &op{ns: nsStmt, kind: opParse, name: "s", stmt: np}
	s.register(3, []*op{reparse})
	if p, ep := s.lookupStmt("s"); p != np || ep != 3 {
		t.Fatalf("pending Parse: got %v epoch %d", p, ep)
	}
	// The backend rejects it: the old statement stays and nothing is
	// pending any more.
	s.fail(reparse)
	if p, ep := s.lookupStmt("s"); p != old || ep != 0 {
		t.Fatalf("after a failed Parse: got %v epoch %d, want the old statement", p, ep)
	}

	// A pending DEALLOCATE ALL hides named statements but not the
	// unnamed one; when it is skipped they come back.
	all := &op{ns: nsStmt, kind: opDelAll}
	s.register(4, []*op{all})
	if p, ep := s.lookupStmt("s"); p != nil || ep != 4 {
		t.Fatalf("pending DEALLOCATE ALL: got %v epoch %d", p, ep)
	}
	if p, _ := s.lookupStmt(""); p == nil {
		t.Fatal("pending DEALLOCATE ALL hid the unnamed statement")
	}
	s.skip(all)
	if p, ep := s.lookupStmt("s"); p != old || ep != 0 {
		t.Fatalf("after a skipped DEALLOCATE ALL: got %v epoch %d", p, ep)
	}

	// A statement created after a pending DEALLOCATE ALL is seen.
	all2 := &op{ns: nsStmt, kind: opDelAll}
	later := &op{ns: nsStmt, kind: opSet, name: "t", stmt: &prepared{text: "t"}}
	s.register(5, []*op{all2, later})
	if p, _ := s.lookupStmt("t"); p != later.stmt {
		t.Fatal("a statement prepared after a pending DEALLOCATE ALL is not seen")
	}
	s.apply(all2)
	s.apply(later)
	if got := s.snapshot(); !slices.Equal(got.Statements, []string{"t"}) || !got.Unnamed {
		t.Fatalf("after DEALLOCATE ALL; PREPARE t: %+v", got)
	}

	// A pending CLOSE ALL run by a portal keeps that portal only.
	runner := &portal{text: "runner"}
	s.portals["runner"] = runner
	s.portals["other"] = &portal{text: "other"}
	setRunner := &op{ns: nsPortal, kind: opSet, name: "runner", portal: runner}
	closeAll := &op{ns: nsPortal, kind: opDelAll, keep: runner}
	s.register(6, []*op{setRunner, closeAll})
	if p, _ := s.lookupPortal("other"); p != nil {
		t.Fatal("a pending CLOSE ALL did not hide another portal")
	}
	if p, _ := s.lookupPortal("runner"); p != runner {
		t.Fatal("a pending CLOSE ALL hid the portal running it")
	}
}
