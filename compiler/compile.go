package compiler

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	"cuelang.org/go/mod/modfile"
	"cuelang.org/go/mod/module"

	"github.com/gatehouse/gatehouse/compiler/schema"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Version is the compiler version recorded in bundles by default.
const Version = "0.1.0"

// DefaultValidFor is how long a bundle is valid after its source time when
// Options.ValidFor is zero.
const DefaultValidFor = 30 * 24 * time.Hour

// Defaults filled into Settings when a policy leaves them out.
const (
	DefaultAudience                = "gatehouse"
	DefaultApprovalTimeout         = "15m"
	defaultModulePath              = "gatehouse.local/policy@v0"
	defaultLanguageVersion         = "v0.17.0"
	gatehouseModule                = "github.com/gatehouse/gatehouse"
	schemaFileName                 = "gatehouse-schema.cue"
	virtualRoot                    = "/.gatehouse-policy-source"
	schemaRelPathInGatehouseModule = "compiler/schema/schema.cue"
)

// ErrNoSourceTime is returned when a Source has no Time: the bundle's
// not-before time and default serial come from it, never from the clock.
var ErrNoSourceTime = errors.New("policy source has no time")

// Options control compilation.
type Options struct {
	// Serial is the bundle serial; zero means the source time in Unix
	// seconds.
	Serial uint64
	// ValidFor is how long after the source time the bundle stays valid;
	// zero means DefaultValidFor.
	ValidFor time.Duration
	// CompilerVersion recorded in the manifest; empty means Version.
	CompilerVersion string
}

// Result is a compiled policy.
type Result struct {
	// Bundle is the unsigned bundle.
	Bundle *bundle.Bundle
	// Tests are the policy unit tests, sorted by name.
	Tests []PolicyTest
	// Diagnostics holds warnings (never errors) found while compiling.
	Diagnostics Diagnostics
}

// Compile loads src, checks it against the compiler's embedded schema and
// compiles it into an unsigned bundle. It reads nothing but src and uses no
// wall clock, so the same source always gives byte-identical output. A
// policy that does not validate gives an *InvalidPolicyError (matching
// ErrInvalidPolicy) carrying sorted diagnostics.
func Compile(src *Source, opts Options) (res *Result, err error) {
	if src == nil || len(src.Files) == 0 {
		return nil, fmt.Errorf("compile: %w", ErrNoPolicyFiles)
	}
	if src.Time.IsZero() {
		return nil, fmt.Errorf("compile: %w", ErrNoSourceTime)
	}
	if opts.ValidFor < 0 {
		return nil, fmt.Errorf("compile: negative validity %s", opts.ValidFor)
	}
	c := &compilation{src: src, index: map[string]token.Pos{}}
	defer func() {
		// The CUE evaluator must not take the process down on a hostile
		// policy: report an evaluator failure as a diagnostic instead.
		if r := recover(); r != nil {
			res = nil
			err = &InvalidPolicyError{Diagnostics: Diagnostics{{
				Pos: Pos{File: src.Dir}, Code: CodeEval, Severity: SeverityError,
				Message: fmt.Sprintf("policy evaluation failed: %v", r),
			}}}
		}
	}()
	ev, ok := c.evaluate()
	if !ok {
		return nil, c.fail()
	}
	pol, tests := c.build(ev)
	if c.diags.HasErrors() {
		return nil, c.fail()
	}
	m, err := manifest(src, pol, opts)
	if err != nil {
		return nil, err
	}
	b := &bundle.Bundle{Manifest: m, Policy: *pol}
	if err := b.Validate(); err != nil {
		// Everything Validate checks is checked above with a position; a
		// failure here is a compiler defect, reported rather than hidden.
		return nil, fmt.Errorf("compile: compiled bundle does not validate: %w", err)
	}
	c.diags.Sort()
	return &Result{Bundle: b, Tests: tests, Diagnostics: c.diags}, nil
}

func manifest(src *Source, pol *bundle.Policy, opts Options) (bundle.Manifest, error) {
	digest, err := bundle.PolicyDigest(pol)
	if err != nil {
		return bundle.Manifest{}, fmt.Errorf("compile: %w", err)
	}
	sd := src.Digest()
	rev := src.Revision
	if rev == "" {
		rev = "dir:" + sd
	}
	t := src.Time.UTC().Truncate(time.Second)
	serial := opts.Serial
	if serial == 0 && t.Unix() > 0 {
		serial = uint64(t.Unix())
	}
	validFor := opts.ValidFor
	if validFor == 0 {
		validFor = DefaultValidFor
	}
	cv := opts.CompilerVersion
	if cv == "" {
		cv = Version
	}
	return bundle.Manifest{
		FormatVersion:   bundle.FormatVersion,
		Revision:        rev,
		SourceDigest:    sd,
		Serial:          serial,
		NotBefore:       t,
		Expires:         t.Add(validFor).Truncate(time.Second),
		CompilerVersion: cv,
		PolicyDigest:    digest,
	}, nil
}

