package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/compiler/certify"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record/postgres"
	"github.com/gatehouse/gatehouse/runtime/review"
)

type reviewOptions struct {
	Since    string
	Now      string
	Store    string
	Schema   string
	Dir      string
	Bundle   string
	Identity string
	Format   string
	Suggest  bool
	Expires  string
}

func (o *reviewOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Since, "since", "90d", "review period: a duration back from now (90d, 2160h) or an RFC 3339 time")
	fs.StringVar(&o.Now, "now", "", "end of the period (RFC 3339 or YYYY-MM-DD; default: the current time)")
	fs.StringVar(&o.Store, "store", defaultStore, "recording store: sqlite:PATH or postgres://...")
	fs.StringVar(&o.Schema, "schema", postgres.DefaultSchema, "schema of a PostgreSQL store")
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory the grants come from")
	fs.StringVar(&o.Bundle, "bundle", "", "read the grants from a bundle file instead of --dir")
	fs.StringVar(&o.Identity, "identity", "", "review one identity only")
	fs.StringVar(&o.Format, "format", "markdown", "output format: markdown, html, csv or json")
	fs.BoolVar(&o.Suggest, "suggest", false, "print least-privilege rules (CUE) for --identity instead of the review")
	fs.StringVar(&o.Expires, "expires", "", "expiry written into suggested rules (with --suggest)")
}

