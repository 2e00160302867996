package sqlclass

import (
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

type set map[string]struct{}

func (s set) add(v string) {
	if v != "" {
		s[v] = struct{}{}
	}
}

func (s set) sorted() []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, 0, len(s))
	for v := range s {
		out = append(out, v)
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) { sort.Strings(s) }

// write is one data-modifying statement found in a statement, top level or
// nested in a CTE.
type write struct {
	kind     string
	hasWhere bool
}

// analyzer accumulates the facts of one statement.
type analyzer struct {
	read, written, columns, funcs, danger, ops, types set
	// filter receives the columns referenced outside output columns (see
	// Statement.FilterColumns).
	filter set
	writes                                            []write
	// locking: a FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE clause was found
	// in a query the statement runs.
	locking bool
	// bucket receives relations met outside a FROM clause or DML target
	// (utility statements): read or written.
	bucket set
	depth  int
	err    error
}

func newAnalyzer(depth int) *analyzer {
	a := &analyzer{
		read: set{}, written: set{}, columns: set{}, funcs: set{}, danger: set{},
		ops: set{}, types: set{}, filter: set{}, depth: depth,
	}
	a.bucket = a.written
	return a
}

func (a *analyzer) enter() bool {
	a.depth++
	if a.depth > MaxDepth {
		if a.err == nil {
			a.err = ErrTooComplex
		}
		return false
	}
	return a.err == nil
}

func (a *analyzer) leave() { a.depth-- }

// relation is one FROM item visible in a scope.
type relation struct {
	// name is how the query refers to it: the alias, or the bare table name.
	name string
	// table is the table as written ("public.orders"); empty when derived.
	table string
	// cols are the output columns of a derived relation (subquery, CTE,
	// function).
	cols []OutputColumn
	// renamed is set for a table with an alias column list
	// (customers AS c(a, b, e)): its columns are known only by position,
	// so a reference to any of them stands for an unknown column ("*").
	renamed bool
}

func (r *relation) derived() bool { return r.table == "" }

type scope struct {
	parent *scope
	rels   []relation
	ctes   map[string][]OutputColumn
	// outNames are output column names that ORDER BY / GROUP BY may refer
	// to instead of input columns.
	outNames map[string]bool
}

func (s *scope) cte(name string) ([]OutputColumn, bool) {
	for ; s != nil; s = s.parent {
		if c, ok := s.ctes[name]; ok {
			return c, true
		}
	}
	return nil, false
}

// sources accumulates what an expression is computed from.
type sources struct {
	refs     []ColumnRef
	wholeRow bool
	derived  bool
}

func (s *sources) add(r ColumnRef) { s.refs = append(s.refs, r) }

func (s *sources) addCols(cols []OutputColumn) {
	for _, c := range cols {
		s.refs = append(s.refs, c.Sources...)
		if c.WholeRow || c.Star {
			s.wholeRow = true
		}
	}
}

// normRefs sorts and deduplicates column references.
func normRefs(in []ColumnRef) []ColumnRef {
	if len(in) == 0 {
		return nil
	}
	out := append([]ColumnRef(nil), in...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].Column < out[j].Column
	})
	n := 0
	for i, r := range out {
		if i > 0 && r == out[n-1] {
			continue
		}
		out[n] = r
		n++
	}
	return out[:n]
}

// walkNode walks an optional node.
func (a *analyzer) walkNode(n *pg_query.Node, sc *scope, acc *sources) {
	if n == nil || a.err != nil {
		return
	}
	a.walk(n.ProtoReflect(), sc, acc)
}

func (a *analyzer) walkNodes(ns []*pg_query.Node, sc *scope, acc *sources) {
	for _, n := range ns {
		a.walkNode(n, sc, acc)
	}
}

