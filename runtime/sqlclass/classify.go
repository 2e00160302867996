package sqlclass

import (
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// classifyNode classifies one top-level statement.
func classifyNode(n *pg_query.Node, text string) (Statement, error) {
	a := newAnalyzer(0)
	st := Statement{Text: text}
	a.statement(n, &st)
	if a.err != nil {
		return Statement{}, a.err
	}
	a.finish(&st)
	return st, nil
}

// finish copies the accumulated facts into st.
func (a *analyzer) finish(st *Statement) {
	st.TablesRead = a.read.sorted()
	st.TablesWritten = a.written.sorted()
	st.Columns = a.columns.sorted()
	st.FilterColumns = a.filter.sorted()
	st.Functions = a.funcs.sorted()
	st.DangerousFunctions = a.danger.sorted()
	st.Operators = a.ops.sorted()
	st.Types = a.types.sorted()
	st.Locking = a.locking
}

// inner classifies a wrapped statement with its own analyzer, then copies
// its facts up into a (all but Locking, which only the wrappers that run
// their statement take over: see runs).
func (a *analyzer) inner(n *pg_query.Node) *Statement {
	if n == nil {
		return nil
	}
	b := newAnalyzer(a.depth)
	st := &Statement{}
	b.statement(n, st)
	if b.err != nil {
		a.err = b.err
		return nil
	}
	b.finish(st)
	for _, p := range [][2]set{{a.read, b.read}, {a.written, b.written}, {a.columns, b.columns}, {a.funcs, b.funcs}, {a.danger, b.danger}, {a.ops, b.ops}, {a.types, b.types}, {a.filter, b.filter}} {
		for v := range p[1] {
			p[0].add(v)
		}
	}
	return st
}

// runs takes over the Locking of a wrapped statement that the wrapper runs
// or will run (PREPARE, DECLARE, COPY (query), CREATE TABLE AS, EXPLAIN
// ANALYZE).
func (a *analyzer) runs(inner *Statement) {
	if inner != nil && inner.Locking {
		a.locking = true
	}
}

// applyWrites sets Kind, SubKind and HasWhere from the data-modifying
// statements found (top level and in CTEs).
func (a *analyzer) applyWrites(st *Statement) {
	if len(a.writes) == 0 {
		return
	}
	worst := st.Kind
	all := true
	anyUD := false
	for _, w := range a.writes {
		if severity[w.kind] > severity[worst] {
			worst = w.kind
		}
		if w.kind == "update" || w.kind == "delete" {
			anyUD = true
			all = all && w.hasWhere
		}
	}
	if worst != st.Kind {
		if st.SubKind == "" {
			st.SubKind = st.Kind + " with " + worst
		}
		st.Kind = worst
	}
	st.HasWhere = anyUD && all
}

func (a *analyzer) statement(n *pg_query.Node, st *Statement) {
	if n == nil || !a.enter() {
		st.Kind = "utility"
		return
	}
	defer a.leave()
	switch x := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		st.Kind = "select"
		if len(x.SelectStmt.GetLockingClause()) > 0 {
			st.SubKind = "select for update"
		}
		if x.SelectStmt.GetIntoClause() != nil {
			st.Kind, st.SubKind = "create", "select into"
		}
		st.OutputColumns = a.selectStmt(x.SelectStmt, nil)
		a.applyWrites(st)
	case *pg_query.Node_InsertStmt:
		st.Kind = "insert"
		st.OutputColumns = a.dml(x.InsertStmt, nil)
		a.applyWrites(st)
	case *pg_query.Node_UpdateStmt:
		st.Kind = "update"
		st.OutputColumns = a.dml(x.UpdateStmt, nil)
		a.applyWrites(st)
	case *pg_query.Node_DeleteStmt:
		st.Kind = "delete"
		st.OutputColumns = a.dml(x.DeleteStmt, nil)
		a.applyWrites(st)
	case *pg_query.Node_MergeStmt:
		st.Kind = "merge"
		st.OutputColumns = a.dml(x.MergeStmt, nil)
		a.applyWrites(st)
	case *pg_query.Node_ExplainStmt:
		a.explain(x.ExplainStmt, st)
	case *pg_query.Node_PrepareStmt:
		st.Kind, st.Name = "prepare", x.PrepareStmt.GetName()
		st.Inner = a.inner(x.PrepareStmt.GetQuery())
		a.runs(st.Inner)
		if st.Inner != nil {
			st.OutputColumns = st.Inner.OutputColumns
		}
	case *pg_query.Node_ExecuteStmt:
		st.Kind, st.Name = "execute", x.ExecuteStmt.GetName()
		for i, p := range x.ExecuteStmt.GetParams() {
			var acc sources
			a.walkNode(p, nil, &acc)
			st.Args = append(st.Args, OutputColumn{Name: "$" + itoa(i+1), Sources: normRefs(acc.refs), WholeRow: acc.wholeRow, Derived: true})
		}
	case *pg_query.Node_DeallocateStmt:
		st.Kind, st.Name = "deallocate", x.DeallocateStmt.GetName()
		if x.DeallocateStmt.GetIsall() {
			st.SubKind = "deallocate all"
		}
	case *pg_query.Node_DeclareCursorStmt:
		st.Kind, st.Name = "declare", x.DeclareCursorStmt.GetPortalname()
		if x.DeclareCursorStmt.GetOptions()&cursorOptHold != 0 {
			// A holdable cursor outlives the transaction that commits it.
			st.SubKind = "declare with hold"
		}
		st.Inner = a.inner(x.DeclareCursorStmt.GetQuery())
		a.runs(st.Inner)
		if st.Inner != nil {
			st.OutputColumns = st.Inner.OutputColumns
		}
	case *pg_query.Node_FetchStmt:
		st.Kind, st.Name = "fetch", x.FetchStmt.GetPortalname()
		if x.FetchStmt.GetIsmove() {
			st.SubKind = "move"
		}
	case *pg_query.Node_ClosePortalStmt:
		st.Kind, st.Name = "close", x.ClosePortalStmt.GetPortalname()
		if st.Name == "" {
			st.SubKind = "close all"
		}
	case *pg_query.Node_DiscardStmt:
		st.Kind = "utility"
		switch x.DiscardStmt.GetTarget() {
		case pg_query.DiscardMode_DISCARD_ALL:
			st.SubKind = "discard all"
		case pg_query.DiscardMode_DISCARD_PLANS:
			st.SubKind = "discard plans"
		case pg_query.DiscardMode_DISCARD_SEQUENCES:
			st.SubKind = "discard sequences"
		case pg_query.DiscardMode_DISCARD_TEMP:
			st.SubKind = "discard temp"
		default:
			st.SubKind = "discard"
		}
	case *pg_query.Node_ListenStmt:
		st.Kind, st.Name = "listen", x.ListenStmt.GetConditionname()
	case *pg_query.Node_UnlistenStmt:
		st.Kind, st.Name = "unlisten", x.UnlistenStmt.GetConditionname()
	case *pg_query.Node_NotifyStmt:
		st.Kind, st.Name = "notify", x.NotifyStmt.GetConditionname()
	case *pg_query.Node_TransactionStmt:
		st.Kind = "transaction"
		st.SubKind = transactionSubKind(x.TransactionStmt.GetKind())
		st.Name = x.TransactionStmt.GetSavepointName()
		if st.Name == "" {
			st.Name = x.TransactionStmt.GetGid()
		}
	case *pg_query.Node_VariableSetStmt:
		setStmt(x.VariableSetStmt, st)
		a.walkNodes(x.VariableSetStmt.GetArgs(), nil, nil)
	case *pg_query.Node_VariableShowStmt:
		st.Kind, st.Name = "show", x.VariableShowStmt.GetName()
	case *pg_query.Node_AlterSystemStmt:
		st.Kind, st.SubKind = "alter", "alter system"
		st.Name = x.AlterSystemStmt.GetSetstmt().GetName()
		a.walkNodes(x.AlterSystemStmt.GetSetstmt().GetArgs(), nil, nil)
	case *pg_query.Node_CallStmt:
		st.Kind = "call"
		if fc := x.CallStmt.GetFunccall(); fc != nil {
			st.Name = strings.Join(strs(fc.GetFuncname()), ".")
			a.walk(fc.ProtoReflect(), nil, nil)
		}
	case *pg_query.Node_DoStmt:
		st.Kind, st.Language = "do", "plpgsql"
		for _, arg := range x.DoStmt.GetArgs() {
			if d := arg.GetDefElem(); d != nil && d.GetDefname() == "language" {
				st.Language = strings.ToLower(d.GetArg().GetString_().GetSval())
			}
		}
	case *pg_query.Node_CreateFunctionStmt:
		st.Kind, st.SubKind = "create", "create function"
		if x.CreateFunctionStmt.GetIsProcedure() {
			st.SubKind = "create procedure"
		}
		st.Name = strings.Join(strs(x.CreateFunctionStmt.GetFuncname()), ".")
		for _, o := range x.CreateFunctionStmt.GetOptions() {
			if d := o.GetDefElem(); d != nil && d.GetDefname() == "language" {
				st.Language = strings.ToLower(d.GetArg().GetString_().GetSval())
			}
		}
		if x.CreateFunctionStmt.GetSqlBody() != nil {
			st.Language = "sql"
		}
		// Parameter defaults and a SQL-standard body (RETURN expr, BEGIN
		// ATOMIC ... END) are parsed: their facts count, though the body
		// runs only when the function is called.
		locking := a.locking
		for _, prm := range x.CreateFunctionStmt.GetParameters() {
			a.walkNode(prm.GetFunctionParameter().GetDefexpr(), nil, nil)
		}
		a.walkNode(x.CreateFunctionStmt.GetSqlBody(), nil, nil)
		a.locking = locking
	case *pg_query.Node_CopyStmt:
		a.copyStmt(x.CopyStmt, st)
	case *pg_query.Node_CreateTableAsStmt:
		c := x.CreateTableAsStmt
		st.Kind, st.SubKind = "create", "create table as"
		switch {
		case c.GetObjtype() == pg_query.ObjectType_OBJECT_MATVIEW:
			st.SubKind = "create materialized view"
		case c.GetIsSelectInto():
			st.SubKind = "select into"
		}
		a.written.add(tableName(c.GetInto().GetRel()))
		st.Inner = a.inner(c.GetQuery())
		a.runs(st.Inner)
		if st.Inner != nil {
			st.OutputColumns = st.Inner.OutputColumns
		}
	case *pg_query.Node_ViewStmt:
		st.Kind, st.SubKind = "create", "create view"
		a.written.add(tableName(x.ViewStmt.GetView()))
		locking := a.locking
		a.query(x.ViewStmt.GetQuery(), nil)
		a.locking = locking // the view's query runs when the view is read
	case *pg_query.Node_DropStmt:
		a.dropStmt(x.DropStmt, st)
	case *pg_query.Node_TruncateStmt:
		st.Kind = "truncate"
		a.walkNodes(x.TruncateStmt.GetRelations(), nil, nil)
	case *pg_query.Node_GrantStmt:
		g := x.GrantStmt
		st.Kind = "grant"
		if !g.GetIsGrant() {
			st.Kind = "revoke"
		}
		st.SubKind = st.Kind + " on " + objectTypeName(g.GetObjtype())
		if g.GetTargtype() == pg_query.GrantTargetType_ACL_TARGET_ALL_IN_SCHEMA {
			st.SubKind = st.Kind + " on all " + objectTypeName(g.GetObjtype()) + "s in schema"
			if g.GetObjtype() == pg_query.ObjectType_OBJECT_TABLE {
				for _, s := range strs(g.GetObjects()) {
					a.written.add(s + ".*")
				}
			}
		}
		a.walkNodes(g.GetObjects(), nil, nil)
	case *pg_query.Node_GrantRoleStmt:
		st.Kind, st.SubKind = "grant", "grant role"
		if !x.GrantRoleStmt.GetIsGrant() {
			st.Kind, st.SubKind = "revoke", "revoke role"
		}
	case *pg_query.Node_VacuumStmt:
		st.Kind = "vacuum"
		a.bucket = a.written
		if !x.VacuumStmt.GetIsVacuumcmd() {
			st.Kind = "analyze"
			a.bucket = a.read
		}
		a.walkNodes(x.VacuumStmt.GetRels(), nil, nil)
	case *pg_query.Node_LockStmt:
		st.Kind = "lock"
		a.bucket = a.read
		a.walkNodes(x.LockStmt.GetRelations(), nil, nil)
	case *pg_query.Node_CommentStmt:
		st.Kind, st.SubKind = "comment", "comment on "+objectTypeName(x.CommentStmt.GetObjtype())
		if isRelationType(x.CommentStmt.GetObjtype()) {
			a.written.add(strings.Join(strs(x.CommentStmt.GetObject().GetList().GetItems()), "."))
		}
	case *pg_query.Node_LoadStmt:
		st.Kind, st.SubKind, st.Name = "utility", "load", x.LoadStmt.GetFilename()
	case *pg_query.Node_CreatedbStmt:
		st.Kind, st.SubKind, st.Name = "create", "create database", x.CreatedbStmt.GetDbname()
	case *pg_query.Node_DropdbStmt:
		st.Kind, st.SubKind, st.Name = "drop", "drop database", x.DropdbStmt.GetDbname()
	case *pg_query.Node_CreateRoleStmt:
		st.Kind, st.Name = "create", x.CreateRoleStmt.GetRole()
		st.SubKind = "create " + strings.ToLower(strings.TrimPrefix(x.CreateRoleStmt.GetStmtType().String(), "ROLESTMT_"))
	case *pg_query.Node_CreateExtensionStmt:
		st.Kind, st.SubKind, st.Name = "create", "create extension", x.CreateExtensionStmt.GetExtname()
	case *pg_query.Node_CreateSchemaStmt:
		st.Kind, st.SubKind, st.Name = "create", "create schema", x.CreateSchemaStmt.GetSchemaname()
		for _, e := range x.CreateSchemaStmt.GetSchemaElts() {
			sub := Statement{}
			a.statement(e, &sub)
		}
	case *pg_query.Node_RenameStmt:
		st.Kind = "alter"
		st.SubKind = "alter " + objectTypeName(x.RenameStmt.GetRenameType()) + " rename"
		a.walk(x.RenameStmt.ProtoReflect(), a.relScope(x.RenameStmt.GetRelation()), nil)
	case *pg_query.Node_AlterTableStmt:
		st.Kind = "alter"
		st.SubKind = "alter " + objectTypeName(x.AlterTableStmt.GetObjtype())
		a.walk(x.AlterTableStmt.ProtoReflect(), a.relScope(x.AlterTableStmt.GetRelation()), nil)
	case *pg_query.Node_IndexStmt:
		st.Kind, st.SubKind, st.Name = "create", "create index", x.IndexStmt.GetIdxname()
		a.walk(x.IndexStmt.ProtoReflect(), a.relScope(x.IndexStmt.GetRelation()), nil)
	case *pg_query.Node_CreateStmt:
		st.Kind, st.SubKind = "create", "create table"
		a.written.add(tableName(x.CreateStmt.GetRelation()))
		sc := a.relScope(x.CreateStmt.GetRelation())
		a.bucket = a.read // LIKE and INHERITS read other tables' definitions
		a.walkNodes(x.CreateStmt.GetTableElts(), sc, nil)
		a.walkNodes(x.CreateStmt.GetInhRelations(), sc, nil)
		a.walkNodes(x.CreateStmt.GetConstraints(), sc, nil)
		a.walk(x.CreateStmt.GetPartspec().ProtoReflect(), sc, nil)
		a.walk(x.CreateStmt.GetPartbound().ProtoReflect(), sc, nil)
	case *pg_query.Node_RefreshMatViewStmt:
		st.Kind, st.SubKind = "utility", "refresh materialized view"
		a.written.add(tableName(x.RefreshMatViewStmt.GetRelation()))
	default:
		a.generic(n, st)
	}
}

