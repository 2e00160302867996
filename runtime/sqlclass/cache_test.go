package sqlclass

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
)

// countingClassifier counts calls to a real classifier.
type countingClassifier struct {
	inner Classifier
	calls atomic.Int64
}

func (c *countingClassifier) Classify(sql string) ([]Statement, error) {
	c.calls.Add(1)
	return c.inner.Classify(sql)
}

func newCounting(t testing.TB) *countingClassifier {
	t.Helper()
	p, err := NewPostgres(PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &countingClassifier{inner: p}
}

func TestCacheHitSharesResult(t *testing.T) {
	t.Parallel()
	cc := newCounting(t)
	c := NewCache(cc, 64)
	a, err := c.Classify("SELECT email FROM customers")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Classify("SELECT email FROM customers")
	if err != nil {
		t.Fatal(err)
	}
	if got := cc.calls.Load(); got != 1 {
		t.Fatalf("inner called %d times, want 1", got)
	}
	if &a[0] != &b[0] {
		t.Fatal("cache hit returned a different slice")
	}
}

func TestCacheErrorsCached(t *testing.T) {
	t.Parallel()
	cc := newCounting(t)
	c := NewCache(cc, 64)
	for range 3 {
		if _, err := c.Classify("SELEC 1"); !errors.Is(err, ErrUnparseable) {
			t.Fatalf("err = %v, want ErrUnparseable", err)
		}
	}
	if got := cc.calls.Load(); got != 1 {
		t.Fatalf("inner called %d times, want 1", got)
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	cc := newCounting(t)
	c := NewCache(cc, 32)
	for i := range 500 {
		if _, err := c.Classify(fmt.Sprintf("SELECT %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n > 32+cacheShards {
		t.Fatalf("cache holds %d entries, bound is about 32", n)
	}
	// The most recent entry is still cached.
	before := cc.calls.Load()
	if _, err := c.Classify("SELECT 499"); err != nil {
		t.Fatal(err)
	}
	if cc.calls.Load() != before {
		t.Fatal("most recent entry was evicted")
	}
}

func TestCacheLargeQueriesBypass(t *testing.T) {
	t.Parallel()
	cc := newCounting(t)
	c := NewCache(cc, 32)
	q := "SELECT '" + fmt.Sprintf("%0*d", MaxCachedQueryBytes, 0) + "'"
	for range 2 {
		if _, err := c.Classify(q); err != nil {
			t.Fatal(err)
		}
	}
	if got := cc.calls.Load(); got != 2 {
		t.Fatalf("inner called %d times, want 2 (large queries are not cached)", got)
	}
	if c.Len() != 0 {
		t.Fatal("large query was cached")
	}
}

func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	cc := newCounting(t)
	c := NewCache(cc, 128)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				q := fmt.Sprintf("SELECT id FROM t%d", (i+g)%50)
				st, err := c.Classify(q)
				if err != nil || len(st) != 1 || st[0].Kind != "select" {
					errs <- fmt.Errorf("%q: %v %v", q, st, err)
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
}

// countingPostgres counts the parses behind a Cache; it keeps the
// normalizer of the embedded Postgres.
type countingPostgres struct {
	*Postgres
	mu sync.Mutex
	n  int
}

func (c *countingPostgres) Classify(sql string) ([]Statement, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Postgres.Classify(sql)
}

func TestCacheNormalized(t *testing.T) {
	t.Parallel()
	pg, err := NewPostgres(PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		a, b   string
		shared bool
	}{
		{"select constants", "SELECT abalance FROM pgbench_accounts WHERE aid = 1;", "SELECT abalance FROM pgbench_accounts WHERE aid = 2;", true},
		{"update constants", "UPDATE t SET x = x + 5 WHERE id = 'a'", "UPDATE t SET x = x + 7 WHERE id = 'b'", true},
		{"different tables", "SELECT 1 FROM a WHERE x = 1", "SELECT 1 FROM b WHERE x = 1", false},
		{"explain option value", "EXPLAIN (ANALYZE 0) DELETE FROM t", "EXPLAIN (ANALYZE 1) DELETE FROM t", false},
		{"multi statement", "SELECT 1; SELECT 2", "SELECT 3; SELECT 4", false},
		{"set value", "SET work_mem = '1MB'", "SET work_mem = '2MB'", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			inner := &countingPostgres{Postgres: pg}
			cache := NewCache(inner, 100)
			want, err := pg.Classify(c.b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cache.Classify(c.a); err != nil {
				t.Fatal(err)
			}
			got, err := cache.Classify(c.b)
			if err != nil {
				t.Fatal(err)
			}
			if shared := inner.n == 1; shared != c.shared {
				t.Errorf("parses %d: shared %v, want %v", inner.n, shared, c.shared)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("classification of %q from the cache:\n got %+v\nwant %+v", c.b, got, want)
			}
		})
	}
}