// walk visits any parse-tree message, dispatching on the types that carry
// facts and descending generically into everything else.
func (a *analyzer) walk(m protoreflect.Message, sc *scope, acc *sources) {
	if !m.IsValid() || !a.enter() {
		return
	}
	defer a.leave()
	switch n := m.Interface().(type) {
	case *pg_query.SelectStmt:
		cols := a.selectStmt(n, sc)
		if acc != nil {
			acc.addCols(cols)
			acc.derived = true
		} else {
			a.filterCols(cols) // a subquery in a condition
		}
		return
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
		cols := a.dml(m.Interface(), sc)
		if acc != nil {
			acc.addCols(cols)
			acc.derived = true
		} else {
			a.filterCols(cols)
		}
		return
	case *pg_query.ColumnRef:
		a.columnRef(n, sc, acc)
		return
	case *pg_query.FuncCall:
		a.funcCall(n)
	case *pg_query.A_Expr:
		a.operator(n)
	case *pg_query.SortBy:
		a.operatorName(strs(n.GetUseOp())) // ORDER BY x USING op
	case *pg_query.TypeCast:
		a.typeName(n.GetTypeName()) // x::t, CAST(x AS t), t 'literal'
	case *pg_query.JsonOutput:
		a.typeName(n.GetTypeName()) // RETURNING t of SQL/JSON functions
	case *pg_query.JsonTableColumn:
		a.typeName(n.GetTypeName())
	case *pg_query.RangeTableFuncCol:
		a.typeName(n.GetTypeName()) // XMLTABLE column types
	case *pg_query.XmlSerialize:
		a.typeName(n.GetTypeName())
	case *pg_query.SubLink:
		// x op ANY/ALL (subquery); x IN (subquery) has no operator name
		// and compares with =.
		if op := strs(n.GetOperName()); len(op) > 0 {
			a.operatorName(op)
		} else if n.GetSubLinkType() == pg_query.SubLinkType_ANY_SUBLINK {
			a.ops.add("=")
		}
		if n.GetSubLinkType() == pg_query.SubLinkType_EXISTS_SUBLINK {
			a.walkNode(n.GetSubselect(), sc, nil)
		} else {
			a.walkNode(n.GetSubselect(), sc, acc)
		}
		a.walkNode(n.GetTestexpr(), sc, acc)
		return
	case *pg_query.RangeVar:
		a.bucket.add(tableName(n))
		return
	case *pg_query.RangeSubselect, *pg_query.JoinExpr, *pg_query.RangeFunction, *pg_query.RangeTableSample:
		// A FROM item outside a FROM clause (utility statements): analyse
		// it in a scope of its own.
		a.fromItemMsg(m.Interface(), &scope{parent: sc})
		return
	case *pg_query.WithClause:
		a.withClause(n, sc)
		return
	case *pg_query.LockingClause, *pg_query.TypeName:
		// FOR UPDATE OF names relations already in FROM; type names are
		// neither tables nor functions.
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && a.err == nil; i++ {
				a.walk(l.Get(i).Message(), sc, acc)
			}
		} else {
			a.walk(v.Message(), sc, acc)
		}
		return a.err == nil
	})
}

func (a *analyzer) funcCall(n *pg_query.FuncCall) {
	a.function(strs(n.GetFuncname()), n.GetFuncformat() == pg_query.CoercionForm_COERCE_SQL_SYNTAX)
}

// function records a called function from its name parts as the parser
// gives them: unquoted parts lower case, quoted ones as written. The
// implicit "pg_catalog." of a function the parser generates for SQL syntax
// (SUBSTRING(x FROM y), EXTRACT, TRIM) is left out of the reported name.
// A function that is not a built-in read is also dangerous.
func (a *analyzer) function(parts []string, sqlSyntax bool) {
	if len(parts) == 0 {
		return
	}
	builtin := builtinCall(parts)
	if sqlSyntax && len(parts) == 2 && parts[0] == "pg_catalog" {
		parts = parts[1:]
	}
	name := qualifiedName(parts)
	a.funcs.add(name)
	if !builtin {
		a.danger.add(name)
	}
}

// operator records the operator of an A_Expr as the server will look it
// up: the written name (LIKE is ~~, ILIKE ~~*, SIMILAR TO ~, IN and IS
// DISTINCT FROM =, NOT IN <>), and for BETWEEN the comparisons it expands
// to.
func (a *analyzer) operator(e *pg_query.A_Expr) {
	switch e.GetKind() {
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM:
		a.ops.add(">=")
		a.ops.add("<=")
	case pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		a.ops.add("<")
		a.ops.add(">")
	default:
		a.operatorName(strs(e.GetName()))
	}
}

// operatorName records an operator from its name parts: "+", or
// "myschema.###" for OPERATOR(myschema.###).
func (a *analyzer) operatorName(parts []string) {
	if len(parts) > 0 {
		a.ops.add(qualifiedName(parts))
	}
}

