package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// Exit codes.
const (
	exitOK         = 0
	exitRegression = 1
	exitInput      = 2
)

type options struct {
	direct, gateway, allow, module string
	lines, subtests                int
	slow                           float64
}

func main() {
	var o options
	flag.StringVar(&o.direct, "direct", "", "go test -json output of the direct run (required)")
	flag.StringVar(&o.gateway, "gateway", "", "go test -json output of the run through the gateway (required)")
	flag.StringVar(&o.allow, "allow", "", "allow-list of deliberate differences (optional)")
	flag.StringVar(&o.module, "module", "github.com/jackc/pgx/v5", "module path of the suite, stripped from package names")
	flag.IntVar(&o.lines, "lines", 6, "output lines shown per differing test")
	flag.IntVar(&o.subtests, "subtests", 3, "differing subtests shown with output per top-level test")
	flag.Float64Var(&o.slow, "slow", 10, "list tests that pass both ways but take this many seconds longer through the gateway (0: off)")
	flag.Parse()
	code, err := run(o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
	}
	os.Exit(code)
}

func run(o options, w io.Writer) (int, error) {
	if o.direct == "" || o.gateway == "" {
		return exitInput, errors.New("-direct and -gateway are required")
	}
	direct, err := parseFile(o.direct, o.module)
	if err != nil {
		return exitInput, err
	}
	gateway, err := parseFile(o.gateway, o.module)
	if err != nil {
		return exitInput, err
	}
	var allow []AllowEntry
	if o.allow != "" {
		f, err := os.Open(o.allow)
		if err != nil {
			return exitInput, fmt.Errorf("open allow-list: %w", err)
		}
		allow, err = ParseAllowList(f)
		f.Close()
		if err != nil {
			return exitInput, fmt.Errorf("%s: %w", o.allow, err)
		}
	}
	rep := Compare(direct, gateway, allow, o.slow)
	printReport(w, o, direct, gateway, rep)
	switch {
	case direct.Count(false).Pass == 0:
		return exitInput, errors.New("no test passed directly: the environment is broken, the comparison means nothing")
	case rep.Failing > 0:
		return exitRegression, nil
	}
	return exitOK, nil
}

func parseFile(path, module string) (*Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open test events: %w", err)
	}
	defer f.Close()
	r, err := ParseRun(f, module)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func printReport(w io.Writer, o options, direct, gateway *Run, rep Report) {
	da, ga := direct.Count(false), gateway.Count(false)
	dt, gt := direct.Count(true), gateway.Count(true)
	fmt.Fprintf(w, "%-28s %10s %10s\n", "tests (subtests included)", "direct", "gateway")
	row := func(name string, d, g int) { fmt.Fprintf(w, "%-28s %10d %10d\n", name, d, g) }
	row("  passed", da.Pass, ga.Pass)
	row("  failed", da.Fail, ga.Fail)
	row("  skipped", da.Skip, ga.Skip)
	row("  no result (binary died)", da.NoResult, ga.NoResult)
	fmt.Fprintf(w, "%-28s %10s %10s\n", "top-level tests", "", "")
	row("  passed", dt.Pass, gt.Pass)
	row("  failed", dt.Fail, gt.Fail)
	row("  skipped", dt.Skip, gt.Skip)
	row("  no result (binary died)", dt.NoResult, gt.NoResult)
	fmt.Fprintln(w)

	for _, pkg := range slices.Sorted(maps.Keys(gateway.Packages)) {
		g := gateway.Packages[pkg]
		if d := direct.Packages[pkg]; g.Outcome == Fail && (d == nil || d.Outcome != Fail) {
			// Package-level output: a panic or timeout shows here, and it
			// explains tests without a result.
			if ex := Excerpt(g.Output, o.lines); len(ex) > 0 {
				fmt.Fprintf(w, "package %s fails through the gateway; its own output:\n", pkg)
				for _, l := range ex {
					fmt.Fprintf(w, "      %s\n", l)
				}
				fmt.Fprintln(w)
			}
		}
	}

	var failing, allowed, other []Difference
	for _, d := range rep.Differences {
		switch {
		case d.Regression && d.Allowed == nil:
			failing = append(failing, d)
		case d.Regression:
			allowed = append(allowed, d)
		default:
			other = append(other, d)
		}
	}
	fmt.Fprintf(w, "tests that pass directly but not through the gateway, not allow-listed: %d\n", len(failing))
	printSignatures(w, gateway, failing)
	printGroups(w, o, direct, gateway, failing)
	if len(allowed) > 0 {
		fmt.Fprintf(w, "\nallow-listed differences: %d\n", len(allowed))
		for _, d := range allowed {
			fmt.Fprintf(w, "  %-60s %s -> %s: %s (allow-list line %d)\n", d.Key, d.Direct, d.Gateway, d.Allowed.Reason, d.Allowed.Line)
		}
	}
	if len(other) > 0 {
		fmt.Fprintf(w, "\nother differences (the test does not pass directly): %d\n", len(other))
		printGroups(w, o, direct, gateway, other)
	}
	if len(rep.Slow) > 0 {
		fmt.Fprintf(w, "\npassing both ways, but at least %.0f s slower through the gateway: %d\n", o.slow, len(rep.Slow))
		for _, s := range rep.Slow {
			fmt.Fprintf(w, "  %-60s %6.1f s direct, %6.1f s gateway\n", s.Key, s.Direct, s.Gateway)
		}
	}
	if len(rep.Stale) > 0 {
		fmt.Fprintf(w, "\nallow-list entries that matched no difference (remove them?):\n")
		for _, e := range rep.Stale {
			fmt.Fprintf(w, "  line %d: %s\n", e.Line, e.Key)
		}
	}
	if direct.Stray+gateway.Stray > 0 {
		fmt.Fprintf(w, "\nlines that were not test events: direct %d, gateway %d\n", direct.Stray, gateway.Stray)
	}
}

