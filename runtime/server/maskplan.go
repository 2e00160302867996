package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/mask"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// maskPlanner builds the row rewriters that mask PostgreSQL results. The
// plan for a result needs the RowDescription, so the rewriter plans lazily
// on Describe (or on the first COPY line).
type maskPlanner struct {
	s *Server

	mu       sync.Mutex
	maskers  map[string]*mask.Masker // by bundle revision
	catalogs map[string]*catalogConn // by resource name

	// plans caches the plans of single-statement results, so repeated
	// statements (prepared or not) skip planning and catalog lookups.
	plansMu sync.Mutex
	plans   map[planKey]*mask.Plan
}

// maxCachedPlans bounds the plan cache; it is cleared when full.
const maxCachedPlans = 4096

// maxKeySpecs is the most mask specs a cacheable plan may combine.
const maxKeySpecs = 4

// planKey identifies a plan: the same masker (bundle revision), catalog
// (resource), mask specs, statement (its immutable, shared output columns
// and tables, compared by identity) and RowDescription give the same plan.
type planKey struct {
	revision, resource string
	specs              [maxKeySpecs]*bundle.MaskSpec
	cols               *sqlclass.OutputColumn
	ncols              int
	tables             *string
	ntables            int
	fields             string // encodeFields of the RowDescription
}

// catalogConn is a small pool to one backend, used only to resolve the
// table OID and attribute number of result columns to names.
type catalogConn struct {
	pool    *pgxpool.Pool
	catalog *mask.PGCatalog
}

func newMaskPlanner(s *Server) *maskPlanner {
	mp := &maskPlanner{s: s, maskers: map[string]*mask.Masker{}, catalogs: map[string]*catalogConn{}, plans: map[planKey]*mask.Plan{}}
	s.closers = append(s.closers, mp.close)
	return mp
}

var _ pg.RowPlanner = (*maskPlanner)(nil)

func (m *maskPlanner) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.catalogs {
		c.pool.Close()
	}
	m.catalogs = map[string]*catalogConn{}
	return nil
}

func (m *maskPlanner) masker(b *bundle.Bundle) (*mask.Masker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mk, ok := m.maskers[b.Manifest.Revision]; ok {
		return mk, nil
	}
	mk, err := mask.New(mask.Config{Classifiers: b.Policy.Classifiers, HashKey: m.s.maskKey})
	if err != nil {
		return nil, err
	}
	if len(m.maskers) > 4 {
		clear(m.maskers)
	}
	m.maskers[b.Manifest.Revision] = mk
	return mk, nil
}

func (m *maskPlanner) catalog(ctx context.Context, resource string) (mask.Catalog, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.catalogs[resource]; ok {
		return c.catalog, nil
	}
	pool, err := m.s.catalogPool(ctx, resource, "gatehouse-catalog", nil)
	if err != nil {
		return nil, err
	}
	c := &catalogConn{pool: pool, catalog: mask.NewPGCatalog(pool, mask.DefaultCatalogEntries)}
	m.catalogs[resource] = c
	return c.catalog, nil
}

// Plan implements pg.RowPlanner for one statement.
func (m *maskPlanner) Plan(ctx context.Context, sess *proxy.Session, j *proxy.Judgment, st *sqlclass.Statement) (pg.RowRewriter, error) {
	if len(j.Masks) == 0 {
		return nil, nil
	}
	eng := m.s.activator.Engine()
	if eng == nil {
		return nil, fmt.Errorf("no active bundle")
	}
	mk, err := m.masker(eng.Bundle())
	if err != nil {
		return nil, err
	}
	cat, err := m.catalog(ctx, sess.Resource().Name)
	if err != nil {
		return nil, err
	}
	if j.Opaque {
		// A function defined in the database may have computed any output
		// column from any table: every derived column counts as derived
		// from a masked one, and error texts are withheld.
		st = opaqueOutputs(st)
	}
	r := &rowMasker{ctx: context.WithoutCancel(ctx), masker: mk, catalog: cat, specs: j.Masks,
		stmts: []sqlclass.Statement{*st}, opaque: j.Opaque}
	r.tables = st.TablesRead // shared and immutable: no copy
	if producesRows(st) {
		r.results = []*sqlclass.Statement{st}
	}
	if len(j.Masks) <= maxKeySpecs {
		r.planner, r.key = m, planKey{revision: eng.Bundle().Manifest.Revision, resource: sess.Resource().Name,
			ncols: len(st.OutputColumns), ntables: len(st.TablesRead)}
		copy(r.key.specs[:], j.Masks)
		if len(st.OutputColumns) > 0 {
			r.key.cols = &st.OutputColumns[0]
		}
		if len(st.TablesRead) > 0 {
			r.key.tables = &st.TablesRead[0]
		}
	}
	return r, nil
}