// typeName records the type a value is converted to, as the parser gives
// it: without array bounds and type modifiers; SQL-standard type names
// the grammar knows as keywords come out as their pg_catalog names
// (integer is "pg_catalog.int4", varchar(10) "pg_catalog.varchar").
func (a *analyzer) typeName(tn *pg_query.TypeName) {
	if parts := strs(tn.GetNames()); len(parts) > 0 {
		a.types.add(qualifiedName(parts))
	}
}

// qualifiedName joins name parts with dots. A part that holds a dot or a
// double quote (possible only for a quoted identifier) is written quoted,
// so that "pg_catalog.lower"(x) and pg_catalog.lower(x) stay apart.
func qualifiedName(parts []string) string {
	if len(parts) == 1 && !strings.ContainsAny(parts[0], `."`) {
		return parts[0]
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		if strings.ContainsAny(p, `."`) {
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(p, `"`, `""`))
			b.WriteByte('"')
			continue
		}
		b.WriteString(p)
	}
	return b.String()
}

// strs returns the string values of a list of String nodes; other nodes
// are skipped.
func strs(ns []*pg_query.Node) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		if s := n.GetString_(); s != nil {
			out = append(out, s.GetSval())
		}
	}
	return out
}

// tableName renders a RangeVar as written: "schema.table" or "table".
func tableName(rv *pg_query.RangeVar) string {
	if rv == nil || rv.GetRelname() == "" {
		return ""
	}
	if rv.GetSchemaname() != "" {
		return rv.GetSchemaname() + "." + rv.GetRelname()
	}
	return rv.GetRelname()
}

// renameCols applies alias column names to derived columns.
func renameCols(cols []OutputColumn, alias *pg_query.Alias) []OutputColumn {
	names := strs(alias.GetColnames())
	if len(names) == 0 {
		return cols
	}
	out := append([]OutputColumn(nil), cols...)
	for i := range out {
		if i < len(names) && !out[i].Star {
			out[i].Name = names[i]
		}
	}
	return out
}

// withClause registers the CTEs of w in a new scope and analyses their
// bodies.
func (a *analyzer) withClause(w *pg_query.WithClause, sc *scope) *scope {
	ns := &scope{parent: sc, ctes: map[string][]OutputColumn{}}
	var ctes []*pg_query.CommonTableExpr
	for _, n := range w.GetCtes() {
		if c := n.GetCommonTableExpr(); c != nil {
			ctes = append(ctes, c)
		}
	}
	if w.GetRecursive() {
		for _, c := range ctes {
			var cols []OutputColumn
			for _, name := range strs(c.GetAliascolnames()) {
				cols = append(cols, OutputColumn{Name: name, Derived: true})
			}
			ns.ctes[c.GetCtename()] = cols
		}
	}
	for _, c := range ctes {
		if !a.enter() {
			return ns
		}
		cols := a.query(c.GetCtequery(), ns)
		a.leave()
		if names := strs(c.GetAliascolnames()); len(names) > 0 {
			cols = renameCols(cols, &pg_query.Alias{Colnames: c.GetAliascolnames()})
		}
		ns.ctes[c.GetCtename()] = cols
	}
	return ns
}

// query analyses a statement that can appear as a query (CTE body,
// subquery) and returns its output columns.
func (a *analyzer) query(n *pg_query.Node, sc *scope) []OutputColumn {
	if n == nil {
		return nil
	}
	switch q := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return a.selectStmt(q.SelectStmt, sc)
	case *pg_query.Node_InsertStmt:
		return a.dml(q.InsertStmt, sc)
	case *pg_query.Node_UpdateStmt:
		return a.dml(q.UpdateStmt, sc)
	case *pg_query.Node_DeleteStmt:
		return a.dml(q.DeleteStmt, sc)
	case *pg_query.Node_MergeStmt:
		return a.dml(q.MergeStmt, sc)
	}
	a.walkNode(n, sc, nil)
	return nil
}

