package pg

import (
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// This file holds the gateway's model of the backend session's state:
// prepared statements, portals and cursors, and the transaction they live
// in. The rule is that truth comes from the backend. Something exists for
// the gateway only once the backend has confirmed it (ParseComplete,
// BindComplete, a CommandComplete of PREPARE or DECLARE, in order), and is
// gone when the backend drops it (Close, DEALLOCATE, CLOSE, DISCARD ALL,
// the end of the transaction that holds it, a simple Query for the unnamed
// statement and portal, an error in the portal that ran). A reference to a
// statement or portal the gateway is not certain of is never forwarded with
// a guess: the client reader waits until the backend has answered what it
// depends on, and a reference to something that does not exist is denied.
//
// Names are compared as the backend compares them: exactly (no case
// folding; the SQL parser has already folded unquoted identifiers), on
// their first 63 bytes (NAMEDATALEN-1: PostgreSQL's hash tables of prepared
// statements and portals compare no further).
//
// Speculation. The client reader judges messages before the backend has
// answered the earlier ones. Within one "epoch" (the messages after a Sync,
// simple Query or FunctionCall up to the next one) a failure makes the
// backend skip every later extended-protocol message until Sync, so a
// message judged on the assumption that the earlier messages of its epoch
// succeeded either runs with exactly that state or does not run at all.
// Across an epoch boundary that no longer holds (a failed Query does not
// skip what follows), so a reference to a name changed by an unconfirmed
// message of an earlier epoch waits for the backend's answer.

// maxNameLen is NAMEDATALEN-1: PostgreSQL compares statement and portal
// names on this many bytes.
const maxNameLen = 63

// nameKey returns the name as the backend keys it.
func nameKey(name string) string {
	if len(name) > maxNameLen {
		return name[:maxNameLen]
	}
	return name
}

// prepared is a prepared statement (protocol Parse or SQL PREPARE).
type prepared struct {
	// text is the statement's SQL text as the client sent it.
	text string
	// st is the classified statement (for PREPARE: its inner statement).
	st *sqlclass.Statement
	// sqlLevel is true for statements created with PREPARE.
	sqlLevel bool
	// paramOIDs are the parameter types (Parse, or the backend's
	// ParameterDescription), for showing parameters to approvers.
	paramOIDs []uint32
	// fields is the statement's RowDescription (Describe of the
	// statement), nil until seen; noData is set when it returns no rows.
	fields    []pgproto3.FieldDescription
	described bool
}

// portal is a portal (protocol Bind) or cursor (DECLARE); they share one
// namespace in PostgreSQL.
type portal struct {
	// text and st are the statement the portal runs (for a cursor, the
	// DECLARE's query; for a bound portal, the prepared statement's).
	text string
	st   *sqlclass.Statement
	// stmt is the prepared statement a bound portal came from.
	stmt *prepared
	// cursor is true for portals created with DECLARE.
	cursor   bool
	holdable bool
	// xact and sub are the transaction and savepoint the portal was
	// created in (see txModel).
	xact, sub uint64
	// formats are the result format codes of Bind.
	formats []int16
	// fields is the portal's RowDescription with its real formats, nil
	// until the backend sent one for this portal.
	fields    []pgproto3.FieldDescription
	described bool
	// verdict is the decision made when the portal was bound (nil for
	// cursors, which are judged at every FETCH and Execute).
	verdict *Verdict
	// once is set when the verdict needed an approval: the approval covers
	// one execution, so the portal runs at most once.
	once bool
	// ran is set when an Execute of the portal completed.
	ran bool
}

// Namespaces.
const (
	nsStmt   = 's'
	nsPortal = 'p'
)

// Kinds of state change.
const (
	opSet         = iota + 1 // name = value
	opDel                    // name removed
	opDelAll                 // every name removed (DEALLOCATE ALL, CLOSE ALL, DISCARD ALL)
	opParse                  // Parse: set on success; on failure the unnamed statement is dropped
	opDropUnnamed            // a simple Query drops the unnamed statement and portal
)

// op is one change to the session state, applied when the backend confirms
// the message (or statement) that makes it.
type op struct {
	seq    uint64
	ns     byte
	kind   int
	name   string // key (see nameKey)
	stmt   *prepared
	portal *portal
	// keep is a portal CLOSE ALL does not drop (the portal running it).
	keep *portal
}

// pendingRef is the latest unconfirmed op on a name.
type pendingRef struct {
	seq   uint64
	epoch uint64
	op    *op
}

// txModel follows the backend's transactions from its answers.
type txModel struct {
	// status is the last ReadyForQuery status: 'I', 'T' or 'E'.
	status byte
	// xact numbers transactions; it advances at every transaction end.
	xact uint64
	// failed is set by an error in the current transaction.
	failed bool
	// savepoints is the stack of open savepoints (innermost last).
	savepoints []savepoint
	subSeq     uint64
}

type savepoint struct {
	name string
	id   uint64
}

// currentSub is the id of the innermost savepoint (0: none).
func (t *txModel) currentSub() uint64 {
	if n := len(t.savepoints); n > 0 {
		return t.savepoints[n-1].id
	}
	return 0
}

// sessionState is the confirmed state plus an index of unconfirmed changes.
// The client reader reads it (resolving references speculatively) and
// registers changes; the backend reader confirms or discards them. mu
// guards everything; cond wakes a client reader waiting for confirmations.
type sessionState struct {
	mu   sync.Mutex
	cond *sync.Cond

	stmts   map[string]*prepared
	portals map[string]*portal
	tx      txModel

	pendStmt    map[string]pendingRef
	pendPortal  map[string]pendingRef
	pendStmtAll pendingRef
	pendPortAll pendingRef
	seq         uint64
	ended       bool
	// textBytes counts the SQL text kept for confirmed statements and
	// cursors (bounded by Config.MaxSessionText).
	textBytes int
}

func newSessionState(txStatus byte) *sessionState {
	s := &sessionState{
		stmts: map[string]*prepared{}, portals: map[string]*portal{},
		pendStmt: map[string]pendingRef{}, pendPortal: map[string]pendingRef{},
	}
	s.cond = sync.NewCond(&s.mu)
	s.tx.status = txStatus
	return s
}

// lookup returns the speculative value of a name (the latest unconfirmed
// change, else the confirmed value), and the epoch of the unconfirmed
// change it came from (0 when confirmed). Callers hold mu.
func (s *sessionState) lookupStmt(key string) (*prepared, uint64) {
	ref, ok := s.pendStmt[key]
	all := s.pendStmtAll
	if all.op != nil && (!ok || all.seq > ref.seq) {
		if key == "" {
			// DEALLOCATE ALL and DISCARD ALL leave the unnamed statement.
			if ok {
				return ref.op.stmt, ref.epoch
			}
			return s.stmts[key], 0
		}
		return nil, all.epoch
	}
	if ok {
		if ref.op.kind == opSet || ref.op.kind == opParse {
			return ref.op.stmt, ref.epoch
		}
		return nil, ref.epoch
	}
	return s.stmts[key], 0
}

func (s *sessionState) lookupPortal(key string) (*portal, uint64) {
	ref, ok := s.pendPortal[key]
	all := s.pendPortAll
	if all.op != nil && (!ok || all.seq > ref.seq) {
		if all.op.keep != nil && ok && ref.op.portal == all.op.keep {
			return ref.op.portal, ref.epoch
		}
		return nil, all.epoch
	}
	if ok {
		if ref.op.kind == opSet {
			return ref.op.portal, ref.epoch
		}
		return nil, ref.epoch
	}
	return s.portals[key], 0
}

// register records unconfirmed ops of a message forwarded in epoch; the
// caller holds mu. It assigns the ops' sequence numbers.
func (s *sessionState) register(epoch uint64, ops []*op) {
	for _, o := range ops {
		s.seq++
		o.seq = s.seq
		ref := pendingRef{seq: o.seq, epoch: epoch, op: o}
		switch {
		case o.ns == nsStmt && o.kind == opDelAll:
			s.pendStmtAll = ref
		case o.ns == nsPortal && o.kind == opDelAll:
			s.pendPortAll = ref
		case o.kind == opDropUnnamed:
			s.pendStmt[""] = ref
			s.pendPortal[""] = ref
		case o.ns == nsStmt:
			s.pendStmt[o.name] = ref
		default:
			s.pendPortal[o.name] = ref
		}
	}
}

// settle removes o from the index of unconfirmed changes once the backend
// has answered (or skipped) it; the caller holds mu.
func (s *sessionState) settle(o *op) {
	switch {
	case o.ns == nsStmt && o.kind == opDelAll:
		if s.pendStmtAll.op == o {
			s.pendStmtAll = pendingRef{}
		}
	case o.ns == nsPortal && o.kind == opDelAll:
		if s.pendPortAll.op == o {
			s.pendPortAll = pendingRef{}
		}
	case o.kind == opDropUnnamed:
		if r, ok := s.pendStmt[""]; ok && r.op == o {
			delete(s.pendStmt, "")
		}
		if r, ok := s.pendPortal[""]; ok && r.op == o {
			delete(s.pendPortal, "")
		}
	case o.ns == nsStmt:
		if r, ok := s.pendStmt[o.name]; ok && r.op == o {
			delete(s.pendStmt, o.name)
		}
	default:
		if r, ok := s.pendPortal[o.name]; ok && r.op == o {
			delete(s.pendPortal, o.name)
		}
	}
}

// apply makes o's change in the confirmed state (the message or statement
// that made it succeeded); the caller holds mu.
func (s *sessionState) apply(o *op) {
	switch o.kind {
	case opSet, opParse:
		if o.ns == nsStmt {
			s.delStmt(o.name)
			s.stmts[o.name] = o.stmt
			s.textBytes += len(o.stmt.text)
		} else {
			o.portal.xact, o.portal.sub = s.tx.xact, s.tx.currentSub()
			s.delPortal(o.name)
			s.portals[o.name] = o.portal
			if o.portal.cursor {
				s.textBytes += len(o.portal.text)
			}
		}
	case opDel:
		if o.ns == nsStmt {
			s.delStmt(o.name)
		} else {
			s.delPortal(o.name)
		}
	case opDelAll:
		if o.ns == nsStmt {
			for k := range s.stmts {
				if k != "" {
					s.delStmt(k)
				}
			}
		} else {
			for k, p := range s.portals {
				if p != o.keep {
					s.delPortal(k)
				}
			}
		}
	case opDropUnnamed:
		s.delStmt("")
		s.delPortal("")
	}
	s.settle(o)
}

// delStmt and delPortal drop a confirmed name, keeping textBytes; the
// caller holds mu.
func (s *sessionState) delStmt(name string) {
	if p, ok := s.stmts[name]; ok {
		s.textBytes -= len(p.text)
		delete(s.stmts, name)
	}
}

func (s *sessionState) delPortal(name string) {
	if p, ok := s.portals[name]; ok {
		if p.cursor {
			s.textBytes -= len(p.text)
		}
		delete(s.portals, name)
	}
}

// room reports whether one more named statement (ns nsStmt) or portal
// holding text bytes of SQL fits the session's bounds, counting what is
// confirmed and what is on its way; the caller holds mu.
func (s *sessionState) room(ns byte, text, maxCount, maxText int) error {
	var n int
	what := "prepared statements"
	if ns == nsStmt {
		n = len(s.stmts) + len(s.pendStmt)
	} else {
		n, what = len(s.portals)+len(s.pendPortal), "portals and cursors"
	}
	if n >= maxCount {
		return &Error{Code: "53400", Message: fmt.Sprintf("gatehouse denied the command: the session already has %d %s, the most the gateway keeps per session", maxCount, what),
			Hint: "Release some (DEALLOCATE, CLOSE, or the protocol's Close) before creating more."}
	}
	if s.textBytes+text > maxText {
		return &Error{Code: "53400", Message: fmt.Sprintf("gatehouse denied the command: the session's prepared statements and cursors would hold more than %d bytes of SQL text", maxText),
			Hint: "Release some (DEALLOCATE, CLOSE) before creating more."}
	}
	return nil
}

// fail handles o when the message that makes it failed: a failed Parse of
// the unnamed statement drops the old one (PostgreSQL drops it before
// parsing), a failed Bind of the unnamed portal likewise; named objects
// stay as they were.
func (s *sessionState) fail(o *op) {
	switch {
	case o.kind == opParse && o.name == "":
		s.delStmt("")
	case o.kind == opSet && o.ns == nsPortal && o.name == "" && !o.portal.cursor:
		s.delPortal("")
	case o.kind == opDropUnnamed:
		// The Query ran (and failed): it dropped them first.
		s.delStmt("")
		s.delPortal("")
	}
	s.settle(o)
}

// skip handles o when the backend skipped the message that makes it.
func (s *sessionState) skip(o *op) { s.settle(o) }

// endXact ends the current transaction: on commit the portals that are not
// holdable are dropped (holdable cursors persist); on abort the portals
// created in it are dropped (holdable cursors from earlier transactions
// persist). The caller holds mu.
func (s *sessionState) endXact(commit bool) {
	cur := s.tx.xact
	for k, p := range s.portals {
		if commit && !p.holdable || !commit && p.xact == cur {
			s.delPortal(k)
		}
	}
	s.tx.xact++
	s.tx.failed = false
	s.tx.savepoints = s.tx.savepoints[:0]
}

// savepoint opens a savepoint named name.
func (s *sessionState) savepoint(name string) {
	s.tx.subSeq++
	s.tx.savepoints = append(s.tx.savepoints, savepoint{name: name, id: s.tx.subSeq})
}

// release closes savepoint name and those opened after it.
func (s *sessionState) release(name string) {
	for i := len(s.tx.savepoints) - 1; i >= 0; i-- {
		if s.tx.savepoints[i].name == name {
			s.tx.savepoints = s.tx.savepoints[:i]
			return
		}
	}
}

// rollbackTo undoes savepoint name: the portals created since it are
// dropped; the savepoint stays (as a new one) and the transaction is no
// longer failed.
func (s *sessionState) rollbackTo(name string) {
	for i := len(s.tx.savepoints) - 1; i >= 0; i-- {
		if s.tx.savepoints[i].name != name {
			continue
		}
		id := s.tx.savepoints[i].id
		for k, p := range s.portals {
			if p.xact == s.tx.xact && p.sub >= id {
				s.delPortal(k)
			}
		}
		s.tx.savepoints = s.tx.savepoints[:i]
		s.savepoint(name)
		s.tx.failed = false
		return
	}
}

// end wakes a waiting client reader for good (the connection is ending).
func (s *sessionState) end() {
	s.mu.Lock()
	s.ended = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Snapshot is the gateway's confirmed view of the session, for tests that
// compare it with the backend's pg_prepared_statements and pg_cursors.
type Snapshot struct {
	// Statements are the names of named prepared statements.
	Statements []string
	// Portals are the names of named portals and cursors.
	Portals []string
	// Unnamed reports whether the unnamed statement exists.
	Unnamed bool
}

func (s *sessionState) snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Snapshot
	for k := range s.stmts {
		if k == "" {
			out.Unnamed = true
			continue
		}
		out.Statements = append(out.Statements, k)
	}
	for k := range s.portals {
		if k != "" {
			out.Portals = append(out.Portals, k)
		}
	}
	sortStrings(out.Statements)
	sortStrings(out.Portals)
	return out
}

func sortStrings(s []string) { slices.Sort(s) }
