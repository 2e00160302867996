package mask

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Querier is what PGCatalog needs from a connection: *pgx.Conn and
// *pgxpool.Pool both satisfy it. A *pgx.Conn is not safe for concurrent
// use; give PGCatalog a pool when lookups can happen concurrently.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DefaultCatalogEntries bounds the PGCatalog cache by default.
const DefaultCatalogEntries = 10000

const catalogQuery = `SELECT n.nspname, c.relname, a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE a.attrelid = $1 AND a.attnum = $2 AND NOT a.attisdropped`

// PGCatalog resolves (table OID, attribute number) through pg_attribute
// and pg_class, caching answers. It is safe for concurrent use if its
// Querier is. Failed lookups are not cached.
type PGCatalog struct {
	q   Querier
	max int

	mu    sync.Mutex
	cache map[catalogKey]catalogEntry
}

var _ Catalog = (*PGCatalog)(nil)

type catalogKey struct {
	oid    uint32
	attnum int16
}

type catalogEntry struct{ schema, table, column string }

// NewPGCatalog returns a catalog over q caching up to maxEntries answers
// (<= 0 means DefaultCatalogEntries). When the cache is full it is
// cleared.
func NewPGCatalog(q Querier, maxEntries int) *PGCatalog {
	if maxEntries <= 0 {
		maxEntries = DefaultCatalogEntries
	}
	return &PGCatalog{q: q, max: maxEntries, cache: map[catalogKey]catalogEntry{}}
}

// Lookup implements Catalog.
func (c *PGCatalog) Lookup(ctx context.Context, tableOID uint32, attnum int16) (schema, table, column string, ok bool) {
	if tableOID == 0 || attnum <= 0 {
		return "", "", "", false
	}
	k := catalogKey{tableOID, attnum}
	c.mu.Lock()
	e, hit := c.cache[k]
	c.mu.Unlock()
	if hit {
		return e.schema, e.table, e.column, true
	}
	if err := c.q.QueryRow(ctx, catalogQuery, tableOID, attnum).Scan(&e.schema, &e.table, &e.column); err != nil {
		return "", "", "", false
	}
	c.mu.Lock()
	if len(c.cache) >= c.max {
		clear(c.cache)
	}
	c.cache[k] = e
	c.mu.Unlock()
	return e.schema, e.table, e.column, true
}

// Reset forgets every cached answer (after DDL that renames or drops
// columns).
func (c *PGCatalog) Reset() {
	c.mu.Lock()
	clear(c.cache)
	c.mu.Unlock()
}
