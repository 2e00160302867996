package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
	All   bool
	Since string
}

func newSessionsVerifyCmd(so *sessionsOptions) *cobra.Command {
	o := &sessionsVerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [ID | --all [--since 30d]]",
		Short: "Recompute hash chains; exit non-zero naming the session and seq that broke",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == o.All {
				return &usageError{err: errors.New("give a session ID or --all")}
			}
			if len(args) == 1 && o.Since != "" {
				return &usageError{err: errors.New("--since only applies with --all")}
			}
			var f record.SessionFilter
			if o.Since != "" {
				d, err := parseAge(o.Since)
				if err != nil {
					return &usageError{err: fmt.Errorf("--since: %w", err)}
				}
				f.Since = time.Now().Add(-d)
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return runSessionsVerify(cmd.Context(), cmd.OutOrStdout(), so, id, f)
		},
	}
	cmd.Flags().BoolVar(&o.All, "all", false, "verify every session (started within --since)")
	cmd.Flags().StringVar(&o.Since, "since", "", "with --all: only sessions started within this period (e.g. 30d)")
	return cmd
}

// errChainsBroken is returned when at least one chain does not verify.
var errChainsBroken = errors.New("hash chain verification failed")

func runSessionsVerify(ctx context.Context, out io.Writer, so *sessionsOptions, id string, f record.SessionFilter) error {
	if id != "" && !record.ValidID(id) {
		return &usageError{err: fmt.Errorf("invalid session id %q", id)}
	}
	st, err := openRecordStore(ctx, so.Store, so.Schema)
	if err != nil {
		return err
	}
	defer st.Close()
	var results []record.VerifyResult
	if id != "" {
		res, err := record.Verify(ctx, st, id)
		if err != nil {
			return err
		}
		results = append(results, res)
	} else {
		results, err = record.VerifyAll(ctx, st, f)
		if err != nil {
			return err
		}
	}
	broken := 0
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(out, "ok      %s  %d events\n", r.SessionID, r.Events)
			continue
		}
		broken++
		fmt.Fprintf(out, "BROKEN  %s\n", r.Err())
	}
	fmt.Fprintf(out, "%d sessions verified, %d broken\n", len(results), broken)
	if broken > 0 {
		return withCode(exitVerify, fmt.Errorf("%w: %d of %d sessions", errChainsBroken, broken, len(results)))
	}
	return nil
}
