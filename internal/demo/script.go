package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	_ "time/tzdata" // the policy's time windows name zones; do not depend on the host's zoneinfo

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/runtime/server"
)

// Step is one command of the scripted agent session.
type Step struct {
	Identity string
	SQL      string
	// Expect is what the policy should do: allow, mask, deny or approve.
	Expect string
	// Why explains the step to the reader.
	Why string
}

// Script is the demo's agent session. Each step shows one policy feature of
// policies/rules.cue.
var Script = []Step{
	{"claude-coder", "SELECT count(*) AS orders, sum(amount) AS revenue FROM orders", "allow", "agents read orders (rule agents-read-orders)"},
	{"claude-coder", "SELECT id, name, email, ssn, card_number FROM customers ORDER BY id LIMIT 3", "mask", "PII columns are masked (rule mask-customer-pii)"},
	{"claude-coder", "SELECT c.name, upper(c.email) AS contact FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id = 10", "mask", "expressions over masked columns stay masked"},
	{"claude-coder", "SELECT id, note FROM orders WHERE note IS NOT NULL ORDER BY id LIMIT 2", "mask", "content classifiers catch e-mail addresses in free text"},
	{"claude-coder", "DELETE FROM orders", "deny", "unbounded writes are never allowed (rule deny-unbounded-writes)"},
	{"claude-coder", "SELECT pg_read_file('/etc/passwd')", "deny", "dangerous functions are denied (rule deny-dangerous-functions)"},
	{"claude-coder", "SELECT 1; DROP TABLE customers", "deny", "a hidden DDL statement denies the whole message"},
	{"ci-deployer", "UPDATE orders SET status = 'shipped' WHERE id = 3", "allow", "CI maintains order status (rule ci-writes-orders)"},
	{"claude-coder", "SHOW is_superuser", "allow", "the gateway's own database role is no superuser: the database's privileges stay the outer limit of every grant"},
}

// approvalStep is the step that shows a human approval. The example policy
// only lets CI migrate during business hours (Mon-Fri 07:00-19:00,
// Europe/Berlin), after a DBA's approval, and makes DBAs working outside
// those hours wait for a platform engineer. So, depending on the clock, the
// demo shows one or the other; both pause the statement until a human
// approves it.
func approvalStep(now time.Time) (Step, string) {
	if businessHours(now) {
		return Step{"ci-deployer", "ALTER TABLE orders ADD COLUMN tracking_code text", "approve",
			"migrations wait for a DBA (rule ci-migrations-need-approval); the demo approves as alice"}, "alice"
	}
	return Step{"alice", "ALTER TABLE orders ADD COLUMN tracking_code text", "approve",
		"outside business hours a DBA waits for a platform engineer (rule dba-after-hours-approval); the demo approves as carol"}, "carol"
}

// businessHours mirrors the _businessHours window of policies/rules.cue.
func businessHours(now time.Time) bool {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return false
	}
	t := now.In(loc)
	if t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		return false
	}
	return t.Hour() >= 7 && t.Hour() < 19
}

// StepResult is the outcome of one step.
type StepResult struct {
	Step
	Effect  string // allow | deny | approve (as observed)
	Rows    [][]string
	Columns []string
	Error   string
	Notices []string
}

func runScript(ctx context.Context, srv *server.Server, out io.Writer, now time.Time) ([]StepResult, error) {
	host, port, _ := net.SplitHostPort(srv.PostgresAddr().String())
	var results []StepResult
	last, approver := approvalStep(now)
	steps := append(append([]Step(nil), Script...), last)
	for _, st := range steps {
		tok, err := issueToken(srv, st.Identity, 15*time.Minute)
		if err != nil {
			return results, err
		}
		fmt.Fprintf(out, "\n  [%s] %s\n  %s> %s\n", st.Expect, st.Why, st.Identity, st.SQL)
		r := StepResult{Step: st}
		var notices []string
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s dbname=orders-db user=%s sslmode=disable", host, port, st.Identity))
		if err != nil {
			return results, err
		}
		cfg.Password = tok
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		conn, err := pgx.ConnectConfig(cctx, cfg)
		if err != nil {
			cancel()
			return results, fmt.Errorf("connect as %s: %w", st.Identity, err)
		}
		approved := make(chan error, 1)
		if st.Expect == "approve" {
			go func() {
				id, err := approveAs(cctx, srv, approver, "reviewed the migration: additive column, no lock risk")
				if err == nil {
					fmt.Fprintf(out, "  (%s approved %s)\n", approver, id)
				}
				approved <- err
			}()
		}
		r.Columns, r.Rows, err = query(cctx, conn, st.SQL)
		r.Notices = notices
		var pe *pgconn.PgError
		switch {
		case err == nil && st.Expect == "approve":
			r.Effect = "approve"
		case err == nil:
			r.Effect = "allow"
		case errors.As(err, &pe) && pe.Code == "42501":
			r.Effect, r.Error = "deny", pe.Message
		default:
			r.Effect, r.Error = "error", err.Error()
		}
		if st.Expect == "approve" {
			if aerr := <-approved; aerr != nil {
				r.Error = "approval: " + aerr.Error()
			}
		}
		conn.Close(cctx)
		cancel()
		for _, n := range r.Notices {
			fmt.Fprintf(out, "  NOTICE: %s\n", n)
		}
		if r.Error != "" {
			fmt.Fprintf(out, "  ERROR: %s\n", r.Error)
		} else {
			printRows(out, r.Columns, r.Rows)
		}
		results = append(results, r)
	}
	return results, nil
}

func query(ctx context.Context, conn *pgx.Conn, sql string) ([]string, [][]string, error) {
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	var out [][]string
	for rows.Next() {
		// Simple protocol: every value arrives as text.
		vals := rows.RawValues()
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = string(v)
			}
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

func printRows(out io.Writer, cols []string, rows [][]string) {
	if len(cols) == 0 {
		fmt.Fprintln(out, "  OK")
		return
	}
	fmt.Fprintf(out, "  %s\n", strings.Join(cols, " | "))
	for _, r := range rows {
		fmt.Fprintf(out, "  %s\n", strings.Join(r, " | "))
	}
}
