package mask

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/jackc/pgx/v5/pgproto3"
)

// OutputColumn says where one output column's values come from. It mirrors
// sqlclass.OutputColumn (the proxy converts field by field).
type OutputColumn struct {
	Name     string
	Sources  []ColumnRef
	Star     bool
	WholeRow bool
	Derived  bool
}

// ColumnRef is a table column as written in the query ("public.customers",
// "email"); Table "?" means unknown, Column "*" means all columns.
type ColumnRef struct {
	Table  string
	Column string
}

// Catalog maps RowDescription origins to table columns. Implementations
// must be safe for concurrent use; ok is false when the column is unknown
// or the lookup failed.
type Catalog interface {
	Lookup(ctx context.Context, tableOID uint32, attnum int16) (schema, table, column string, ok bool)
}

// Action is what a plan does to one output column.
type Action int

const (
	// Clear passes the value (classifiers and JSON paths still apply).
	Clear Action = iota
	// Mask replaces the value with the style's mask.
	Mask
	// Null replaces the value with NULL.
	Null
)

func (a Action) String() string {
	switch a {
	case Mask:
		return "mask"
	case Null:
		return "null"
	}
	return "clear"
}

// PlanInput is what NewPlan needs to know about one statement's result.
type PlanInput struct {
	// Specs are the decision's mask specs; nil or empty means no masking.
	Specs []*bundle.MaskSpec
	// Columns are the statement's output columns, in order.
	Columns []OutputColumn
	// Tables are the tables the statement reads, as written; used for the
	// fail-safe rule on unresolvable columns.
	Tables []string
	// Fields is the RowDescription. For COPY TO give one entry per column
	// with only Format set.
	Fields []pgproto3.FieldDescription
	// Catalog resolves fields with a table OID; may be nil.
	Catalog Catalog
	// CopyFormat is "" for a row result, or the COPY format "text", "csv"
	// or "binary".
	CopyFormat string
}

// ColumnPlan is the decision for one output column.
type ColumnPlan struct {
	Action Action
	// JSON is true for json/jsonb columns (masks are JSON strings, JSON
	// paths apply).
	JSON bool
	// Reason explains a Mask or Null decision.
	Reason string
	// opaque is true for binary values of non-text types, which content
	// classifiers and JSON paths cannot read.
	opaque bool
}

// Plan rewrites the rows of one result. It is immutable and safe for
// concurrent use.
type Plan struct {
	// Columns has one entry per field.
	Columns     []ColumnPlan
	classifiers *Classifiers
	paths       []jsonPath
	style       string
	key         []byte
	maskText    []byte
	maskJSON    []byte
	active      bool
}

// Active reports whether the plan changes anything; an inactive plan's
// rewrites return their input unchanged.
func (p *Plan) Active() bool { return p != nil && p.active }

// merged is the union of several mask specs.
type merged struct {
	columns     []pattern
	classifiers []string
	paths       []string
	binaryDeny  bool
	style       string
}

var styleStrength = map[string]int{StylePartial: 1, StyleHash: 2, StyleRedact: 3, "": 3}

func merge(specs []*bundle.MaskSpec) (merged, error) {
	var m merged
	for _, s := range specs {
		if s == nil {
			continue
		}
		for _, c := range s.Columns {
			p, err := parsePattern(c)
			if err != nil {
				return m, err
			}
			m.columns = append(m.columns, p)
		}
		m.classifiers = append(m.classifiers, s.Classifiers...)
		m.paths = append(m.paths, s.JSONPaths...)
		switch s.Binary {
		case "", "null":
		case "deny":
			m.binaryDeny = true
		default:
			return m, fmt.Errorf("mask: binary %q: %w", s.Binary, ErrConfig)
		}
		st := s.Style
		if st == "" {
			st = StyleRedact
		}
		if _, ok := styleStrength[st]; !ok {
			return m, fmt.Errorf("mask: unknown style %q: %w", st, ErrConfig)
		}
		if m.style == "" || styleStrength[st] > styleStrength[m.style] {
			m.style = st
		}
	}
	return m, nil
}

// pattern is a column pattern: "table.column", "schema.table.column",
// "*.column", "table.*". Empty schema means any schema.
type pattern struct{ schema, table, column string }

func parsePattern(s string) (pattern, error) {
	parts := strings.Split(strings.ToLower(s), ".")
	switch len(parts) {
	case 2:
		return pattern{table: parts[0], column: parts[1]}, nil
	case 3:
		return pattern{schema: parts[0], table: parts[1], column: parts[2]}, nil
	}
	return pattern{}, fmt.Errorf("mask: column pattern %q: want table.column or schema.table.column: %w", s, ErrConfig)
}

