package sqlclass

import "testing"

const benchQuery = `SELECT c.id, lower(c.email) AS e, o.total FROM customers c
JOIN orders o ON o.customer_id = c.id WHERE c.active AND o.created > now() - interval '7 days'
ORDER BY o.total DESC LIMIT 50`

func BenchmarkClassify(b *testing.B) {
	p, err := NewPostgres(PostgresConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Classify(benchQuery); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := NewCache(p, 1024)
		if _, err := c.Classify(benchQuery); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Classify(benchQuery); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		c := NewCache(p, 1024)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Classify(benchQuery); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkNestingBound is the pre-scan every uncached classification
// pays before libpg_query.
func BenchmarkNestingBound(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchQuery)))
	for b.Loop() {
		if nestingBound(benchQuery, DefaultMaxNesting) > DefaultMaxNesting {
			b.Fatal("rejected")
		}
	}
}
