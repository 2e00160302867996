package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/server"
)

// Options configures a demo run.
type Options struct {
	// PolicyDir holds the policies (default "policies").
	PolicyDir string
	// StateDir holds keys, bundles and the SQLite store (default
	// ".gatehouse/demo"). It is reused across runs so that `gatehouse token
	// issue --state-dir` mints tokens the running demo accepts.
	StateDir string
	// PostgresListen and AdminListen are the gateway's addresses (defaults
	// 127.0.0.1:6543 and 127.0.0.1:8081; use port 0 in tests).
	PostgresListen, AdminListen string
	// Interactive keeps the gateway running after the script until ctx is
	// done, printing a psql command line to try.
	Interactive bool
	Out         io.Writer
	// Logger receives the gateway's logs (default: discarded).
	Logger *slog.Logger
	// Clock is the gateway's time (default time.Now). The example
	// policies' grants expire and the approval step depends on the hour, so
	// tests set a clock that starts at a fixed instant.
	Clock func() time.Time
}

func (o *Options) defaults() {
	if o.PolicyDir == "" {
		o.PolicyDir = "policies"
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(".gatehouse", "demo")
	}
	if o.PostgresListen == "" {
		o.PostgresListen = "127.0.0.1:6543"
	}
	if o.AdminListen == "" {
		o.AdminListen = "127.0.0.1:8081"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

// credentialEnv carries the backend password to the gateway, which reads it
// through the credential reference "env:GATEHOUSE_DEMO_PG_PASSWORD", as a
// production configuration would.
const credentialEnv = "GATEHOUSE_DEMO_PG_PASSWORD"

// Result is what a demo run did, for tests.
type Result struct {
	Steps    []StepResult
	Sessions []record.Session
	Events   []record.Event
	// BackendPassword is the throwaway cluster's password, so tests can
	// check it appears in no output.
	BackendPassword string
	StateDir        string
}

// Run executes the demo. It returns after the scripted session, or, when
// Interactive, when ctx is done.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	out := o.Out
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	say("==> Starting a throwaway PostgreSQL cluster")
	cluster, err := StartCluster(ctx, func(s string) {})
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	say("    listening on %s (SCRAM authentication; the gateway alone holds the password)", cluster.Address())
	appPassword, err := loadSample(ctx, cluster)
	if err != nil {
		return nil, err
	}
	say("    loaded sample data: 5 customers with e-mail, SSN and card numbers; 40 orders")
	say("    the gateway logs in as %s, which owns the orders database and is not a superuser", AppRole)

	say("==> Compiling and signing %s with a throwaway key", o.PolicyDir)
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	bundlePath, pubPath, b, err := buildAndSign(o.PolicyDir, o.StateDir, o.Clock())
	if err != nil {
		return nil, err
	}
	say("    bundle %s: revision %s, serial %d, %d rules, signed with %s",
		bundlePath, short(b.Manifest.Revision), b.Manifest.Serial, len(b.Policy.Rules), pubPath)

	os.Setenv(credentialEnv, appPassword)
	cfg := server.Defaults()
	cfg.StateDir = o.StateDir
	cfg.Bundle.Source = bundlePath
	cfg.Bundle.Keys = []string{pubPath}
	cfg.Bundle.PollInterval = 2 * time.Second
	cfg.Postgres.Listen = o.PostgresListen
	cfg.Admin.Listen = o.AdminListen
	cfg.Recording.Store = "sqlite:" + filepath.Join(o.StateDir, "gatehouse.db")
	cfg.Resources = map[string]server.ResourceConfig{
		"orders-db": {Address: cluster.Address(), Database: "orders", User: AppRole, Credential: "env:" + credentialEnv},
	}
	cfg.ShutdownGrace = 2 * time.Second

	say("==> Starting the gateway (SQLite recording store, development token issuer)")
	srv, err := server.New(ctx, cfg, o.Logger, server.WithClock(o.Clock))
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	if err := waitReady(ctx, srv, done); err != nil {
		return nil, err
	}
	say("    PostgreSQL listener %s, admin API http://%s", srv.PostgresAddr(), srv.AdminAddr())

	res := &Result{BackendPassword: appPassword, StateDir: o.StateDir}
	started := o.Clock().Add(-time.Second)
	say("==> Running a scripted agent session")
	res.Steps, err = runScript(ctx, srv, out, o.Clock())
	if err != nil {
		return res, err
	}

	// Give the recorder a moment to flush, then show what was recorded.
	if err := waitRecorded(ctx, srv, started, len(res.Steps)); err != nil {
		return res, err
	}
	res.Sessions, res.Events, err = printRecording(ctx, srv, started, out)
	if err != nil {
		return res, err
	}

	if o.Interactive {
		tok, err := issueToken(srv, "claude-coder", 15*time.Minute)
		if err != nil {
			return res, err
		}
		host, port, _ := net.SplitHostPort(srv.PostgresAddr().String())
		say("")
		say("==> The gateway keeps running. Try it as the agent claude-coder (token valid 15 minutes):")
		say("")
		say("    PGPASSWORD='%s' \\", tok)
		say("      psql \"host=%s port=%s dbname=orders-db user=claude-coder sslmode=disable\"", host, port)
		say("")
		say("    Other identities: gatehouse token issue --identity copilot-agent --state-dir %s", o.StateDir)
		say("    Sessions:         gatehouse sessions list --store sqlite:%s", filepath.Join(o.StateDir, "gatehouse.db"))
		say("    Press Ctrl-C to stop.")
		select {
		case <-ctx.Done():
		case err := <-done:
			return res, err
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	return res, nil
}

// AppRole is the role the demo's gateway logs in as: it owns the orders
// database and holds no other privilege (not a superuser), so the backend's
// own limits stay the outer bound of anything the policy allows.
const AppRole = "gatehouse_orders"

// loadSample creates the application role and the orders database it
// owns, and loads the sample data as that role. It returns the role's
// password.
func loadSample(ctx context.Context, c *Cluster) (string, error) {
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return "", err
	}
	password := hex.EncodeToString(pw)
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to the demo cluster: %w", errors.Unwrap(err))
	}
	for _, q := range []string{
		"CREATE ROLE " + AppRole + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '" + password + "'",
		"CREATE DATABASE orders OWNER " + AppRole,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			conn.Close(ctx)
			return "", fmt.Errorf("create the application role and database: %w", err)
		}
	}
	conn.Close(ctx)
	conn, err = pgx.Connect(ctx, c.DSN("orders"))
	if err != nil {
		return "", fmt.Errorf("connect to the demo cluster: %w", errors.Unwrap(err))
	}
	defer conn.Close(ctx)
	// The role owns the schema it works in; nobody else may create there.
	for _, q := range []string{"ALTER SCHEMA public OWNER TO " + AppRole, "REVOKE ALL ON SCHEMA public FROM PUBLIC", "SET ROLE " + AppRole, SampleSQL} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("load sample data: %w", err)
		}
	}
	return password, nil
}