// opaqueOutputs returns st with every output column also sourced from an
// unknown column of an unknown table, which every column mask covers.
func opaqueOutputs(st *sqlclass.Statement) *sqlclass.Statement {
	out := *st
	cols := make([]sqlclass.OutputColumn, len(st.OutputColumns))
	for i, c := range st.OutputColumns {
		c.Sources = append(append([]sqlclass.ColumnRef(nil), c.Sources...), sqlclass.ColumnRef{Table: "?", Column: "*"})
		c.Derived = true
		cols[i] = c
	}
	out.OutputColumns = cols
	return &out
}

func (m *maskPlanner) cachedPlan(k *planKey) *mask.Plan {
	m.plansMu.Lock()
	defer m.plansMu.Unlock()
	return m.plans[*k]
}

func (m *maskPlanner) storePlan(k *planKey, p *mask.Plan) {
	m.plansMu.Lock()
	defer m.plansMu.Unlock()
	if len(m.plans) >= maxCachedPlans {
		clear(m.plans)
	}
	m.plans[*k] = p
}

// encodeFields appends what planning reads from a RowDescription.
func encodeFields(dst []byte, fields []pgproto3.FieldDescription) []byte {
	for _, f := range fields {
		dst = append(dst, f.Name...)
		dst = append(dst, 0)
		dst = binary.BigEndian.AppendUint32(dst, f.TableOID)
		dst = binary.BigEndian.AppendUint16(dst, f.TableAttributeNumber)
		dst = binary.BigEndian.AppendUint32(dst, f.DataTypeOID)
		dst = binary.BigEndian.AppendUint16(dst, uint16(f.Format))
	}
	return dst
}

// producesRows reports whether a statement sends a RowDescription or COPY
// data, so multi-statement messages can be matched result by result.
func producesRows(st *sqlclass.Statement) bool {
	return len(st.OutputColumns) > 0 || st.Kind == "select" || (st.Copy != nil && st.Copy.Direction == "to")
}

// rowMasker is the pg.RowRewriter of one message. Describe is called for
// each result's RowDescription in order; COPY data plans on its first line.
type rowMasker struct {
	ctx     context.Context
	masker  *mask.Masker
	catalog mask.Catalog
	specs   []*bundle.MaskSpec
	tables  []string
	results []*sqlclass.Statement
	stmts   []sqlclass.Statement // every statement of the message

	next int // index into results of the next RowDescription
	plan *mask.Plan
	copy bool

	// planner and key are set when the plan may be cached (one statement).
	planner *maskPlanner
	key     planKey
	scratch []byte
	// opaque: the statement may run functions defined in the database.
	opaque bool
}

var (
	_ pg.RowRewriter   = (*rowMasker)(nil)
	_ pg.ErrorRewriter = (*rowMasker)(nil)
)

// current returns the statement the next result belongs to, or nil when
// the results cannot be matched to statements (the plan then falls back to
// the catalog and masks what it cannot resolve).
func (r *rowMasker) current() *sqlclass.Statement {
	if r.next < len(r.results) {
		st := r.results[r.next]
		r.next++
		return st
	}
	if len(r.results) == 1 {
		return r.results[0] // a prepared statement executed again
	}
	return nil
}

func (r *rowMasker) Describe(fields []pgproto3.FieldDescription) error {
	st := r.current()
	if r.planner != nil {
		r.scratch = encodeFields(r.scratch[:0], fields)
		if r.plan != nil && !r.copy && r.key.fields == string(r.scratch) {
			return nil // the same statement described again (prepared)
		}
		r.key.fields = string(r.scratch)
		if p := r.planner.cachedPlan(&r.key); p != nil {
			r.plan = p
			return nil
		}
	}
	in := mask.PlanInput{Specs: r.specs, Tables: r.tables, Fields: fields, Catalog: r.catalog}
	if st != nil {
		in.Columns = outputColumns(st.OutputColumns)
	}
	p, err := r.masker.NewPlan(r.ctx, in)
	if err != nil {
		return &pg.Error{Code: proxy.CodeInsufficientPrivilege, Message: "gatehouse withheld the result: " + err.Error(), Err: err}
	}
	r.plan = p
	if r.planner != nil && st != nil && !planUsedFailSafe(p) {
		r.planner.storePlan(&r.key, p)
	}
	return nil
}

// planUsedFailSafe reports whether a plan masked a column only because its
// origin was unknown; such a plan depends on a catalog lookup that may have
// failed transiently, so it is not cached.
func planUsedFailSafe(p *mask.Plan) bool {
	for _, c := range p.Columns {
		if strings.HasPrefix(c.Reason, "column origin unknown") {
			return true
		}
	}
	return false
}

func (r *rowMasker) Rewrite(values [][]byte) [][]byte {
	if r.plan == nil {
		// No RowDescription seen for these rows: refuse to pass anything
		// through unmasked.
		out := values[:0:0]
		for range values {
			out = append(out, []byte(mask.RedactText))
		}
		return out
	}
	return r.plan.RewriteDataRow(values)
}