// relScope is a scope holding one table, for column references in DDL.
func (a *analyzer) relScope(rv *pg_query.RangeVar) *scope {
	t := tableName(rv)
	if t == "" {
		return nil
	}
	return &scope{rels: []relation{{name: rv.GetRelname(), table: t}}}
}

// generic classifies statements without a dedicated rule by their node
// type: Create*/Define* are "create", Alter* "alter", Drop* "drop", the
// rest "utility". Relations they mention count as written.
func (a *analyzer) generic(n *pg_query.Node, st *Statement) {
	m := n.ProtoReflect()
	var typ string
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if fd.Message() != nil {
			typ = string(fd.Message().Name())
		}
		return false
	})
	words := camelWords(strings.TrimSuffix(typ, "Stmt"))
	switch {
	case len(words) == 0:
		st.Kind = "utility"
	case words[0] == "create" || words[0] == "define" || words[0] == "composite" || words[0] == "rule":
		st.Kind = "create"
	case words[0] == "alter":
		st.Kind = "alter"
	case words[0] == "drop":
		st.Kind = "drop"
	default:
		st.Kind = "utility"
	}
	if sk, ok := subKinds[typ]; ok {
		st.SubKind = sk
	} else {
		st.SubKind = strings.Join(words, " ")
	}
	locking := a.locking
	a.walk(m, nil, nil)
	a.locking = locking // DDL stores queries (rules), it does not run them
}