// buildAndSign compiles the policies and signs the bundle with a key made
// for this run. The demo stamps the validity window from the clock (a
// production build takes it from the commit).
func buildAndSign(policyDir, stateDir string, now time.Time) (bundlePath, pubPath string, b *bundle.Bundle, err error) {
	src, err := compiler.LoadDir(policyDir)
	if err != nil {
		return "", "", nil, err
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		return "", "", nil, err
	}
	b = res.Bundle
	now = now.UTC().Truncate(time.Second)
	b.Manifest.Serial = uint64(now.UnixNano() / 1000)
	b.Manifest.NotBefore = now.Add(-time.Minute)
	b.Manifest.Expires = now.Add(24 * time.Hour)
	raw, err := bundle.Encode(b)
	if err != nil {
		return "", "", nil, err
	}
	privPEM, pubPEM, err := bundle.GenerateKey(bundle.KeyTypeEd25519, nil)
	if err != nil {
		return "", "", nil, err
	}
	key, err := bundle.LoadPrivateKey(privPEM, nil)
	if err != nil {
		return "", "", nil, err
	}
	signed, err := bundle.Sign(raw, key)
	if err != nil {
		return "", "", nil, err
	}
	pubPath = filepath.Join(stateDir, "demo-signing.pub")
	bundlePath = filepath.Join(stateDir, "demo.bundle.json")
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		return "", "", nil, err
	}
	// A previous run may have left a bundle with a higher serial persisted;
	// the serial comes from the clock, so it only grows.
	if err := os.WriteFile(bundlePath, signed, 0o644); err != nil {
		return "", "", nil, err
	}
	return bundlePath, pubPath, b, nil
}

