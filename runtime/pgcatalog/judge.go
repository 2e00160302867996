package pgcatalog

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// Request lists the names one statement uses, as the classifier reports
// them: identifiers the parser folded (unquoted) are lower case, quoted
// ones keep their case; qualified names are "schema.name".
type Request struct {
	// Functions are the called functions, "schema.name" when qualified.
	Functions []string
	// Operators are operator names as written ("+", "myschema.###").
	Operators []string
	// Types are explicit cast and typed-literal target types as written
	// ("mytype", "public.mytype", "varchar(10)[]").
	Types []string
	// Tables are relations as written ("customers", "public.customers").
	Tables []string
	// SearchPath is the session's effective search path as
	// current_schemas(true) returns it (see SearchPath), in order.
	SearchPath []string
}

// Result is the backend's view of a Request.
type Result struct {
	// NeedGrant lists, qualified ("schema.name"), the functions the
	// statement may run that a rule must grant by name: any function of
	// the called name that is user-defined, in any schema an unqualified
	// call could reach (overload resolution by argument types may pick it
	// over a built-in even when pg_catalog comes first in the path); every
	// qualified call outside pg_catalog and information_schema, as
	// written, whether or not such a function exists; the functions
	// behind user-defined operators the statement uses; the functions of
	// user-defined casts to the statement's explicit cast targets
	// (including function-style casts such as mytype(x)); and the
	// functions of user-defined implicit and assignment casts, which
	// PostgreSQL may apply to any statement. Sorted, unique.
	NeedGrant []string
	// Opaque is true when a function the gateway cannot see into may run
	// (NeedGrant is not empty) or a name is Unknown: the gateway cannot
	// tell what it reads and treats the output as sensitive.
	Opaque bool
	// Tables is parallel to Request.Tables: each relation as PostgreSQL
	// resolves it with Request.SearchPath, "schema.table". A name found in
	// no schema of the path is qualified with the schema it would be
	// created in (the first schema of the path other than pg_catalog and
	// temporary schemas), or left as written when there is none, and is
	// listed in Missing.
	Tables []string
	// Missing lists, as in Tables, the relations that do not exist, in
	// request order, unique.
	Missing []string
	// Unknown lists the functions and operators, as written, that the
	// backend's catalog did not hold when checked after this Judge began:
	// nonexistent ones (the statement fails), or for a function name
	// something other than a function or type: PostgreSQL reads f(t),
	// where t is a table or alias, as the column t.f. A caller that must
	// be exact denies.
	Unknown []string
	// Functions describes the user-defined functions among NeedGrant
	// (every overload), sorted by schema, name and arguments.
	Functions []Function
}

// Judge resolves r's names the way the backend would, from the backend's
// own catalog. It loads the snapshot on first use and checks the backend's
// fingerprint when the snapshot is older than RefreshInterval. When the
// result rests on the absence of a function, operator or relation from a
// snapshot checked before this call, it probes the backend for those names
// and, if one now exists, reloads and judges again: an object another
// client created a moment ago is seen (a new overload of a known name is
// not; see the package documentation). Judge is safe for concurrent use;
// r is not modified.
//
// Errors wrap ErrUnavailable (the catalog could not be read, ctx ended) or
// ErrName (a name PostgreSQL could not accept either); the caller denies.
func (c *Catalog) Judge(ctx context.Context, r *Request) (Result, error) {
	if r == nil {
		r = &Request{}
	}
	need := c.nextSeq()
	s, seq, err := c.current(ctx, 0)
	if err != nil {
		return Result{}, err
	}
	res, p, err := c.judge(ctx, s, r)
	switch {
	case err != nil:
		return Result{}, err
	case p.outdated:
		need = c.nextSeq()
	case p.empty() || seq >= need:
		// Nothing rests on an absence, or the snapshot was checked after
		// this call began.
		return res, nil
	default:
		changed, err := c.probe(ctx, p)
		if err != nil || !changed {
			return res, err
		}
	}
	// Something named in the statement appeared since the snapshot: a
	// check that starts now will see it and reload.
	s2, _, err := c.current(ctx, need)
	if err != nil {
		return Result{}, err
	}
	if s2 == s {
		return res, nil
	}
	res, _, err = c.judge(ctx, s2, r)
	return res, err
}

// probe lists what a result rests the absence of: names the snapshot did
// not know, relation names its cache holds as missing from where they were
// looked for. Qualifiers are "" for unqualified names.
type probe struct {
	funcSchema, funcName []string
	opSchema, opName     []string
	typeSchema, typeName []string
	rels                 []string
	relSum               [2]int64
	// outdated: a lookup found a relation in a schema the snapshot does
	// not know.
	outdated bool
}

