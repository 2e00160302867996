package conformance

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Expectation declares an accepted behavioural change. Every field that is
// set must match; Reason is required.
type Expectation struct {
	// Kind is a change kind ("newly_denied", ...); empty matches any.
	Kind Kind `json:"kind,omitempty"`
	// Identity and Resource match exactly; empty matches any.
	Identity string `json:"identity,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Rule matches when the base or head decision names it.
	Rule string `json:"rule,omitempty"`
	// Command is a pattern over the command text in which '*' matches any
	// text; case is ignored.
	Command string `json:"command,omitempty"`
	Reason  string `json:"reason"`
}

// expectedFile is the layout of expected.cue.
type expectedFile struct {
	Expected []Expectation `json:"expected"`
}

// ErrExpectation: an expectation is invalid.
var ErrExpectation = errors.New("invalid expectation")

// LoadExpected reads expected changes from a CUE or JSON file of the form
// `expected: [{kind: ..., identity: ..., reason: ...}, ...]`. A missing
// file is no expectations.
func LoadExpected(path string) ([]Expectation, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var f expectedFile
	if err := loadData(path, &f); err != nil {
		return nil, err
	}
	for i, e := range f.Expected {
		switch {
		case strings.TrimSpace(e.Reason) == "":
			return nil, fmt.Errorf("%s: expected[%d]: %w: reason is required", path, i, ErrExpectation)
		case e.Kind != "" && !validKind(e.Kind):
			return nil, fmt.Errorf("%s: expected[%d]: %w: kind %q, want one of %v", path, i, ErrExpectation, e.Kind, Kinds)
		case e.Identity == "" && e.Resource == "" && e.Rule == "" && e.Command == "":
			return nil, fmt.Errorf("%s: expected[%d]: %w: name at least one of identity, resource, rule, command", path, i, ErrExpectation)
		}
	}
	return f.Expected, nil
}

// matches reports whether e declares kind k of change c.
func (e *Expectation) matches(k Kind, c *Change) bool {
	if e.Kind != "" && e.Kind != k {
		return false
	}
	if e.Identity != "" && e.Identity != c.Identity {
		return false
	}
	if e.Resource != "" && e.Resource != c.Resource {
		return false
	}
	if e.Rule != "" && !slices.Contains(c.Base.RuleIDs, e.Rule) && !slices.Contains(c.Head.RuleIDs, e.Rule) {
		return false
	}
	if e.Command != "" && !globMatch(strings.ToLower(e.Command), strings.ToLower(c.Command)) {
		return false
	}
	return true
}

// acknowledge marks changes that expectations declare (each of their kinds)
// and returns the indexes of expectations that matched nothing.
func acknowledge(cs []Change, exps []Expectation) []int {
	used := make([]bool, len(exps))
	for i := range cs {
		c := &cs[i]
		c.Acknowledged, c.Expectation, c.Reason = false, 0, ""
		all, first := true, -1
		for _, k := range c.Kinds {
			found := false
			for j := range exps {
				if exps[j].matches(k, c) {
					used[j] = true
					if !found && first < 0 {
						first = j
					}
					found = true
				}
			}
			all = all && found
		}
		if all && first >= 0 {
			c.Acknowledged, c.Expectation, c.Reason = true, first, exps[first].Reason
		}
	}
	var stale []int
	for j, u := range used {
		if !u {
			stale = append(stale, j)
		}
	}
	return stale
}

// globMatch matches s against p, where '*' matches any text.
func globMatch(p, s string) bool {
	// Iterative matcher with backtracking to the last star.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
