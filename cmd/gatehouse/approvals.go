package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/runtime/record"
)

// approvalsOptions are shared by the approvals subcommands: they talk to a
// gateway's admin API with the caller's own token.
type approvalsOptions struct {
	server string
	token  string
	json   bool
}

func (o *approvalsOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.server, "server", envOr("GATEHOUSE_SERVER", "http://127.0.0.1:8081"), "admin API base URL (env GATEHOUSE_SERVER)")
	fs.StringVar(&o.token, "token", "", "your OIDC token (default: env GATEHOUSE_TOKEN)")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (o *approvalsOptions) bearer() (string, error) {
	tok := o.token
	if tok == "" {
		tok = os.Getenv("GATEHOUSE_TOKEN")
	}
	if tok == "" {
		return "", &usageError{err: errors.New("no token: pass --token or set GATEHOUSE_TOKEN (development: $(gatehouse token issue --identity alice))")}
	}
	return tok, nil
}

func newApprovalsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List and resolve pending approvals through a gateway's admin API",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newApprovalsListCmd(), newApprovalsVoteCmd("approve"), newApprovalsVoteCmd("deny"))
	return cmd
}

func newApprovalsListCmd() *cobra.Command {
	o := &approvalsOptions{}
	var status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List approvals (pending by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := o.bearer()
			if err != nil {
				return err
			}
			var body struct{ Approvals []record.Approval }
			raw, err := adminCall(cmd.Context(), http.MethodGet, o.server+"/api/v1/approvals?status="+status, tok, nil, &body)
			if err != nil {
				return err
			}
			if o.json {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tIDENTITY\tRESOURCE\tRULE\tAPPROVERS\tEXPIRES\tCOMMAND")
			for _, a := range body.Approvals {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d of %s (%d voted)\t%s\t%s\n", a.ID, a.Status, a.Identity, a.Resource, a.RuleID,
					a.Count, a.Group, len(a.Votes), a.ExpiresAt.Local().Format(time.TimeOnly), oneLine(a.Command, 60))
			}
			return tw.Flush()
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&status, "status", "pending", "pending, approved, denied, expired, or empty for all")
	return cmd
}

func newApprovalsVoteCmd(decision string) *cobra.Command {
	o := &approvalsOptions{}
	var reason string
	cmd := &cobra.Command{
		Use:   decision + " ID --reason TEXT",
		Short: strings.ToUpper(decision[:1]) + decision[1:] + " a pending approval (you must be in its approver group)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return &usageError{err: errors.New("--reason is required: it is recorded with your vote")}
			}
			tok, err := o.bearer()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"reason": reason})
			var a record.Approval
			if _, err := adminCall(cmd.Context(), http.MethodPost, o.server+"/api/v1/approvals/"+args[0]+"/"+decision, tok, body, &a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approval %s is now %s (%d vote(s) of %d needed)\n", a.ID, a.Status, len(a.Votes), a.Count)
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	return cmd
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &usageError{err: err}
		}
		return nil
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// adminCall performs one admin API request and decodes the JSON answer.
func adminCall(ctx context.Context, method, url, token string, body []byte, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, &usageError{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return raw, fmt.Errorf("admin API: %s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return raw, fmt.Errorf("admin API: HTTP %d", resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("admin API: decode answer: %w", err)
		}
	}
	return raw, nil
}