func (p *probe) empty() bool {
	return len(p.funcName) == 0 && len(p.opName) == 0 && len(p.typeName) == 0 && len(p.rels) == 0
}

// probe reports whether any name p lists as absent is present now. It
// costs one indexed query, much less than a fingerprint, so statements
// naming unknown objects (which usually fail at the backend) stay cheap.
func (c *Catalog) probe(ctx context.Context, p *probe) (bool, error) {
	var funcs, ops, types int64
	var rels [2]int64
	err := c.cfg.Querier.QueryRow(ctx, probeSQL, p.funcSchema, p.funcName, p.opSchema, p.opName,
		p.typeSchema, p.typeName, p.rels).Scan(&funcs, &ops, &types, &rels[0], &rels[1])
	if err != nil {
		return false, fmt.Errorf("%w: probe unknown names: %w", ErrUnavailable, err)
	}
	return funcs > 0 || ops > 0 || types > 0 || rels != p.relSum, nil
}

// judgement accumulates one Result.
type judgement struct {
	s       *snapshot
	types   map[string]*nameEntry // looked up by this judgement
	grants  []string
	funcs   []*Function
	unknown []string
}

func (j *judgement) grantFunc(f *Function) {
	j.grants = append(j.grants, f.Qualified())
	j.funcs = append(j.funcs, f)
}

func (j *judgement) grantRef(r funcRef) {
	j.grants = append(j.grants, r.qual)
	if f := j.s.funcByOID[r.oid]; f != nil {
		j.funcs = append(j.funcs, f)
	}
}

// judge computes the result with one snapshot, and what the result rests
// on the absence of.
func (c *Catalog) judge(ctx context.Context, s *snapshot, r *Request) (res Result, p *probe, err error) {
	j := &judgement{s: s}
	p = &probe{}
	var typeRefs []typeRef
	// Calls of names the snapshot knows as no function: they may be
	// function-style casts, which a type lookup tells.
	var maybeTypes []typeRef
	for _, f := range r.Functions {
		schema, name, ok := splitName(f)
		if !ok {
			return Result{}, nil, fmt.Errorf("%w: function %q", ErrName, f)
		}
		known := j.function(schema, name)
		dotted := strings.IndexByte(f, '.') >= 0
		if dotted {
			// A quoted name may hold a dot: "a.b"() is a call of the
			// function named a.b, which the classifier writes like a
			// qualified name.
			if j.function("", truncateIdent(f)) {
				known = true
			}
		}
		// A call may be a function-style cast, mytype(x): PostgreSQL
		// tries that when no function of the name takes the arguments.
		ref := typeRef{schema: schema, name: name, written: f, dotted: dotted}
		if len(s.casts) > 0 {
			typeRefs = append(typeRefs, ref)
		}
		if !known {
			if _, builtin := s.builtinTypes[name]; !builtin || schema != "" && schema != "pg_catalog" {
				maybeTypes = append(maybeTypes, ref)
			}
		}
	}
	for _, op := range r.Operators {
		schema, name, ok := splitOperator(op)
		if !ok {
			return Result{}, nil, fmt.Errorf("%w: operator %q", ErrName, op)
		}
		if !j.operator(schema, name) {
			j.unknown = append(j.unknown, op)
			p.opSchema, p.opName = append(p.opSchema, schema), append(p.opName, name)
		}
	}
	if len(s.casts) > 0 {
		for _, t := range r.Types {
			schema, name, alias, ok := typeName(t)
			if !ok {
				return Result{}, nil, fmt.Errorf("%w: type %q", ErrName, t)
			}
			typeRefs = append(typeRefs, typeRef{schema: schema, name: name})
			if alias != "" {
				typeRefs = append(typeRefs, typeRef{schema: "pg_catalog", name: alias})
			}
		}
	}
	if len(typeRefs) > 0 || len(maybeTypes) > 0 {
		if err := j.ensureTypes(ctx, c.cfg.Querier, typeRefs, maybeTypes); err != nil {
			return Result{}, nil, err
		}
		j.casts(typeRefs)
		for _, ref := range maybeTypes {
			if j.isType(ref) {
				continue
			}
			j.unknown = append(j.unknown, ref.written)
			p.funcSchema, p.funcName = append(p.funcSchema, ref.schema), append(p.funcName, ref.name)
			p.typeSchema, p.typeName = append(p.typeSchema, ref.schema), append(p.typeName, ref.name)
			if ref.dotted {
				whole := truncateIdent(ref.written)
				p.funcSchema, p.funcName = append(p.funcSchema, ""), append(p.funcName, whole)
			}
		}
	}
	for _, fn := range s.always {
		j.grantRef(fn)
	}

	tables, missing, err := c.tables(ctx, s, r, p)
	if err != nil {
		return Result{}, nil, err
	}
	res = Result{Tables: tables, Missing: missing}
	if len(j.grants) > 0 {
		slices.Sort(j.grants)
		res.NeedGrant = slices.Compact(j.grants)
	}
	if len(j.funcs) > 0 {
		slices.SortFunc(j.funcs, func(a, b *Function) int {
			return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Name, b.Name),
				cmp.Compare(a.Args, b.Args), cmp.Compare(a.OID, b.OID))
		})
		j.funcs = slices.Compact(j.funcs)
		res.Functions = make([]Function, len(j.funcs))
		for i, f := range j.funcs {
			res.Functions[i] = *f
		}
	}
	if len(j.unknown) > 0 {
		slices.Sort(j.unknown)
		res.Unknown = slices.Compact(j.unknown)
	}
	res.Opaque = len(res.NeedGrant) > 0 || len(res.Unknown) > 0
	return res, p, nil
}

