package sqlclass

import (
	"container/list"
	"hash/maphash"
	"sync"
)

// DefaultCacheSize is the number of entries NewCache uses for size <= 0.
const DefaultCacheSize = 4096

// MaxCachedQueryBytes is the longest query text the Cache keeps; longer
// queries are classified on every call so that a few huge queries cannot
// pin memory.
const MaxCachedQueryBytes = 16 << 10

const cacheShards = 16

// Cache is a Classifier decorator that remembers results by query text in
// a bounded LRU. It is safe for concurrent use. Hits return the same
// (shared, immutable) slice to every caller and cost a hash and a map
// lookup; errors are cached too, since the parser is deterministic.
type Cache struct {
	inner  Classifier
	seed   maphash.Seed
	shards [cacheShards]shard
}

var _ Classifier = (*Cache)(nil)

type shard struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type entry struct {
	key   string
	stmts []Statement
	err   error
}

// NewCache wraps inner in an LRU cache holding about size entries (size <=
// 0 means DefaultCacheSize). The entries are spread over shards to reduce
// lock contention, so eviction is least-recently-used per shard.
func NewCache(inner Classifier, size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	per := (size + cacheShards - 1) / cacheShards
	c := &Cache{inner: inner, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i] = shard{max: per, ll: list.New(), items: make(map[string]*list.Element, per)}
	}
	return c
}

// Classify implements Classifier.
func (c *Cache) Classify(sql string) ([]Statement, error) {
	if len(sql) > MaxCachedQueryBytes {
		return c.inner.Classify(sql)
	}
	s := &c.shards[maphash.String(c.seed, sql)%cacheShards]
	s.mu.Lock()
	if el, ok := s.items[sql]; ok {
		s.ll.MoveToFront(el)
		e := el.Value.(*entry)
		s.mu.Unlock()
		return e.stmts, e.err
	}
	s.mu.Unlock()

	stmts, err := c.inner.Classify(sql)

	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[sql]; ok {
		// Another caller classified the same text meanwhile; share its
		// result.
		e := el.Value.(*entry)
		return e.stmts, e.err
	}
	s.items[sql] = s.ll.PushFront(&entry{key: sql, stmts: stmts, err: err})
	for s.ll.Len() > s.max {
		old := s.ll.Back()
		s.ll.Remove(old)
		delete(s.items, old.Value.(*entry).key)
	}
	return stmts, err
}

// Len returns the number of cached entries.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.ll.Len()
		s.mu.Unlock()
	}
	return n
}