// selectStmt analyses a SELECT (or VALUES, or set operation) and returns
// its output columns.
func (a *analyzer) selectStmt(sel *pg_query.SelectStmt, sc *scope) []OutputColumn {
	if sel == nil || !a.enter() {
		return nil
	}
	defer a.leave()
	if w := sel.GetWithClause(); w != nil {
		sc = a.withClause(w, sc)
	}
	if into := sel.GetIntoClause(); into != nil {
		a.written.add(tableName(into.GetRel()))
	}
	if len(sel.GetLockingClause()) > 0 {
		a.locking = true
	}
	var out []OutputColumn
	switch {
	case sel.GetOp() > pg_query.SetOperation_SETOP_NONE:
		l := a.selectStmt(sel.GetLarg(), sc)
		r := a.selectStmt(sel.GetRarg(), sc)
		out = mergeColumns(l, r)
		os := &scope{parent: sc, rels: []relation{{cols: out}}}
		a.walkNodes(sel.GetSortClause(), os, nil)
	case len(sel.GetValuesLists()) > 0:
		for _, row := range sel.GetValuesLists() {
			items := row.GetList().GetItems()
			var cols []OutputColumn
			for i, item := range items {
				var acc sources
				a.walkNode(item, sc, &acc)
				cols = append(cols, OutputColumn{Name: "column" + itoa(i+1), Sources: normRefs(acc.refs), WholeRow: acc.wholeRow, Derived: true})
			}
			out = mergeColumns(out, cols)
		}
		a.walkNodes(sel.GetSortClause(), sc, nil)
	default:
		local := &scope{parent: sc}
		for _, f := range sel.GetFromClause() {
			a.fromItem(f, local)
		}
		a.walkNode(sel.GetWhereClause(), local, nil)
		out = a.targetList(sel.GetTargetList(), local)
		names := map[string]bool{}
		for _, c := range out {
			names[c.Name] = true
		}
		os := &scope{parent: local.parent, rels: local.rels, outNames: names}
		a.walkNodes(sel.GetDistinctClause(), os, nil)
		a.walkNodes(sel.GetGroupClause(), os, nil)
		a.walkNode(sel.GetHavingClause(), local, nil)
		a.walkNodes(sel.GetWindowClause(), local, nil)
		a.walkNodes(sel.GetSortClause(), os, nil)
	}
	a.walkNode(sel.GetLimitCount(), sc, nil)
	a.walkNode(sel.GetLimitOffset(), sc, nil)
	return out
}

// mergeColumns merges the columns of two set-operation members (or VALUES
// rows) by position: names from the first, sources from both.
func mergeColumns(l, r []OutputColumn) []OutputColumn {
	if l == nil {
		return r
	}
	if r == nil {
		return l
	}
	n := len(l)
	if len(r) > n {
		n = len(r)
	}
	out := make([]OutputColumn, n)
	for i := range out {
		var c OutputColumn
		switch {
		case i < len(l) && i < len(r):
			c = l[i]
			c.Sources = normRefs(append(append([]ColumnRef(nil), l[i].Sources...), r[i].Sources...))
			c.Star = l[i].Star || r[i].Star
			c.WholeRow = l[i].WholeRow || r[i].WholeRow
			c.Derived = l[i].Derived || r[i].Derived
		case i < len(l):
			c = l[i]
		default:
			c = r[i]
		}
		out[i] = c
	}
	return out
}

// fromItem adds one FROM-clause item to sc.
func (a *analyzer) fromItem(n *pg_query.Node, sc *scope) {
	if n == nil {
		return
	}
	var msg any
	switch x := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		msg = x.RangeVar
	case *pg_query.Node_RangeSubselect:
		msg = x.RangeSubselect
	case *pg_query.Node_JoinExpr:
		msg = x.JoinExpr
	case *pg_query.Node_RangeFunction:
		msg = x.RangeFunction
	case *pg_query.Node_RangeTableSample:
		msg = x.RangeTableSample
	default:
		// XMLTABLE, JSON_TABLE and anything new: collect what it
		// references; it contributes an opaque relation.
		var acc sources
		a.walkNode(n, sc, &acc)
		sc.rels = append(sc.rels, relation{name: aliasOf(n), cols: []OutputColumn{{Name: "?column?", Sources: normRefs(acc.refs), WholeRow: acc.wholeRow, Derived: true}}})
		return
	}
	a.fromItemMsg(msg, sc)
}

func aliasOf(n *pg_query.Node) string {
	if n == nil {
		return ""
	}
	switch x := n.GetNode().(type) {
	case *pg_query.Node_RangeTableFunc:
		return x.RangeTableFunc.GetAlias().GetAliasname()
	case *pg_query.Node_JsonTable:
		return x.JsonTable.GetAlias().GetAliasname()
	}
	return ""
}