// compilation holds the state of one Compile call.
type compilation struct {
	src   *Source
	diags Diagnostics
	// index maps a value path (each label preceded by "\x00") to the position
	// where the policy sources first declare it.
	index map[string]token.Pos
}

// evaluated is a policy that loaded and validated against the schema.
type evaluated struct {
	// policy is the policy unified with the schema's #Policy and
	// validated for concreteness.
	policy cue.Value
	// data is the policy package on its own, before unification with the
	// schema. It holds the same concrete values as policy (see
	// compilation.decode) and is much cheaper to export.
	data cue.Value
	// defaults reports whether any source the package was built from marks
	// a default; the schema could then select a different value than the
	// data alone, so only policy may be exported.
	defaults bool
}

func (c *compilation) fail() error {
	c.diags.Sort()
	return &InvalidPolicyError{Diagnostics: c.diags}
}

func (c *compilation) errorf(pos string, code, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: parsePos(pos), Code: code, Severity: SeverityError, Message: fmt.Sprintf(format, args...)})
}

func (c *compilation) warnf(pos string, code, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: parsePos(pos), Code: code, Severity: SeverityWarning, Message: fmt.Sprintf(format, args...)})
}

// parsePos turns "file:line:col" back into a Pos.
func parsePos(s string) Pos {
	parts := strings.Split(s, ":")
	if len(parts) >= 3 {
		line, err1 := strconv.Atoi(parts[len(parts)-2])
		col, err2 := strconv.Atoi(parts[len(parts)-1])
		if err1 == nil && err2 == nil {
			return Pos{File: strings.Join(parts[:len(parts)-2], ":"), Line: line, Col: col}
		}
	}
	return Pos{File: s}
}

// evaluate loads the policy package through an overlay (nothing is read
// from disk), unifies it with the embedded schema and validates it.
func (c *compilation) evaluate() (evaluated, bool) {
	overlay := map[string]load.Source{}
	for name, data := range c.src.Files {
		overlay[path.Join(virtualRoot, name)] = load.FromBytes(data)
	}
	modPath := defaultModulePath
	if data, ok := c.src.Files["cue.mod/module.cue"]; ok {
		mf, err := modfile.Parse(data, "cue.mod/module.cue")
		if err != nil {
			c.cueDiags(err, CodeLoad)
			return evaluated{}, false
		}
		modPath = mf.Module
	} else {
		overlay[path.Join(virtualRoot, "cue.mod/module.cue")] = load.FromString(
			fmt.Sprintf("module: %q\nlanguage: version: %q\n", defaultModulePath, defaultLanguageVersion))
	}
	// Provide the schema package at its import path, replacing whatever
	// the repository holds there: policies are always checked against the
	// compiler's own schema.
	if base, _, _ := strings.Cut(modPath, "@"); base == gatehouseModule {
		overlay[path.Join(virtualRoot, schemaRelPathInGatehouseModule)] = load.FromString(schema.CUE)
	} else {
		overlay[path.Join(virtualRoot, "cue.mod/gen", schema.ImportPath, "schema.cue")] = load.FromString(schema.CUE)
	}
	dir := path.Join(virtualRoot, c.src.Dir)
	cfg := &load.Config{
		Dir:        dir,
		ModuleRoot: virtualRoot,
		Overlay:    overlay,
		Registry:   noRegistry{},
		Env:        []string{},
	}
	insts := load.Instances([]string{"."}, cfg)
	if len(insts) != 1 {
		c.errorf(c.src.Dir, CodeLoad, "expected one CUE package in %s, found %d", c.src.Dir, len(insts))
		return evaluated{}, false
	}
	inst := insts[0]
	if inst.Err != nil {
		c.cueDiags(inst.Err, CodeLoad)
		return evaluated{}, false
	}
	c.indexFiles(inst)
	ctx := cuecontext.New()
	v := ctx.BuildInstance(inst)
	if err := v.Err(); err != nil {
		c.cueDiags(err, CodeEval)
		return evaluated{}, false
	}
	def := ctx.CompileString(schema.CUE, cue.Filename(schemaFileName)).LookupPath(cue.MakePath(cue.Def("#Policy")))
	if err := def.Err(); err != nil {
		// The embedded schema is part of the binary: a failure here is a
		// build defect, not a policy problem.
		panic(fmt.Sprintf("embedded schema does not compile: %v", err))
	}
	data := v
	v = v.Unify(def)
	if err := v.Err(); err != nil {
		c.cueDiags(err, CodeSchema)
		return evaluated{}, false
	}
	if err := v.Validate(cue.Concrete(true)); err != nil {
		c.cueDiags(err, CodeSchema)
		return evaluated{}, false
	}
	return evaluated{
		policy:   v,
		data:     data,
		defaults: schemaSuppliesValues() || marksDefaults(inst, map[*build.Instance]bool{}),
	}, true
}

