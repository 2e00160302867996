package pgcatalog

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// firstNormalOID is PostgreSQL's FirstNormalObjectId: every object created
// after initdb (by a user, an extension, or a superuser in pg_catalog) has
// an OID at least this; the objects initdb creates are below it. OIDs wrap
// around to this value, never below.
const firstNormalOID = 16384

// Function describes a user-defined function, procedure, aggregate or
// window function: one created after initdb, or any outside pg_catalog and
// information_schema. Values handed out by Judge are copies.
type Function struct {
	OID    uint32
	Schema string
	Name   string
	// Args are the identity arguments, as pg_get_function_identity_arguments
	// renders them ("id integer").
	Args string
	// Kind is "function", "procedure", "aggregate" or "window".
	Kind string
	// Volatility is "immutable", "stable" or "volatile".
	Volatility      string
	SecurityDefiner bool
	// Language is the implementation language ("sql", "plpgsql", "c", ...).
	Language string
	// Owner is the owning role's name as of the last load.
	Owner string

	temp bool // in a temporary schema: never found by unqualified names
}

// Qualified returns "schema.name".
func (f *Function) Qualified() string { return f.Schema + "." + f.Name }

// funcRef names a function that a user-defined operator or cast runs.
type funcRef struct {
	oid  uint32
	qual string
}

// operator is a user-defined operator (or a built-in one whose commutator
// or negator is user-defined) and the functions it may run.
type operator struct {
	schema, name string
	temp         bool
	funcs        []funcRef
}

// cast is a cast implemented by a function that is user-defined, or
// created by a user with any function.
type cast struct {
	source, target         uint32
	sourceQual, targetQual string // "schema.type"
	sourceType, targetType string // "type"
	context                string // "explicit", "assignment" or "implicit"
	fn                     funcRef
}

// fingerprint is a cheap summary of the catalog rows a snapshot depends
// on: for each catalog, the number of rows and the sum of a hash of their
// OID and xmin (a row's xmin changes whenever the row is replaced, which
// every ALTER, CREATE OR REPLACE, RENAME and OWNER TO does).
type fingerprint struct {
	catalog [8]int64 // namespaces, functions, operators, casts: count, hash sum
	rels    [2]int64 // rows of pg_class named like a cached relation name
	types   [2]int64 // rows of pg_type named like a cached type name
}

func queryFingerprint(ctx context.Context, q Querier, rels, types []string) (fingerprint, error) {
	var fp fingerprint
	c := &fp.catalog
	err := q.QueryRow(ctx, fingerprintSQL, rels, types).Scan(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7],
		&fp.rels[0], &fp.rels[1], &fp.types[0], &fp.types[1])
	if err != nil {
		return fp, fmt.Errorf("%w: catalog fingerprint: %w", ErrUnavailable, err)
	}
	return fp, nil
}

// snapshot is what the catalog knew at one load. Everything but the two
// name caches is immutable once load returns.
type snapshot struct {
	fp [8]int64

	schemas map[string]uint32 // namespace name -> OID
	nspName map[uint32]string

	funcs     map[string][]*Function // user-defined functions by name
	funcByOID map[uint32]*Function
	nfuncs    int

	ops  map[string][]*operator // user-defined operators by name
	nops int

	casts []*cast
	// always are the functions of user implicit and assignment casts:
	// PostgreSQL may apply them to any statement without a cast written.
	always []funcRef

	builtinFuncs map[string]struct{} // names of functions initdb created
	builtinOps   map[string]struct{}
	builtinTypes map[string]struct{}

	rels  *nameCache // relation name -> namespaces holding one
	types *nameCache // type name -> types (domains resolved to their base)
}

