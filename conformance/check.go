package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/compiler/diff"
	"github.com/gatehouse/gatehouse/compiler/lint"
)

// CheckOptions configure Check, the pull-request pipeline.
type CheckOptions struct {
	// Repo is the Git repository base (and head) revisions are read from.
	Repo string
	// Dir is the policy directory inside the repository ("policies").
	Dir string
	// Base is the policy to compare with: a Git revision, a directory or a
	// bundle file.
	Base string
	// Head is the proposed policy: a directory (default: Dir in the work
	// tree) or a Git revision.
	Head string
	// Sessions are the recorded sessions (files or directories); missing
	// paths are skipped, no sessions skip the replay.
	Sessions []string
	// CasesDir holds expected-decision cases (may be missing).
	CasesDir string
	// Expected is the expected-changes file (may be missing).
	Expected string
	// Now is the lint time (expiry and review checks).
	Now time.Time
	// Replay tunes the replay.
	Replay Options
}

// CheckReport is the combined outcome of Check.
type CheckReport struct {
	BaseRef, HeadRef string
	// Invalid is set when the head policy does not compile; the other
	// stages did not run.
	Invalid     error
	Diagnostics compiler.Diagnostics
	Lint        lint.Findings
	Tests       *TestReport
	Diff        *diff.Report
	Replay      *Report
	// Notes are informational lines (stages skipped and why).
	Notes []string
}

// Stage outcomes of a check, in the order the exit code considers them.
var (
	// ErrCheckInvalid: the head policy does not compile.
	ErrCheckInvalid = errors.New("policy does not compile")
	// ErrCheckFailed: policy tests failed or replay found undeclared changes.
	ErrCheckFailed = errors.New("policy tests failed or undeclared behavioural changes")
	// ErrCheckLint: lint reported error-severity findings.
	ErrCheckLint = errors.New("lint errors")
)

// Err returns nil when the check passed, else an error wrapping
// ErrCheckInvalid, ErrCheckFailed or ErrCheckLint (the first that applies).
func (r *CheckReport) Err() error {
	if r.Invalid != nil {
		return fmt.Errorf("%w: %w", ErrCheckInvalid, r.Invalid)
	}
	var parts []string
	if r.Tests != nil && r.Tests.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d policy test(s) failed", r.Tests.Failed))
	}
	if r.Replay != nil && r.Replay.Failed() {
		parts = append(parts, fmt.Sprintf("%d undeclared behavioural change(s) in replay", r.Replay.Unacknowledged))
	}
	if len(parts) > 0 {
		return fmt.Errorf("%w: %s", ErrCheckFailed, strings.Join(parts, "; "))
	}
	if n := r.Lint.Count(lint.SeverityError); n > 0 {
		return fmt.Errorf("%w: %d error finding(s)", ErrCheckLint, n)
	}
	return nil
}