var subKinds = map[string]string{
	"CreateTrigStmt":             "create trigger",
	"CreateSeqStmt":              "create sequence",
	"AlterSeqStmt":               "alter sequence",
	"CreateEventTrigStmt":        "create event trigger",
	"CreatePLangStmt":            "create language",
	"CreateFdwStmt":              "create foreign data wrapper",
	"CreateForeignServerStmt":    "create server",
	"CreateStatsStmt":            "create statistics",
	"CompositeTypeStmt":          "create type",
	"CreateEnumStmt":             "create type",
	"CreateRangeStmt":            "create type",
	"DefineStmt":                 "create",
	"RuleStmt":                   "create rule",
	"CreateTableSpaceStmt":       "create tablespace",
	"DropTableSpaceStmt":         "drop tablespace",
	"CheckPointStmt":             "checkpoint",
	"ClusterStmt":                "cluster",
	"ReindexStmt":                "reindex",
	"DiscardStmt":                "discard",
	"ConstraintsSetStmt":         "set constraints",
	"AlterRoleStmt":              "alter role",
	"AlterRoleSetStmt":           "alter role set",
	"DropRoleStmt":               "drop role",
	"DropOwnedStmt":              "drop owned",
	"ReassignOwnedStmt":          "reassign owned",
	"ImportForeignSchemaStmt":    "import foreign schema",
	"SecLabelStmt":               "security label",
	"AlterDefaultPrivilegesStmt": "alter default privileges",
}

