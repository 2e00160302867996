package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// effect is a rule effect as a small integer.
type effect uint8

const (
	effAllow effect = iota
	effApprove
	effDeny
	effMask
)

// rule is a compiled bundle.Rule. The fields read for every candidate
// come first, so that they share a cache line.
type rule struct {
	effect effect
	// grant is true for allow and approve rules: list matching must cover
	// every table, column and flagged function of the statement.
	grant   bool
	sql     *sqlMatch
	expires time.Time // zero: never
	windows []window
	ssh     *sshMatch
	http    *httpMatch
	k8s     *k8sMatch

	// Read when the rule decides or applies.
	id       string
	record   *bundle.RecordSpec
	mask     *bundle.MaskSpec
	approval *bundle.ApprovalSpec
	maxRows  int

	// Precomputed reasons (no allocation when deciding).
	reasonOne  string
	reasonMany string

	src *bundle.Rule
}

var effects = map[bundle.Effect]effect{
	bundle.EffectAllow:   effAllow,
	bundle.EffectApprove: effApprove,
	bundle.EffectDeny:    effDeny,
	bundle.EffectMask:    effMask,
}

func compileRule(r *bundle.Rule, settings *bundle.Settings) (*rule, error) {
	eff, ok := effects[r.Effect]
	if !ok {
		return nil, fmt.Errorf("unknown effect %q", r.Effect)
	}
	cr := &rule{id: r.ID, effect: eff, src: r, grant: eff == effAllow || eff == effApprove, record: r.Record, mask: r.Mask}
	n := 0
	for _, set := range []bool{r.SQL != nil, r.SSH != nil, r.HTTP != nil, r.Kubernetes != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("more than one protocol match")
	}
	if r.Expires != "" {
		t, err := parseExpiry(r.Expires)
		if err != nil {
			return nil, err
		}
		cr.expires = t
	}
	if r.Conditions != nil {
		if r.Conditions.MaxRows < 0 {
			return nil, fmt.Errorf("negative max_rows %d", r.Conditions.MaxRows)
		}
		cr.maxRows = r.Conditions.MaxRows
		for _, w := range r.Conditions.TimeWindows {
			cw, err := compileWindow(w)
			if err != nil {
				return nil, err
			}
			cr.windows = append(cr.windows, cw)
		}
	}
	var err error
	switch {
	case r.SQL != nil:
		cr.sql, err = compileSQL(r.SQL)
	case r.SSH != nil:
		cr.ssh, err = compileSSH(r.SSH)
	case r.HTTP != nil:
		cr.http, err = compileHTTP(r.HTTP)
	case r.Kubernetes != nil:
		cr.k8s, err = compileK8s(r.Kubernetes)
	}
	if err != nil {
		return nil, err
	}
	switch eff {
	case effMask:
		if r.Mask == nil {
			return nil, fmt.Errorf("mask rule without a mask")
		}
	case effApprove:
		if r.Approval == nil {
			return nil, fmt.Errorf("approve rule without an approval")
		}
		a := *r.Approval
		if a.Timeout == "" {
			a.Timeout = settings.DefaultApprovalTimeout
		}
		cr.approval = &a
	}
	switch eff {
	case effDeny:
		cr.reasonOne = fmt.Sprintf("denied by rule %q", r.ID)
		cr.reasonMany = fmt.Sprintf("denied by rule %q and other rules", r.ID)
	case effApprove:
		cr.reasonOne = fmt.Sprintf("approval required by rule %q", r.ID)
		cr.reasonMany = fmt.Sprintf("approval required by rule %q and other rules", r.ID)
	case effAllow:
		cr.reasonOne = fmt.Sprintf("allowed by rule %q", r.ID)
		cr.reasonMany = fmt.Sprintf("allowed by rule %q and other rules", r.ID)
	}
	return cr, nil
}