// Check runs the whole pull-request pipeline on the head policy: compile,
// lint, policy tests and cases, semantic diff against base, and replay of
// the recorded sessions under base and head. Errors that prevent the check
// itself (an unreadable base, a malformed sessions file) are returned; the
// policy's own problems are in the report (see CheckReport.Err).
func Check(ctx context.Context, o CheckOptions) (*CheckReport, error) {
	if o.Dir == "" {
		o.Dir = "policies"
	}
	if o.Repo == "" {
		o.Repo = "."
	}
	headRef := o.Head
	if headRef == "" {
		headRef = filepath.Join(o.Repo, o.Dir)
	}
	r := &CheckReport{BaseRef: o.Base, HeadRef: headRef}
	head, err := LoadPolicy(headRef, o.Repo, o.Dir)
	if err != nil {
		var ipe *compiler.InvalidPolicyError
		if errors.As(err, &ipe) {
			r.Invalid, r.Diagnostics = err, ipe.Diagnostics
			return r, nil
		}
		return nil, fmt.Errorf("head: %w", err)
	}
	r.Diagnostics = head.Diagnostics
	r.Lint = lint.Run(&head.Bundle.Policy, lint.Options{Now: o.Now})

	cases, err := LoadCases(o.CasesDir)
	if err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	r.Tests, err = RunTests(head, append(head.PolicyTests(), cases...))
	if err != nil {
		return nil, err
	}

	var base *Policy
	if o.Base != "" {
		base, err = LoadPolicy(o.Base, o.Repo, o.Dir)
		if err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
		r.Diff = diff.Compare(&base.Bundle.Policy, &head.Bundle.Policy)
	} else {
		r.Notes = append(r.Notes, "No base given: no semantic diff; replay compares head with the recorded decisions.")
	}

	var paths []string
	for _, p := range o.Sessions {
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		r.Notes = append(r.Notes, "No recorded sessions: replay skipped.")
		return r, nil
	}
	corpus, err := LoadSessions(paths...)
	if errors.Is(err, ErrNoSessions) {
		r.Notes = append(r.Notes, "No recorded sessions: replay skipped.")
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	exps, err := LoadExpected(o.Expected)
	if err != nil {
		return nil, err
	}
	res, err := Replay(ctx, corpus, base, head, o.Replay)
	if err != nil {
		return nil, err
	}
	r.Replay = BuildReport(res, exps, 0)
	return r, nil
}

// WriteMarkdown writes the combined report.
func (r *CheckReport) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	status := "passed"
	if err := r.Err(); err != nil {
		status = "failed: " + err.Error()
	}
	fmt.Fprintf(&b, "# Gatehouse policy check: %s\n\n", mdEscape(status))
	fmt.Fprintf(&b, "Head %s", mdCode(r.HeadRef))
	if r.BaseRef != "" {
		fmt.Fprintf(&b, ", base %s", mdCode(r.BaseRef))
	}
	b.WriteString(".\n\n")
	b.WriteString("| stage | result |\n|---|---|\n")
	if r.Invalid != nil {
		fmt.Fprintf(&b, "| compile | **invalid**: %d diagnostic(s) |\n\n", len(r.Diagnostics))
		b.WriteString("```\n")
		for _, d := range r.Diagnostics {
			b.WriteString(d.String() + "\n")
		}
		b.WriteString("```\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "| compile | ok (%d warning(s)) |\n", len(r.Diagnostics))
	fmt.Fprintf(&b, "| lint | %d error(s), %d warning(s) |\n", r.Lint.Count(lint.SeverityError), r.Lint.Count(lint.SeverityWarning))
	if r.Tests != nil {
		fmt.Fprintf(&b, "| policy tests | %d passed, %d failed |\n", r.Tests.Passed, r.Tests.Failed)
	}
	if r.Diff != nil {
		fmt.Fprintf(&b, "| access diff | %d change(s), %d widen access |\n", len(r.Diff.Changes), len(r.Diff.Escalations()))
	}
	if r.Replay != nil {
		fmt.Fprintf(&b, "| replay | %d of %d statements change, %d undeclared |\n", r.Replay.Changed, r.Replay.Statements, r.Replay.Unacknowledged)
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		b.WriteString("> " + n + "\n\n")
	}
	if len(r.Lint) > 0 {
		b.WriteString("## Lint\n\n| severity | code | where | message |\n|---|---|---|---|\n")
		for _, f := range r.Lint {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Severity, f.Code, mdEscape(f.Pos), mdEscape(f.Message))
		}
		b.WriteString("\n")
	}
	if r.Tests != nil {
		r.Tests.markdown(&b, "##")
	}
	if r.Diff != nil {
		var db strings.Builder
		if err := r.Diff.WriteMarkdown(&db); err != nil {
			return err
		}
		b.WriteString("<details><summary><b>Semantic access diff</b></summary>\n\n")
		b.WriteString(db.String())
		b.WriteString("\n</details>\n\n")
	}
	if r.Replay != nil {
		r.Replay.markdown(&b, "##")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSARIF writes the lint findings as SARIF 2.1.0.
func (r *CheckReport) WriteSARIF(w io.Writer, tool lint.Tool) error {
	return lint.WriteSARIF(w, r.Lint, tool)
}

// WriteJUnit writes policy tests and replay as JUnit XML suites.
func (r *CheckReport) WriteJUnit(w io.Writer) error {
	var suites []junitSuite
	if r.Invalid != nil {
		suites = append(suites, junitSuite{Name: "gatehouse.compile", Tests: 1, Failures: 1,
			Cases: []junitCase{{Name: "compile", Classname: "compile", Failure: &junitFailure{Message: "policy does not compile", Text: r.Diagnostics.String()}}}})
	}
	if r.Tests != nil {
		suites = append(suites, r.Tests.junitSuite())
	}
	if r.Replay != nil {
		suites = append(suites, r.Replay.junitSuite())
	}
	return writeJUnit(w, suites...)
}
