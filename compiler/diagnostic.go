package compiler

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalidPolicy is returned (wrapped in an *InvalidPolicyError) when a
// policy does not load, validate or compile.
var ErrInvalidPolicy = errors.New("invalid policy")

// Diagnostic codes.
const (
	// CodeLoad: the sources could not be read or parsed (syntax errors,
	// missing packages, bad imports).
	CodeLoad = "load"
	// CodeEval: CUE evaluation failed (undefined references, conflicting
	// values within the policy itself).
	CodeEval = "eval"
	// CodeSchema: the policy does not conform to the schema (wrong type,
	// unknown field, value out of range).
	CodeSchema = "schema"
	// CodeIncomplete: a required field is missing or a value is not
	// concrete.
	CodeIncomplete = "incomplete"
	// CodeInvalid: the policy conforms to the schema but is semantically
	// invalid (bad regular expression, bad duration, two protocol matches
	// on one rule, ...).
	CodeInvalid = "invalid"
	// CodeUnenforced: the policy names a resource type, or a rule uses a
	// protocol block, that this version of Gatehouse has no data path for.
	// Such a rule would look enforced and not be, so it does not compile.
	CodeUnenforced = "unenforced"
)

// Severity of a diagnostic.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Pos is a position in a policy source file. File is relative to the
// repository root and uses forward slashes; Line and Col start at 1 (0 when
// unknown).
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// String renders "file:line:col" (or less when parts are unknown).
func (p Pos) String() string {
	switch {
	case p.File == "":
		return "-"
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Diagnostic is one problem found in a policy.
type Diagnostic struct {
	Pos      Pos      `json:"pos"`
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// String renders "file:line:col: code: message".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Code, d.Message)
}

// Diagnostics is a list of diagnostics; Sort orders it by file, line,
// column, code and message.
type Diagnostics []Diagnostic

// Sort sorts the diagnostics in place and removes exact duplicates.
func (ds *Diagnostics) Sort() {
	s := *ds
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Message < b.Message
	})
	out := s[:0]
	for i, d := range s {
		if i > 0 && d == out[len(out)-1] {
			continue
		}
		out = append(out, d)
	}
	*ds = out
}

// HasErrors reports whether any diagnostic has error severity.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// String renders one diagnostic per line.
func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// InvalidPolicyError carries the diagnostics of a policy that failed to
// compile. It matches ErrInvalidPolicy with errors.Is.
type InvalidPolicyError struct {
	Diagnostics Diagnostics
}

func (e *InvalidPolicyError) Error() string {
	n := 0
	for _, d := range e.Diagnostics {
		if d.Severity == SeverityError {
			n++
		}
	}
	if n == 0 {
		return ErrInvalidPolicy.Error()
	}
	return fmt.Sprintf("%s: %d error(s), first: %s", ErrInvalidPolicy, n, e.Diagnostics[0])
}

// Unwrap returns ErrInvalidPolicy.
func (e *InvalidPolicyError) Unwrap() error { return ErrInvalidPolicy }
