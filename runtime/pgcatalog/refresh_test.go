package pgcatalog

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testdb"
)

func judge(t *testing.T, c *Catalog, r Request) Result {
	t.Helper()
	res, err := c.Judge(ctxT(t), &r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A function created by another client is seen once RefreshInterval has
// passed, and not before when its name was already known (a new overload
// of a built-in): the window the package documents.
func TestRefreshSeesNewOverloadAfterInterval(t *testing.T) {
	t.Parallel()
	dsn := database(t)
	clk := newClock()
	q := &counting{Querier: pool(t, dsn)}
	c := newCatalog(t, q, clk)
	req := Request{Functions: []string{"upper"}, SearchPath: []string{"pg_catalog", "public"}}

	if r := judge(t, c, req); r.NeedGrant != nil {
		t.Fatalf("before: NeedGrant = %q", r.NeedGrant)
	}
	testdb.Exec(t, dsn, fixture(t, "shadow-upper")...)

	clk.Advance(DefaultRefreshInterval - time.Millisecond)
	if r := judge(t, c, req); r.NeedGrant != nil {
		t.Fatalf("within the interval the snapshot is not checked, yet NeedGrant = %q", r.NeedGrant)
	}
	if n := q.fingerprints.Load(); n != 1 {
		t.Fatalf("fingerprint queries within the interval = %d, want 1 (the first load's)", n)
	}

	clk.Advance(2 * time.Millisecond)
	r := judge(t, c, req)
	if !slices.Equal(r.NeedGrant, []string{"public.upper"}) || !r.Opaque {
		t.Fatalf("after the interval: NeedGrant = %q, Opaque = %v", r.NeedGrant, r.Opaque)
	}
	if n := q.loads.Load(); n != 2 {
		t.Fatalf("loads = %d, want 2", n)
	}

	// Nothing changed since: the next check costs a fingerprint, no load.
	clk.Advance(DefaultRefreshInterval)
	judge(t, c, req)
	if n := q.loads.Load(); n != 2 {
		t.Fatalf("loads after an unchanged check = %d, want 2", n)
	}
	if n := q.fingerprints.Load(); n != 4 {
		t.Fatalf("fingerprints = %d, want 4 (two loads, two checks)", n)
	}
}

// Altering a known function (here to SECURITY DEFINER) changes its row's
// xmin, which the fingerprint sees.
func TestRefreshSeesAlteredFunction(t *testing.T) {
	t.Parallel()
	dsn := database(t, "myschema")
	clk := newClock()
	c := newCatalog(t, pool(t, dsn), clk)
	req := Request{Functions: []string{"myschema.f"}}
	if r := judge(t, c, req); len(r.Functions) != 1 || r.Functions[0].SecurityDefiner {
		t.Fatalf("before: %+v", r.Functions)
	}
	testdb.Exec(t, dsn, "ALTER FUNCTION myschema.f(integer) SECURITY DEFINER")
	clk.Advance(DefaultRefreshInterval)
	if r := judge(t, c, req); len(r.Functions) != 1 || !r.Functions[0].SecurityDefiner {
		t.Fatalf("after: %+v", r.Functions)
	}
}

// A name the snapshot does not know makes Judge check at once: a function
// created by another client a moment ago is judged as what it is, without
// waiting for RefreshInterval.
func TestUnknownNameChecksAtOnce(t *testing.T) {
	t.Parallel()
	dsn := database(t)
	clk := newClock()
	q := &counting{Querier: pool(t, dsn)}
	c := newCatalog(t, q, clk)
	req := Request{Functions: []string{"customer_ssn"}}

	r := judge(t, c, req)
	if !slices.Equal(r.Unknown, []string{"customer_ssn"}) || !r.Opaque || r.NeedGrant != nil {
		t.Fatalf("before: %+v", r)
	}
	testdb.Exec(t, dsn, fixture(t, "customer-ssn")...)
	r = judge(t, c, req)
	if !slices.Equal(r.NeedGrant, []string{"public.customer_ssn"}) || r.Unknown != nil {
		t.Fatalf("after creation, same instant: %+v", r)
	}

	// The same for an operator.
	opReq := Request{Operators: []string{"###"}}
	if r := judge(t, c, opReq); !slices.Equal(r.Unknown, []string{"###"}) {
		t.Fatalf("operator before: %+v", r)
	}
	testdb.Exec(t, dsn, fixture(t, "operator")...)
	if r := judge(t, c, opReq); !slices.Equal(r.NeedGrant, []string{"public.hash_combine"}) || r.Unknown != nil {
		t.Fatalf("operator after creation, same instant: %+v", r)
	}

	// A name that stays unknown costs a probe, not a reload.
	loads := q.loads.Load()
	for range 3 {
		if r := judge(t, c, Request{Functions: []string{"still_missing"}}); !slices.Equal(r.Unknown, []string{"still_missing"}) {
			t.Fatalf("still missing: %+v", r)
		}
	}
	if q.loads.Load() != loads {
		t.Fatalf("an unknown name caused %d reloads", q.loads.Load()-loads)
	}
}

// A relation the cache says is missing is checked again at once too; a
// relation created by another client in a schema earlier in the path is
// seen after RefreshInterval.
func TestRelationsRefresh(t *testing.T) {
	t.Parallel()
	dsn := database(t, "user-schema")
	clk := newClock()
	q := &counting{Querier: pool(t, dsn)}
	c := newCatalog(t, q, clk)
	testdb.Exec(t, dsn, "CREATE SCHEMA tenant")
	path := []string{"pg_catalog", "tenant", "public"}

	r := judge(t, c, Request{Tables: []string{"customers", "invoices"}, SearchPath: path})
	if !slices.Equal(r.Tables, []string{"public.customers", "tenant.invoices"}) || !slices.Equal(r.Missing, []string{"tenant.invoices"}) {
		t.Fatalf("first: %+v", r)
	}
	if n := q.lookups.Load(); n != 1 {
		t.Fatalf("lookups = %d, want one batch", n)
	}

	// Cached: no further lookup, and (within the interval) no check.
	fp := q.fingerprints.Load()
	judge(t, c, Request{Tables: []string{"customers"}, SearchPath: path})
	if q.lookups.Load() != 1 || q.fingerprints.Load() != fp {
		t.Fatalf("cached relation cost a query: lookups %d, fingerprints %d", q.lookups.Load(), q.fingerprints.Load())
	}

	testdb.Exec(t, dsn, "CREATE TABLE tenant.invoices (id integer)", "CREATE TABLE tenant.customers (id integer)")
	// invoices was cached as missing: checked at once.
	r = judge(t, c, Request{Tables: []string{"invoices"}, SearchPath: path})
	if !slices.Equal(r.Tables, []string{"tenant.invoices"}) || r.Missing != nil {
		t.Fatalf("created table still missing: %+v", r)
	}
	clk.Advance(DefaultRefreshInterval)
	r = judge(t, c, Request{Tables: []string{"customers"}, SearchPath: path})
	if !slices.Equal(r.Tables, []string{"tenant.customers"}) {
		t.Fatalf("shadowing table not seen after the interval: %+v", r)
	}
}

// Invalidate makes the next Judge reload without the clock moving.
func TestInvalidate(t *testing.T) {
	t.Parallel()
	dsn := database(t)
	clk := newClock()
	q := &counting{Querier: pool(t, dsn)}
	c := newCatalog(t, q, clk)
	req := Request{Functions: []string{"upper"}}
	if r := judge(t, c, req); r.NeedGrant != nil {
		t.Fatalf("before: %q", r.NeedGrant)
	}
	testdb.Exec(t, dsn, fixture(t, "shadow-upper")...)
	c.Invalidate()
	if r := judge(t, c, req); !slices.Equal(r.NeedGrant, []string{"public.upper"}) {
		t.Fatalf("after Invalidate: %q", r.NeedGrant)
	}
	if n := q.loads.Load(); n != 2 {
		t.Fatalf("loads = %d, want 2", n)
	}
}

// Invalidate during a load makes that load's snapshot stale: what it read
// may predate the DDL.
func TestInvalidateDuringLoad(t *testing.T) {
	t.Parallel()
	dsn := database(t)
	q := &counting{Querier: pool(t, dsn), gate: make(chan struct{}), arrived: make(chan struct{}, 4)}
	c := newCatalog(t, q, newClock())
	done := make(chan Result)
	go func() {
		r, err := c.Judge(context.Background(), &Request{Functions: []string{"upper"}})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	// The first load has read the functions (none yet) and waits.
	<-q.arrived
	testdb.Exec(t, dsn, fixture(t, "shadow-upper")...)
	c.Invalidate()
	close(q.gate) // the reload goes through
	r := <-done
	if !slices.Equal(r.NeedGrant, []string{"public.upper"}) {
		t.Fatalf("judged with a snapshot loaded before Invalidate: %q", r.NeedGrant)
	}
	if n := q.loads.Load(); n != 2 {
		t.Fatalf("loads = %d, want 2", n)
	}
}

// Many sessions judging at once during a reload share one load; none sees
// an error or a half-loaded snapshot.
func TestConcurrentJudge(t *testing.T) {
	t.Parallel()
	dsn := database(t, "shadow-upper", "user-schema")
	clk := newClock()
	q := &counting{Querier: pool(t, dsn), gate: make(chan struct{})}
	c := newCatalog(t, q, clk)
	req := Request{Functions: []string{"upper"}, Tables: []string{"customers"}, SearchPath: []string{"pg_catalog", "public"}}

	const n = 50
	var wg sync.WaitGroup
	results := make(chan Result, n)
	errs := make(chan error, n)
	start := func() {
		for range n {
			wg.Go(func() {
				r, err := c.Judge(ctxT(t), &req)
				if err != nil {
					errs <- err
					return
				}
				results <- r
			})
		}
	}
	check := func(round string) {
		wg.Wait()
		close(errs)
		close(results)
		for err := range errs {
			t.Fatalf("%s: %v", round, err)
		}
		for r := range results {
			if !slices.Equal(r.NeedGrant, []string{"public.upper"}) || !slices.Equal(r.Tables, []string{"public.customers"}) {
				t.Fatalf("%s: result %+v", round, r)
			}
		}
	}

	// Round 1: cold catalog, 50 callers, the load held at the gate until
	// all have started.
	start()
	q.gate <- struct{}{}
	check("cold")
	if l := q.loads.Load(); l != 1 {
		t.Fatalf("cold: loads = %d, want 1", l)
	}

	// Round 2: Invalidate, then 50 callers at once; the reload is held
	// at the gate while they pile up.
	results, errs = make(chan Result, n), make(chan error, n)
	c.Invalidate()
	start()
	q.gate <- struct{}{}
	check("invalidated")
	if l := q.loads.Load(); l != 2 {
		t.Fatalf("invalidated: loads = %d, want 2", l)
	}

	// Round 3: stale by time; nothing changed, so one fingerprint and no
	// load serve all callers.
	results, errs = make(chan Result, n), make(chan error, n)
	fp := q.fingerprints.Load()
	clk.Advance(DefaultRefreshInterval)
	start()
	check("stale")
	if l, f := q.loads.Load(), q.fingerprints.Load()-fp; l != 2 || f != 1 {
		t.Fatalf("stale: loads = %d (want 2), fingerprints = %d (want 1)", l, f)
	}
}

// A caller whose context ends while another's load runs gets an error
// wrapping ErrUnavailable and its context's error; the load goes on for
// the others.
func TestWaiterContext(t *testing.T) {
	t.Parallel()
	dsn := database(t)
	q := &counting{Querier: pool(t, dsn), gate: make(chan struct{}), arrived: make(chan struct{}, 1)}
	c := newCatalog(t, q, newClock())
	leader := make(chan error)
	go func() {
		_, err := c.Judge(context.Background(), &Request{})
		leader <- err
	}()
	<-q.arrived // the leader's load is in flight
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Judge(ctx, &Request{}); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter error = %v", err)
	}
	q.gate <- struct{}{}
	if err := <-leader; err != nil {
		t.Fatalf("leader: %v", err)
	}
}

// A full name cache is emptied and refilled; answers stay right, including
// for callers racing with the emptying.
func TestNameCacheBound(t *testing.T) {
	t.Parallel()
	dsn := database(t, "user-schema", "casts")
	c, err := New(Config{Querier: pool(t, dsn), MaxNames: 2})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []Request{
		{Tables: []string{"customers", "orders", "nosuch"}, Types: []string{"price", "money2"}},
		{Tables: []string{"orders", "pg_class"}, Types: []string{"int4", "price2", "text"}},
	}
	want := []Result{
		{Tables: []string{"public.customers", "public.orders", "public.nosuch"}, Missing: []string{"public.nosuch"},
			NeedGrant: []string{"public.money2_from_int"}},
		{Tables: []string{"public.orders", "pg_catalog.pg_class"}, NeedGrant: []string{"public.money2_from_int"}},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				k := (g + i) % len(reqs)
				r := reqs[k]
				r.SearchPath = []string{"pg_catalog", "public"}
				got, err := c.Judge(ctxT(t), &r)
				if err != nil {
					t.Error(err)
					return
				}
				w := want[k]
				if !slices.Equal(got.Tables, w.Tables) || !slices.Equal(got.Missing, w.Missing) || !slices.Equal(got.NeedGrant, w.NeedGrant) {
					t.Errorf("request %d: got %+v", k, got)
					return
				}
			}
		})
	}
	wg.Wait()
}
