package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestBackendHandoff opens many new connections through the proxy against
// the real backend, a few dozen at a time, each running one query whose
// answer it checks. The backend login hands its connection over to the
// relay; a race there left about 4 in 1,750 connections hanging on their
// first query. Nothing here is timed except the per-connection deadline
// that tells a hang from an answer.
func TestBackendHandoff(t *testing.T) {
	total, parallel := 2000, 50
	if testing.Short() {
		total = 300
	}
	p := startInternalProxy(t, func(c *Config) { c.onConn = nil })
	const perConn = 30 * time.Second

	var (
		next     atomic.Int64
		busy     atomic.Int64 // backend refusals for too many connections, retried
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > total {
					return
				}
				for attempt := 0; ; attempt++ {
					err := handoffOnce(p, i, perConn)
					var pe *pgconn.PgError
					if errors.As(err, &pe) && pe.Code == "53300" && attempt < 20 {
						// The shared server is full (other tests): not a
						// hang; try again.
						busy.Add(1)
						continue
					}
					if err != nil {
						fail("connection %d: %v", i, err)
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d connections, %d at a time, in %v (%d retries after 'too many clients')", total, parallel, time.Since(start).Round(time.Millisecond), busy.Load())
	for _, f := range failures {
		t.Error(f)
	}
}

// errHandoffHang is a connection whose login or first answer did not
// arrive within the deadline.
var errHandoffHang = errors.New("no answer within the deadline (hang)")

// handoffOnce connects, runs SELECT i and checks the answer.
func handoffOnce(p *internalProxy, i int, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	pc, err := pgconn.Connect(ctx, p.dsn())
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("login: %w", errHandoffHang)
		}
		return fmt.Errorf("login: %w", err)
	}
	defer pc.Close(context.Background())
	want := strconv.Itoa(i)
	res, err := pc.Exec(ctx, "SELECT "+want).ReadAll()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("first query: %w", errHandoffHang)
		}
		return fmt.Errorf("first query: %w", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != want {
		return fmt.Errorf("first query: got %v, want %s", res, want)
	}
	return nil
}
