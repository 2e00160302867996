package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/conformance"
)

type replayOptions struct {
	Sessions []string
	Base     string
	Head     string
	Repo     string
	Dir      string
	Expected string
	Format   string
	Workers  int
	Examples int
}

func (o *replayOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.Sessions, "sessions", []string{filepath.Join("conformance", "sessions")}, "recorded sessions: .jsonl files or directories of them")
	fs.StringVar(&o.Base, "base", "", "current policy: Git revision, policy directory or bundle file (default: compare with the recorded decisions)")
	fs.StringVar(&o.Head, "head", "policies", "proposed policy: Git revision, policy directory or bundle file")
	fs.StringVar(&o.Repo, "repo", ".", "Git repository that revisions are read from")
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory inside the repository")
	fs.StringVar(&o.Expected, "expected", filepath.Join("conformance", "expected.cue"), "declared, accepted changes (missing: none)")
	fs.StringVar(&o.Format, "format", "markdown", "output format: markdown, json or junit")
	fs.IntVar(&o.Workers, "workers", 0, "parallel workers (default: number of CPUs)")
	fs.IntVar(&o.Examples, "examples", conformance.DefaultExamples, "example commands per change group")
}

func newReplayCmd() *cobra.Command {
	o := &replayOptions{}
	cmd := &cobra.Command{
		Use:   "replay --sessions conformance/sessions [--base REV|DIR|BUNDLE] --head REV|DIR|BUNDLE [--format markdown|json|junit]",
		Short: "Re-decide recorded sessions under a proposed policy and report what changes",
		Long: `Replay every recorded statement under the base and head policies, exactly as
the gateway decides (same classifier, same engine, the recorded time for time
windows and expiries), and report the statements whose decision changes, grouped
by kind: newly denied, newly allowed, newly requires approval, approval no longer
required, masking added, masking removed, deciding rule changed. Changes declared
in --expected are shown as acknowledged. Exits 4 when a change is not declared.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReplay(cmd, o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// isTerminal reports whether f is a character device (progress output).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runReplay(cmd *cobra.Command, o *replayOptions) error {
	stdout := cmd.OutOrStdout()
	if o.Format != "markdown" && o.Format != "json" && o.Format != "junit" {
		return &usageError{err: fmt.Errorf("--format %q: want markdown, json or junit", o.Format)}
	}
	if o.Head == "" {
		return &usageError{err: fmt.Errorf("--head is required")}
	}
	corpus, err := conformance.LoadSessions(o.Sessions...)
	if err != nil {
		return err
	}
	exps, err := conformance.LoadExpected(o.Expected)
	if err != nil {
		return err
	}
	var base *conformance.Policy
	if o.Base != "" {
		if base, err = conformance.LoadPolicy(o.Base, o.Repo, o.Dir); err != nil {
			return policyLoadCode(err)
		}
	}
	head, err := conformance.LoadPolicy(o.Head, o.Repo, o.Dir)
	if err != nil {
		return policyLoadCode(err)
	}
	opts := conformance.Options{Workers: o.Workers}
	if cmd.ErrOrStderr() == os.Stderr && isTerminal(os.Stderr) {
		opts.Progress = os.Stderr
	}
	res, err := conformance.Replay(cmd.Context(), corpus, base, head, opts)
	if err != nil {
		return err
	}
	rep := conformance.BuildReport(res, exps, o.Examples)
	if err := writeReplay(stdout, rep, o.Format); err != nil {
		return err
	}
	if rep.Failed() {
		return withCode(exitTestFailure, fmt.Errorf("replay: %d statement(s) change in ways not declared in %s", rep.Unacknowledged, o.Expected))
	}
	return nil
}

func writeReplay(w io.Writer, rep *conformance.Report, format string) error {
	switch format {
	case "json":
		return rep.WriteJSON(w)
	case "junit":
		return rep.WriteJUnit(w)
	default:
		return rep.WriteMarkdown(w)
	}
}