// camelWords splits "CreateForeignTable" into lower-case words.
func camelWords(s string) []string {
	var words []string
	start := 0
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			words = append(words, strings.ToLower(s[start:i]))
			start = i
		}
	}
	if start < len(s) {
		words = append(words, strings.ToLower(s[start:]))
	}
	return words
}

// cursorOptHold is PostgreSQL's CURSOR_OPT_HOLD (parsenodes.h): WITH HOLD.
const cursorOptHold = 0x0020

func transactionSubKind(k pg_query.TransactionStmtKind) string {
	switch k {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		return "begin"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "commit"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "rollback"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "savepoint"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "release"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "rollback to"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "prepare transaction"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "commit prepared"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "rollback prepared"
	}
	return ""
}

func setStmt(s *pg_query.VariableSetStmt, st *Statement) {
	st.Kind, st.Name = "set", s.GetName()
	prefix := "set"
	switch s.GetKind() {
	case pg_query.VariableSetKind_VAR_RESET, pg_query.VariableSetKind_VAR_RESET_ALL:
		st.Kind, prefix = "reset", "reset"
		if s.GetKind() == pg_query.VariableSetKind_VAR_RESET_ALL {
			st.SubKind = "reset all"
			return
		}
	}
	switch s.GetName() {
	case "role":
		st.SubKind = prefix + " role"
	case "session_authorization":
		st.SubKind = prefix + " session authorization"
	case "transaction", "session_characteristics", "transaction_snapshot":
		st.SubKind = prefix + " transaction"
	}
	if s.GetIsLocal() && st.SubKind == "" {
		st.SubKind = "set local"
	}
}

