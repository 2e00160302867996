package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/compiler/lint"
)

type lintOptions struct {
	Dir    string
	Repo   string
	GitRev string
	Format string
	Now    string
}

func (o *lintOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory (relative to --repo with --git-rev)")
	fs.StringVar(&o.Repo, "repo", ".", "Git repository to read --git-rev from")
	fs.StringVar(&o.GitRev, "git-rev", "", "lint the policy at this Git revision instead of the work tree")
	fs.StringVar(&o.Format, "format", "text", "output format: text, json, sarif or github")
	fs.StringVar(&o.Now, "now", "", "date or RFC 3339 time that expiry and review checks use (default: the current time)")
}

func newLintCmd() *cobra.Command {
	o := &lintOptions{}
	cmd := &cobra.Command{
		Use:   "lint [--dir policies | --git-rev REV] [--format text|json|sarif|github] [--now 2026-11-27]",
		Short: "Check a policy for unknown references, dead or risky rules, missing reviews and literal secrets",
		Long: `Compile the policy and report lint findings (codes GH001... documented in docs/lint.md).
Exits 6 when there is at least one error-severity finding, 3 when the policy does not compile.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLint(cmd.OutOrStdout(), cmd.ErrOrStderr(), o, time.Now())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// parseNow parses the --now flag; empty means wall.
func parseNow(s string, wall time.Time) (time.Time, error) {
	if s == "" {
		return wall.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &usageError{err: fmt.Errorf("--now %q: want YYYY-MM-DD or RFC 3339", s)}
	}
	return t, nil
}

// compilePolicy loads and compiles a policy from a directory or a Git
// revision, printing compiler diagnostics to stderr. An invalid policy maps
// to exit code 3.
func compilePolicy(stderr io.Writer, repo, rev, dir string) (*compiler.Result, error) {
	var src *compiler.Source
	var err error
	if rev != "" {
		src, err = compiler.LoadGit(repo, rev, dir)
	} else {
		src, err = compiler.LoadDir(dir)
	}
	if err != nil {
		return nil, withCode(exitInvalidPolicy, err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		var ipe *compiler.InvalidPolicyError
		if errors.As(err, &ipe) {
			for _, d := range ipe.Diagnostics {
				fmt.Fprintln(stderr, d.String())
			}
		}
		return nil, withCode(exitInvalidPolicy, err)
	}
	for _, d := range res.Diagnostics {
		fmt.Fprintln(stderr, d.String())
	}
	return res, nil
}

func runLint(stdout, stderr io.Writer, o *lintOptions, wall time.Time) error {
	format := lint.Format(o.Format)
	if !validLintFormat(format) {
		return &usageError{err: fmt.Errorf("--format %q: %w", o.Format, lint.ErrUnknownFormat)}
	}
	now, err := parseNow(o.Now, wall)
	if err != nil {
		return err
	}
	res, err := compilePolicy(stderr, o.Repo, o.GitRev, o.Dir)
	if err != nil {
		return err
	}
	fs := lint.Run(&res.Bundle.Policy, lint.Options{Now: now})
	if err := lint.Write(stdout, format, fs, lint.Tool{Name: "gatehouse", Version: version}); err != nil {
		return err
	}
	if n := fs.Count(lint.SeverityError); n > 0 {
		return withCode(exitFindings, fmt.Errorf("lint: %d error(s), %d warning(s)", n, fs.Count(lint.SeverityWarning)))
	}
	return nil
}

func validLintFormat(f lint.Format) bool {
	for _, x := range lint.Formats {
		if x == f {
			return true
		}
	}
	return false
}
