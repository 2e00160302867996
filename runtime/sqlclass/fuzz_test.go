package sqlclass

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzClassify checks that classification never panics and yields either
// a statement list or an error.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "", ";", "/* x */ DELETE FROM t",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"COPY (SELECT * FROM t) TO STDOUT", "EXPLAIN ANALYZE UPDATE t SET a = 1",
		"SELECT row_to_json(c) FROM customers c", "SELECT * FROM a, LATERAL (SELECT a.x) s",
		"PREPARE p AS SELECT $1", "DO $$ BEGIN END $$", "SELEC 1",
	} {
		f.Add(s)
	}
	if files, err := filepath.Glob("testdata/classify/*.sql"); err == nil {
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(string(data))
			}
		}
	}
	p, err := NewPostgres(PostgresConfig{MaxQueryBytes: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := p.Classify(sql)
		if err != nil {
			if stmts != nil {
				t.Fatalf("error %v with statements", err)
			}
			if !errors.Is(err, ErrUnparseable) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTooComplex) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		for _, st := range stmts {
			if st.Kind == "" {
				t.Fatalf("statement without kind: %+v", st)
			}
		}
	})
}
