package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/identity"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue development tokens and inspect tokens",
		Args:  noArgs,
	}
	cmd.AddCommand(newTokenIssueCmd(), newTokenInspectCmd())
	return cmd
}

type tokenIssueOptions struct {
	Identity  string
	TTL       time.Duration
	PolicyDir string
	StateDir  string
	IssuerURL string
	Audience  string
	Algorithm string
	// Without --identity: the claims are given directly.
	Subject string
	Issuer  string
	Email   string
	Claims  []string
}

func (o *tokenIssueOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Identity, "identity", "", "policy identity to issue a token for (its match decides iss, sub, email and claims)")
	fs.DurationVar(&o.TTL, "ttl", 15*time.Minute, "token lifetime")
	fs.StringVar(&o.PolicyDir, "policy-dir", "policies", "policy directory, read with --identity")
	fs.StringVar(&o.StateDir, "state-dir", ".gatehouse", "state directory; the development issuer key lives in STATE_DIR/dev-issuer")
	fs.StringVar(&o.IssuerURL, "issuer-url", identity.DefaultDevIssuerURL, "URL of the development issuer")
	fs.StringVar(&o.Audience, "audience", "", "token audience (default: the policy's audience, or \""+identity.DefaultAudience+"\")")
	fs.StringVar(&o.Algorithm, "algorithm", "ES256", "algorithm of a newly created issuer key: ES256 or EdDSA")
	fs.StringVar(&o.Subject, "subject", "", "sub claim, without --identity")
	fs.StringVar(&o.Issuer, "issuer", "", "iss claim, without --identity (default: the development issuer URL)")
	fs.StringVar(&o.Email, "email", "", "email claim, without --identity")
	fs.StringArrayVar(&o.Claims, "claim", nil, "extra claim NAME=VALUE (repeatable), without --identity")
}

func newTokenIssueCmd() *cobra.Command {
	o := &tokenIssueOptions{}
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue a token from the built-in development issuer",
		Long: `Issue a signed token from the built-in development issuer. With --identity the
policy is compiled and the token carries exactly the issuer, subject, email and
claims the identity's match requires, so the gateway maps it to that identity.
Without --identity, give --subject (and optionally --issuer, --email, --claim).

The development issuer can mint any identity: use it for development only.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenIssue(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runTokenIssue(_ context.Context, stdout io.Writer, o *tokenIssueOptions) error {
	if (o.Identity == "") == (o.Subject == "") {
		return &usageError{err: errors.New("give either --identity or --subject")}
	}
	if o.Identity != "" && (o.Issuer != "" || o.Email != "" || len(o.Claims) > 0) {
		return &usageError{err: errors.New("--issuer, --email and --claim only apply with --subject")}
	}
	if o.StateDir == "" {
		return &usageError{err: errors.New("--state-dir must not be empty")}
	}
	audience := o.Audience
	var id *bundle.Identity
	if o.Identity != "" {
		pol, err := loadPolicy(o.PolicyDir)
		if err != nil {
			return err
		}
		for i := range pol.Identities {
			if pol.Identities[i].Name == o.Identity {
				id = &pol.Identities[i]
			}
		}
		if id == nil {
			names := make([]string, len(pol.Identities))
			for i, x := range pol.Identities {
				names[i] = x.Name
			}
			return &usageError{err: fmt.Errorf("identity %q is not in the policy (known: %s)", o.Identity, strings.Join(names, ", "))}
		}
		if audience == "" {
			audience = pol.Settings.Audience
		}
	}
	dev, err := identity.OpenDevIssuer(identity.DevIssuerConfig{
		Dir:       filepath.Join(o.StateDir, "dev-issuer"),
		Issuer:    o.IssuerURL,
		Algorithm: o.Algorithm,
		Audience:  audience,
	})
	if err != nil {
		return fmt.Errorf("token issue: %w", err)
	}
	var tok string
	if id != nil {
		tok, err = dev.Issue(*id, o.TTL)
	} else {
		req := identity.TokenRequest{Issuer: o.Issuer, Subject: o.Subject, Email: o.Email, TTL: o.TTL}
		if len(o.Claims) > 0 {
			req.Claims = make(map[string]any, len(o.Claims))
			for _, kv := range o.Claims {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &usageError{err: fmt.Errorf("--claim %q: want NAME=VALUE", kv)}
				}
				req.Claims[k] = v
			}
		}
		tok, err = dev.IssueToken(req)
	}
	if err != nil {
		return fmt.Errorf("token issue: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// loadPolicy compiles the policy directory and returns its policy.
func loadPolicy(dir string) (*bundle.Policy, error) {
	src, err := compiler.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		if errors.Is(err, compiler.ErrInvalidPolicy) {
			return nil, withCode(exitInvalidPolicy, err)
		}
		return nil, err
	}
	return &res.Bundle.Policy, nil
}

func newTokenInspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect TOKEN",
		Short: "Decode a token's header and claims WITHOUT verifying it",
		Long: `Decode a token's header and claims without checking its signature, issuer,
audience or lifetime. The output is marked "verified": false: nothing in it can
be trusted. Pass "-" to read the token from standard input.`,
		Args: oneArg("TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenInspect(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0])
		},
	}
	return cmd
}

func runTokenInspect(stdin io.Reader, stdout, stderr io.Writer, tok string) error {
	if tok == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, identity.MaxTokenSize+2))
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		tok = strings.TrimSpace(string(data))
	}
	alg, kid, c, err := identity.ParseUnverified(tok)
	if err != nil {
		return fmt.Errorf("token inspect: %w", err)
	}
	out := struct {
		Verified bool           `json:"verified"`
		Notice   string         `json:"notice"`
		Header   map[string]any `json:"header"`
		Claims   map[string]any `json:"claims"`
		Times    map[string]any `json:"times,omitempty"`
	}{
		Verified: false,
		Notice:   "UNVERIFIED: signature, issuer, audience and lifetime were not checked",
		Header:   map[string]any{"alg": alg},
		Claims:   c.Raw,
	}
	if kid != "" {
		out.Header["kid"] = kid
	}
	times := map[string]any{}
	for name, t := range map[string]time.Time{"exp": c.ExpiresAt, "iat": c.IssuedAt, "nbf": c.NotBefore} {
		if !t.IsZero() {
			times[name] = t.UTC().Format(time.RFC3339)
		}
	}
	if len(times) > 0 {
		out.Times = times
	}
	fmt.Fprintln(stderr, "warning: token claims shown UNVERIFIED")
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
