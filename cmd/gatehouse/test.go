package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/conformance"
)

type testOptions struct {
	Dir    string
	Repo   string
	GitRev string
	Cases  string
	Format string
}

func (o *testOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory (relative to --repo with --git-rev)")
	fs.StringVar(&o.Repo, "repo", ".", "Git repository to read --git-rev from")
	fs.StringVar(&o.GitRev, "git-rev", "", "test the policy at this Git revision instead of the work tree")
	fs.StringVar(&o.Cases, "cases", filepath.Join("conformance", "cases"), "directory of expected-decision cases (*.cue, *.json); missing is none")
	fs.StringVar(&o.Format, "format", "text", "output format: text, json or junit")
}

func newTestCmd() *cobra.Command {
	o := &testOptions{}
	cmd := &cobra.Command{
		Use:   "test [--dir policies | --git-rev REV] [--cases conformance/cases] [--format text|json|junit]",
		Short: "Run the policy's unit tests and the conformance cases through the real engine",
		Long: `Compile the policy and decide every test of its "tests" field and every case in
--cases with the gateway's classifier and engine. Failures name the test, the
expected and actual effect and rule ids; rules that no test exercises are listed.
Exits 4 when a test fails, 3 when the policy does not compile.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTest(cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runTest(stdout, stderr io.Writer, o *testOptions) error {
	if o.Format != "text" && o.Format != "json" && o.Format != "junit" {
		return &usageError{err: fmt.Errorf("--format %q: want text, json or junit", o.Format)}
	}
	res, err := compilePolicy(stderr, o.Repo, o.GitRev, o.Dir)
	if err != nil {
		return err
	}
	ref := o.Dir
	if o.GitRev != "" {
		ref = o.GitRev
	}
	p, err := conformance.Compiled(ref, res)
	if err != nil {
		return withCode(exitInvalidPolicy, err)
	}
	cases, err := conformance.LoadCases(o.Cases)
	if err != nil {
		return withCode(exitInvalidPolicy, err)
	}
	rep, err := conformance.RunTests(p, append(p.PolicyTests(), cases...))
	if err != nil {
		return err
	}
	switch o.Format {
	case "json":
		err = rep.WriteJSON(stdout)
	case "junit":
		err = rep.WriteJUnit(stdout)
	default:
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if rep.Failed > 0 {
		return withCode(exitTestFailure, fmt.Errorf("%d of %d policy test(s) failed", rep.Failed, len(rep.Results)))
	}
	return nil
}

// policyLoadCode maps a policy loading error to an exit code.
func policyLoadCode(err error) error {
	if errors.Is(err, compiler.ErrInvalidPolicy) {
		var ipe *compiler.InvalidPolicyError
		if errors.As(err, &ipe) {
			return withCode(exitInvalidPolicy, fmt.Errorf("%w\n%s", err, ipe.Diagnostics.String()))
		}
		return withCode(exitInvalidPolicy, err)
	}
	return err
}