// schemaSuppliesValues reports whether the embedded schema could add a
// value to a policy rather than only constrain it: a default, a regular
// field that is neither optional nor required, or a comprehension. The
// schema has none of these; the check keeps compilation.decode correct if
// that ever changes.
var schemaSuppliesValues = sync.OnceValue(func() bool { return suppliesValues(schema.CUE) })

// suppliesValues reports whether the CUE source src has a default, a
// regular field that is neither optional nor required, or a comprehension
// (or does not parse).
func suppliesValues(src string) bool {
	f, err := parser.ParseFile(schemaFileName, src)
	if err != nil {
		return true
	}
	found := false
	ast.Walk(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.UnaryExpr:
			found = found || n.Op == token.MUL
		case *ast.Comprehension:
			found = true
		case *ast.Field:
			if n.Constraint != token.ILLEGAL {
				break
			}
			if _, pattern := n.Label.(*ast.ListLit); pattern {
				break
			}
			name, _, err := ast.LabelName(n.Label)
			if err != nil || !strings.HasPrefix(name, "#") && !strings.HasPrefix(name, "_") {
				found = true
			}
		}
		return !found
	}, nil)
	return found
}

// marksDefaults reports whether a file of inst or of a package it imports
// marks a default value (a unary "*" in a disjunction).
func marksDefaults(inst *build.Instance, seen map[*build.Instance]bool) bool {
	if inst == nil || seen[inst] {
		return false
	}
	seen[inst] = true
	for _, f := range inst.Files {
		found := false
		ast.Walk(f, func(n ast.Node) bool {
			if u, ok := n.(*ast.UnaryExpr); ok && u.Op == token.MUL {
				found = true
			}
			return !found
		}, nil)
		if found {
			return true
		}
	}
	for _, imp := range inst.Imports {
		if marksDefaults(imp, seen) {
			return true
		}
	}
	return false
}

// indexFiles records where each literal field and list element is
// declared, so compiled objects and diagnostics point into the sources.
func (c *compilation) indexFiles(inst *build.Instance) {
	for _, f := range inst.Files {
		if c.relFile(f.Filename) == "" {
			continue
		}
		c.indexDecls("", f.Decls)
	}
}

func (c *compilation) indexDecls(prefix string, decls []ast.Decl) {
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.Field:
			name, _, err := ast.LabelName(d.Label)
			if err != nil {
				continue
			}
			key := indexKey(prefix, name)
			if _, ok := c.index[key]; !ok {
				c.index[key] = d.Pos()
			}
			c.indexExpr(key, d.Value)
		case *ast.EmbedDecl:
			c.indexExpr(prefix, d.Expr)
		}
	}
}

func (c *compilation) indexExpr(prefix string, e ast.Expr) {
	switch e := e.(type) {
	case *ast.StructLit:
		c.indexDecls(prefix, e.Elts)
	case *ast.ListLit:
		for i, el := range e.Elts {
			key := indexKey(prefix, strconv.Itoa(i))
			if _, ok := c.index[key]; !ok {
				c.index[key] = el.Pos()
			}
			c.indexExpr(key, el)
		}
	}
}

// indexKey appends label to the index key prefix ("" for the root): a key
// is its labels, each preceded by "\x00".
func indexKey(prefix, label string) string {
	return prefix + "\x00" + label
}

// relFile maps a loader file name to its path relative to the root, or
// "" when it is not one of the source files (the schema, a generated
// module file).
func (c *compilation) relFile(name string) string {
	rel, ok := strings.CutPrefix(name, virtualRoot+"/")
	if !ok {
		return ""
	}
	if _, ok := c.src.Files[rel]; !ok {
		return ""
	}
	return rel
}

func (c *compilation) posString(p token.Pos) string {
	if !p.IsValid() {
		return ""
	}
	rel := c.relFile(p.Filename())
	if rel == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", rel, p.Line(), p.Column())
}

// lookupPos returns the declaration position of the longest prefix of
// labels that the sources declare literally.
func (c *compilation) lookupPos(labels ...string) string {
	for n := len(labels); n > 0; n-- {
		if p, ok := c.index["\x00"+strings.Join(labels[:n], "\x00")]; ok {
			if s := c.posString(p); s != "" {
				return s
			}
		}
	}
	return ""
}

var emptyDisjunction = regexp.MustCompile(`^\d+ errors in empty disjunction:?$`)

