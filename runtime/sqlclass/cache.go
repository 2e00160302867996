package sqlclass

import (
	"container/list"
	"hash/maphash"
	"strings"
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
	// norm caches classifications by normalised text (constants replaced),
	// for classifiers that implement normalizer.
	norm [cacheShards]shard
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
		c.norm[i] = shard{max: per, ll: list.New(), items: make(map[string]*list.Element, per)}
	}
	return c
}

// Classify implements Classifier.
func (c *Cache) Classify(sql string) ([]Statement, error) {
	if len(sql) > MaxCachedQueryBytes {
		return c.inner.Classify(sql)
	}
	s := &c.shards[maphash.String(c.seed, sql)%cacheShards]
	if e, ok := s.get(sql); ok {
		return e.stmts, e.err
	}
	// Texts that differ only in constants (simple-protocol clients inline
	// every value) share one classification, found by the normalised text.
	norm, normOK := "", false
	if n, ok := c.inner.(normalizer); ok {
		norm, normOK = n.normalize(sql)
	}
	var ns *shard
	if normOK {
		ns = &c.norm[maphash.String(c.seed, norm)%cacheShards]
		if e, ok := ns.get(norm); ok {
			return withText(e.stmts, sql), nil
		}
	}

	stmts, err := c.inner.Classify(sql)
	if normOK && err == nil && normalizable(stmts) {
		ns.put(norm, stmts, nil)
	}

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

func (s *shard) get(key string) (*entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil, false
	}
	s.ll.MoveToFront(el)
	return el.Value.(*entry), true
}

func (s *shard) put(key string, stmts []Statement, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[key]; ok {
		return
	}
	s.items[key] = s.ll.PushFront(&entry{key: key, stmts: stmts, err: err})
	for s.ll.Len() > s.max {
		old := s.ll.Back()
		s.ll.Remove(old)
		delete(s.items, old.Value.(*entry).key)
	}
}

// normalizer is implemented by classifiers whose classification does not
// depend on the values of constants: normalize returns a key, the text
// with every constant replaced by a placeholder, that two texts share only
// if the PostgreSQL lexer sees the same tokens in them apart from constants
// (Postgres.normalize: quickNormalize or the PostgreSQL lexer itself).
type normalizer interface {
	normalize(sql string) (string, bool)
}

// normalizable reports whether a classification may be shared by every
// text with the same normalised form: one plain SELECT, INSERT, UPDATE or
// DELETE. Utility statements are never shared (their option values, such
// as EXPLAIN (ANALYZE 0), can change the classification).
func normalizable(stmts []Statement) bool {
	if len(stmts) != 1 || stmts[0].SubKind != "" || stmts[0].Inner != nil || stmts[0].Copy != nil {
		return false
	}
	switch stmts[0].Kind {
	case "select", "insert", "update", "delete":
		return true
	}
	return false
}

// withText returns a copy of the single shared statement with Text set
// from sql: the whole text, trimmed of whitespace and trailing semicolons.
func withText(stmts []Statement, sql string) []Statement {
	text := strings.TrimSpace(sql)
	for strings.HasSuffix(text, ";") {
		text = strings.TrimSpace(strings.TrimSuffix(text, ";"))
	}
	out := []Statement{stmts[0]}
	out[0].Text = text
	return out
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
