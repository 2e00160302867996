package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

type inspectOptions struct {
	JSON bool
}

func (o *inspectOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.JSON, "json", false, "print JSON instead of a table")
}

func newInspectCmd() *cobra.Command {
	o := &inspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect [--json] BUNDLE",
		Short: "Show a bundle's manifest, signatures and rules (signed or unsigned; does not verify)",
		Args:  oneArg("bundle file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd.OutOrStdout(), o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// inspectReport is the --json output of inspect.
type inspectReport struct {
	File string `json:"file"`
	// Format is "bundle" (a bare, unsigned bundle) or "envelope".
	Format string `json:"format"`
	// SignatureKeyIDs are the key ids the signatures claim; not verified.
	SignatureKeyIDs []string        `json:"signature_key_ids"`
	Manifest        bundle.Manifest `json:"manifest"`
	Counts          inspectCounts   `json:"counts"`
	Rules           []inspectRule   `json:"rules"`
}

type inspectCounts struct {
	Identities  int `json:"identities"`
	Groups      int `json:"groups"`
	Resources   int `json:"resources"`
	Classifiers int `json:"classifiers"`
	Rules       int `json:"rules"`
}

type inspectRule struct {
	ID        string        `json:"id"`
	Index     int           `json:"index"`
	Effect    bundle.Effect `json:"effect"`
	Subjects  []string      `json:"subjects"`
	Resources []string      `json:"resources"`
	Expires   string        `json:"expires,omitempty"`
}

func runInspect(stdout io.Writer, o *inspectOptions, path string) error {
	data, err := readBundleFile(path)
	if err != nil {
		return err
	}
	b, env, err := bundle.DecodeFile(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r := inspectReport{File: path, Format: "bundle", SignatureKeyIDs: []string{}, Manifest: b.Manifest}
	if env != nil {
		r.Format = "envelope"
		for _, s := range env.Signatures {
			r.SignatureKeyIDs = append(r.SignatureKeyIDs, s.KeyID)
		}
	}
	p := &b.Policy
	r.Counts = inspectCounts{len(p.Identities), len(p.Groups), len(p.Resources), len(p.Classifiers), len(p.Rules)}
	r.Rules = make([]inspectRule, 0, len(p.Rules))
	for _, rule := range p.Rules {
		r.Rules = append(r.Rules, inspectRule{
			ID: rule.ID, Index: rule.Index, Effect: rule.Effect,
			Subjects: orAny(rule.Subjects), Resources: orAny(rule.Resources), Expires: rule.Expires,
		})
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(&r)
	}

	fmt.Fprintf(stdout, "File %s\n", path)
	switch {
	case env == nil:
		fmt.Fprintln(stdout, "  kind:         bare bundle (unsigned)")
	case len(env.Signatures) == 0:
		fmt.Fprintln(stdout, "  kind:         envelope, no signatures")
	default:
		ids := make([]string, 0, len(env.Signatures))
		for _, s := range env.Signatures {
			ids = append(ids, fmt.Sprintf("%q", s.KeyID))
		}
		fmt.Fprintf(stdout, "  kind:         envelope, %d signatures (NOT verified; use gatehouse verify): %s\n",
			len(env.Signatures), strings.Join(ids, ", "))
	}
	printManifest(stdout, &b.Manifest)
	c := r.Counts
	fmt.Fprintf(stdout, "  contents:     %d identities, %d groups, %d resources, %d classifiers, %d rules\n\n",
		c.Identities, c.Groups, c.Resources, c.Classifiers, c.Rules)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tID\tEFFECT\tSUBJECTS\tRESOURCES\tEXPIRES")
	for _, rule := range r.Rules {
		exp := rule.Expires
		if exp == "" {
			exp = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", rule.Index, rule.ID, rule.Effect,
			strings.Join(rule.Subjects, ","), strings.Join(rule.Resources, ","), exp)
	}
	return tw.Flush()
}

// printManifest prints the manifest fields, one per line.
func printManifest(w io.Writer, m *bundle.Manifest) {
	fmt.Fprintf(w, "  format:       version %d\n", m.FormatVersion)
	fmt.Fprintf(w, "  revision:     %s\n", m.Revision)
	fmt.Fprintf(w, "  serial:       %d\n", m.Serial)
	fmt.Fprintf(w, "  not before:   %s\n", m.NotBefore.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  expires:      %s\n", m.Expires.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  compiler:     %s\n", m.CompilerVersion)
	fmt.Fprintf(w, "  source:       %s\n", m.SourceDigest)
	fmt.Fprintf(w, "  policy:       %s\n", m.PolicyDigest)
}

// orAny renders an empty subject or resource list as "*" (its meaning).
func orAny(s []string) []string {
	if len(s) == 0 {
		return []string{"*"}
	}
	return s
}