// cueDiags converts CUE errors into diagnostics. The errors that CUE
// reports for each alternative of a failed disjunction are folded into one
// diagnostic listing the allowed values.
func (c *compilation) cueDiags(err error, code string) {
	type conflict struct{ a, b string }
	errs := cueerrors.Errors(err)
	disj := map[string]bool{}
	for _, e := range errs {
		f, a := e.Msg()
		if emptyDisjunction.MatchString(fmt.Sprintf(f, a...)) {
			disj[strings.Join(e.Path(), ".")] = true
		}
	}
	type folded struct {
		pos       string
		conflicts []conflict
		other     []string
	}
	folds := map[string]*folded{}
	var order []string
	for _, e := range errs {
		f, a := e.Msg()
		msg := strings.ReplaceAll(fmt.Sprintf(f, a...), virtualRoot+"/", "")
		labels := unquoteAll(e.Path())
		p := strings.Join(e.Path(), ".")
		pos := c.errPos(e, labels)
		ecode := code
		if strings.Contains(msg, "incomplete value") || strings.Contains(msg, "required but not present") || strings.Contains(msg, "non-concrete") {
			ecode = CodeIncomplete
		} else if code == CodeSchema && strings.Contains(msg, "not found") {
			ecode = CodeEval
		}
		if !disj[p] {
			full := msg
			if p != "" {
				full = p + ": " + msg
			}
			c.diags = append(c.diags, Diagnostic{Pos: parsePos(pos), Code: ecode, Severity: SeverityError, Message: full})
			continue
		}
		fd := folds[p]
		if fd == nil {
			fd = &folded{}
			folds[p] = fd
			order = append(order, p)
		}
		if fd.pos == "" || !strings.Contains(fd.pos, ":") {
			fd.pos = pos
		}
		switch {
		case emptyDisjunction.MatchString(msg):
		case f == "conflicting values %s and %s" && len(a) == 2:
			fd.conflicts = append(fd.conflicts, conflict{fmt.Sprint(a[0]), fmt.Sprint(a[1])})
		default:
			fd.other = append(fd.other, msg)
		}
	}
	for _, p := range order {
		fd := folds[p]
		var msg string
		count := map[string]int{}
		for _, cf := range fd.conflicts {
			count[cf.a]++
			if cf.b != cf.a {
				count[cf.b]++
			}
		}
		given := ""
		for v, n := range count {
			if n == len(fd.conflicts) && len(fd.conflicts) > 1 {
				given = v
			}
		}
		if given != "" {
			var allowed []string
			for v := range count {
				if v != given {
					allowed = append(allowed, v)
				}
			}
			sort.Strings(allowed)
			msg = fmt.Sprintf("%s is not allowed: must be one of %s", given, strings.Join(allowed, ", "))
			if len(fd.other) > 0 {
				msg += "; " + strings.Join(fd.other, "; ")
			}
		} else {
			var parts []string
			for _, cf := range fd.conflicts {
				parts = append(parts, fmt.Sprintf("conflicting values %s and %s", cf.a, cf.b))
			}
			parts = append(parts, fd.other...)
			if len(parts) == 0 {
				parts = []string{"no allowed value matches"}
			}
			msg = strings.Join(parts, "; ")
		}
		c.diags = append(c.diags, Diagnostic{Pos: parsePos(fd.pos), Code: CodeSchema, Severity: SeverityError, Message: p + ": " + msg})
	}
}

// errPos picks the position of an error inside the policy sources: one of
// the error's own positions if any lies in a source file, else the
// declaration of the nearest enclosing value.
func (c *compilation) errPos(e cueerrors.Error, labels []string) string {
	for _, p := range append([]token.Pos{e.Position()}, cueerrors.Positions(e)...) {
		if s := c.posString(p); s != "" {
			return s
		}
	}
	if s := c.lookupPos(labels...); s != "" {
		return s
	}
	// Fall back to the first file of the policy directory.
	names := make([]string, 0, len(c.src.Files))
	for n := range c.src.Files {
		if !strings.HasPrefix(n, "cue.mod/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		return names[0]
	}
	return ""
}

func unquoteAll(path []string) []string {
	out := make([]string, len(path))
	for i, s := range path {
		if u, err := strconv.Unquote(s); err == nil {
			s = u
		}
		out[i] = s
	}
	return out
}

// noRegistry refuses module downloads: a policy repository must be
// self-contained, and compilation never touches the network.
type noRegistry struct{}

var errNoRegistry = errors.New("policy modules may not depend on other CUE modules")

func (noRegistry) ModFile(context.Context, module.Version) (*modfile.File, error) {
	return nil, errNoRegistry
}

func (noRegistry) Fetch(context.Context, module.Version) (module.SourceLoc, error) {
	return module.SourceLoc{}, errNoRegistry
}

func (noRegistry) ModuleVersions(context.Context, string) ([]string, error) {
	return nil, errNoRegistry
}