func (r *rowMasker) CopyData(data []byte) ([]byte, error) {
	if !r.copy {
		st := r.current()
		format := "text"
		in := mask.PlanInput{Specs: r.specs, Tables: r.tables, Catalog: r.catalog}
		if st != nil {
			if st.Copy != nil && st.Copy.Format != "" {
				format = st.Copy.Format
			}
			in.Columns = outputColumns(st.OutputColumns)
		}
		in.CopyFormat = format
		// One field per column of the first line (COPY text escapes tabs
		// inside values, so raw tabs separate columns).
		n := bytes.Count(bytes.TrimSuffix(data, []byte("\n")), []byte("\t")) + 1
		if format != "text" {
			n = max(n, len(in.Columns))
		}
		in.Fields = make([]pgproto3.FieldDescription, n)
		p, err := r.masker.NewPlan(r.ctx, in)
		if err != nil {
			return nil, &pg.Error{Code: proxy.CodeInsufficientPrivilege, Message: "gatehouse withheld the COPY data: " + err.Error(), Err: err}
		}
		r.plan, r.copy = p, true
	}
	return r.plan.RewriteCopyLine(data), nil
}

func outputColumns(cols []sqlclass.OutputColumn) []mask.OutputColumn {
	out := make([]mask.OutputColumn, len(cols))
	for i, c := range cols {
		oc := mask.OutputColumn{Name: c.Name, Star: c.Star, WholeRow: c.WholeRow, Derived: c.Derived}
		for _, s := range c.Sources {
			oc.Sources = append(oc.Sources, mask.ColumnRef{Table: s.Table, Column: s.Column})
		}
		out[i] = oc
	}
	return out
}

// withheldErrorText replaces the texts of backend errors and notices of
// statements that reference masked columns.
const withheldErrorText = "gatehouse withheld the error text: the statement references masked columns, and error texts can quote their values"

// RewriteError implements pg.ErrorRewriter. Backend error and notice texts
// can quote values (`invalid input syntax for type integer: "..."`). When
// the message references a masked column, every free-text field is
// replaced (SQLSTATE, severity and position stay, so clients still see
// what kind of error happened); otherwise the content classifiers redact
// what they recognise. It runs only when the backend reports an error or
// notice, so it costs nothing on the happy path.
func (r *rowMasker) RewriteError(e *pgproto3.ErrorResponse) {
	if r.referencesMasked() {
		e.Message = withheldErrorText
		e.Detail, e.Hint, e.Where, e.InternalQuery = "", "", "", ""
		e.InternalPosition = 0
		e.UnknownFields = nil
		return
	}
	var names []string
	for _, s := range r.specs {
		if s != nil {
			names = append(names, s.Classifiers...)
		}
	}
	cs, err := r.masker.Classifiers(names, mask.StyleRedact)
	if err != nil {
		e.Message = withheldErrorText
		e.Detail, e.Hint, e.Where, e.InternalQuery = "", "", "", ""
		e.UnknownFields = nil
		return
	}
	for _, f := range []*string{&e.Message, &e.Detail, &e.Hint, &e.Where, &e.InternalQuery,
		&e.SchemaName, &e.TableName, &e.ColumnName, &e.DataTypeName, &e.ConstraintName} {
		if out, ok := cs.Redact([]byte(*f)); ok {
			*f = string(out)
		}
	}
	e.UnknownFields = nil
}

// referencesMasked reports whether any statement of the message references
// a column the mask specs cover (including star, whole-row and ambiguous
// references), using the masker's own column matching.
func (r *rowMasker) referencesMasked() bool {
	if r.opaque {
		return true
	}
	var cols []mask.OutputColumn
	for i := range r.stmts {
		st := &r.stmts[i]
		for _, c := range st.Columns {
			t, col := splitColumnRef(c)
			cols = append(cols, mask.OutputColumn{Name: c, Sources: []mask.ColumnRef{{Table: t, Column: col}}})
		}
		cols = append(cols, outputColumns(st.OutputColumns)...)
		if st.Inner != nil {
			for _, c := range st.Inner.Columns {
				t, col := splitColumnRef(c)
				cols = append(cols, mask.OutputColumn{Name: c, Sources: []mask.ColumnRef{{Table: t, Column: col}}})
			}
		}
	}
	if len(cols) == 0 {
		return false
	}
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i := range fields {
		fields[i].DataTypeOID = 25 // text: a masked column is masked, not nulled
	}
	p, err := r.masker.NewPlan(r.ctx, mask.PlanInput{Specs: r.specs, Columns: cols, Fields: fields})
	if err != nil {
		return true
	}
	for _, c := range p.Columns {
		if c.Action != mask.Clear {
			return true
		}
	}
	return false
}

// splitColumnRef splits a classifier column reference "table.column",
// "schema.table.column" or "?.column".
func splitColumnRef(c string) (table, column string) {
	i := strings.LastIndexByte(c, '.')
	if i < 0 {
		return "?", c
	}
	return c[:i], c[i+1:]
}
