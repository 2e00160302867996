package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Outcome is the final state of one test in one run.
type Outcome string

// Outcomes. NoResult is a test that started but never reported pass, fail
// or skip (its test binary panicked or timed out); Absent is a test the run
// does not mention at all.
const (
	Pass     Outcome = "pass"
	Fail     Outcome = "fail"
	Skip     Outcome = "skip"
	NoResult Outcome = "no result"
	Absent   Outcome = "absent"
)

// Key names one test: the package path relative to the suite's module ("."
// for the root package) and the test name with its subtests ("TestX/sub").
type Key struct {
	Pkg  string
	Test string
}

func (k Key) String() string { return k.Pkg + " " + k.Test }

// Top is the key of the top-level test k belongs to.
func (k Key) Top() Key {
	if i := strings.IndexByte(k.Test, '/'); i >= 0 {
		return Key{Pkg: k.Pkg, Test: k.Test[:i]}
	}
	return k
}

// Result is one test's outcome, its run time in seconds and the output
// lines it printed itself.
type Result struct {
	Outcome Outcome
	Elapsed float64
	Output  []string
}

// Run is one parsed `go test -json` stream.
type Run struct {
	Tests    map[Key]*Result
	Packages map[string]*Result // package-level outcome and output
	// Stray counts lines that are not test2json events (output of the go
	// command itself).
	Stray int
}

// event is one test2json record (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// maxLine bounds one line of the stream; a test's output line can be long
// (a huge batch or a dumped row), but not unboundedly so.
const maxLine = 16 << 20

