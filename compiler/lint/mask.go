package lint

import (
	"strings"

	"github.com/gatehouse/gatehouse/compiler/scope"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// readKinds are statement kinds that return table rows.
var readKinds = []string{"copy", "select"}

func (l *linter) checkMasks() {
	for _, ri := range l.rules {
		r := ri.r
		if r.Effect != bundle.EffectMask {
			continue
		}
		m := r.Mask
		if m == nil || (len(m.Columns) == 0 && len(m.Classifiers) == 0 && len(m.JSONPaths) == 0) {
			l.addDefault(r.Pos, CodeMaskEmpty, r.ID, "mask rule %q names no columns, classifiers or JSON paths; it masks nothing", r.ID)
			continue
		}
		var ssh, sqlRes []string
		for _, n := range ri.res {
			res := l.ix.Resource(n)
			switch {
			case res == nil:
			case res.Type == bundle.ResourceSSH:
				ssh = append(ssh, n)
			case isSQL(res.Type):
				sqlRes = append(sqlRes, n)
			}
		}
		if len(ssh) > 0 {
			l.addDefault(r.Pos, CodeMaskUnsupported, r.ID, "mask rule %q applies to SSH resources %s, whose sessions cannot be masked", r.ID, strings.Join(ssh, ", "))
		}
		if len(m.Columns) > 0 && len(sqlRes) == 0 && len(ri.res) > 0 {
			l.addDefault(r.Pos, CodeMaskUnsupported, r.ID, "mask rule %q names columns but applies to no SQL resource", r.ID)
		}
		if len(sqlRes) == 0 {
			continue
		}
		for _, c := range m.Columns {
			s, t, _ := scope.ColumnParts(c)
			if t == scope.Wildcard {
				continue
			}
			table := t
			if s != scope.Wildcard {
				table = s + "." + t
			}
			if !l.tableReadable(ri, sqlRes, table) {
				l.addDefault(r.Pos, CodeMaskUnreadable, r.ID, "mask rule %q: column %q names table %q, which no allow or approve rule lets its subjects read on %s", r.ID, c, table, strings.Join(sqlRes, ", "))
			}
		}
	}
}

// tableReadable reports whether some live grant lets a subject of mask rule
// m read table on one of res.
func (l *linter) tableReadable(m ruleInfo, res []string, table string) bool {
	for _, g := range l.rules {
		if !isGrant(g.r.Effect) || g.expired {
			continue
		}
		if !scope.Intersects(g.subjects, m.subjects) || !scope.Intersects(g.res, res) {
			continue
		}
		switch scope.RuleProtocol(g.r) {
		case scope.ProtocolAny:
			return true
		case scope.ProtocolSQL:
			if !scope.ListOverlaps(g.r.SQL.Statements, readKinds, scope.WordCovers) {
				continue
			}
			if scope.ListOverlaps(g.r.SQL.Tables, []string{table}, scope.TableOverlaps) {
				return true
			}
		}
	}
	return false
}