func (a *analyzer) explain(e *pg_query.ExplainStmt, st *Statement) {
	analyze := false
	for _, o := range e.GetOptions() {
		d := o.GetDefElem()
		if d == nil || d.GetDefname() != "analyze" {
			continue
		}
		analyze = true
		arg := d.GetArg()
		if b := arg.GetBoolean(); b != nil && !b.GetBoolval() {
			analyze = false
		}
		if s := arg.GetString_(); s != nil {
			switch strings.ToLower(s.GetSval()) {
			case "false", "off", "0", "no":
				analyze = false
			}
		}
		if i := arg.GetInteger(); i != nil && i.GetIval() == 0 && arg.GetString_() == nil {
			analyze = false
		}
	}
	st.Kind = "explain"
	st.Inner = a.inner(e.GetQuery())
	if analyze {
		a.runs(st.Inner)
	}
	if analyze && st.Inner != nil {
		// EXPLAIN ANALYZE runs the statement.
		st.Kind, st.SubKind = st.Inner.Kind, "explain analyze"
		st.HasWhere = st.Inner.HasWhere
	}
}

func (a *analyzer) copyStmt(c *pg_query.CopyStmt, st *Statement) {
	st.Kind = "copy"
	cp := &Copy{Direction: "to", Format: "text", Target: "stdout"}
	if c.GetIsFrom() {
		cp.Direction, cp.Target = "from", "stdin"
	}
	st.SubKind = "copy " + cp.Direction
	switch {
	case c.GetIsProgram():
		cp.Program, cp.Target, cp.Filename = true, "program", c.GetFilename()
		a.danger.add("copy program")
	case c.GetFilename() != "":
		cp.Target, cp.Filename = "file", c.GetFilename()
		a.danger.add("copy file")
	}
	for _, o := range c.GetOptions() {
		if d := o.GetDefElem(); d != nil && d.GetDefname() == "format" {
			if f := strings.ToLower(d.GetArg().GetString_().GetSval()); f != "" {
				cp.Format = f
			}
		}
	}
	cp.Columns = strs(c.GetAttlist())
	if c.GetQuery() != nil {
		cp.Query = true
		st.Inner = a.inner(c.GetQuery())
		a.runs(st.Inner)
		if st.Inner != nil {
			st.OutputColumns = st.Inner.OutputColumns
		}
	} else if rv := c.GetRelation(); rv != nil {
		t := tableName(rv)
		cp.Table = t
		if cp.Direction == "from" {
			a.written.add(t)
		} else {
			a.read.add(t)
		}
		if len(cp.Columns) == 0 {
			a.columns.add(t + ".*")
			if cp.Direction == "to" {
				st.OutputColumns = []OutputColumn{{Name: "*", Sources: []ColumnRef{{Table: t, Column: "*"}}, Star: true}}
			}
		}
		for _, col := range cp.Columns {
			a.columns.add(t + "." + col)
			if cp.Direction == "to" {
				st.OutputColumns = append(st.OutputColumns, OutputColumn{Name: col, Sources: []ColumnRef{{Table: t, Column: col}}})
			}
		}
		a.walkNode(c.GetWhereClause(), a.relScope(rv), nil)
	}
	st.Copy = cp
}

func (a *analyzer) dropStmt(d *pg_query.DropStmt, st *Statement) {
	st.Kind = "drop"
	st.SubKind = "drop " + objectTypeName(d.GetRemoveType())
	for _, o := range d.GetObjects() {
		var name string
		if l := o.GetList(); l != nil {
			name = strings.Join(strs(l.GetItems()), ".")
		} else if s := o.GetString_(); s != nil {
			name = s.GetSval()
		} else if ow := o.GetObjectWithArgs(); ow != nil {
			name = strings.Join(strs(ow.GetObjname()), ".")
		}
		if isRelationType(d.GetRemoveType()) {
			a.written.add(name)
		} else if st.Name == "" {
			st.Name = name
		}
	}
}

func isRelationType(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW,
		pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_INDEX,
		pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
		return true
	}
	return false
}

// objectTypeName turns OBJECT_FOREIGN_TABLE into "foreign table".
func objectTypeName(t pg_query.ObjectType) string {
	s := strings.ToLower(strings.TrimPrefix(t.String(), "OBJECT_"))
	switch s {
	case "matview":
		return "materialized view"
	case "object_type_undefined":
		return "object"
	}
	return strings.ReplaceAll(s, "_", " ")
}