func wild(p, v string) bool { return p == "*" || p == v }

// matchTable reports whether the pattern's table part covers the table.
// An unknown schema ("") or table ("?") matches (fail safe).
func (p pattern) matchTable(schema, table string) bool {
	if table != "?" && !wild(p.table, table) {
		return false
	}
	return p.schema == "" || schema == "" || wild(p.schema, schema)
}

// match reports whether the pattern covers the column. Column "*" (star or
// whole row) matches when the table has any masked column.
func (p pattern) match(schema, table, column string) bool {
	if !p.matchTable(schema, table) {
		return false
	}
	return column == "*" || wild(p.column, column)
}

// splitTable splits "schema.table" as written.
func splitTable(t string) (schema, table string) {
	t = strings.ToLower(t)
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[:i], t[i+1:]
	}
	return "", t
}

// Covers reports whether spec masks the column ref ("table.column",
// "schema.table.column", "?.column" when the table is unknown, "table.*"
// for a whole row), with the same fail-safe matching as masking itself:
// an unknown table matches, and a whole row matches when the table has a
// masked column.
func Covers(spec *bundle.MaskSpec, ref string) bool {
	if spec == nil {
		return false
	}
	m, err := merge([]*bundle.MaskSpec{spec})
	if err != nil {
		return true // a spec that does not parse covers everything
	}
	table, column := "?", ref
	if i := strings.LastIndexByte(ref, '.'); i >= 0 {
		table, column = ref[:i], ref[i+1:]
	}
	return m.masksRef(ColumnRef{Table: table, Column: column})
}

func (m *merged) masksColumn(schema, table, column string) bool {
	schema, table, column = strings.ToLower(schema), strings.ToLower(table), strings.ToLower(column)
	for _, p := range m.columns {
		if p.match(schema, table, column) {
			return true
		}
	}
	return false
}

func (m *merged) masksRef(r ColumnRef) bool {
	s, t := splitTable(r.Table)
	return m.masksColumn(s, t, r.Column)
}

func (m *merged) touchesMasked(tables []string) bool {
	for _, t := range tables {
		s, n := splitTable(t)
		for _, p := range m.columns {
			if p.matchTable(s, n) {
				return true
			}
		}
	}
	return false
}

// Type OIDs whose text form can carry a mask text.
const (
	oidName    = 19
	oidText    = 25
	oidJSON    = 114
	oidBPChar  = 1042
	oidVarchar = 1043
	oidJSONB   = 3802
	oidUnknown = 705
)

func isJSONType(oid uint32) bool { return oid == oidJSON || oid == oidJSONB }

func isTextType(oid uint32) bool {
	switch oid {
	case oidName, oidText, oidBPChar, oidVarchar, oidUnknown, 0:
		return true
	}
	return false
}

// NewPlan decides, per output column, what happens to its values.
func (m *Masker) NewPlan(ctx context.Context, in PlanInput) (*Plan, error) {
	mg, err := merge(in.Specs)
	if err != nil {
		return nil, err
	}
	p := &Plan{Columns: make([]ColumnPlan, len(in.Fields))}
	if len(mg.columns) == 0 && len(mg.classifiers) == 0 && len(mg.paths) == 0 {
		return p, nil
	}
	style, err := m.checkStyle(mg.style)
	if err != nil {
		return nil, err
	}
	p.style, p.key = style, m.key
	p.maskText = appendMasked(nil, style, m.key, nil)
	if style != StyleRedact {
		// Whole-value masks of the hash and partial styles depend on the
		// value; maskText is only the redact fallback.
		p.maskText = []byte(RedactText)
	}
	p.maskJSON = []byte(`"` + RedactText + `"`)
	if p.classifiers, err = m.Classifiers(mg.classifiers, style); err != nil {
		return nil, err
	}
	for _, s := range mg.paths {
		jp, err := parseJSONPath(s)
		if err != nil {
			return nil, err
		}
		p.paths = append(p.paths, jp)
	}
	p.active = p.classifiers.Len() > 0 || len(p.paths) > 0

	srcs := positional(in.Columns, len(in.Fields))
	failSafe := mg.touchesMasked(in.Tables)
	for i, f := range in.Fields {
		cp := &p.Columns[i]
		cp.JSON = isJSONType(f.DataTypeOID)
		if f.Format == 1 && (cp.JSON || !isTextType(f.DataTypeOID)) {
			cp.opaque = true
		}
		masked, reason := false, ""
		resolved := false
		if f.TableOID != 0 && in.Catalog != nil {
			if schema, table, column, ok := in.Catalog.Lookup(ctx, f.TableOID, int16(f.TableAttributeNumber)); ok {
				resolved = true
				if mg.masksColumn(schema, table, column) {
					masked, reason = true, fmt.Sprintf("column %s.%s.%s is masked", schema, table, column)
				}
			}
		}
		if !resolved && srcs[i].known {
			resolved = true
			for _, r := range srcs[i].refs {
				if mg.masksRef(r) {
					masked = true
					switch {
					case srcs[i].derived:
						reason = fmt.Sprintf("derived from masked column %s.%s", r.Table, r.Column)
					case r.Column == "*":
						reason = fmt.Sprintf("whole row or star over %s, which has masked columns", r.Table)
					default:
						reason = fmt.Sprintf("column %s.%s is masked", r.Table, r.Column)
					}
					break
				}
			}
		}
		if !resolved && failSafe {
			masked, reason = true, "column origin unknown and the statement reads a table with masked columns"
		}
		if !masked {
			continue
		}
		p.active = true
		cp.Reason = reason
		switch {
		case f.Format == 1:
			if mg.binaryDeny {
				return nil, fmt.Errorf("mask: column %d (%s): binary format and binary is \"deny\": %w", i+1, f.Name, ErrDeny)
			}
			cp.Action = Null
			cp.Reason += "; binary format"
		case cp.JSON || isTextType(f.DataTypeOID):
			cp.Action = Mask
		default:
			cp.Action = Null
			cp.Reason += "; non-text type"
		}
	}
	if in.CopyFormat != "" && in.CopyFormat != "text" && p.active {
		return nil, fmt.Errorf("mask: COPY format %q cannot be rewritten: %w", in.CopyFormat, ErrDeny)
	}
	return p, nil
}