// function records what a call of schema.name (schema "" when unqualified)
// may run and reports whether the catalog knows such a function.
func (j *judgement) function(schema, name string) (known bool) {
	s := j.s
	switch schema {
	case "":
		// Unqualified: any user-defined function of the name in any schema
		// a search path may hold. Temporary schemas are never searched for
		// functions.
		for _, f := range s.funcs[name] {
			if !f.temp {
				j.grantFunc(f)
				known = true
			}
		}
		_, builtin := s.builtinFuncs[name]
		return known || builtin
	case "pg_catalog", "information_schema":
		for _, f := range s.funcs[name] {
			if f.Schema == schema {
				j.grantFunc(f)
				known = true
			}
		}
		_, builtin := s.builtinFuncs[name]
		return known || builtin
	case "pg_temp":
		// The session's own temporary schema; which one is not known here,
		// so every temporary schema's functions count as known.
		j.grants = append(j.grants, "pg_temp."+name)
		for _, f := range s.funcs[name] {
			if f.temp {
				j.funcs = append(j.funcs, f)
				known = true
			}
		}
		return known
	default:
		// Qualified outside the system schemas: granted by the name as
		// written even when no such function exists yet (it may be
		// created between two checks).
		j.grants = append(j.grants, schema+"."+name)
		for _, f := range s.funcs[name] {
			if f.Schema == schema {
				j.funcs = append(j.funcs, f)
				known = true
			}
		}
		return known
	}
}

// operator records the functions behind user-defined operators named
// schema.name and reports whether the catalog knows such an operator.
func (j *judgement) operator(schema, name string) (known bool) {
	s := j.s
	for _, o := range s.ops[name] {
		if schema == "" && o.temp || schema != "" && o.schema != schema && !(schema == "pg_temp" && o.temp) {
			continue
		}
		for _, f := range o.funcs {
			j.grantRef(f)
		}
		known = true
	}
	if schema == "" || schema == "pg_catalog" {
		_, builtin := s.builtinOps[name]
		known = known || builtin
	}
	return known
}

// typeRef is a type name as a cast target, or a function name that may be
// a function-style cast.
type typeRef struct {
	schema, name string
	written      string // for Unknown
	dotted       bool   // written holds a dot
}

