package sqlclass

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// severity orders data-modifying kinds: a statement that hides a write in
// a CTE takes the kind of its most severe write.
var severity = map[string]int{"select": 0, "insert": 1, "merge": 2, "update": 3, "delete": 4}

// dml analyses INSERT, UPDATE, DELETE and MERGE (top level or in a CTE)
// and returns the RETURNING columns.
func (a *analyzer) dml(stmt any, sc *scope) []OutputColumn {
	if !a.enter() {
		return nil
	}
	defer a.leave()
	switch s := stmt.(type) {
	case *pg_query.InsertStmt:
		if w := s.GetWithClause(); w != nil {
			sc = a.withClause(w, sc)
		}
		target := tableName(s.GetRelation())
		a.written.add(target)
		a.writes = append(a.writes, write{kind: "insert"})
		if len(s.GetCols()) == 0 {
			a.columns.add(target + ".*")
		}
		for _, c := range s.GetCols() {
			if rt := c.GetResTarget(); rt != nil && rt.GetName() != "" {
				a.columns.add(target + "." + rt.GetName())
			}
		}
		a.query(s.GetSelectStmt(), sc)
		ts := a.targetScope(s.GetRelation(), sc)
		if occ := s.GetOnConflictClause(); occ != nil {
			// EXCLUDED is the row proposed for insertion.
			ts.rels = append(ts.rels, relation{name: "excluded", table: target})
			a.setList(target, occ.GetTargetList(), ts)
			if inf := occ.GetInfer(); inf != nil {
				a.walkNodes(inf.GetIndexElems(), ts, nil)
				a.walkNode(inf.GetWhereClause(), ts, nil)
			}
			a.walkNode(occ.GetWhereClause(), ts, nil)
			ts.rels = ts.rels[:1]
		}
		return a.targetList(s.GetReturningList(), ts)
	case *pg_query.UpdateStmt:
		if w := s.GetWithClause(); w != nil {
			sc = a.withClause(w, sc)
		}
		target := tableName(s.GetRelation())
		a.written.add(target)
		a.writes = append(a.writes, write{kind: "update", hasWhere: s.GetWhereClause() != nil})
		ts := a.targetScope(s.GetRelation(), sc)
		for _, f := range s.GetFromClause() {
			a.fromItem(f, ts)
		}
		a.setList(target, s.GetTargetList(), ts)
		a.walkNode(s.GetWhereClause(), ts, nil)
		return a.targetList(s.GetReturningList(), ts)
	case *pg_query.DeleteStmt:
		if w := s.GetWithClause(); w != nil {
			sc = a.withClause(w, sc)
		}
		a.written.add(tableName(s.GetRelation()))
		a.writes = append(a.writes, write{kind: "delete", hasWhere: s.GetWhereClause() != nil})
		ts := a.targetScope(s.GetRelation(), sc)
		for _, f := range s.GetUsingClause() {
			a.fromItem(f, ts)
		}
		a.walkNode(s.GetWhereClause(), ts, nil)
		return a.targetList(s.GetReturningList(), ts)
	case *pg_query.MergeStmt:
		if w := s.GetWithClause(); w != nil {
			sc = a.withClause(w, sc)
		}
		target := tableName(s.GetRelation())
		a.written.add(target)
		a.writes = append(a.writes, write{kind: "merge"})
		ts := a.targetScope(s.GetRelation(), sc)
		a.fromItem(s.GetSourceRelation(), ts)
		a.walkNode(s.GetJoinCondition(), ts, nil)
		for _, wc := range s.GetMergeWhenClauses() {
			mw := wc.GetMergeWhenClause()
			if mw == nil {
				a.walkNode(wc, ts, nil)
				continue
			}
			a.walkNode(mw.GetCondition(), ts, nil)
			a.setList(target, mw.GetTargetList(), ts)
			a.walkNodes(mw.GetValues(), ts, nil)
		}
		return a.targetList(s.GetReturningList(), ts)
	}
	return nil
}

// targetScope is a scope holding the target table of a DML statement.
func (a *analyzer) targetScope(rv *pg_query.RangeVar, sc *scope) *scope {
	ts := &scope{parent: sc}
	if t := tableName(rv); t != "" {
		name := rv.GetAlias().GetAliasname()
		if name == "" {
			name = rv.GetRelname()
		}
		ts.rels = append(ts.rels, relation{name: name, table: t})
	}
	return ts
}

// setList records the columns assigned by SET (or MERGE/ON CONFLICT
// target lists) and walks the assigned values.
func (a *analyzer) setList(target string, list []*pg_query.Node, sc *scope) {
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			a.walkNode(n, sc, nil)
			continue
		}
		if rt.GetName() != "" {
			a.columns.add(target + "." + rt.GetName())
		}
		a.walkNodes(rt.GetIndirection(), sc, nil)
		a.walkNode(rt.GetVal(), sc, nil)
	}
}
