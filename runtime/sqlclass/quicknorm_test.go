package sqlclass

import (
	"fmt"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestQuickNormalize(t *testing.T) {
	for _, tc := range []struct {
		sql, key string // key "" means quickNormalize must give up
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 83412;", "SELECT abalance FROM pgbench_accounts WHERE aid = $;"},
		{"select * from t1 where a = 'x''y' and b = 1.5 and c = 2e-3", "select * from t1 where a = $ and b = $ and c = $"},
		{"SELECT \"a'b\", 'c' FROM \"T\"\"x\"", "SELECT \"a'b\", $ FROM \"T\"\"x\""},
		{"SELECT date '2020-01-01', 1::int, -7", "SELECT date $, $::int, -$"},
		{"SELECT 'a' 'b'", "SELECT $ $"},
		{"SELECT x ? 'k' FROM t", "SELECT x ? $ FROM t"},
		{"UPDATE t SET a = 1 WHERE id IN (1,2,3)", "UPDATE t SET a = $ WHERE id IN ($,$,$)"},
		// Given up: the PostgreSQL lexer decides.
		{"SELECT 'a'\n'b'", ""},      // string continuation
		{"SELECT E'a'", ""},          // escape string
		{"SELECT B'101', X'1F'", ""}, // bit strings
		{"SELECT n'x'", ""},          // national string
		{"SELECT name'x'", ""},       // identifier directly before the quote
		{"SELECT U&'d!0061t' UESCAPE '!'", ""},
		{"SELECT $1", ""},
		{"SELECT $$x$$", ""},
		{"SELECT 'a\\'b'", ""},
		{"SELECT 1 -- c\n", ""},
		{"SELECT /* c */ 1", ""},
		{"SELECT '--'", ""},
		{"SELECT .5", ""},
		{"SELECT 1.", ""},
		{"SELECT 1.e5", ""},
		{"SELECT 0x1F", ""},
		{"SELECT 1_000", ""},
		{"SELECT 12abc", ""},
		{"SELECT 1e", ""},
		{"SELECT t.1", ""},
		{"SELECT 'unterminated", ""},
		{"SELECT \"unterminated", ""},
		{"SELECT 'é'", ""},
		{"SELECT 1\x00", ""},
		{"SELECT 1\f", ""},
	} {
		key, ok := quickNormalize(tc.sql)
		if tc.key == "" {
			if ok {
				t.Errorf("quickNormalize(%q) = %q, want it to give up", tc.sql, key)
			}
			continue
		}
		if !ok || key != tc.key {
			t.Errorf("quickNormalize(%q) = %q, %v; want %q", tc.sql, key, ok, tc.key)
		}
	}
}

// checkConstantSpans checks the invariant quickNormalize rests on: where it
// accepts a text, the spans it replaced are exactly the constants of the
// PostgreSQL lexer, and the lexer sees no other constants or parameters.
func checkConstantSpans(sql string) error {
	key, ok := quickNormalize(sql)
	if !ok {
		return nil
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		// Under quickNormalize's restrictions a constant's body cannot
		// make the lexer fail, so the error lies in the bytes the key
		// keeps: every text with this key fails alike, is denied as
		// unparseable, and no classification is ever cached under it.
		return nil
	}
	var pgKey strings.Builder
	last := 0
	for _, tok := range res.GetTokens() {
		switch tok.GetToken() {
		case pg_query.Token_SCONST, pg_query.Token_ICONST, pg_query.Token_FCONST:
			pgKey.WriteString(sql[last:tok.GetStart()])
			pgKey.WriteByte('$')
			last = int(tok.GetEnd())
		case pg_query.Token_BCONST, pg_query.Token_XCONST, pg_query.Token_USCONST, pg_query.Token_PARAM:
			return fmt.Errorf("accepted %q, which holds a %v", sql, tok.GetToken())
		}
	}
	pgKey.WriteString(sql[last:])
	if pgKey.String() != key {
		return fmt.Errorf("quickNormalize(%q) = %q; the PostgreSQL lexer's constants give %q", sql, key, pgKey.String())
	}
	return nil
}

func TestQuickNormalizeMatchesLexer(t *testing.T) {
	for _, sql := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 83412;",
		"select * from t1 where a = 'x''y' and b = 1.5 and c = 2e-3 and d = 1E+4",
		"SELECT \"a'b\", 'c' FROM \"T\"\"x\"", "SELECT date '2020-01-01', 1::int, -7",
		"SELECT 'a' 'b'", "SELECT x ? 'k' FROM t", "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
		"SELECT 1+2*3/4%5^6", "SELECT a[1], b[2:3] FROM t", "SELECT 'x'||'y'", "SELECT 1=-1",
	} {
		if err := checkConstantSpans(sql); err != nil {
			t.Error(err)
		}
		if _, ok := quickNormalize(sql); !ok {
			t.Errorf("quickNormalize gave up on %q", sql)
		}
	}
}

// FuzzQuickNormalize checks the lexer invariant on arbitrary input.
func FuzzQuickNormalize(f *testing.F) {
	for _, s := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 83412;", "SELECT 'a''b', \"c\"\"d\" FROM t",
		"SELECT 1.5e-3, 2E7, 3.25", "SELECT 'a' 'b'", "SELECT x ? 'k'", "SELECT 'a'\n'b'", "SELECT 1::int",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if strings.IndexByte(sql, 0) >= 0 {
			return // the classifier refuses NUL before normalizing
		}
		if err := checkConstantSpans(sql); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	const q = "SELECT abalance FROM pgbench_accounts WHERE aid = 83412;"
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := quickNormalize(q); !ok {
				b.Fatal("gave up")
			}
		}
	})
	b.Run("pg_query", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pg_query.Normalize(q); err != nil {
				b.Fatal(err)
			}
		}
	})
}
