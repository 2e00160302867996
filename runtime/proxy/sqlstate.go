package proxy

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// implicitKinds never need a grant: they neither read nor change data of
// anyone but the session itself. Each is listed in docs/security-model.md
// with why it is safe:
//   - transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE,
//     ROLLBACK TO, PREPARE TRANSACTION): it ends or scopes the session's own
//     work, which the statements inside it were judged for;
//   - DEALLOCATE and CLOSE: they release the session's own prepared
//     statements and cursors;
//   - SHOW: it reads one setting of the session.
//
// COMMIT PREPARED and ROLLBACK PREPARED act on a transaction another
// session prepared: they need a grant like any other statement.
var implicitKinds = map[string]bool{
	"transaction": true, "deallocate": true, "close": true, "show": true,
}

// ImplicitlyAllowed reports whether a statement of kind and subKind (a
// sqlclass Statement's Kind and SubKind) is allowed without consulting the
// policy. The gateway records it as allowed with no rule ids.
func ImplicitlyAllowed(kind, subKind string) bool {
	if kind == "transaction" && (subKind == "commit prepared" || subKind == "rollback prepared") {
		return false
	}
	return implicitKinds[kind]
}

// ImplicitReason is the decision reason recorded for implicitly allowed
// statements.
const ImplicitReason = "transaction and session control needs no grant"

// SQLState is the SQL-level session state that decides which statement an
// EXECUTE or FETCH stands for: the statements PREPAREd and the cursors
// DECLAREd through the gateway in one session. The zero value is not
// usable; use NewSQLState. It is not safe for concurrent use.
type SQLState struct {
	// prepared maps SQL-level PREPARE names to their statements; cursors
	// maps DECLAREd cursors to their queries.
	prepared map[string]sqlclass.Statement
	cursors  map[string]sqlclass.Statement
}

// NewSQLState returns an empty state (a new session).
func NewSQLState() *SQLState {
	return &SQLState{
		prepared: make(map[string]sqlclass.Statement),
		cursors:  make(map[string]sqlclass.Statement),
	}
}

// Resolve returns the statement whose facts decide st: the prepared
// statement for EXECUTE, the cursor's query for FETCH/MOVE, the inner
// statement for PREPARE and DECLARE, st itself otherwise. It denies
// references to prepared statements or cursors this session did not create
// through the gateway, whatever the policy grants. The returned DeniedError has
// no Revision set.
func (s *SQLState) Resolve(st *sqlclass.Statement) (sqlclass.Statement, *DeniedError) {
	return s.resolve(st)
}

func (s *SQLState) resolve(st *sqlclass.Statement) (sqlclass.Statement, *DeniedError) {
	switch st.Kind {
	case "execute":
		p, ok := s.prepared[st.Name]
		if !ok {
			return *st, &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied,
				Message: fmt.Sprintf("gatehouse denied EXECUTE: prepared statement %q was not prepared through this gateway session", st.Name)}
		}
		return WithArgs(&p, st), nil
	case "fetch":
		c, ok := s.cursors[st.Name]
		if !ok {
			return *st, &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied,
				Message: fmt.Sprintf("gatehouse denied FETCH: cursor %q was not declared through this gateway session", st.Name)}
		}
		return c, nil
	case "prepare", "declare":
		if st.Inner == nil {
			return *st, &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied,
				Message: "gatehouse denied the command: its inner statement could not be classified"}
		}
		inner := *st.Inner
		return inner, nil
	}
	return *st, nil
}

// Commit applies PREPARE/DEALLOCATE/DECLARE/CLOSE/DISCARD of an allowed
// message to the state. The gateway calls it only for messages it allows.
func (s *SQLState) Commit(stmts []sqlclass.Statement) {
	for i := range stmts {
		st := &stmts[i]
		name := st.Name
		switch st.Kind {
		case "prepare":
			if st.Inner != nil {
				s.prepared[name] = *st.Inner
			}
		case "declare":
			if st.Inner != nil {
				s.cursors[name] = *st.Inner
			}
		case "deallocate":
			if name == "" || name == "all" {
				clear(s.prepared)
			} else {
				delete(s.prepared, name)
			}
		case "close":
			if name == "" || name == "all" {
				clear(s.cursors)
			} else {
				delete(s.cursors, name)
			}
		case "utility":
			if strings.HasPrefix(strings.ToLower(st.SubKind), "discard") {
				clear(s.prepared)
				clear(s.cursors)
			}
		}
	}
}

// WithArgs returns target (a prepared statement) as EXECUTE exec runs it:
// the arguments are expressions too, so the tables, columns and functions
// they read are added to the target's, and, since an argument can flow into
// any output column, the columns the arguments read become sources of every
// output column (so masks follow them).
func WithArgs(target *sqlclass.Statement, exec *sqlclass.Statement) sqlclass.Statement {
	out := *target
	if len(exec.TablesRead)+len(exec.Columns)+len(exec.Functions)+len(exec.DangerousFunctions)+len(exec.TablesWritten) == 0 {
		return out
	}
	out.TablesRead = mergeSorted(target.TablesRead, exec.TablesRead)
	out.TablesWritten = mergeSorted(target.TablesWritten, exec.TablesWritten)
	out.Columns = mergeSorted(target.Columns, exec.Columns)
	out.Functions = mergeSorted(target.Functions, exec.Functions)
	out.DangerousFunctions = mergeSorted(target.DangerousFunctions, exec.DangerousFunctions)
	if len(exec.Columns) > 0 && len(target.OutputColumns) > 0 {
		var refs []sqlclass.ColumnRef
		for _, c := range exec.Columns {
			t, col := "?", c
			if i := strings.LastIndexByte(c, '.'); i >= 0 {
				t, col = c[:i], c[i+1:]
			}
			refs = append(refs, sqlclass.ColumnRef{Table: t, Column: col})
		}
		cols := make([]sqlclass.OutputColumn, len(target.OutputColumns))
		for i, c := range target.OutputColumns {
			c.Sources = append(append([]sqlclass.ColumnRef(nil), c.Sources...), refs...)
			c.Derived = true
			cols[i] = c
		}
		out.OutputColumns = cols
	}
	return out
}
