package sqlclass

import (
	"path/filepath"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// lexCases are texts whose lexing is easy to get wrong.
var lexCases = []string{
	`SELECT 'a''b', 'a\', E'a\'b', e'\\', E'a''b\'c'`,
	"SELECT E'a'\n'b\\'c', 'a'\v\n'b', 'x'\n\v'y', 'a' -- c\n 'b'",
	"SELECT E'a' \n\t 'b\\'' || 'c'",
	"SELECT 'a'\r'b', 'a'  'b'",
	`SELECT B'01''10', X'1F', N'x''y', U&'\0061''x' UESCAPE '!'`,
	`SELECT U&"a""b", "a""b", "", xE'a', be'x', ue&'x'`,
	`SELECT $$a'b$$, $a$x$$y$a$, $a$ $b$ $a$, $1, $12abc, a$b$c, $ab, $é$x$é$`,
	"SELECT $a$x$ax$a$ FROM t",
	"SELECT 1 /* a /* nested */ still */ + 2 -- end",
	"SELECT 1 /* x */ /* y */-- z\n+/*a*/+ 2",
	"SELECT -+-+-x, *+-x, @-x, <=>-x, ~~-x, !=-, <>+, %+-, |/-, =>, ::, :=, .., a.b, x[1:2]",
	"SELECT 1*/* c */2, 1+--c\n2, 3-/*x*/-4",
	"SELECT 1., .5, 1.5e10, 1e-5, 1E+5, 0x1F, 0o17, 0b101, 1_000, 1..2, 1.e5, 1.5.5",
	"SELECT t.and, t.OR, AND, Union, uNiOn, \"union\", union_x, xunion",
	"SELECT CASE WHEN a THEN b ELSE c END, BEGIN, ATOMIC, begin_atomic",
	"SELECT ſelect, Kase, \u212aase",
	"SELECT \x80\xff, é, 'é', \"é\"",
	"SELECT 'unterminated",
	"SELECT \"unterminated",
	"SELECT /* unterminated",
	"SELECT $x$ unterminated",
	"SELECT E'unterminated\\'",
	"SELECT `a`, ?a, #a, \\a, {a}",
}

// scanSpans returns libpg_query's view of a text: the spans of its
// literals (strings, quoted identifiers, comments), of its keywords, and
// its operator tokens. ok is false when its scanner rejects the text.
func scanSpans(t testing.TB, sql string) (lits, kws map[[2]int]bool, ops []int, ok bool) {
	t.Helper()
	res, err := pg_query.Scan(sql)
	if err != nil {
		return nil, nil, nil, false
	}
	lits, kws = map[[2]int]bool{}, map[[2]int]bool{}
	for _, tk := range res.GetTokens() {
		s, e := int(tk.GetStart()), int(tk.GetEnd())
		span := [2]int{s, e}
		switch tk.GetToken() {
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT, pg_query.Token_UIDENT:
			lits[span] = true
		case pg_query.Token_IDENT:
			if sql[s] == '"' {
				lits[span] = true
			}
		case pg_query.Token_Op, pg_query.Token_LESS_EQUALS, pg_query.Token_GREATER_EQUALS,
			pg_query.Token_NOT_EQUALS, pg_query.Token_EQUALS_GREATER:
			ops = append(ops, s)
		default:
			if tk.GetKeywordKind() != pg_query.KeywordKind_NO_KEYWORD {
				kws[span] = true
			} else if e == s+1 && isOpChar(sql[s]) {
				ops = append(ops, s)
			}
		}
	}
	return lits, kws, ops, true
}

// compareLexer fails if lexToken disagrees with libpg_query's scanner on
// what is a literal, what is a keyword, or how many operator tokens a run
// holds.
func compareLexer(t testing.TB, sql string) {
	t.Helper()
	lits, kws, ops, ok := scanSpans(t, sql)
	if !ok {
		return
	}
	mine := map[[2]int]bool{}
	for i := 0; ; {
		tok, s, e := lexToken(sql, i)
		if tok == tokEOF {
			break
		}
		if tok == tokUnterminated {
			t.Errorf("%q: unterminated at %d, libpg_query's scanner accepts the text", clip(sql), s)
			return
		}
		span := [2]int{s, e}
		switch tok {
		case tokString, tokQuotedIdent, tokComment:
			mine[span] = true
			if !lits[span] {
				t.Errorf("%q: literal %q at %d is not a literal to libpg_query", clip(sql), sql[s:e], s)
			}
		case tokWord:
			if keyword(sql[s:e]) != kwNone && !kws[span] {
				t.Errorf("%q: keyword %q at %d is not a keyword to libpg_query", clip(sql), sql[s:e], s)
			}
			delete(kws, span)
		case tokOperator:
			n := 0
			for _, o := range ops {
				if o >= s && o < e {
					n++
				}
			}
			if got := operatorTokens(sql[s:e]); got != n {
				t.Errorf("%q: operator run %q at %d counts %d tokens, libpg_query has %d", clip(sql), sql[s:e], s, got, n)
			}
		}
		i = e
	}
	for span := range lits {
		if !mine[span] {
			t.Errorf("%q: libpg_query literal %q at %d missed", clip(sql), sql[span[0]:span[1]], span[0])
		}
	}
	for span := range kws {
		if keyword(sql[span[0]:span[1]]) != kwNone {
			t.Errorf("%q: libpg_query keyword %q at %d missed", clip(sql), sql[span[0]:span[1]], span[0])
		}
	}
}

func TestLexAgainstScanner(t *testing.T) {
	t.Parallel()
	cases := append(append([]string(nil), lexCases...), boundCases...)
	files, err := filepath.Glob("testdata/classify/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		for _, c := range readCases(t, file) {
			cases = append(cases, c.Input)
		}
	}
	for _, sql := range cases {
		compareLexer(t, sql)
	}
}

func TestLexUnterminated(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{"'a", `E'a\'`, `"a`, "/* a /* */", "$x$ a", `U&"a`, "x'1", "SELECT 'a'\n'b"} {
		found := false
		for i := 0; ; {
			tok, _, e := lexToken(sql, i)
			if tok == tokEOF {
				break
			}
			found = found || tok == tokUnterminated
			i = e
		}
		if !found {
			t.Errorf("%q: no unterminated token", sql)
		}
		if _, err := pg_query.Scan(sql); err == nil {
			t.Errorf("%q: libpg_query's scanner accepts it", sql)
		}
	}
}

func TestOperatorTokens(t *testing.T) {
	t.Parallel()
	for run, want := range map[string]int{
		"+": 1, "-+-+-": 5, "*+-": 3, "<=+": 2, "@-": 1, "%+-": 1, "->>": 1, "||": 1,
		"=>": 1, "<=>-": 2, "+-*": 1, "~~-": 1, "!=-": 1, "<>+": 2, "++": 2,
	} {
		if got := operatorTokens(run); got != want {
			t.Errorf("operatorTokens(%q) = %d, want %d", run, got, want)
		}
		compareLexer(t, "SELECT 1 "+run+" 1")
	}
	if testing.Short() {
		return
	}
	long := strings.Repeat("+-", 1<<19)
	if got := operatorTokens(long); got != len(long) {
		t.Errorf("long sign run: %d tokens, want %d", got, len(long))
	}
}
