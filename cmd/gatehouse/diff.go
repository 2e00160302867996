package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/compiler/diff"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

type diffOptions struct {
	Repo             string
	Dir              string
	Format           string
	FailOnEscalation bool
}

func (o *diffOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Repo, "repo", ".", "Git repository that BASE and HEAD revisions are read from")
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory inside the repository")
	fs.StringVar(&o.Format, "format", "markdown", "output format: markdown or json")
	fs.BoolVar(&o.FailOnEscalation, "fail-on-escalation", false, "exit 6 when any change widens access")
}

func newDiffCmd() *cobra.Command {
	o := &diffOptions{}
	cmd := &cobra.Command{
		Use:   "diff BASE HEAD",
		Short: "Show who gains or loses what access between two policy versions",
		Long: `Compile two policy versions and compare the effective access of every identity on every
resource. BASE and HEAD are each a directory (the policy directory, or a checkout that
contains --dir) or a Git revision of --repo. With --fail-on-escalation the command exits 6
when any change widens access (gained, mask_removed, approval_removed, deny_removed,
expiry_extended).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{err: fmt.Errorf("want BASE and HEAD, got %d argument(s)", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.OutOrStdout(), cmd.ErrOrStderr(), o, args[0], args[1])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// diffSide compiles one side of a diff: a directory when ref names one,
// otherwise a Git revision of o.Repo.
func diffSide(stderr io.Writer, o *diffOptions, ref string) (*bundle.Policy, error) {
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		dir := ref
		if sub := filepath.Join(ref, o.Dir); !hasCUEFiles(ref) && isDirPath(sub) {
			dir = sub
		}
		res, err := compilePolicy(stderr, "", "", dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		return &res.Bundle.Policy, nil
	}
	res, err := compilePolicy(stderr, o.Repo, ref, o.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return &res.Bundle.Policy, nil
}

func isDirPath(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func hasCUEFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
	return len(m) > 0
}

func runDiff(stdout, stderr io.Writer, o *diffOptions, baseRef, headRef string) error {
	if o.Format != "markdown" && o.Format != "json" {
		return &usageError{err: fmt.Errorf("--format %q: want markdown or json", o.Format)}
	}
	base, err := diffSide(stderr, o, baseRef)
	if err != nil {
		return err
	}
	head, err := diffSide(stderr, o, headRef)
	if err != nil {
		return err
	}
	rep := diff.Compare(base, head)
	if o.Format == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteMarkdown(stdout)
	}
	if err != nil {
		return err
	}
	if n := len(rep.Escalations()); o.FailOnEscalation && n > 0 {
		return withCode(exitFindings, fmt.Errorf("diff: %d change(s) widen access", n))
	}
	return nil
}