// ParseRun reads a `go test -json` stream. Packages are named relative to
// module. Lines that are not JSON events are counted, not fatal: the go
// command writes build errors and some diagnostics as plain text.
func ParseRun(r io.Reader, module string) (*Run, error) {
	run := &Run{Tests: map[Key]*Result{}, Packages: map[string]*Result{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Action == "" {
			run.Stray++
			continue
		}
		pkg := relPackage(ev.Package, module)
		var res *Result
		if ev.Test == "" {
			res = run.Packages[pkg]
			if res == nil {
				res = &Result{Outcome: NoResult}
				run.Packages[pkg] = res
			}
		} else {
			k := Key{Pkg: pkg, Test: normalizeName(ev.Test)}
			res = run.Tests[k]
			if res == nil {
				res = &Result{Outcome: NoResult}
				run.Tests[k] = res
			}
		}
		switch ev.Action {
		case "pass":
			res.Outcome, res.Elapsed = Pass, ev.Elapsed
		case "fail", "build-fail":
			res.Outcome, res.Elapsed = Fail, ev.Elapsed
		case "skip":
			res.Outcome, res.Elapsed = Skip, ev.Elapsed
		case "output", "build-output":
			res.Output = append(res.Output, strings.TrimRight(ev.Output, "\n"))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read test events: %w", err)
	}
	return run, nil
}

// longNumber matches the random part of names built from t.TempDir() and
// similar (TestX1580243407/001): it differs between runs, and test names
// must match across runs.
var longNumber = regexp.MustCompile(`[0-9]{6,}`)

func normalizeName(test string) string {
	return longNumber.ReplaceAllString(test, "N")
}

func relPackage(pkg, module string) string {
	if pkg == module {
		return "."
	}
	if rest, ok := strings.CutPrefix(pkg, module+"/"); ok {
		return rest
	}
	return pkg
}

// Counts are the outcomes of a run's tests.
type Counts struct {
	Pass, Fail, Skip, NoResult int
}

// Count counts the outcomes of every test (subtests included) or, with
// topOnly, of the top-level tests only.
func (r *Run) Count(topOnly bool) Counts {
	var c Counts
	for k, res := range r.Tests {
		if topOnly && k.Top() != k {
			continue
		}
		switch res.Outcome {
		case Pass:
			c.Pass++
		case Fail:
			c.Fail++
		case Skip:
			c.Skip++
		default:
			c.NoResult++
		}
	}
	return c
}

func (r *Run) outcome(k Key) Outcome {
	if res := r.Tests[k]; res != nil {
		return res.Outcome
	}
	return Absent
}

// AllowEntry is one deliberate difference: a test (and its subtests) that
// may fail through the gateway although it passes directly.
type AllowEntry struct {
	Key    Key
	Reason string
	Line   int
}

// ErrAllowList marks a malformed allow-list.
var ErrAllowList = errors.New("malformed allow-list")

// ParseAllowList reads an allow-list (see the package documentation).
func ParseAllowList(r io.Reader) ([]AllowEntry, error) {
	var out []AllowEntry
	seen := map[Key]int{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("%w: line %d: want: package test reason", ErrAllowList, n)
		}
		if !strings.HasPrefix(f[1], "Test") && !strings.HasPrefix(f[1], "Example") && !strings.HasPrefix(f[1], "Fuzz") {
			return nil, fmt.Errorf("%w: line %d: %q is not a test name", ErrAllowList, n, f[1])
		}
		k := Key{Pkg: f[0], Test: f[1]}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("%w: line %d: %s already listed on line %d", ErrAllowList, n, k, prev)
		}
		seen[k] = n
		out = append(out, AllowEntry{Key: k, Reason: strings.Join(f[2:], " "), Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read allow-list: %w", err)
	}
	return out, nil
}

// covers reports whether e allows k: the same test or one of its subtests.
func (e AllowEntry) covers(k Key) bool {
	return e.Key.Pkg == k.Pkg && (e.Key.Test == k.Test || strings.HasPrefix(k.Test, e.Key.Test+"/"))
}

// Difference is a test whose outcome differs between the two runs.
type Difference struct {
	Key     Key
	Direct  Outcome
	Gateway Outcome
	// Regression: passes directly, does not pass through the gateway.
	Regression bool
	// Allowed is the allow-list entry covering a regression, if any.
	Allowed *AllowEntry
}

// Slow is a test that passes both ways but takes much longer through the
// gateway: often a failure in disguise (a wait that ends only at the
// test's own deadline).
type Slow struct {
	Key             Key
	Direct, Gateway float64 // seconds
}

// Report is the comparison of two runs.
type Report struct {
	Differences []Difference
	// Slow lists tests passing both ways whose gateway run took at least
	// the slow threshold longer, sorted by package and test name.
	Slow []Slow
	// Failing counts regressions no allow-list entry covers.
	Failing int
	// Stale lists allow-list entries that cover no regression although
	// their test ran directly: it now behaves the same both ways. Entries
	// for tests the run did not include (a subset) are not stale.
	Stale []AllowEntry
}

// Compare lists every test whose outcome differs, sorted by package and
// test name, and marks the regressions the allow-list covers. A test that
// passes both ways and takes at least slow seconds longer through the
// gateway is listed in Slow (slow <= 0: none).
func Compare(direct, gateway *Run, allow []AllowEntry, slow float64) Report {
	keys := map[Key]bool{}
	for k := range direct.Tests {
		keys[k] = true
	}
	for k := range gateway.Tests {
		keys[k] = true
	}
	used := make([]bool, len(allow))
	var rep Report
	for k := range keys {
		d, g := direct.outcome(k), gateway.outcome(k)
		if d == g {
			if d == Pass && slow > 0 {
				if dt, gt := direct.Tests[k].Elapsed, gateway.Tests[k].Elapsed; gt-dt >= slow {
					rep.Slow = append(rep.Slow, Slow{Key: k, Direct: dt, Gateway: gt})
				}
			}
			continue
		}
		diff := Difference{Key: k, Direct: d, Gateway: g, Regression: d == Pass}
		if diff.Regression {
			for i := range allow {
				if allow[i].covers(k) {
					diff.Allowed = &allow[i]
					used[i] = true
					break
				}
			}
			if diff.Allowed == nil {
				rep.Failing++
			}
		}
		rep.Differences = append(rep.Differences, diff)
	}
	sort.Slice(rep.Differences, func(i, j int) bool {
		a, b := rep.Differences[i].Key, rep.Differences[j].Key
		if a.Pkg != b.Pkg {
			return a.Pkg < b.Pkg
		}
		return a.Test < b.Test
	})
	sort.Slice(rep.Slow, func(i, j int) bool {
		a, b := rep.Slow[i].Key, rep.Slow[j].Key
		if a.Pkg != b.Pkg {
			return a.Pkg < b.Pkg
		}
		return a.Test < b.Test
	})
	for i, u := range used {
		if u {
			continue
		}
		for k := range direct.Tests {
			if allow[i].covers(k) {
				rep.Stale = append(rep.Stale, allow[i])
				break
			}
		}
	}
	return rep
}

// Excerpt returns up to n informative lines of a test's output: the lines
// test2json adds (=== RUN, --- FAIL, ...) and testify's trace lines are
// dropped, white space is collapsed.
func Excerpt(lines []string, n int) []string {
	var out []string
	for _, l := range lines {
		t := strings.Join(strings.Fields(l), " ")
		if t == "" || noise(t) || traceLine.MatchString(t) {
			continue
		}
		if len(out) == n {
			break
		}
		out = append(out, t)
	}
	return out
}

// traceLine matches the file:line lines of testify's Error Trace block.
var traceLine = regexp.MustCompile(`^/\S+\.go:[0-9]+$`)

func noise(t string) bool {
	for _, p := range []string{
		"=== RUN", "=== PAUSE", "=== CONT", "=== NAME",
		"--- PASS", "--- FAIL", "--- SKIP",
		"Error Trace:", "Test:", "Diff:", "--- Expected", "+++ Actual", "@@ ",
		"PASS", "FAIL", "ok ",
	} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// sqlState finds a PostgreSQL error as pgx prints it: severity, message
// and SQLSTATE.
var sqlState = regexp.MustCompile(`(ERROR|FATAL|PANIC): .*?\(SQLSTATE [0-9A-Z]{5}\)`)

// fileLine is the "x_test.go:123:" prefix of t.Error output.
var fileLine = regexp.MustCompile(`^\S+\.go:[0-9]+:\s*`)

// Signature condenses a failing test's output into a message that tests
// failing for the same reason share: the PostgreSQL error it reports,
// or else its first output line without the file position (with the two
// lines after it when it ends with a colon), with numbers
// (ports, process ids, counts) replaced by N.
func Signature(lines []string) string {
	ex := Excerpt(lines, 8)
	for _, l := range ex {
		if m := sqlState.FindString(l); m != "" {
			return normalizeNumbers(m)
		}
	}
	// The first line with text; testify's "Error: Not equal:" says
	// little without the lines after it.
	var parts []string
	for _, l := range ex {
		t := fileLine.ReplaceAllString(l, "")
		if t == "" {
			continue
		}
		parts = append(parts, t)
		if !strings.HasSuffix(parts[0], ":") || len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		return "(no output)"
	}
	return normalizeNumbers(strings.Join(parts, " "))
}

var number = regexp.MustCompile(`[0-9]+`)

func normalizeNumbers(s string) string {
	// The SQLSTATE keeps its digits: it is the point.
	tail := ""
	if i := strings.Index(s, "(SQLSTATE "); i >= 0 {
		s, tail = s[:i], s[i:]
	}
	return number.ReplaceAllString(s, "N") + tail
}