// parseExpiry parses a rule expiry. A date means midnight UTC at the start
// of that day: "2027-03-01" expires at 2027-03-01T00:00:00Z.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expires %q is neither a date nor an RFC 3339 time", s)
	}
	return t, nil
}

// matches reports whether the rule applies to req (subjects and resources
// are checked by the index, not here).
func (r *rule) matches(req *Request, tables []tableRef) bool {
	return r.match(req, tables, false)
}

// match is matches; kindChecked reports that the SQL statement kind is
// already known to be one of the rule's statements.
func (r *rule) match(req *Request, tables []tableRef, kindChecked bool) bool {
	if !r.expires.IsZero() && (req.Time.IsZero() || !req.Time.Before(r.expires)) {
		return false
	}
	if len(r.windows) > 0 && !r.inWindow(req.Time) {
		return false
	}
	switch {
	case r.sql != nil:
		return req.SQL != nil && r.sql.match(req.SQL, tables, r.grant, kindChecked)
	case r.ssh != nil:
		return req.SSH != nil && r.ssh.match(req.SSH)
	case r.http != nil:
		return req.HTTP != nil && r.http.match(req.HTTP, r.grant)
	case r.k8s != nil:
		return req.Kubernetes != nil && r.k8s.match(req.Kubernetes)
	}
	return true
}

func (r *rule) inWindow(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	for i := range r.windows {
		if r.windows[i].contains(t) {
			return true
		}
	}
	return false
}

// ---- SQL ----

// name is a string with its first eight bytes packed into an integer, so
// that comparing two short names costs two integer comparisons.
type name struct {
	s string
	w uint64 // s[:min(8, len(s))], little-endian, zero-padded
}

func mkName(s string) name {
	return name{s: s, w: pack8(s)}
}

// pack8 packs s[:min(8, len(s))] little-endian into an integer.
func pack8(s string) uint64 {
	switch n := len(s); {
	case n >= 8:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	case n >= 4:
		// Two overlapping 4-byte loads; the shared bytes are equal.
		lo := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
		t := s[n-4:]
		hi := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24
		return lo | hi<<(8*(n-4))
	case n > 0:
		// One to three bytes: first, middle and last byte.
		return uint64(s[0]) | uint64(s[n/2])<<(8*(n/2)) | uint64(s[n-1])<<(8*(n-1))
	}
	return 0
}

func (a *name) eq(b *name) bool {
	return a.w == b.w && len(a.s) == len(b.s) && (len(a.s) <= 8 || a.s[8:] == b.s[8:])
}

// tablePattern is a compiled table pattern.
type tablePattern struct {
	schema, table name // s == "": any
}

func compileTable(p string) (tablePattern, error) {
	if p == "" {
		return tablePattern{}, fmt.Errorf("empty table pattern")
	}
	if p == "*" {
		return tablePattern{}, nil
	}
	schema, table, ok := strings.Cut(p, ".")
	if !ok {
		return tablePattern{table: mkName(p)}, nil
	}
	if schema == "" || table == "" || strings.Contains(table, ".") {
		return tablePattern{}, fmt.Errorf("table pattern %q: want schema.table, table, schema.* or *", p)
	}
	if schema == "*" {
		schema = ""
	}
	if table == "*" {
		table = ""
	}
	return tablePattern{schema: mkName(schema), table: mkName(table)}, nil
}

// tableRef is a statement's table split into schema and table.
type tableRef struct{ schema, table name }

// splitTables splits every table of the facts into dst.
func splitTables(dst []tableRef, tables []string) []tableRef {
	dst = dst[:0]
	for _, t := range tables {
		schema, table := splitTable(t)
		dst = append(dst, tableRef{mkName(schema), mkName(table)})
	}
	return dst
}

// splitTable splits a classifier table name into schema and table; a bare
// name is in schema "public", a three-part name drops the database.
func splitTable(s string) (schema, table string) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "public", s
	}
	schema, table = s[:i], s[i+1:]
	if j := strings.LastIndexByte(schema, '.'); j >= 0 {
		schema = schema[j+1:]
	}
	return schema, table
}

