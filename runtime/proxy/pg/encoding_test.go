package pg

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

func TestLexicalToUTF8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, enc, in, want string
		err                 bool
	}{
		{"ascii in any encoding", "SJIS", "SELECT 'a'", "SELECT 'a'", false},
		{"utf8", "UTF8", "SELECT 'é'", "SELECT 'é'", false},
		{"utf8 alias", "unicode", "SELECT 'é'", "SELECT 'é'", false},
		{"invalid utf8", "UTF8", "SELECT '\xff'", "", true},
		{"latin1", "LATIN1", "SELECT '\xe9'", "SELECT 'é'", false},
		{"latin9 euro", "LATIN9", "SELECT '\xa4'", "SELECT '€'", false},
		{"win1252", "WIN1252", "SELECT '\x80'", "SELECT '€'", false},
		{"win1252 undefined byte", "WIN1252", "SELECT '\x81'", "", true},
		// In Shift_JIS the second byte of 0x955C (表) is a backslash: read
		// byte by byte it would escape the closing quote.
		{"sjis trail byte 0x5c", "SJIS", "SELECT '\x95\x5c'", "SELECT '表'", false},
		{"big5 trail byte 0x5c", "BIG5", "SELECT '\xa5\x5c'", "SELECT '功'", false},
		{"sql_ascii high byte", "SQL_ASCII", "SELECT '\xe9'", "", true},
		{"unsupported encoding", "MULE_INTERNAL", "SELECT '\xe9'", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := lexical{clientEncoding: tc.enc, serverEncoding: "UTF8"}
			got, err := l.toUTF8(tc.in)
			if tc.err {
				if !errors.Is(err, ErrEncoding) {
					t.Fatalf("got %q, %v; want ErrEncoding", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestLexicalKeys(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 70)
	l := lexical{clientEncoding: "UTF8", serverEncoding: "UTF8"}
	if k, ok := l.key(long); !ok || k != long[:63] {
		t.Fatalf("long name: %q %v", k, ok)
	}
	l = lexical{clientEncoding: "LATIN1", serverEncoding: "UTF8"}
	if k, ok := l.key("\xe9t\xe9"); !ok || k != "été" {
		t.Fatalf("latin1 name on a UTF-8 server: %q %v", k, ok)
	}
	l = lexical{clientEncoding: "UTF8", serverEncoding: "LATIN1"}
	if k, ok := l.key("été"); !ok || k != "\xe9t\xe9" {
		t.Fatalf("UTF-8 name on a LATIN1 server: %q %v", k, ok)
	}
	if _, ok := l.sqlKey(strings.Repeat("é", 31)); ok {
		t.Fatal("a long non-ASCII SQL name on a LATIN1 server was accepted; the parser may have cut it elsewhere")
	}
	if k, ok := l.sqlKey("été"); !ok || k != "\xe9t\xe9" {
		t.Fatalf("short SQL name: %q %v", k, ok)
	}
}

func TestLexicalCheckAndChanges(t *testing.T) {
	t.Parallel()
	off := lexical{scsOff: true}
	if err := off.check(`SELECT 'a\'' ; DELETE FROM orders; --'`); err == nil {
		t.Fatal("a backslash with standard_conforming_strings off was accepted")
	}
	if err := off.check(`SELECT 'plain'`); err != nil {
		t.Fatalf("a text without backslashes: %v", err)
	}
	on := lexical{}
	if err := on.check(`SELECT 'a\'`); err != nil {
		t.Fatalf("standard_conforming_strings on: %v", err)
	}
	c, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for sql, want := range map[string]bool{
		"SET standard_conforming_strings = off": true,
		"SET NAMES 'LATIN1'":                    true,
		"SET client_encoding TO 'SJIS'":         true,
		"RESET ALL":                             true,
		"DISCARD ALL":                           true,
		"SELECT set_config('client_encoding', 'LATIN1', false)": true,
		"SET search_path = public":                              false,
		"DISCARD PLANS":                                         false,
		"SELECT 1":                                              false,
	} {
		stmts, err := c.Classify(sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := changesLexical(&stmts[0]); got != want {
			t.Errorf("%s: changesLexical %v, want %v", sql, got, want)
		}
	}
}
