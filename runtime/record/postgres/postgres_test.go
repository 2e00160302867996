package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/postgres"
	"github.com/gatehouse/gatehouse/runtime/record/recordtest"
)

func randomSchema() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rec_" + hex.EncodeToString(b[:])
}

func open(t *testing.T, dsn, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: schema})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawExec(ctx context.Context, s record.Store, q string) error {
	st, ok := s.(*postgres.Store)
	if !ok {
		return fmt.Errorf("not a postgres store: %T", s)
	}
	_, err := st.Pool().Exec(ctx, q)
	return err
}

// TestCompliance runs the suite on one fresh database, with a fresh schema
// per subtest.
func TestCompliance(t *testing.T) {
	dsn := testdb.Postgres(t)
	recordtest.Run(t, func(t *testing.T) record.Store {
		return open(t, dsn, randomSchema())
	}, recordtest.WithRawSQL(rawExec))
}

func TestWatchAcrossGateways(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	schema := randomSchema()
	gw1 := open(t, dsn, schema)
	gw2 := open(t, dsn, schema)
	other := open(t, dsn, randomSchema())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ch, err := gw1.WatchApprovals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC()
	// A change in another schema must not be seen.
	x := record.Approval{ID: "other", Identity: "bot", Count: 1, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := other.CreateApproval(ctx, &x); err != nil {
		t.Fatal(err)
	}
	a := record.Approval{ID: "ap-1", Identity: "bot", Group: "dba", Count: 1, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := gw2.CreateApproval(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if got := <-ch; got != "ap-1" {
		t.Fatalf("first notification %q, want ap-1", got)
	}
	got, err := gw2.AddVote(ctx, "ap-1", record.Vote{Approver: "alice", Decision: "approve", Time: base.Add(time.Minute)})
	if err != nil || got.Status != record.StatusApproved {
		t.Fatalf("vote: %+v %v", got, err)
	}
	select {
	case id := <-ch:
		if id != "ap-1" {
			t.Fatalf("notification %q", id)
		}
	case <-ctx.Done():
		t.Fatal("vote on gateway 2 not seen by gateway 1")
	}
	seen, err := gw1.GetApproval(ctx, "ap-1")
	if err != nil || seen.Status != record.StatusApproved {
		t.Fatalf("gateway 1 reads %+v %v", seen, err)
	}
	// Closing the store closes the watch.
	gw1.Close()
	for range ch {
	}
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	schema := randomSchema()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: schema})
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
}

// TestFailClosedDatabaseDropped drops the database under a running
// recorder: Record must refuse instead of losing events.
func TestFailClosedDatabaseDropped(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	s := open(t, dsn, "gatehouse")
	r, err := record.New(record.Config{Store: s, QueueSize: 16, BatchSize: 4, FailAfter: 2,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, CloseTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(t.Context()) }()
	ctx := t.Context()
	sr, err := r.StartSession(ctx, &record.Session{Identity: "bot", Resource: "orders-db"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	testdb.Exec(t, u.String(), "DROP DATABASE "+name+" WITH (FORCE)")
	var refusal error
	accepted := 0
	for i := range 100000 {
		if refusal = sr.Record(record.Event{Command: fmt.Sprintf("SELECT %d", i)}); refusal != nil {
			break
		}
		accepted++
	}
	if !errors.Is(refusal, record.ErrRecorderUnavailable) {
		t.Fatalf("Record after the database was dropped: %v", refusal)
	}
	if accepted > 16+4 {
		t.Fatalf("accepted %d events with no database", accepted)
	}
	if err := r.Close(); !errors.Is(err, record.ErrUnflushed) {
		t.Fatalf("Close: got %v, want ErrUnflushed", err)
	}
	<-done
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  postgres.Config
	}{
		{"no dsn", postgres.Config{}},
		{"bad schema", postgres.Config{DSN: "postgres://x", Schema: "Robert'); DROP"}},
		{"long schema", postgres.Config{DSN: "postgres://x", Schema: strings.Repeat("a", 41)}},
		{"negative conns", postgres.Config{DSN: "postgres://x", MaxConns: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); !errors.Is(err, record.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}