func (p *tablePattern) match(t *tableRef) bool {
	return (p.schema.s == "" || p.schema.eq(&t.schema)) && (p.table.s == "" || p.table.eq(&t.table))
}

// columnPattern is a compiled column pattern: "table.column", "*.column",
// "schema.table.column", "column" (any table), "table.*" or "*".
type columnPattern struct {
	schema, table, column string // "" = any
}

func compileColumn(p string) (columnPattern, error) {
	parts := strings.Split(p, ".")
	for _, s := range parts {
		if s == "" {
			return columnPattern{}, fmt.Errorf("column pattern %q: empty part", p)
		}
	}
	star := func(s string) string {
		if s == "*" {
			return ""
		}
		return s
	}
	switch len(parts) {
	case 1:
		return columnPattern{column: star(parts[0])}, nil
	case 2:
		return columnPattern{table: star(parts[0]), column: star(parts[1])}, nil
	case 3:
		return columnPattern{schema: star(parts[0]), table: star(parts[1]), column: star(parts[2])}, nil
	}
	return columnPattern{}, fmt.Errorf("column pattern %q: too many parts", p)
}

// splitColumn splits a classifier column reference; missing parts are "".
func splitColumn(s string) (schema, table, column string) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", "", s
	}
	column = s[i+1:]
	rest := s[:i]
	j := strings.LastIndexByte(rest, '.')
	if j < 0 {
		return "public", rest, column
	}
	schema, table = rest[:j], rest[j+1:]
	if k := strings.LastIndexByte(schema, '.'); k >= 0 {
		schema = schema[k+1:]
	}
	return schema, table, column
}

// match matches a column reference. A reference without a table (the
// classifier could not attribute it) matches a table-qualified pattern only
// when unknown means yes (deny and mask rules).
func (p *columnPattern) match(schema, table, column string, unknownMatches bool) bool {
	if p.column != "" && p.column != column {
		return false
	}
	if table == "" {
		return unknownMatches || (p.table == "" && p.schema == "")
	}
	return (p.table == "" || p.table == table) && (p.schema == "" || p.schema == schema)
}

type funcPattern struct {
	schema, name string // schema "" = any; name "" = any
}

func compileFunc(p string) (funcPattern, error) {
	schema, name, qualified := strings.Cut(strings.ToLower(p), ".")
	if !qualified {
		schema, name = "", schema
	}
	if name == "" || (qualified && schema == "") || strings.Contains(name, ".") {
		return funcPattern{}, fmt.Errorf("function pattern %q: want name, schema.name or *", p)
	}
	if name == "*" {
		name = ""
	}
	return funcPattern{schema: schema, name: name}, nil
}

func (p *funcPattern) match(fn string, unknownMatches bool) bool {
	schema, name := "", fn
	if i := strings.LastIndexByte(fn, '.'); i >= 0 {
		schema, name = fn[:i], fn[i+1:]
	}
	if p.name != "" && !strings.EqualFold(p.name, name) {
		return false
	}
	if p.schema == "" {
		return true
	}
	if schema == "" {
		return unknownMatches
	}
	return strings.EqualFold(p.schema, schema)
}

type sqlMatch struct {
	anyStatement bool
	statements   []string
	tables       []tablePattern
	columns      []columnPattern
	functions    []funcPattern
	anyFunction  bool // "*" in Functions
	withoutWhere bool
}