func (a *analyzer) fromItemMsg(msg any, sc *scope) {
	if !a.enter() {
		return
	}
	defer a.leave()
	switch x := msg.(type) {
	case *pg_query.RangeVar:
		a.rangeVar(x, sc, a.read)
	case *pg_query.RangeSubselect:
		inner := sc.parent
		if x.GetLateral() {
			inner = sc
		}
		cols := a.query(x.GetSubquery(), inner)
		sc.rels = append(sc.rels, relation{name: x.GetAlias().GetAliasname(), cols: renameCols(cols, x.GetAlias())})
	case *pg_query.JoinExpr:
		a.fromItem(x.GetLarg(), sc)
		a.fromItem(x.GetRarg(), sc)
		a.walkNode(x.GetQuals(), sc, nil)
	case *pg_query.RangeFunction:
		var cols []OutputColumn
		name := x.GetAlias().GetAliasname()
		for _, item := range x.GetFunctions() {
			// Each item is a List of (function call, column definitions).
			parts := item.GetList().GetItems()
			if len(parts) == 0 {
				a.walkNode(item, sc, nil)
				continue
			}
			var acc sources
			a.walkNode(parts[0], sc, &acc)
			fname := ""
			if fc := parts[0].GetFuncCall(); fc != nil {
				if p := strs(fc.GetFuncname()); len(p) > 0 {
					fname = p[len(p)-1]
				}
			}
			if name == "" {
				name = fname
			}
			cols = append(cols, OutputColumn{Name: fname, Sources: normRefs(acc.refs), WholeRow: acc.wholeRow, Derived: true})
		}
		if len(cols) == 1 && name != "" {
			cols[0].Name = name
		}
		sc.rels = append(sc.rels, relation{name: name, cols: renameCols(cols, x.GetAlias())})
	case *pg_query.RangeTableSample:
		a.fromItem(x.GetRelation(), sc)
		// The sampling method is a function (tsm_handler) named by the
		// query: bernoulli and system are built in, others come from
		// extensions.
		a.function(strs(x.GetMethod()), false)
		a.walkNodes(x.GetArgs(), sc, nil)
		a.walkNode(x.GetRepeatable(), sc, nil)
	}
}

// rangeVar adds a table (or a CTE reference) to the scope, recording the
// table in dst.
func (a *analyzer) rangeVar(rv *pg_query.RangeVar, sc *scope, dst set) {
	name := rv.GetAlias().GetAliasname()
	if name == "" {
		name = rv.GetRelname()
	}
	if rv.GetSchemaname() == "" && rv.GetCatalogname() == "" {
		if cols, ok := sc.cte(rv.GetRelname()); ok {
			sc.rels = append(sc.rels, relation{name: name, cols: renameCols(cols, rv.GetAlias())})
			return
		}
	}
	t := tableName(rv)
	if t == "" {
		return
	}
	dst.add(t)
	sc.rels = append(sc.rels, relation{name: name, table: t, renamed: len(rv.GetAlias().GetColnames()) > 0})
}

// targetList analyses a SELECT list or RETURNING list.
func (a *analyzer) targetList(list []*pg_query.Node, sc *scope) []OutputColumn {
	var out []OutputColumn
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			a.walkNode(n, sc, nil)
			continue
		}
		val := rt.GetVal()
		if cr := val.GetColumnRef(); cr != nil {
			if isStar(cr) {
				out = append(out, a.starCols(cr, sc)...)
				continue
			}
			var acc sources
			a.columnRef(cr, sc, &acc)
			name := rt.GetName()
			if name == "" {
				if p := strs(cr.GetFields()); len(p) > 0 {
					name = p[len(p)-1]
				}
			}
			out = append(out, OutputColumn{Name: name, Sources: normRefs(acc.refs), WholeRow: acc.wholeRow, Derived: acc.derived})
			continue
		}
		var acc sources
		a.walkNode(val, sc, &acc)
		a.walkNodes(rt.GetIndirection(), sc, &acc)
		name := rt.GetName()
		if name == "" {
			name = exprName(val)
		}
		out = append(out, OutputColumn{Name: name, Sources: normRefs(acc.refs), WholeRow: acc.wholeRow, Derived: true})
	}
	return out
}

