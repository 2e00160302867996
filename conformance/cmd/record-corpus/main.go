// Command record-corpus records the starting conformance corpus: it runs the
// demo (the real gateway in front of a throwaway PostgreSQL cluster, with
// the scripted agent session), then more realistic agent workloads through
// a second gateway on the same recording store, and exports every session
// in the gatehouse.sessions/v1 format.
//
//	go run ./conformance/cmd/record-corpus -o conformance/sessions/demo.jsonl
//
// It needs the PostgreSQL server binaries (initdb, postgres) installed; run
// it from the repository root. Time-window rules make the recorded
// decisions depend on when it runs; replay uses the recorded times, so the
// corpus stays valid.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/conformance"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
	"github.com/gatehouse/gatehouse/runtime/server"
)

// workload is one agent connection: an identity and its statements, sent
// one message at a time with the simple query protocol.
type workload struct {
	identity string
	// approver, when set, approves every approval the workload waits for.
	approver string
	stmts    []string
}

// workloads are what agents, CI and people typically do besides the demo
// script: explore the schema, read with joins, use prepared statements and
// cursors, run a migration that needs approval, and try things the policy
// blocks (mass deletes, COPY, DDL).
var workloads = []workload{
	{identity: "claude-coder", stmts: []string{
		"SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
		"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position",
		"SELECT c.relname, c.reltuples FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
		"SELECT count(*) FROM customers",
		"SELECT id, customer_id, amount, status FROM orders ORDER BY id LIMIT 10",
		"SELECT status, count(*), sum(amount) FROM orders GROUP BY status ORDER BY status",
	}},
	{identity: "copilot-agent", stmts: []string{
		"SELECT c.name, count(o.id) AS orders, sum(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY total DESC",
		"SELECT o.id, o.status, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'paid' ORDER BY o.id LIMIT 5",
		"BEGIN",
		"SELECT id, amount FROM orders WHERE customer_id = 2 ORDER BY id",
		"COMMIT",
		"PREPARE recent(int) AS SELECT id, amount, status FROM orders WHERE customer_id = $1 ORDER BY id DESC LIMIT 3",
		"EXECUTE recent(2)",
		"EXECUTE recent(4)",
		"DEALLOCATE recent",
		"BEGIN",
		"DECLARE big CURSOR FOR SELECT id, note FROM orders ORDER BY id",
		"FETCH 5 FROM big",
		"CLOSE big",
		"COMMIT",
		"SHOW search_path",
	}},
	{identity: "claude-coder", stmts: []string{
		"COPY customers TO STDOUT",
		"COPY (SELECT id, email FROM customers) TO STDOUT WITH (FORMAT csv)",
		"TRUNCATE orders",
		"CREATE TABLE scratch (id int)",
		"UPDATE orders SET status = 'paid' WHERE id = 7",
		"SELECT usename, passwd FROM pg_catalog.pg_shadow",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'",
		"SELEC id FROM orders",
	}},
	{identity: "ci-deployer", approver: "bob", stmts: []string{
		"SELECT id, status FROM orders WHERE status = 'paid' ORDER BY id",
		"UPDATE orders SET status = 'delivered' WHERE id = 5",
		"UPDATE public.orders SET status = 'shipped' WHERE status = 'paid' AND id < 20",
		"CREATE INDEX orders_status_idx ON public.orders (status)",
		"DELETE FROM orders",
		"UPDATE orders SET status = 'cancelled'",
		"DELETE FROM orders WHERE id = 40",
		"SELECT name FROM customers",
	}},
	{identity: "erin", stmts: []string{
		"SELECT id, amount, status FROM orders ORDER BY created_at DESC LIMIT 20",
		"SELECT id, customer_id, amount FROM orders WHERE amount > 100 ORDER BY amount DESC",
		"SELECT * FROM customers",
		"SELECT note FROM orders",
	}},
	{identity: "alice", stmts: []string{
		"SELECT count(*) FROM customers",
		"VACUUM ANALYZE orders",
		"DELETE FROM customers",
		"SELECT pg_read_file('postgresql.conf')",
	}},
	{identity: "carol", stmts: []string{
		"SELECT 1",
	}},
}

func main() {
	out := flag.String("o", filepath.Join("conformance", "sessions", "demo.jsonl"), "file to write")
	policyDir := flag.String("policies", "policies", "policy directory")
	flag.Parse()
	if err := run(*out, *policyDir); err != nil {
		fmt.Fprintln(os.Stderr, "record-corpus:", err)
		os.Exit(1)
	}
}