// load reads a new snapshot. The fingerprint is read first: a change made
// between it and the other queries shows as a difference at the next check
// (a needless reload), never as a change missed.
func load(ctx context.Context, q Querier, maxNames int) (*snapshot, error) {
	fp, err := queryFingerprint(ctx, q, nil, nil)
	if err != nil {
		return nil, err
	}
	s := &snapshot{
		fp:           fp.catalog,
		schemas:      map[string]uint32{},
		nspName:      map[uint32]string{},
		funcs:        map[string][]*Function{},
		funcByOID:    map[uint32]*Function{},
		ops:          map[string][]*operator{},
		builtinFuncs: map[string]struct{}{},
		builtinOps:   map[string]struct{}{},
		builtinTypes: map[string]struct{}{},
		rels:         newNameCache(maxNames),
		types:        newNameCache(maxNames),
	}
	if err := s.loadSchemas(ctx, q); err != nil {
		return nil, err
	}
	if err := s.loadFunctions(ctx, q); err != nil {
		return nil, err
	}
	if err := s.loadBuiltins(ctx, q); err != nil {
		return nil, err
	}
	if err := s.loadOperators(ctx, q); err != nil {
		return nil, err
	}
	if err := s.loadCasts(ctx, q); err != nil {
		return nil, err
	}
	return s, nil
}

// each runs sql and calls scan for every row.
func each(ctx context.Context, q Querier, what, sql string, scan func(row interface{ Scan(...any) error }) error, args ...any) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return nil
}

func isTempSchema(name string) bool { return strings.HasPrefix(name, "pg_temp_") }

func (s *snapshot) loadSchemas(ctx context.Context, q Querier) error {
	return each(ctx, q, "load schemas", schemasSQL, func(row interface{ Scan(...any) error }) error {
		var oid uint32
		var name string
		if err := row.Scan(&oid, &name); err != nil {
			return err
		}
		s.schemas[name] = oid
		s.nspName[oid] = name
		return nil
	})
}

var (
	kinds        = map[string]string{"f": "function", "p": "procedure", "a": "aggregate", "w": "window"}
	volatilities = map[string]string{"i": "immutable", "s": "stable", "v": "volatile"}
	contexts     = map[string]string{"e": "explicit", "a": "assignment", "i": "implicit"}
)

func (s *snapshot) loadFunctions(ctx context.Context, q Querier) error {
	return each(ctx, q, "load functions", functionsSQL, func(row interface{ Scan(...any) error }) error {
		f := &Function{}
		var kind, vol string
		if err := row.Scan(&f.OID, &f.Schema, &f.Name, &kind, &vol, &f.SecurityDefiner, &f.Language, &f.Owner, &f.Args); err != nil {
			return err
		}
		f.Kind, f.Volatility = kinds[kind], volatilities[vol]
		f.temp = isTempSchema(f.Schema)
		s.funcs[f.Name] = append(s.funcs[f.Name], f)
		s.funcByOID[f.OID] = f
		s.nfuncs++
		return nil
	})
}

func (s *snapshot) loadBuiltins(ctx context.Context, q Querier) error {
	return each(ctx, q, "load built-in names", builtinSQL, func(row interface{ Scan(...any) error }) error {
		var kind, name string
		if err := row.Scan(&kind, &name); err != nil {
			return err
		}
		switch kind {
		case "f":
			s.builtinFuncs[name] = struct{}{}
		case "o":
			s.builtinOps[name] = struct{}{}
		case "t":
			s.builtinTypes[name] = struct{}{}
		}
		return nil
	})
}

func (s *snapshot) loadOperators(ctx context.Context, q Querier) error {
	var cur *operator
	var curOID uint32
	return each(ctx, q, "load operators", operatorsSQL, func(row interface{ Scan(...any) error }) error {
		var oid, foid uint32
		var schema, name, fschema, fname string
		var report bool
		if err := row.Scan(&oid, &schema, &name, &foid, &fschema, &fname, &report); err != nil {
			return err
		}
		if cur == nil || oid != curOID {
			cur, curOID = &operator{schema: schema, name: name, temp: isTempSchema(schema)}, oid
			s.ops[name] = append(s.ops[name], cur)
			s.nops++
		}
		if report {
			cur.funcs = append(cur.funcs, funcRef{oid: foid, qual: fschema + "." + fname})
		}
		return nil
	})
}

func (s *snapshot) loadCasts(ctx context.Context, q Querier) error {
	err := each(ctx, q, "load casts", castsSQL, func(row interface{ Scan(...any) error }) error {
		c := &cast{}
		var sschema, tschema, context, fschema, fname string
		if err := row.Scan(&c.source, &sschema, &c.sourceType, &c.target, &tschema, &c.targetType,
			&context, &c.fn.oid, &fschema, &fname); err != nil {
			return err
		}
		c.sourceQual, c.targetQual = sschema+"."+c.sourceType, tschema+"."+c.targetType
		c.context = contexts[context]
		c.fn.qual = fschema + "." + fname
		s.casts = append(s.casts, c)
		if c.context != "explicit" {
			s.always = append(s.always, c.fn)
		}
		return nil
	})
	return err
}