// exprName approximates the name PostgreSQL gives an unnamed expression.
func exprName(n *pg_query.Node) string {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_FuncCall:
		if p := strs(x.FuncCall.GetFuncname()); len(p) > 0 {
			return p[len(p)-1]
		}
	case *pg_query.Node_TypeCast:
		if name := exprName(x.TypeCast.GetArg()); name != "?column?" {
			return name
		}
		if p := strs(x.TypeCast.GetTypeName().GetNames()); len(p) > 0 {
			return p[len(p)-1]
		}
	case *pg_query.Node_ColumnRef:
		if p := strs(x.ColumnRef.GetFields()); len(p) > 0 {
			return p[len(p)-1]
		}
	case *pg_query.Node_CoalesceExpr:
		return "coalesce"
	case *pg_query.Node_CaseExpr:
		return "case"
	case *pg_query.Node_RowExpr:
		return "row"
	case *pg_query.Node_ArrayExpr:
		return "array"
	case *pg_query.Node_SubLink:
		if x.SubLink.GetSubLinkType() == pg_query.SubLinkType_EXISTS_SUBLINK {
			return "exists"
		}
		if x.SubLink.GetSubLinkType() == pg_query.SubLinkType_ARRAY_SUBLINK {
			return "array"
		}
		if sel := x.SubLink.GetSubselect().GetSelectStmt(); sel != nil && len(sel.GetTargetList()) > 0 {
			rt := sel.GetTargetList()[0].GetResTarget()
			if rt.GetName() != "" {
				return rt.GetName()
			}
			return exprName(rt.GetVal())
		}
	}
	return "?column?"
}

func isStar(cr *pg_query.ColumnRef) bool {
	f := cr.GetFields()
	return len(f) > 0 && f[len(f)-1].GetAStar() != nil
}

// starCols expands * or t.* in a target list.
func (a *analyzer) starCols(cr *pg_query.ColumnRef, sc *scope) []OutputColumn {
	quals := strs(cr.GetFields())
	var rels []relation
	if len(quals) == 0 {
		for s := sc; s != nil; s = s.parent {
			if len(s.rels) > 0 {
				rels = s.rels
				break
			}
		}
	} else if r := findRel(sc, quals); r != nil {
		rels = []relation{*r}
	} else {
		t := strings.Join(quals, ".")
		a.columns.add(t + ".*")
		return []OutputColumn{{Name: "*", Sources: []ColumnRef{{Table: t, Column: "*"}}, Star: true}}
	}
	var out []OutputColumn
	for _, r := range rels {
		if r.derived() {
			out = append(out, r.cols...)
			continue
		}
		a.columns.add(r.table + ".*")
		out = append(out, OutputColumn{Name: "*", Sources: []ColumnRef{{Table: r.table, Column: "*"}}, Star: true})
	}
	return out
}

// findRel finds the relation a qualifier ("t", "s.t" or "db.s.t") names,
// innermost scope first.
func findRel(sc *scope, quals []string) *relation {
	if len(quals) == 0 {
		return nil
	}
	for s := sc; s != nil; s = s.parent {
		for i := range s.rels {
			r := &s.rels[i]
			switch len(quals) {
			case 1:
				if r.name == quals[0] {
					return r
				}
			default:
				q := quals[len(quals)-2] + "." + quals[len(quals)-1]
				if r.table == q || (r.table == quals[len(quals)-1] && r.name == r.table) {
					return r
				}
			}
		}
	}
	return nil
}

// columnRef records a column reference and adds its sources to acc.
func (a *analyzer) columnRef(cr *pg_query.ColumnRef, sc *scope, acc *sources) {
	if acc == nil {
		// Not flowing into an output column: a condition, an ordering, a
		// grouping. Resolve it to its sources all the same, as a filter.
		var tmp sources
		a.columnRefTo(cr, sc, &tmp)
		for _, r := range tmp.refs {
			a.filter.add(r.Table + "." + r.Column)
		}
		return
	}
	a.columnRefTo(cr, sc, acc)
}

// filterCols records the sources of columns used in a condition.
func (a *analyzer) filterCols(cols []OutputColumn) {
	for _, c := range cols {
		for _, r := range c.Sources {
			a.filter.add(r.Table + "." + r.Column)
		}
	}
}