func run(out, policyDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	state, err := os.MkdirTemp("", "gatehouse-corpus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	logger := slog.New(slog.DiscardHandler)

	fmt.Fprintln(os.Stderr, "==> demo script")
	if _, err := demo.Run(ctx, demo.Options{PolicyDir: policyDir, StateDir: state,
		PostgresListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Logger: logger}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	fmt.Fprintln(os.Stderr, "==> agent workloads")
	if err := runWorkloads(ctx, state, logger); err != nil {
		return err
	}

	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(state, "gatehouse.db")})
	if err != nil {
		return err
	}
	defer store.Close()
	c, err := conformance.Export(ctx, store, conformance.ExportOptions{Source: "record-corpus (demo and agent workloads)", Now: time.Now()})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := conformance.WriteSessions(f, c); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d sessions, %d statements\n", out, len(c.Sessions), c.Statements())
	return nil
}

// runWorkloads starts a second gateway on the demo's state directory (its
// signed bundle, key and recording store) in front of a fresh cluster.
func runWorkloads(ctx context.Context, state string, logger *slog.Logger) error {
	cluster, err := demo.StartCluster(ctx, func(string) {})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	if err := loadSample(ctx, cluster); err != nil {
		return err
	}
	const credEnv = "GATEHOUSE_CORPUS_PG_PASSWORD"
	os.Setenv(credEnv, cluster.Password)
	cfg := server.Defaults()
	cfg.StateDir = state
	cfg.Bundle.Source = filepath.Join(state, "demo.bundle.json")
	cfg.Bundle.Keys = []string{filepath.Join(state, "demo-signing.pub")}
	cfg.Bundle.PollInterval = time.Hour
	cfg.Postgres.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Recording.Store = "sqlite:" + filepath.Join(state, "gatehouse.db")
	cfg.Resources = map[string]server.ResourceConfig{
		"orders-db": {Address: cluster.Address(), Database: "orders", User: cluster.User, Credential: "env:" + credEnv},
	}
	cfg.ShutdownGrace = 2 * time.Second
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Listen(); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	for !srv.Activator().Ready() {
		select {
		case err := <-done:
			return fmt.Errorf("gateway stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, w := range workloads {
		if err := runWorkload(ctx, srv, w); err != nil {
			return fmt.Errorf("workload of %s: %w", w.identity, err)
		}
	}
	// Let the recorder persist the ends of the sessions.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		list, err := srv.Store().ListSessions(ctx, record.SessionFilter{Limit: 1000})
		if err == nil {
			open := 0
			for _, s := range list {
				if s.EndedAt.IsZero() {
					open++
				}
			}
			if open == 0 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func loadSample(ctx context.Context, c *demo.Cluster) error {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE orders"); err != nil {
		conn.Close(ctx)
		return err
	}
	conn.Close(ctx)
	conn, err = pgx.Connect(ctx, c.DSN("orders"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, demo.SampleSQL)
	return err
}

func runWorkload(ctx context.Context, srv *server.Server, w workload) error {
	tok, err := issueToken(srv, w.identity)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(srv.PostgresAddr().String())
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s dbname=orders-db user=%s sslmode=disable", host, port, w.identity))
	if err != nil {
		return err
	}
	cfg.Password = tok
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(cctx)
	if w.approver != "" {
		go approveAll(cctx, srv, w.approver)
	}
	for _, sql := range w.stmts {
		// The raw simple protocol: the text goes to the gateway as written
		// ($1 in PREPARE included).
		_, err := conn.PgConn().Exec(cctx, sql).ReadAll()
		status := "ok"
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe):
			status = pe.Code + " " + pe.Message
		case err != nil:
			return fmt.Errorf("%q: %w", sql, err)
		}
		fmt.Fprintf(os.Stderr, "    %-14s %-60.60s %s\n", w.identity, strings.Join(strings.Fields(sql), " "), status)
	}
	return nil
}

func issueToken(srv *server.Server, name string) (string, error) {
	for _, id := range srv.Activator().Engine().Bundle().Policy.Identities {
		if id.Name == name {
			return srv.DevIssuer().Issue(id, 15*time.Minute)
		}
	}
	return "", fmt.Errorf("no identity %q", name)
}

// approveAll approves pending approvals as who until ctx is done.
func approveAll(ctx context.Context, srv *server.Server, who string) {
	var groups []string
	for _, id := range srv.Activator().Engine().Bundle().Policy.Identities {
		if id.Name == who {
			groups = id.Groups
		}
	}
	for {
		list, err := srv.Approvals().List(ctx, record.StatusPending)
		if err == nil {
			for _, a := range list {
				_, _ = srv.Approvals().Vote(ctx, a.ID, approval.Approver{Name: who, Groups: groups}, record.DecisionApprove, "reviewed: additive index, no lock risk")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
