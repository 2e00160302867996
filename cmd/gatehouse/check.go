package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/compiler/lint"
	"github.com/gatehouse/gatehouse/conformance"
)

type checkOptions struct {
	Base     string
	Head     string
	Repo     string
	Dir      string
	Sessions []string
	Cases    string
	Expected string
	Report   string
	SARIF    string
	JUnit    string
	Now      string
	Workers  int
}

func (o *checkOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Base, "base", "", "policy to compare with: Git revision (e.g. origin/main), directory or bundle file")
	fs.StringVar(&o.Head, "head", "", "proposed policy: work-tree directory or Git revision (default: --dir in the work tree)")
	fs.StringVar(&o.Repo, "repo", ".", "Git repository")
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory inside the repository")
	fs.StringSliceVar(&o.Sessions, "sessions", []string{filepath.Join("conformance", "sessions")}, "recorded sessions to replay")
	fs.StringVar(&o.Cases, "cases", filepath.Join("conformance", "cases"), "expected-decision cases directory")
	fs.StringVar(&o.Expected, "expected", filepath.Join("conformance", "expected.cue"), "declared, accepted replay changes")
	fs.StringVar(&o.Report, "report", "", "write the Markdown report to this file instead of standard output")
	fs.StringVar(&o.SARIF, "sarif", "", "also write lint findings as SARIF to this file")
	fs.StringVar(&o.JUnit, "junit", "", "also write tests and replay as JUnit XML to this file")
	fs.StringVar(&o.Now, "now", "", "date or RFC 3339 time for lint expiry and review checks (default: now)")
	fs.IntVar(&o.Workers, "workers", 0, "replay workers (default: number of CPUs)")
}

func newCheckCmd() *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check --base REV [--head WORKTREE|REV] [--report FILE] [--sarif FILE] [--junit FILE]",
		Short: "Run the whole pull-request check: compile, lint, tests, diff and replay",
		Long: `Validate the proposed policy (compile), lint it, run its unit tests and the
conformance cases, diff its effective access against --base, and replay the
recorded sessions under base and head. Writes one Markdown report.
Exit codes: 0 passed, 3 policy invalid, 4 test failures or undeclared replay
changes, 6 lint errors, 1 the check itself could not run.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd, o, time.Now())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runCheck(cmd *cobra.Command, o *checkOptions, wall time.Time) error {
	now, err := parseNow(o.Now, wall)
	if err != nil {
		return err
	}
	opts := conformance.CheckOptions{
		Repo: o.Repo, Dir: o.Dir, Base: o.Base, Head: o.Head, Sessions: o.Sessions,
		CasesDir: o.Cases, Expected: o.Expected, Now: now,
		Replay: conformance.Options{Workers: o.Workers},
	}
	if cmd.ErrOrStderr() == os.Stderr && isTerminal(os.Stderr) {
		opts.Replay.Progress = os.Stderr
	}
	rep, err := conformance.Check(cmd.Context(), opts)
	if err != nil {
		return policyLoadCode(err)
	}
	write := func(path string, f func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		fh, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := f(fh); err != nil {
			fh.Close()
			return err
		}
		return fh.Close()
	}
	if o.Report == "" {
		err = rep.WriteMarkdown(cmd.OutOrStdout())
	} else {
		err = write(o.Report, rep.WriteMarkdown)
	}
	if err != nil {
		return err
	}
	tool := lint.Tool{Name: "gatehouse", Version: version, URIPrefix: filepath.ToSlash(o.Dir) + "/"}
	if err := write(o.SARIF, func(w io.Writer) error { return rep.WriteSARIF(w, tool) }); err != nil {
		return err
	}
	if err := write(o.JUnit, rep.WriteJUnit); err != nil {
		return err
	}
	cerr := rep.Err()
	switch {
	case cerr == nil:
		return nil
	case errors.Is(cerr, conformance.ErrCheckInvalid):
		for _, d := range rep.Diagnostics {
			fmt.Fprintln(cmd.ErrOrStderr(), d.String())
		}
		return withCode(exitInvalidPolicy, cerr)
	case errors.Is(cerr, conformance.ErrCheckFailed):
		return withCode(exitTestFailure, cerr)
	default:
		return withCode(exitFindings, cerr)
	}
}