func compileSQL(m *bundle.SQLMatch) (*sqlMatch, error) {
	s := &sqlMatch{withoutWhere: m.WithoutWhere, anyStatement: len(m.Statements) == 0}
	for _, st := range m.Statements {
		if st == "*" {
			s.anyStatement = true
		}
		s.statements = append(s.statements, strings.ToLower(st))
	}
	for _, t := range m.Tables {
		p, err := compileTable(t)
		if err != nil {
			return nil, err
		}
		s.tables = append(s.tables, p)
	}
	for _, c := range m.Columns {
		p, err := compileColumn(c)
		if err != nil {
			return nil, err
		}
		s.columns = append(s.columns, p)
	}
	for _, f := range m.Functions {
		p, err := compileFunc(f)
		if err != nil {
			return nil, err
		}
		if p == (funcPattern{}) {
			s.anyFunction = true
		}
		s.functions = append(s.functions, p)
	}
	return s, nil
}

func (s *sqlMatch) match(f *SQLFacts, tables []tableRef, grant, kindChecked bool) bool {
	if !kindChecked && !s.anyStatement && !containsFold(s.statements, f.Kind) {
		return false
	}
	if s.withoutWhere {
		if f.HasWhere || !(strings.EqualFold(f.Kind, "update") || strings.EqualFold(f.Kind, "delete")) {
			return false
		}
	}
	if len(s.tables) > 0 && !s.matchTables(tables, grant) {
		return false
	}
	if len(s.columns) > 0 && !s.matchColumns(f.Columns, grant) {
		return false
	}
	return s.matchFunctions(f.Functions, grant)
}

// matchTables: a grant must cover every table; otherwise one is enough.
func (s *sqlMatch) matchTables(tables []tableRef, grant bool) bool {
	for ti := range tables {
		t := &tables[ti]
		hit := false
		for i := range s.tables {
			if s.tables[i].match(t) {
				hit = true
				break
			}
		}
		if grant && !hit {
			return false
		}
		if !grant && hit {
			return true
		}
	}
	return grant
}

func (s *sqlMatch) matchColumns(cols []string, grant bool) bool {
	for _, c := range cols {
		schema, table, column := splitColumn(c)
		hit := false
		for i := range s.columns {
			if s.columns[i].match(schema, table, column, !grant) {
				hit = true
				break
			}
		}
		if grant && !hit {
			return false
		}
		if !grant && hit {
			return true
		}
	}
	return grant
}

