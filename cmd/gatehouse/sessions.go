package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/postgres"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

const defaultStore = "sqlite:.gatehouse/gatehouse.db"

type sessionsOptions struct {
	Store  string
	Schema string
}

func (o *sessionsOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Store, "store", defaultStore, "recording store: sqlite:PATH or postgres://...")
	fs.StringVar(&o.Schema, "schema", postgres.DefaultSchema, "schema of a PostgreSQL store")
}

func newSessionsCmd() *cobra.Command {
	o := &sessionsOptions{}
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List, show and verify recorded sessions",
		Args:  noArgs,
	}
	o.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newSessionsListCmd(o), newSessionsShowCmd(o), newSessionsVerifyCmd(o), newSessionsExportCmd(o))
	return cmd
}

// openRecordStore opens the store named by location without creating a
// missing SQLite database.
func openRecordStore(ctx context.Context, location, schema string) (record.Backend, error) {
	switch {
	case strings.HasPrefix(location, "sqlite:"):
		path := strings.TrimPrefix(location, "sqlite:")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no recording database at %s: %w", path, err)
		}
		return sqlite.Open(ctx, sqlite.Config{Path: path})
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		return postgres.Open(ctx, postgres.Config{DSN: location, Schema: schema})
	default:
		return nil, &usageError{err: fmt.Errorf("--store %q: want sqlite:PATH or a postgres:// URL", location)}
	}
}

// parseAge parses a duration that may also use days ("30d").
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return dur, nil
}

type sessionsListOptions struct {
	Identity string
	Resource string
	Since    string
	Limit    int
	Offset   int
}

func (o *sessionsListOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Identity, "identity", "", "only sessions of this identity")
	fs.StringVar(&o.Resource, "resource", "", "only sessions on this resource")
	fs.StringVar(&o.Since, "since", "", "only sessions started within this period (e.g. 24h, 30d)")
	fs.IntVar(&o.Limit, "limit", 100, "maximum number of sessions")
	fs.IntVar(&o.Offset, "offset", 0, "skip this many sessions")
}