// posSource is what the statement's output columns say about one field.
type posSource struct {
	known   bool
	refs    []ColumnRef
	derived bool
}

// positional maps output columns to n fields. Star entries over real
// tables expand to an unknown number of fields: columns before the first
// star align from the start, columns after the last star from the end,
// and fields in between take the sources of the stars. When the counts
// cannot agree, nothing is known.
func positional(cols []OutputColumn, n int) []posSource {
	out := make([]posSource, n)
	first, last := -1, -1
	for i, c := range cols {
		if c.Star {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	set := func(f int, c OutputColumn) {
		out[f] = posSource{known: true, refs: c.Sources, derived: c.Derived || c.WholeRow}
	}
	if first < 0 {
		if len(cols) != n {
			return out
		}
		for i, c := range cols {
			set(i, c)
		}
		return out
	}
	prefix, suffix := first, len(cols)-1-last
	if prefix+suffix > n {
		return out
	}
	for i := 0; i < prefix; i++ {
		set(i, cols[i])
	}
	for i := 0; i < suffix; i++ {
		set(n-suffix+i, cols[last+1+i])
	}
	var mid []ColumnRef
	for _, c := range cols[first : last+1] {
		mid = append(mid, c.Sources...)
	}
	for f := prefix; f < n-suffix; f++ {
		out[f] = posSource{known: true, refs: mid}
	}
	return out
}

// maskValue returns the mask of one non-NULL value.
func (p *Plan) maskValue(cp *ColumnPlan, v []byte) []byte {
	if p.style == StyleRedact || p.style == "" {
		if cp.JSON {
			return p.maskJSON
		}
		return p.maskText
	}
	m := appendMasked(nil, p.style, p.key, v)
	if cp.JSON {
		return appendJSONString(nil, m)
	}
	return m
}

// RewriteDataRow applies the plan to the values of one DataRow (text or
// binary as described by the fields; nil is NULL) in place and returns
// values. Rows with nothing to change cost no allocation. A row whose
// length differs from the plan has its extra values nulled. Replaced
// values may share memory with the plan (the fixed mask text): callers
// must treat the returned values as read-only.
func (p *Plan) RewriteDataRow(values [][]byte) [][]byte {
	if !p.Active() {
		return values
	}
	for i, v := range values {
		if v == nil {
			continue
		}
		if i >= len(p.Columns) {
			values[i] = nil
			continue
		}
		values[i] = p.rewriteValue(&p.Columns[i], v)
	}
	return values
}

// rewriteValue applies the column plan to one non-NULL decoded value.
func (p *Plan) rewriteValue(cp *ColumnPlan, v []byte) []byte {
	switch cp.Action {
	case Null:
		return nil
	case Mask:
		return p.maskValue(cp, v)
	}
	if cp.opaque {
		return v
	}
	if cp.JSON && (len(p.paths) > 0 || p.classifiers.Len() > 0) {
		if out, ok := p.rewriteJSON(v); ok {
			return out
		}
		// Not parseable as JSON: fall back to classifiers on the text.
	}
	if out, ok := p.classifiers.Redact(v); ok {
		return out
	}
	return v
}
