package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/conformance"
)

type sessionsExportOptions struct {
	Since     string
	Identity  string
	Resource  string
	Anonymize bool
	KeyFile   string
	Output    string
}

func (o *sessionsExportOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Since, "since", "", "only sessions started within this period (e.g. 24h, 30d)")
	fs.StringVar(&o.Identity, "identity", "", "only sessions of this identity")
	fs.StringVar(&o.Resource, "resource", "", "only sessions on this resource")
	fs.BoolVar(&o.Anonymize, "anonymize", false, "replace identities, client addresses, claims and SQL literals with consistent placeholders")
	fs.StringVar(&o.KeyFile, "anonymize-key-file", "", "file with a hex key for stable pseudonyms across exports (default: random per export)")
	fs.StringVarP(&o.Output, "output", "o", "-", `file to write ("-" for standard output)`)
}

func newSessionsExportCmd(so *sessionsOptions) *cobra.Command {
	o := &sessionsExportOptions{}
	cmd := &cobra.Command{
		Use:   "export [--since 30d] [--resource R] [--identity I] [--anonymize] > sessions.jsonl",
		Short: "Export recorded sessions in the gatehouse.sessions/v1 format for conformance replay",
		Long: `Write recorded sessions and their command events (text, recorded facts and
decision) as JSON lines, oldest first. Result rows are never exported. With
--anonymize, identities, client addresses and claim values become keyed
pseudonyms and SQL literals become $n placeholders, so queries keep their shape.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSessionsExport(cmd.Context(), cmd.OutOrStdout(), so, o, time.Now())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// storeLabel describes a store location without credentials.
func storeLabel(location string) string {
	if strings.HasPrefix(location, "sqlite:") {
		return location
	}
	return "postgres"
}

func runSessionsExport(ctx context.Context, stdout io.Writer, so *sessionsOptions, o *sessionsExportOptions, now time.Time) error {
	opts := conformance.ExportOptions{Identity: o.Identity, Resource: o.Resource, Anonymize: o.Anonymize,
		Source: storeLabel(so.Store), Now: now}
	if o.Since != "" {
		d, err := parseAge(o.Since)
		if err != nil {
			return &usageError{err: fmt.Errorf("--since: %w", err)}
		}
		opts.Since = now.Add(-d)
	}
	if o.KeyFile != "" {
		if !o.Anonymize {
			return &usageError{err: fmt.Errorf("--anonymize-key-file needs --anonymize")}
		}
		raw, err := os.ReadFile(o.KeyFile)
		if err != nil {
			return err
		}
		key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil || len(key) < 16 {
			return &usageError{err: fmt.Errorf("--anonymize-key-file: want at least 16 hex-encoded bytes")}
		}
		opts.Key = key
	}
	st, err := openRecordStore(ctx, so.Store, so.Schema)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := conformance.Export(ctx, st, opts)
	if err != nil {
		return err
	}
	if o.Output == "-" {
		bw := bufio.NewWriter(stdout)
		if err := conformance.WriteSessions(bw, c); err != nil {
			return err
		}
		return bw.Flush()
	}
	var b strings.Builder
	if err := conformance.WriteSessions(&b, c); err != nil {
		return err
	}
	return writeFileAtomic(o.Output, []byte(b.String()))
}