func newSessionsListCmd(so *sessionsOptions) *cobra.Command {
	o := &sessionsListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recorded sessions, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := record.SessionFilter{Identity: o.Identity, Resource: o.Resource, Limit: o.Limit, Offset: o.Offset}
			if o.Since != "" {
				d, err := parseAge(o.Since)
				if err != nil {
					return &usageError{err: fmt.Errorf("--since: %w", err)}
				}
				f.Since = time.Now().Add(-d)
			}
			return runSessionsList(cmd.Context(), cmd.OutOrStdout(), so, f)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runSessionsList(ctx context.Context, out io.Writer, so *sessionsOptions, f record.SessionFilter) error {
	st, err := openRecordStore(ctx, so.Store, so.Schema)
	if err != nil {
		return err
	}
	defer st.Close()
	ss, err := st.ListSessions(ctx, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tENDED\tIDENTITY\tRESOURCE\tCLIENT\tEND REASON")
	for _, s := range ss {
		ended := "open"
		if !s.EndedAt.IsZero() {
			ended = s.EndedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.StartedAt.Format(time.RFC3339), ended,
			s.Identity, s.Resource, s.ClientAddr, s.EndReason)
	}
	return tw.Flush()
}

type sessionsShowOptions struct {
	JSON bool
}

func newSessionsShowCmd(so *sessionsOptions) *cobra.Command {
	o := &sessionsShowOptions{}
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a session and its events",
		Args:  oneArg("session ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSessionsShow(cmd.Context(), cmd.OutOrStdout(), so, args[0], o.JSON)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the header and events as JSON lines")
	return cmd
}

func runSessionsShow(ctx context.Context, out io.Writer, so *sessionsOptions, id string, asJSON bool) error {
	if !record.ValidID(id) {
		return &usageError{err: fmt.Errorf("invalid session id %q", id)}
	}
	st, err := openRecordStore(ctx, so.Store, so.Schema)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.GetSession(ctx, id)
	if err != nil {
		return err
	}
	evs, err := st.Events(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		if err := enc.Encode(map[string]any{"session": s}); err != nil {
			return err
		}
		for _, e := range evs {
			if err := enc.Encode(map[string]any{"event": e}); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(out, "session   %s\nidentity  %s (%s) groups=%s\nresource  %s (%s)\nclient    %s via gateway %s\nbundle    %s\nstarted   %s\n",
		s.ID, s.Identity, s.IdentityKind, strings.Join(s.Groups, ","), s.Resource, s.ResourceType,
		s.ClientAddr, s.GatewayID, s.BundleRevision, s.StartedAt.Format(time.RFC3339Nano))
	if !s.EndedAt.IsZero() {
		fmt.Fprintf(out, "ended     %s (%s)\n", s.EndedAt.Format(time.RFC3339Nano), s.EndReason)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tEFFECT\tRULES\tROWS\tDURATION\tCOMMAND")
	for _, e := range evs {
		cmdText := e.Command
		if e.Kind == record.KindEnd || e.Kind == record.KindError {
			cmdText = strings.TrimSpace(e.Reason + " " + e.Error)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Seq, e.Time.Format("15:04:05.000000"), e.Kind,
			e.Effect, strings.Join(e.RuleIDs, ","), e.Rows, time.Duration(e.DurationMicros)*time.Microsecond,
			strconv.Quote(cmdText))
	}
	return tw.Flush()
}

type sessionsVerifyOptions struct {
	All               bool
	Since             string
	Keys              []string
	RequireSignatures bool
	Checkpoints       []string
	JSON              bool
}

func (o *sessionsVerifyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.All, "all", false, "verify every session (started within --since) and every checkpoint chain")
	fs.StringVar(&o.Since, "since", "", "with --all: only sessions started and checkpoints taken within this period (e.g. 30d)")
	fs.StringSliceVar(&o.Keys, "key", nil, "PEM file of public keys trusted to sign recordings (repeatable; a file may hold several keys, as the gateway's recording-keys.pem does)")
	fs.BoolVar(&o.RequireSignatures, "require-signatures", false, "fail for ended sessions without a valid seal (sessions recorded before signing existed)")
	fs.StringSliceVar(&o.Checkpoints, "checkpoint", nil, "with --all: a checkpoint GATEWAY:SEQ:HASH known from outside the store (log, admin API) that must be present (repeatable)")
	fs.BoolVar(&o.JSON, "json", false, "print the audit report as JSON")
}

func newSessionsVerifyCmd(so *sessionsOptions) *cobra.Command {
	o := &sessionsVerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [ID | --all [--since 30d]] [--key recording-keys.pem]...",
		Short: "Verify hash chains, the gateway's signatures and checkpoint coverage; exit non-zero naming what broke",
		Long: `Verify recorded sessions: each session's hash chain; its seal (the gateway's
signature over the head of the chain at the session's end) against the
trusted keys given with --key; and the signed checkpoints: with --all, every
gateway's chain of checkpoints without gaps, and that every session a
checkpoint names is present with at least the events it recorded.

Without --key, seals and checkpoints are checked for consistency only, which
a writer of the store can forge: pass the gateway's published keys
(STATE_DIR/recording-keys.pem or GET /api/v1/recording/keys). Sessions
recorded before signing existed verify as "unsigned"; --require-signatures
makes them fail. See docs/security-model.md for what this detects.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == o.All {
				return &usageError{err: errors.New("give a session ID or --all")}
			}
			if len(args) == 1 && (o.Since != "" || len(o.Checkpoints) > 0) {
				return &usageError{err: errors.New("--since and --checkpoint only apply with --all")}
			}
			if o.RequireSignatures && len(o.Keys) == 0 {
				return &usageError{err: errors.New("--require-signatures needs the trusted keys (--key)")}
			}
			opts := record.AuditOptions{RequireSignatures: o.RequireSignatures}
			if o.Since != "" {
				d, err := parseAge(o.Since)
				if err != nil {
					return &usageError{err: fmt.Errorf("--since: %w", err)}
				}
				opts.Since = time.Now().Add(-d)
			}
			for _, c := range o.Checkpoints {
				ref, err := record.ParseCheckpointRef(c)
				if err != nil {
					return &usageError{err: fmt.Errorf("--checkpoint: %w", err)}
				}
				opts.Anchors = append(opts.Anchors, ref)
			}
			if len(o.Keys) > 0 {
				ring, err := loadKeyRing(o.Keys)
				if err != nil {
					return &usageError{err: fmt.Errorf("--key: %w", err)}
				}
				opts.Keys = ring
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return runSessionsVerify(cmd.Context(), cmd.OutOrStdout(), so, id, opts, o.JSON)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// loadKeyRing reads the trusted recording keys from PEM files.
func loadKeyRing(paths []string) (*record.KeyRing, error) {
	var keys []crypto.PublicKey
	for _, p := range paths {
		data, err := readSmallFile(p)
		if err != nil {
			return nil, err
		}
		pubs, err := record.ParsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		keys = append(keys, pubs...)
	}
	return record.NewKeyRing(keys...)
}

// errChainsBroken is returned when verification finds any problem.
var errChainsBroken = errors.New("recording verification failed")

func runSessionsVerify(ctx context.Context, out io.Writer, so *sessionsOptions, id string, opts record.AuditOptions, asJSON bool) error {
	if id != "" && !record.ValidID(id) {
		return &usageError{err: fmt.Errorf("invalid session id %q", id)}
	}
	st, err := openRecordStore(ctx, so.Store, so.Schema)
	if err != nil {
		return err
	}
	defer st.Close()
	var rep *record.AuditReport
	if id != "" {
		rep, err = record.AuditSession(ctx, st, id, opts)
	} else {
		rep, err = record.AuditAll(ctx, st, opts)
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printAudit(out, rep)
	}
	if !rep.OK() {
		return withCode(exitVerify, fmt.Errorf("%w: %d problems", errChainsBroken, len(rep.Problems)))
	}
	return nil
}

func printAudit(out io.Writer, rep *record.AuditReport) {
	bySession := make(map[string][]record.Problem)
	var other []record.Problem
	for _, p := range rep.Problems {
		if p.SessionID != "" {
			bySession[p.SessionID] = append(bySession[p.SessionID], p)
		} else {
			other = append(other, p)
		}
	}
	broken := 0
	for _, sa := range rep.Sessions {
		id := sa.Chain.SessionID
		if ps := bySession[id]; len(ps) > 0 {
			broken++
			for _, p := range ps {
				fmt.Fprintf(out, "BROKEN  %s\n", p.Message)
			}
			delete(bySession, id)
			continue
		}
		sig := sa.Signature
		if sa.Signature == record.SigSigned {
			sig += " (key " + shortKeyID(sa.KeyID) + ")"
		}
		cov := "not checkpointed"
		if sa.Checkpointed >= 0 {
			cov = fmt.Sprintf("checkpointed to seq %d", sa.Checkpointed)
		}
		fmt.Fprintf(out, "ok      %s  %d events  %s  %s\n", id, sa.Chain.Events, sig, cov)
	}
	// Sessions that are gone: named by checkpoints only.
	for _, id := range slices.Sorted(maps.Keys(bySession)) {
		broken++
		for _, p := range bySession[id] {
			fmt.Fprintf(out, "BROKEN  %s\n", p.Message)
		}
	}
	for _, p := range other {
		fmt.Fprintf(out, "BROKEN  %s\n", p.Message)
	}
	checkpoints := 0
	for _, c := range rep.Chains {
		checkpoints += c.Checked
		if c.Checked == 0 {
			fmt.Fprintf(out, "checkpoints  %s  none in the period\n", c.GatewayID)
			continue
		}
		fmt.Fprintf(out, "checkpoints  %s  %d..%d  %d checked, %d broken  last %s  %s\n", c.GatewayID, c.First, c.Last,
			c.Checked, c.Broken, c.LastTime.Format(time.RFC3339), record.CheckpointRef{GatewayID: c.GatewayID, Seq: c.Last, Hash: c.LastHash})
	}
	if !rep.SignaturesChecked {
		fmt.Fprintln(out, "warning: no trusted keys (--key): seals and checkpoints were checked for consistency only, not for their signatures")
	}
	fmt.Fprintf(out, "%d sessions verified, %d broken; %d unsigned, %d deleted by retention; %d checkpoints in %d chains; %d problems\n",
		len(rep.Sessions)+len(bySession), broken, rep.Unsigned, rep.Retained, checkpoints, len(rep.Chains), len(rep.Problems))
}

func shortKeyID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