// matchFunctions: a grant must name every flagged function the statement
// calls (an empty list names none); a deny or mask rule with no functions
// ignores them, with functions it matches when any one is called.
func (s *sqlMatch) matchFunctions(fns []string, grant bool) bool {
	if grant {
		if s.anyFunction {
			return true
		}
		for _, fn := range fns {
			hit := false
			for i := range s.functions {
				if s.functions[i].match(fn, false) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		}
		return true
	}
	if len(s.functions) == 0 {
		return true
	}
	for _, fn := range fns {
		for i := range s.functions {
			if s.functions[i].match(fn, true) {
				return true
			}
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ---- SSH ----

type sshMatch struct {
	shell    bool // "shell" listed, or no commands at all, or "*"
	commands globList
}

func compileSSH(m *bundle.SSHMatch) (*sshMatch, error) {
	s := &sshMatch{shell: len(m.Commands) == 0}
	var pats []string
	for _, c := range m.Commands {
		switch c {
		case "shell":
			s.shell = true
			continue
		case "*":
			s.shell = true
		}
		pats = append(pats, c)
	}
	var err error
	if s.commands, err = compileGlobs(pats, 0, false); err != nil {
		return nil, err
	}
	if len(m.Commands) > 0 && len(s.commands) == 0 {
		// Only "shell": commands never match.
		s.commands = globList{}
	}
	return s, nil
}

func (s *sshMatch) match(f *SSHFacts) bool {
	if f.Command == "" {
		return s.shell
	}
	if s.commands == nil {
		return true
	}
	return s.commands.matchAny(f.Command)
}

// ---- HTTP ----

type httpMatch struct {
	methods []string // upper case; nil = any
	hosts   []hostPattern
	paths   globList
}

type hostPattern struct {
	g       glob
	hasPort bool
}

func compileHTTP(m *bundle.HTTPMatch) (*httpMatch, error) {
	h := &httpMatch{}
	for _, mt := range m.Methods {
		if mt == "*" {
			h.methods = nil
			break
		}
		h.methods = append(h.methods, strings.ToUpper(mt))
	}
	for _, p := range m.Hosts {
		g, err := compileGlob(p, '.', true)
		if err != nil {
			return nil, err
		}
		h.hosts = append(h.hosts, hostPattern{g: g, hasPort: strings.Contains(p, ":")})
	}
	var paths []string
	for _, p := range m.Paths {
		paths = append(paths, p)
		if base, ok := strings.CutSuffix(p, "/**"); ok && base != "" {
			paths = append(paths, base)
		}
	}
	var err error
	if h.paths, err = compileGlobs(paths, '/', false); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *httpMatch) match(f *HTTPFacts, grant bool) bool {
	if h.methods != nil && !containsFold(h.methods, f.Method) {
		return false
	}
	if len(h.hosts) > 0 {
		host := f.Host
		bare := stripPort(host)
		hit := false
		for i := range h.hosts {
			hp := &h.hosts[i]
			s := bare
			if hp.hasPort {
				s = host
			}
			if hp.g.match(s) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	if len(h.paths) > 0 {
		path := f.Path
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		if !canonicalPath(path) {
			// A path that could mean something else after normalisation
			// never matches a grant's path patterns and always matches a
			// deny's.
			return !grant
		}
		if !h.paths.matchAny(path) {
			return false
		}
	}
	return true
}

// stripPort removes a ":port" suffix (IPv6 literals keep their brackets).
func stripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[i:], ']') >= 0 {
		return host
	}
	return host[:i]
}

// canonicalPath reports whether p is an absolute path without empty, "."
// or ".." segments, backslashes or percent-encoded '.', '/' or '\'.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c == '\\' {
				return false
			}
			if c == '%' && i+2 < len(p) {
				h := lower(p[i+1])
				l := lower(p[i+2])
				if (h == '2' && (l == 'e' || l == 'f')) || (h == '5' && l == 'c') {
					return false
				}
			}
			if c != '/' {
				continue
			}
		}
		seg := p[segStart:i]
		last := i == len(p)
		if (seg == "" && !last) || seg == "." || seg == ".." {
			return false
		}
		segStart = i + 1
	}
	return true
}

// ---- Kubernetes ----

type k8sMatch struct {
	verbs        []string // nil = any
	anyResource  bool
	resources    globList
	namespaces   globList
	execCommands globList
}

func compileK8s(m *bundle.KubernetesMatch) (*k8sMatch, error) {
	k := &k8sMatch{anyResource: len(m.Resources) == 0}
	for _, v := range m.Verbs {
		if v == "*" {
			k.verbs = nil
			break
		}
		k.verbs = append(k.verbs, strings.ToLower(v))
	}
	var res []string
	for _, r := range m.Resources {
		if r == "*" {
			k.anyResource = true
		}
		res = append(res, r)
	}
	var err error
	if !k.anyResource {
		if k.resources, err = compileGlobs(res, '/', false); err != nil {
			return nil, err
		}
	}
	if k.namespaces, err = compileGlobs(m.Namespaces, 0, false); err != nil {
		return nil, err
	}
	if k.execCommands, err = compileGlobs(m.ExecCommands, 0, false); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *k8sMatch) match(f *KubernetesFacts) bool {
	if k.verbs != nil && !containsFold(k.verbs, f.Verb) {
		return false
	}
	if !k.anyResource && !k.resources.matchAny(f.Resource) {
		return false
	}
	if k.namespaces != nil && !k.namespaces.matchAny(f.Namespace) {
		return false
	}
	if k.execCommands != nil && (f.Command == "" || !k.execCommands.matchAny(f.Command)) {
		return false
	}
	return true
}
