package lint

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Severity is how bad a finding is. Error findings make `gatehouse lint`
// fail.
type Severity string

// Severities, from worst to mildest.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Code is a stable finding code ("GH001"). Codes are never reused.
type Code string

// Finding is one problem found in a policy.
type Finding struct {
	// Pos is the "file:line:col" of the declaration the finding is about
	// (empty when the policy carries no position).
	Pos      string   `json:"pos,omitempty"`
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// RuleID is the id of the rule the finding is about, if any.
	RuleID string `json:"rule_id,omitempty"`
}

// Location is a parsed position. Line and Col are 0 when unknown.
type Location struct {
	File string
	Line int
	Col  int
}

// ParsePos splits "file:line:col" (or "file:line", or "file") into its
// parts. The file name may itself contain colons.
func ParsePos(pos string) Location {
	var loc Location
	rest := pos
	nums := make([]int, 0, 2)
	for range 2 {
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			break
		}
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil || n < 0 {
			break
		}
		nums = append(nums, n)
		rest = rest[:i]
	}
	loc.File = rest
	switch len(nums) {
	case 2:
		loc.Line, loc.Col = nums[1], nums[0]
	case 1:
		loc.Line = nums[0]
	}
	return loc
}

// Location returns the parsed position of the finding.
func (f Finding) Location() Location { return ParsePos(f.Pos) }

// Findings is a list of findings, sorted by [Findings.Sort] order.
type Findings []Finding

// HasErrors reports whether any finding has error severity.
func (fs Findings) HasErrors() bool { return fs.Count(SeverityError) > 0 }

// Count returns how many findings have severity s.
func (fs Findings) Count(s Severity) int {
	n := 0
	for _, f := range fs {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Sort orders findings by file, line, column, code, then message.
func (fs Findings) Sort() {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		la, lb := a.Location(), b.Location()
		return cmp.Or(
			cmp.Compare(la.File, lb.File),
			cmp.Compare(la.Line, lb.Line),
			cmp.Compare(la.Col, lb.Col),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
}