func (a *analyzer) columnRefTo(cr *pg_query.ColumnRef, sc *scope, acc *sources) {
	parts := strs(cr.GetFields())
	if isStar(cr) {
		// t.* in an expression (to_json(t.*)): the whole row.
		for _, c := range a.starCols(cr, sc) {
			if acc != nil {
				acc.refs = append(acc.refs, c.Sources...)
				acc.wholeRow = true
				acc.derived = acc.derived || c.Derived
			}
		}
		return
	}
	if len(parts) == 0 {
		return
	}
	col := parts[len(parts)-1]
	if len(parts) == 1 {
		a.bareColumn(col, sc, acc)
		return
	}
	r := findRel(sc, parts[:len(parts)-1])
	if r == nil {
		t := strings.Join(parts[:len(parts)-1], ".")
		a.columns.add(t + "." + col)
		if acc != nil {
			acc.add(ColumnRef{Table: t, Column: col})
		}
		return
	}
	a.relColumn(r, col, acc)
}

// relColumn resolves column col of relation r.
func (a *analyzer) relColumn(r *relation, col string, acc *sources) {
	if r.renamed {
		// Which table column an alias name stands for needs the table's
		// column order; report the whole row, so grants with column lists
		// and column masks err on the safe side.
		a.columns.add(r.table + ".*")
		if acc != nil {
			acc.add(ColumnRef{Table: r.table, Column: "*"})
			acc.wholeRow = true
		}
		return
	}
	if !r.derived() {
		a.columns.add(r.table + "." + col)
		if acc != nil {
			acc.add(ColumnRef{Table: r.table, Column: col})
		}
		return
	}
	if acc == nil {
		return
	}
	found := false
	for _, c := range r.cols {
		if c.Name == col && !c.Star {
			found = true
			acc.refs = append(acc.refs, c.Sources...)
			acc.wholeRow = acc.wholeRow || c.WholeRow
			acc.derived = acc.derived || c.Derived
		}
	}
	if !found {
		// The column may come from a star over a table inside the derived
		// relation, or the relation is opaque: attribute it to every table
		// a star covers, else to every source of the relation.
		for _, c := range r.cols {
			if c.Star {
				for _, s := range c.Sources {
					found = true
					acc.add(ColumnRef{Table: s.Table, Column: col})
				}
			}
		}
		if !found {
			for _, c := range r.cols {
				acc.refs = append(acc.refs, c.Sources...)
				acc.wholeRow = acc.wholeRow || c.WholeRow
			}
			acc.derived = true
		}
	}
}

// hasCol reports whether derived relation r has a column named col (or a
// star that might hold it).
func (r *relation) hasCol(col string) (named, star bool) {
	for _, c := range r.cols {
		if c.Star {
			star = true
		} else if c.Name == col {
			named = true
		}
	}
	return named, star
}

// bareColumn resolves an unqualified name: a column of the one relation in
// scope, a column of a derived relation that has it, a whole-row reference
// to a relation of that name, or an ambiguous "?.col".
func (a *analyzer) bareColumn(col string, sc *scope, acc *sources) {
	for s := sc; s != nil; s = s.parent {
		if s.outNames[col] {
			return
		}
		if len(s.rels) == 0 {
			continue
		}
		// Whole-row reference: SELECT c FROM customers c.
		for i := range s.rels {
			r := &s.rels[i]
			if r.name != col {
				continue
			}
			if named, _ := r.hasCol(col); r.derived() && named {
				continue
			}
			if r.derived() {
				if acc != nil {
					acc.addCols(r.cols)
					acc.wholeRow = true
				}
				return
			}
			a.columns.add(r.table + ".*")
			if acc != nil {
				acc.add(ColumnRef{Table: r.table, Column: "*"})
				acc.wholeRow = true
			}
			return
		}
		var cands []*relation
		for i := range s.rels {
			r := &s.rels[i]
			if !r.derived() {
				cands = append(cands, r)
				continue
			}
			if named, star := r.hasCol(col); named || star {
				cands = append(cands, r)
			}
		}
		switch len(cands) {
		case 0:
			continue
		case 1:
			a.relColumn(cands[0], col, acc)
			return
		}
		a.columns.add("?." + col)
		var tmp sources
		for _, r := range cands {
			if r.derived() {
				a.relColumn(r, col, &tmp)
			} else if acc != nil {
				tmp.add(ColumnRef{Table: r.table, Column: col})
			}
		}
		if acc != nil {
			acc.refs = append(acc.refs, tmp.refs...)
			acc.wholeRow = acc.wholeRow || tmp.wholeRow
			acc.derived = acc.derived || tmp.derived
		}
		return
	}
	a.columns.add("?." + col)
	if acc != nil {
		acc.add(ColumnRef{Table: "?", Column: col})
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