// ensureTypes looks up the type names not yet cached.
func (j *judgement) ensureTypes(ctx context.Context, q Querier, lists ...[]typeRef) error {
	var missing []string
	j.types = map[string]*nameEntry{}
	for _, l := range lists {
		for _, t := range l {
			if e, ok := j.s.types.get(t.name); ok {
				// Held here: a full cache may be emptied meanwhile.
				j.types[t.name] = e
			} else if !slices.Contains(missing, t.name) {
				missing = append(missing, t.name)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fresh, err := j.s.lookupTypes(ctx, q, missing)
	for n, e := range fresh {
		j.types[n] = e
	}
	return err
}

// typeRows calls fn with the types a reference may denote: in its schema
// when qualified, in any schema when not (which one the search path picks
// does not matter to a conservative answer).
func (j *judgement) typeRows(t typeRef, fn func(nameRow)) {
	s := j.s
	e := j.types[t.name]
	if e == nil {
		return
	}
	var nsp uint32
	var anySchema, temp bool
	switch t.schema {
	case "":
		anySchema = true
	case "pg_temp":
		temp = true
	default:
		var ok bool
		if nsp, ok = s.schemas[t.schema]; !ok {
			return
		}
	}
	for _, r := range e.rows {
		if anySchema || temp && isTempSchema(s.nspName[r.nsp]) || !temp && r.nsp == nsp {
			fn(r)
		}
	}
}

func (j *judgement) isType(t typeRef) (found bool) {
	j.typeRows(t, func(nameRow) { found = true })
	return found
}

// casts records the functions of user-defined casts to the referenced
// types (to a domain's base type, and to an array's element type).
func (j *judgement) casts(refs []typeRef) {
	for _, t := range refs {
		j.typeRows(t, func(r nameRow) {
			for _, c := range j.s.casts {
				if c.target == r.oid || c.target == r.base || r.elem != 0 && c.target == r.elem {
					j.grantRef(c.fn)
				}
			}
		})
	}
}

// tables resolves r.Tables. Missing relations whose absence comes from
// the cache rather than from a lookup made now go to p.
func (c *Catalog) tables(ctx context.Context, s *snapshot, r *Request, p *probe) (tables, missing []string, err error) {
	if len(r.Tables) == 0 {
		return nil, nil, nil
	}
	type ref struct {
		schema, name string
		e            *nameEntry // held here: a full cache may be emptied meanwhile
	}
	refs := make([]ref, len(r.Tables))
	var lookup []string
	for i, t := range r.Tables {
		schema, name, ok := splitName(t)
		if !ok {
			return nil, nil, fmt.Errorf("%w: relation %q", ErrName, t)
		}
		e, cached := s.rels.get(name)
		refs[i] = ref{schema, name, e}
		if !cached && !slices.Contains(lookup, name) {
			lookup = append(lookup, name)
		}
	}
	var fresh map[string]*nameEntry
	if len(lookup) > 0 {
		var newSchema bool
		fresh, newSchema, err = s.lookupRelations(ctx, c.cfg.Querier, lookup)
		if err != nil {
			return nil, nil, err
		}
		p.outdated = p.outdated || newSchema
	}
	path := effectivePath(r.SearchPath)
	tables = make([]string, len(refs))
	for i, t := range refs {
		e := t.e
		if e == nil {
			e = fresh[t.name]
		}
		var q string
		if t.schema == "" {
			if q = s.resolveRelation(e, path); q == "" {
				q = t.name
				if cs := creationSchema(path, s); cs != "" {
					q = cs + "." + t.name
				}
			}
		} else {
			schema := t.schema
			if schema == "pg_temp" {
				if tmp := tempSchema(path); tmp != "" {
					schema = tmp
				}
			}
			q = s.relationIn(e, schema)
			if q == "" {
				q = schema + "." + t.name
			}
		}
		tables[i] = q
		if e == nil || !e.holds(q) {
			missing = appendUnique(missing, q)
			if t.e != nil && !slices.Contains(p.rels, t.name) {
				p.rels = append(p.rels, t.name)
				p.relSum[0] += e.sum[0]
				p.relSum[1] += e.sum[1]
			}
		}
	}
	return tables, missing, nil
}

func appendUnique(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

// effectivePath returns the path PostgreSQL searches for relations: the
// given one, with pg_catalog first (after a leading temporary schema,
// which PostgreSQL searches before it when it is implicit) when the path
// does not name it. current_schemas(true) always names it.
func effectivePath(path []string) []string {
	if slices.Contains(path, "pg_catalog") {
		return path
	}
	i := 0
	for i < len(path) && isTempSchema(path[i]) {
		i++
	}
	return slices.Insert(slices.Clone(path), i, "pg_catalog")
}

// tempSchema returns the session's temporary schema named in path, if any.
func tempSchema(path []string) string {
	for _, p := range path {
		if isTempSchema(p) {
			return p
		}
	}
	return ""
}

// creationSchema returns where CREATE TABLE name would put the relation:
// the first existing schema of the path other than pg_catalog and
// temporary schemas.
func creationSchema(path []string, s *snapshot) string {
	for _, p := range path {
		if p == "pg_catalog" || isTempSchema(p) {
			continue
		}
		if _, ok := s.schemas[p]; ok {
			return p
		}
	}
	return ""
}

// resolveRelation returns "schema.name" of the first schema of path holding
// a relation of the name, or "".
func (s *snapshot) resolveRelation(e *nameEntry, path []string) string {
	if e == nil || len(e.rows) == 0 {
		return ""
	}
	for _, p := range path {
		if q := s.relationIn(e, p); q != "" {
			return q
		}
	}
	return ""
}

// holds reports whether the entry has the relation qualified q.
func (e *nameEntry) holds(q string) bool {
	for _, r := range e.rows {
		if r.qual == q {
			return true
		}
	}
	return false
}

func (s *snapshot) relationIn(e *nameEntry, schema string) string {
	if e == nil {
		return ""
	}
	nsp, ok := s.schemas[schema]
	if !ok {
		return ""
	}
	for _, r := range e.rows {
		if r.nsp == nsp {
			return r.qual
		}
	}
	return ""
}