func waitReady(ctx context.Context, srv *server.Server, done <-chan error) error {
	deadline := time.After(30 * time.Second)
	for !srv.Activator().Ready() {
		select {
		case err := <-done:
			return fmt.Errorf("gateway stopped: %w", err)
		case <-deadline:
			return errors.New("gateway did not activate the bundle within 30s: " + srv.Activator().Status().LastRejection)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func issueToken(srv *server.Server, identity string, ttl time.Duration) (string, error) {
	eng := srv.Activator().Engine()
	if eng == nil || srv.DevIssuer() == nil {
		return "", errors.New("no bundle or no development issuer")
	}
	for _, id := range eng.Bundle().Policy.Identities {
		if id.Name == identity {
			return srv.DevIssuer().Issue(id, ttl)
		}
	}
	return "", fmt.Errorf("no identity %q in the policy", identity)
}

func principalGroups(srv *server.Server, identity string) []string {
	for _, id := range srv.Activator().Engine().Bundle().Policy.Identities {
		if id.Name == identity {
			return id.Groups
		}
	}
	return nil
}

// approveAs votes on the first pending approval as a human of the policy.
func approveAs(ctx context.Context, srv *server.Server, who, reason string) (string, error) {
	for {
		list, err := srv.Approvals().List(ctx, record.StatusPending)
		if err != nil {
			return "", err
		}
		if len(list) > 0 {
			a := list[0]
			_, err := srv.Approvals().Vote(ctx, a.ID, approval.Approver{Name: who, Groups: principalGroups(srv, who)}, record.DecisionApprove, reason)
			return a.ID, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitRecorded waits until the recorder has persisted the end of every
// scripted session (one connection per step).
func waitRecorded(ctx context.Context, srv *server.Server, since time.Time, sessions int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		list, err := srv.Store().ListSessions(ctx, record.SessionFilter{Since: since, Limit: 1000})
		if err == nil {
			ended := 0
			for _, s := range list {
				if !s.EndedAt.IsZero() {
					ended++
				}
			}
			if ended >= sessions {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the recorder did not persist the session's events within 10s")
}

func printRecording(ctx context.Context, srv *server.Server, since time.Time, out io.Writer) ([]record.Session, []record.Event, error) {
	sessions, err := srv.Store().ListSessions(ctx, record.SessionFilter{Since: since, Limit: 100})
	if err != nil {
		return nil, nil, err
	}
	var all []record.Event
	fmt.Fprintln(out, "==> Recorded (SQLite store), oldest first:")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    IDENTITY\tEFFECT\tRULES\tROWS\tMASKED\tCOMMAND")
	for i := len(sessions) - 1; i >= 0; i-- {
		s := sessions[i]
		evs, err := srv.Store().Events(ctx, s.ID)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, evs...)
		for _, e := range evs {
			if e.Kind != record.KindCommand {
				continue
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%d\t%v\t%s\n", s.Identity, e.Effect, strings.Join(e.RuleIDs, ","), e.Rows, e.Masked, clip(e.Command, 60))
		}
	}
	tw.Flush()
	for _, s := range sessions {
		if _, err := record.Verify(ctx, srv.Store(), s.ID); err != nil {
			return sessions, all, fmt.Errorf("verify session %s: %w", s.ID, err)
		}
	}
	fmt.Fprintf(out, "    %d sessions, hash chains verified\n", len(sessions))
	return sessions, all, nil
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func short(rev string) string {
	if len(rev) > 20 {
		return rev[:20]
	}
	return rev
}