// printSignatures counts the failing tests (those without a failing
// subtest of their own) by failure message, most frequent first, so one
// cause that fails many tests shows as one line.
func printSignatures(w io.Writer, gateway *Run, diffs []Difference) {
	parent := map[Key]bool{}
	for _, d := range diffs {
		if top := d.Key.Top(); top != d.Key {
			parent[top] = true
		}
	}
	count := map[string]int{}
	for _, d := range diffs {
		if parent[d.Key] {
			continue
		}
		sig := "(" + string(d.Gateway) + ")"
		if res := gateway.Tests[d.Key]; res != nil && res.Outcome == Fail {
			sig = Signature(res.Output)
		}
		count[sig]++
	}
	if len(count) == 0 {
		return
	}
	sigs := slices.Collect(maps.Keys(count))
	slices.SortFunc(sigs, func(a, b string) int {
		if count[a] != count[b] {
			return count[b] - count[a]
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintln(w, "  by failure message (tests without differing subtests):")
	for _, s := range sigs {
		fmt.Fprintf(w, "  %5d  %s\n", count[s], s)
	}
	fmt.Fprintln(w)
}

// printGroups prints differences grouped by top-level test, with output
// excerpts for the top-level test and the first o.subtests subtests.
func printGroups(w io.Writer, o options, direct, gateway *Run, diffs []Difference) {
	for i := 0; i < len(diffs); {
		top := diffs[i].Key.Top()
		j := i
		for j < len(diffs) && diffs[j].Key.Top() == top {
			j++
		}
		group := diffs[i:j]
		i = j
		fmt.Fprintf(w, "  %s: direct %s, gateway %s", top, direct.outcome(top), gateway.outcome(top))
		var subs []Difference
		for _, d := range group {
			if d.Key != top {
				subs = append(subs, d)
			}
		}
		if len(subs) > 0 {
			fmt.Fprintf(w, " (%d subtests differ)", len(subs))
		}
		fmt.Fprintln(w)
		printExcerpt(w, o, direct, gateway, top, "      ")
		for n, d := range subs {
			if n == o.subtests {
				var rest []string
				for _, s := range subs[n:] {
					rest = append(rest, strings.TrimPrefix(s.Key.Test, top.Test))
				}
				fmt.Fprintf(w, "    and %s\n", strings.Join(rest, ", "))
				break
			}
			fmt.Fprintf(w, "    %s: direct %s, gateway %s\n", strings.TrimPrefix(d.Key.Test, top.Test), d.Direct, d.Gateway)
			printExcerpt(w, o, direct, gateway, d.Key, "        ")
		}
	}
}

// printExcerpt prints the output of the run in which k did not pass.
func printExcerpt(w io.Writer, o options, direct, gateway *Run, k Key, indent string) {
	res := gateway.Tests[k]
	if res == nil || res.Outcome == Pass {
		res = direct.Tests[k]
	}
	if res == nil {
		return
	}
	for _, l := range Excerpt(res.Output, o.lines) {
		fmt.Fprintf(w, "%s%s\n", indent, l)
	}
}
