package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/internal/testclock"
	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// approver answers pending approvals as carol (platform), one at a time:
// decide returns the decision for an approval's command.
type approver struct {
	g      *gateway
	decide func(cmd string) string
	mu     sync.Mutex
	seen   []record.Approval
}

func (a *approver) run(ctx context.Context, t *testing.T) {
	answered := map[string]bool{}
	for ctx.Err() == nil {
		list, err := a.g.srv.Approvals().List(ctx, record.StatusPending)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("list approvals: %v", err)
			}
			return
		}
		for _, ap := range list {
			if answered[ap.ID] {
				continue
			}
			answered[ap.ID] = true
			a.mu.Lock()
			a.seen = append(a.seen, ap)
			a.mu.Unlock()
			if _, err := a.g.srv.Approvals().Vote(ctx, ap.ID, approval.Approver{Name: "carol", Groups: []string{"platform"}},
				a.decide(ap.Command), "checked in the test"); err != nil && ctx.Err() == nil {
				t.Errorf("vote on %s: %v", ap.ID, err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (a *approver) approvals() []record.Approval {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]record.Approval(nil), a.seen...)
}

// TestApprovalCoversOneExecution: an approval binds to the statement and
// its parameter values and covers one execution. Outside business hours
// alice (dba) needs a platform engineer's approval for every statement
// (rule dba-after-hours-approval).
func TestApprovalCoversOneExecution(t *testing.T) {
	night := testclock.Example.Add(12 * time.Hour) // 22:00 in Berlin
	g := startGateway(t, gatewayOptions{at: night})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ap := &approver{g: g, decide: func(cmd string) string {
		if strings.Contains(cmd, `"hacked"`) {
			return record.DecisionDeny
		}
		return record.DecisionApprove
	}}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go ap.run(actx, t)

	conn := g.connect(t, ctx, "alice", nil)
	const upd = "UPDATE orders SET status = $1 WHERE id = $2"
	if _, err := conn.Exec(ctx, upd, "paid", 1); err != nil {
		t.Fatalf("approved update: %v", err)
	}
	// The same prepared statement with other parameters needs its own
	// approval, which the approver denies.
	_, err := conn.Exec(ctx, upd, "hacked", 2)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "not granted") {
		t.Fatalf("second execution: got %v, want a refusal for the denied approval", err)
	}
	admin := g.admin(t, ctx)
	var s1, s2 string
	if err := admin.QueryRow(ctx, "SELECT (SELECT status FROM orders WHERE id = 1), (SELECT status FROM orders WHERE id = 2)").Scan(&s1, &s2); err != nil {
		t.Fatal(err)
	}
	if s1 != "paid" || s2 == "hacked" {
		t.Fatalf("orders 1 and 2: %q, %q; want paid and unchanged", s1, s2)
	}
	list := ap.approvals()
	if len(list) != 2 {
		t.Fatalf("approvals requested: %d, want 2 (one per execution)", len(list))
	}
	if !strings.Contains(list[0].Command, upd) || !strings.Contains(list[0].Command, `$1 = "paid"`) || !strings.Contains(list[0].Command, "$2 = 1") {
		t.Errorf("first approval shows %q; want the statement and its parameters", list[0].Command)
	}

	// A portal approved once runs once: a second Execute of the same
	// portal is refused (by the gateway once it knows the first completed,
	// by PostgreSQL itself when pipelined: "portal cannot be run").
	pc := conn.PgConn()
	fe := pc.Frontend()
	fe.Send(&pgproto3.Parse{Name: "once", Query: upd})
	fe.Send(&pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "once", Parameters: [][]byte{[]byte("shipped"), []byte("3")}})
	fe.Send(&pgproto3.Execute{Portal: "p1"})
	fe.Send(&pgproto3.Execute{Portal: "p1"})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var completes, denials int
	deadline := time.Now().Add(time.Minute)
	_ = pc.Conn().SetReadDeadline(deadline)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CommandComplete:
			completes++
		case *pgproto3.ErrorResponse:
			if strings.HasPrefix(m.Message, "gatehouse denied") || m.Code == "55000" {
				denials++
			} else {
				t.Errorf("backend error: %s %s", m.Code, m.Message)
			}
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	_ = pc.Conn().SetReadDeadline(time.Time{})
	if completes != 1 || denials != 1 {
		t.Fatalf("portal executed twice after one approval: %d completions, %d refusals; want 1 and 1", completes, denials)
	}
	if n := len(ap.approvals()); n != 3 {
		t.Errorf("approvals requested: %d, want 3", n)
	}
}

// TestApprovalEveryStatementOfAMessage: a message of several statements
// that each need approval asks for every one of them, and runs only when
// all are granted.
func TestApprovalEveryStatementOfAMessage(t *testing.T) {
	night := testclock.Example.Add(12 * time.Hour)
	g := startGateway(t, gatewayOptions{at: night})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ap := &approver{g: g, decide: func(cmd string) string {
		if strings.Contains(cmd, "'second'") && !strings.HasPrefix(cmd, "UPDATE orders SET status = 'first'") {
			return record.DecisionDeny
		}
		return record.DecisionApprove
	}}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go ap.run(actx, t)

	conn := g.connect(t, ctx, "alice", nil)
	_, err := conn.Exec(ctx, "UPDATE orders SET status = 'first' WHERE id = 4; UPDATE orders SET status = 'second' WHERE id = 5", pgx.QueryExecModeSimpleProtocol)
	if err == nil {
		t.Fatal("the message ran although its second statement's approval was denied")
	}
	list := ap.approvals()
	if len(list) != 2 {
		t.Fatalf("approvals requested: %d, want one per statement (2): %+v", len(list), list)
	}
	admin := g.admin(t, ctx)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM orders WHERE status IN ('first', 'second')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d orders changed; nothing may run unless every statement is approved", n)
	}
}
