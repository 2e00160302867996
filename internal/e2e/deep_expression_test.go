package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// deepChildEnv marks the child process of TestDeepExpression, which runs
// the gateway and sends it the input that crashed it: a crash of the child
// fails this one test instead of ending the whole test binary.
const deepChildEnv = "GATEHOUSE_E2E_DEEP_EXPRESSION_CHILD"

// TestDeepExpression sends SELECT 1+1+...+1 with 25,000 and 250,000 terms,
// as an identity without any database grant (erin) and as the agent, in
// the simple and the extended protocol. The gateway must answer each with
// a refusal and keep serving: afterwards a new connection works.
func TestDeepExpression(t *testing.T) {
	if os.Getenv(deepChildEnv) == "1" {
		deepExpressionChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDeepExpression$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), deepChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Errorf("the gateway process did not survive (%v):\n%s", err, crashSummary(text))
		return
	}
	if !strings.Contains(text, "--- PASS: TestDeepExpression") {
		t.Errorf("the child run did not pass:\n%s", tail(text, 60))
		return
	}
	for _, l := range strings.Split(text, "\n") {
		if _, msg, ok := strings.Cut(l, "deep expression: "); ok {
			t.Log(msg)
		}
	}
}

func deepExpressionChild(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, identity := range []string{"erin", "claude-coder"} {
		for _, n := range []int{25_000, 250_000} {
			sql := "SELECT 1" + strings.Repeat("+1", n-1)
			for _, proto := range []string{"simple", "extended"} {
				t.Run(fmt.Sprintf("%s/%d/%s", identity, n, proto), func(t *testing.T) {
					conn := g.connect(t, ctx, identity, nil)
					step := Q(wantDenied, sql)
					if proto == "extended" {
						step = step.asExtended()
					}
					var seen strings.Builder
					start := time.Now()
					res, err := runWireStep(ctx, conn.PgConn(), step, &seen)
					if err != nil {
						t.Fatalf("no answer: %v", err)
					}
					t.Logf("deep expression: %s, %d terms, %s protocol: %s in %v", identity, n, proto, strings.Join(res.errs, "; "), time.Since(start).Round(time.Millisecond))
					if res.denials == 0 {
						t.Errorf("want a gatehouse refusal, got %s", res)
					}
				})
			}
		}
	}
	// The gateway keeps serving new connections.
	conn := g.connect(t, ctx, "claude-coder", nil)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("a new connection after the deep expressions: %v", err)
	}
}

// crashSummary returns the subtest that was running when the child died
// and the first lines of the crash report.
func crashSummary(out string) string {
	lines := strings.Split(out, "\n")
	running := ""
	for i, l := range lines {
		if strings.HasPrefix(l, "=== RUN") {
			running = l
		}
		for _, p := range []string{"SIGSEGV", "SIGABRT", "SIGBUS", "fatal error", "panic:", "runtime: "} {
			if strings.HasPrefix(l, p) {
				end := min(i+16, len(lines))
				return running + "\n" + strings.Join(lines[i:end], "\n")
			}
		}
	}
	return tail(out, 60)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
