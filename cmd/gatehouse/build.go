package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

type buildOptions struct {
	Dir        string
	Repo       string
	GitRev     string
	Output     string
	Serial     uint64
	ValidFor   time.Duration
	SourceTime string
}

func (o *buildOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory (relative to --repo with --git-rev)")
	fs.StringVar(&o.Repo, "repo", ".", "Git repository to read --git-rev from")
	fs.StringVar(&o.GitRev, "git-rev", "", "build the policy at this Git revision (read from the object store, nothing is checked out)")
	fs.StringVarP(&o.Output, "output", "o", "bundle.json", `file to write the unsigned bundle to ("-" for standard output)`)
	fs.Uint64Var(&o.Serial, "serial", 0, "bundle serial (default: the commit or source time in Unix seconds)")
	fs.DurationVar(&o.ValidFor, "valid-for", compiler.DefaultValidFor, "how long after the source time the bundle is valid")
	fs.StringVar(&o.SourceTime, "source-time", "", "RFC 3339 time to use as the source time (default: commit time, or newest file time for a directory)")
}

func newBuildCmd() *cobra.Command {
	o := &buildOptions{}
	cmd := &cobra.Command{
		Use:   "build [--dir policies] [--git-rev REV --repo .] [-o bundle.json] [--serial N] [--valid-for 720h]",
		Short: "Compile a policy into an unsigned, deterministic decision bundle",
		Long: `Compile the CUE policy in --dir (or at --git-rev of --repo) against the
built-in schema and write the unsigned bundle as canonical JSON. The same
source always gives the same bytes. Exits 3 when the policy is invalid,
printing file:line:col diagnostics to standard error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBuild(cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runBuild(stdout, stderr io.Writer, o *buildOptions) error {
	if o.ValidFor <= 0 {
		return &usageError{err: fmt.Errorf("--valid-for %s: must be positive", o.ValidFor)}
	}
	var src *compiler.Source
	var err error
	if o.GitRev != "" {
		src, err = compiler.LoadGit(o.Repo, o.GitRev, o.Dir)
	} else {
		src, err = compiler.LoadDir(o.Dir)
	}
	if err != nil {
		return withCode(exitInvalidPolicy, err)
	}
	if o.SourceTime != "" {
		t, err := time.Parse(time.RFC3339, o.SourceTime)
		if err != nil {
			return &usageError{err: fmt.Errorf("--source-time %q: want RFC 3339", o.SourceTime)}
		}
		src.Time = t.UTC().Truncate(time.Second)
	}
	res, err := compiler.Compile(src, compiler.Options{Serial: o.Serial, ValidFor: o.ValidFor, CompilerVersion: version})
	if err != nil {
		var ipe *compiler.InvalidPolicyError
		if errors.As(err, &ipe) {
			for _, d := range ipe.Diagnostics {
				fmt.Fprintln(stderr, d.String())
			}
		}
		return withCode(exitInvalidPolicy, err)
	}
	for _, d := range res.Diagnostics {
		fmt.Fprintln(stderr, d.String())
	}
	data, err := bundle.Encode(res.Bundle)
	if err != nil {
		return err
	}
	summaryTo := stdout
	if o.Output == "-" {
		if _, err := stdout.Write(data); err != nil {
			return err
		}
		summaryTo = stderr
	} else if err := writeFileAtomic(o.Output, data); err != nil {
		return err
	}
	m := res.Bundle.Manifest
	p := res.Bundle.Policy
	fmt.Fprintf(summaryTo, "built %s: revision %s serial %d, %d identities, %d groups, %d resources, %d rules, %d tests, policy %s, valid until %s\n",
		o.Output, m.Revision, m.Serial, len(p.Identities), len(p.Groups), len(p.Resources), len(p.Rules), len(res.Tests),
		m.PolicyDigest, m.Expires.Format(time.RFC3339))
	return nil
}
