package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/server"
)

// TestRecordingBackpressure: one session pipelining a large batch while
// nine others run normal traffic. The flooding session is slowed by its own
// recording backlog; the others are never refused; every statement that ran
// is recorded. GATEHOUSE_E2E_FLOOD sets the batch size (default 20,000;
// 100,000 reproduces the attack's size).
func TestRecordingBackpressure(t *testing.T) {
	n := 20000
	if v := os.Getenv("GATEHOUSE_E2E_FLOOD"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	g := startGateway(t, gatewayOptions{configure: func(cfg *server.Config) {
		// Small queues, so that the flood meets them.
		cfg.Recording.QueueSize = 2048
		cfg.Recording.SessionQueue = 256
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	flood := g.connect(t, ctx, "claude-coder", nil)
	var others []*pgx.Conn
	for range 9 {
		others = append(others, g.connect(t, ctx, "copilot-agent", nil))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := &pgx.Batch{}
		for i := range n {
			b.Queue("SELECT $1::text", strconv.Itoa(i))
		}
		br := flood.SendBatch(ctx, b)
		for i := range n {
			var s string
			if err := br.QueryRow().Scan(&s); err != nil {
				errs <- fmt.Errorf("flood statement %d: %w", i, err)
				br.Close()
				return
			}
			if s != strconv.Itoa(i) {
				errs <- fmt.Errorf("flood statement %d answered %q", i, s)
			}
		}
		if err := br.Close(); err != nil {
			errs <- fmt.Errorf("flood batch: %w", err)
		}
	}()
	const each = 200
	for k, c := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var id int
				err := c.QueryRow(ctx, "SELECT id FROM orders WHERE id = $1", 1+(i%40)).Scan(&id)
				var pe *pgconn.PgError
				if errors.As(err, &pe) {
					errs <- fmt.Errorf("session %d statement %d refused: %s %s", k, i, pe.Code, pe.Message)
					return
				}
				if err != nil {
					errs <- fmt.Errorf("session %d statement %d: %w", k, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	g.stop()
	st, sessions := g.recordedSessions(t, ctx)
	counts := map[string]int{}
	for _, s := range sessions {
		evs, err := st.Events(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if res := record.VerifyChain(&s, evs); !res.OK {
			t.Errorf("session %s: chain broken at %d: %s", s.ID, res.Seq, res.Problem)
		}
		for _, e := range evs {
			if e.Kind == record.KindCommand && e.Error == "" && e.Effect == "allow" {
				counts[s.Identity]++
			}
		}
	}
	if counts["claude-coder"] < n {
		t.Errorf("flooding session: %d statements recorded as run, %d ran", counts["claude-coder"], n)
	}
	if counts["copilot-agent"] < 9*each {
		t.Errorf("other sessions: %d statements recorded as run, %d ran", counts["copilot-agent"], 9*each)
	}
	t.Logf("recorded: flood %d of %d, others %d of %d", counts["claude-coder"], n, counts["copilot-agent"], 9*each)
}