// nameCache holds, for names looked up so far, the catalog rows of that
// name (in every schema), filled on demand and living as long as its
// snapshot. It also keeps the count and hash sum of those rows as the
// fingerprint query computes them, so a check can tell whether any of
// them changed. Names that matched nothing are cached too (count 0): a
// relation created later with that name changes the count.
type nameCache struct {
	max int

	mu  sync.RWMutex
	m   map[string]*nameEntry
	sum [2]int64
}

type nameEntry struct {
	rows []nameRow
	sum  [2]int64
}

// nameRow is one catalog row of a cached name.
type nameRow struct {
	nsp uint32
	// qual is "schema.name" (relations).
	qual string
	// oid is the type's OID; base is the type a domain stands for, after
	// following domains over domains (the type itself when not a domain);
	// elem is base's element type when base is an array type, else 0.
	oid, base, elem uint32
}

func newNameCache(max int) *nameCache {
	return &nameCache{max: max, m: map[string]*nameEntry{}}
}

func (c *nameCache) get(name string) (*nameEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[name]
	c.mu.RUnlock()
	return e, ok
}

// add caches entries looked up together. A full cache is emptied first.
func (c *nameCache) add(entries map[string]*nameEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m)+len(entries) > c.max {
		clear(c.m)
		c.sum = [2]int64{}
	}
	for name, e := range entries {
		if _, dup := c.m[name]; dup {
			continue
		}
		c.m[name] = e
		c.sum[0] += e.sum[0]
		c.sum[1] += e.sum[1]
	}
}

// state returns the cached names and the sum the fingerprint query must
// find for them if none of their rows changed.
func (c *nameCache) state() ([]string, [2]int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.m))
	for n := range c.m {
		names = append(names, n)
	}
	return names, c.sum
}

// lookupRelations looks up and caches the relations named names, in every
// schema, and returns their entries (which the caller uses rather than
// reading them back: a concurrent addition may have emptied a full cache).
// newSchema reports a relation in a schema the snapshot does not know.
func (s *snapshot) lookupRelations(ctx context.Context, q Querier, names []string) (entries map[string]*nameEntry, newSchema bool, err error) {
	entries = make(map[string]*nameEntry, len(names))
	for _, n := range names {
		entries[n] = &nameEntry{}
	}
	err = each(ctx, q, "look up relations", relationsSQL, func(row interface{ Scan(...any) error }) error {
		var i int64
		var nsp uint32
		var h int64
		if err := row.Scan(&i, &nsp, &h); err != nil {
			return err
		}
		if i < 1 || int(i) > len(names) {
			return fmt.Errorf("row for name %d of %d", i, len(names))
		}
		name := names[i-1]
		e := entries[name]
		schema, known := s.nspName[nsp]
		newSchema = newSchema || !known
		e.rows = append(e.rows, nameRow{nsp: nsp, qual: schema + "." + name})
		e.sum[0]++
		e.sum[1] += h
		return nil
	}, names)
	if err != nil {
		return nil, false, err
	}
	s.rels.add(entries)
	return entries, newSchema, nil
}

// lookupTypes looks up and caches the types named names, in every schema,
// and returns their entries.
func (s *snapshot) lookupTypes(ctx context.Context, q Querier, names []string) (map[string]*nameEntry, error) {
	entries := make(map[string]*nameEntry, len(names))
	for _, n := range names {
		entries[n] = &nameEntry{}
	}
	err := each(ctx, q, "look up types", typesSQL, func(row interface{ Scan(...any) error }) error {
		var i, h int64
		var r nameRow
		if err := row.Scan(&i, &r.nsp, &r.oid, &r.base, &r.elem, &h); err != nil {
			return err
		}
		if i < 1 || int(i) > len(names) {
			return fmt.Errorf("row for name %d of %d", i, len(names))
		}
		e := entries[names[i-1]]
		e.rows = append(e.rows, r)
		e.sum[0]++
		e.sum[1] += h
		return nil
	}, names)
	if err != nil {
		return nil, err
	}
	s.types.add(entries)
	return entries, nil
}