func newReviewCmd() *cobra.Command {
	o := &reviewOptions{}
	cmd := &cobra.Command{
		Use:   "review",
		Short: "Access review from recorded evidence: grants vs use, approvals, denials, chain verification",
		Long: `Review every identity (agents first) over a period: is it still needed (last activity,
sessions per week), does it have only what it needs (each grant with its uses and last use;
unused, expired and review-due grants), and did it use what it has, provably (resources,
statements by kind, approvals with approvers and reasons, denied attempts, masked reads,
hash-chain verification of the period's sessions).

With --suggest and --identity, print least-privilege rules in the policy language built from
what the identity actually ran, with the evidence as comments.

"gatehouse review certify" writes a reviewer's keep/revoke/shorten decisions back into the
policy source.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReview(cmd.Context(), cmd.OutOrStdout(), o, time.Now())
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.AddCommand(newReviewCertifyCmd())
	return cmd
}

// reviewPolicy compiles dir, or decodes a bundle file when path is set.
func reviewPolicy(dir, path string) (*bundle.Policy, string, error) {
	if path != "" {
		data, err := readBundleFile(path)
		if err != nil {
			return nil, "", err
		}
		b, _, err := bundle.DecodeFile(data)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return &b.Policy, b.Manifest.Revision, nil
	}
	src, err := compiler.LoadDir(dir)
	if err != nil {
		return nil, "", err
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		return nil, "", err
	}
	return &res.Bundle.Policy, res.Bundle.Manifest.Revision, nil
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := parseAge(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, a date or a duration like 90d", s)
}

func runReview(ctx context.Context, stdout io.Writer, o *reviewOptions, wall time.Time) error {
	now, err := parseWhen(o.Now, wall)
	if err != nil {
		return &usageError{err: fmt.Errorf("--now %w", err)}
	}
	since, err := parseWhen(o.Since, now)
	if err != nil {
		return &usageError{err: fmt.Errorf("--since %w", err)}
	}
	if o.Suggest && o.Identity == "" {
		return &usageError{err: fmt.Errorf("--suggest needs --identity")}
	}
	pol, rev, err := reviewPolicy(o.Dir, o.Bundle)
	if err != nil {
		return err
	}
	st, err := openRecordStore(ctx, o.Store, o.Schema)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := review.Build(ctx, review.Config{Reader: st, Approvals: st, Policy: pol, Now: now, Since: since, Identity: o.Identity})
	if err != nil {
		return err
	}
	rep.PolicyRevision = rev
	if o.Suggest {
		_, err := io.WriteString(stdout, review.Suggest(&rep.Identities[0], rep, review.SuggestOptions{Expires: o.Expires}))
		return err
	}
	if err := review.Render(stdout, rep, o.Format); err != nil {
		return &usageError{err: err}
	}
	return nil
}

type certifyOptions struct {
	Dir         string
	Decisions   string
	Reviewer    string
	Date        string
	Interactive bool
	Branch      string
	Commit      bool
	AuthorEmail string
	DryRun      bool
}

func (o *certifyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", "policies", "policy directory to edit")
	fs.StringVar(&o.Decisions, "decisions", "", "decisions file (JSON or YAML): rule id -> keep | revoke | {shorten: {expires: DATE}}")
	fs.StringVar(&o.Reviewer, "reviewer", "", "who reviewed (recorded as review.reviewer)")
	fs.StringVar(&o.Date, "date", "", "review date YYYY-MM-DD (default: today, UTC)")
	fs.BoolVar(&o.Interactive, "interactive", false, "decide grant by grant on the terminal")
	fs.StringVar(&o.Branch, "branch", "", "with --commit: the branch to create (default review/YYYY-MM)")
	fs.BoolVar(&o.Commit, "commit", false, "commit the change on a new Git branch")
	fs.StringVar(&o.AuthorEmail, "author-email", "", "with --commit: the author's e-mail")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the changes without writing files")
}

func newReviewCertifyCmd() *cobra.Command {
	o := &certifyOptions{}
	cmd := &cobra.Command{
		Use:   "certify",
		Short: "Write recertification decisions into the policy source",
		Long: `Apply a reviewer's decisions to the policy's CUE files: revoked grants are removed from the
rules list; kept grants get a new expires (the later of the current one and the review date
plus the review interval, or the date given) and review.last_reviewed / review.reviewer;
shortened grants get the earlier expires given. With --commit the change is committed on a new
branch, ready for a pull request.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCertify(cmd.InOrStdin(), cmd.OutOrStdout(), o, time.Now())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runCertify(stdin io.Reader, stdout io.Writer, o *certifyOptions, wall time.Time) error {
	if strings.TrimSpace(o.Reviewer) == "" {
		return &usageError{err: fmt.Errorf("--reviewer is required")}
	}
	if (o.Decisions == "") == !o.Interactive {
		return &usageError{err: fmt.Errorf("give exactly one of --decisions FILE and --interactive")}
	}
	date := wall.UTC().Truncate(24 * time.Hour)
	if o.Date != "" {
		d, err := time.Parse(time.DateOnly, o.Date)
		if err != nil {
			return &usageError{err: fmt.Errorf("--date %q: want YYYY-MM-DD", o.Date)}
		}
		date = d
	}
	src, err := compiler.LoadDir(o.Dir)
	if err != nil {
		return err
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		return err
	}
	pol := &res.Bundle.Policy
	var dec certify.Decisions
	if o.Interactive {
		if f, ok := stdin.(*os.File); !ok || !stdinIsTerminal(f) {
			return &usageError{err: fmt.Errorf("--interactive needs a terminal on standard input")}
		}
		if dec, err = askDecisions(stdin, stdout, pol); err != nil {
			return err
		}
		if len(dec) == 0 {
			fmt.Fprintln(stdout, "No decisions; nothing changed.")
			return nil
		}
	} else {
		f, err := os.Open(o.Decisions)
		if err != nil {
			return err
		}
		dec, err = certify.ParseDecisions(f)
		f.Close()
		if err != nil {
			return &usageError{err: err}
		}
	}
	opts := certify.Options{Reviewer: o.Reviewer, Date: date}
	change, err := certify.Apply(src, pol, dec, opts)
	if err != nil {
		return err
	}
	msg := certify.Summary(change, opts)
	fmt.Fprint(stdout, msg)
	switch {
	case o.DryRun:
		return nil
	case o.Commit:
		branch := o.Branch
		if branch == "" {
			branch = "review/" + date.Format("2006-01")
		}
		id, err := certify.Commit(src.Root, change, certify.CommitOptions{
			Branch: branch, Message: msg, AuthorName: o.Reviewer, AuthorEmail: o.AuthorEmail, When: wall,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nCommitted %s on branch %s.\n", id, branch)
	default:
		if err := certify.Write(src.Root, change); err != nil {
			return err
		}
		for name := range change.Files {
			fmt.Fprintf(stdout, "\nWrote %s.\n", filepath.Join(src.Root, filepath.FromSlash(name)))
		}
	}
	return nil
}

func stdinIsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// askDecisions asks for a decision on every grant of the policy.
func askDecisions(stdin io.Reader, stdout io.Writer, pol *bundle.Policy) (certify.Decisions, error) {
	in := bufio.NewScanner(io.LimitReader(stdin, 1<<20))
	dec := certify.Decisions{}
	for i := range pol.Rules {
		r := &pol.Rules[i]
		if r.Effect != bundle.EffectAllow && r.Effect != bundle.EffectApprove {
			continue
		}
		fmt.Fprintf(stdout, "\n%s (%s) %s\n  subjects %s, resources %s; %s; expires %s\n",
			r.ID, r.Effect, r.Description, strings.Join(r.Subjects, ","), strings.Join(r.ResolvedResources, ","),
			review.Scope(r), orText(r.Expires, "never"))
		for {
			fmt.Fprint(stdout, "  [k]eep, [r]evoke, [s]horten DATE, Enter to skip: ")
			if !in.Scan() {
				return dec, in.Err()
			}
			f := strings.Fields(in.Text())
			if len(f) == 0 {
				break
			}
			switch {
			case f[0] == "k" || f[0] == "keep":
				dec[r.ID] = certify.Decision{Action: certify.ActionKeep}
			case f[0] == "r" || f[0] == "revoke":
				dec[r.ID] = certify.Decision{Action: certify.ActionRevoke}
			case (f[0] == "s" || f[0] == "shorten") && len(f) == 2:
				if _, err := time.Parse(time.DateOnly, f[1]); err != nil {
					fmt.Fprintln(stdout, "  want a date YYYY-MM-DD")
					continue
				}
				dec[r.ID] = certify.Decision{Action: certify.ActionShorten, Expires: f[1]}
			default:
				fmt.Fprintln(stdout, "  answer k, r, s DATE or Enter")
				continue
			}
			break
		}
	}
	return dec, nil
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
