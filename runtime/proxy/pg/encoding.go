package pg

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/transform"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// lexical holds the session settings that decide how the backend reads SQL
// text: the client encoding (the backend converts every text the client
// sends, SQL and names, to its own encoding before it lexes it) and
// standard_conforming_strings (whether a backslash in '...' escapes). The
// gateway takes them from the backend's ParameterStatus reports, never
// from what the client asked for, and classifies with them:
//
//   - Text is converted from the client encoding to UTF-8 (the classifier's
//     encoding) with a strict decoder; text the decoder rejects is refused,
//     as the backend would reject it. In every encoding PostgreSQL accepts,
//     bytes below 0x80 that are not part of a multibyte character are
//     ASCII, so a pure-ASCII text needs no conversion at all.
//   - With standard_conforming_strings off, a text with a backslash is
//     classified with the parser set the same way when the classifier
//     offers it; otherwise it is refused with the reason, and texts
//     without backslashes (which both settings read alike) pass.
type lexical struct {
	clientEncoding string
	serverEncoding string
	scsOff         bool
}

// set records a ParameterStatus report.
func (l *lexical) set(name, value string) {
	switch strings.ToLower(name) {
	case "client_encoding":
		l.clientEncoding = value
	case "server_encoding":
		l.serverEncoding = value
	case "standard_conforming_strings":
		l.scsOff = !strings.EqualFold(value, "on")
	}
}

// ErrEncoding refuses a text the gateway cannot convert exactly as the
// backend would (SQLSTATE 22021 character_not_in_repertoire).
var ErrEncoding = errors.New("gatehouse cannot read the text in the session's client encoding")

// decoders maps PostgreSQL encoding names (normalised: upper case, no
// separators) to strict decoders. Encodings not listed are accepted only
// for pure-ASCII text.
var decoders = map[string]encoding.Encoding{
	"LATIN1": charmap.ISO8859_1, "LATIN2": charmap.ISO8859_2, "LATIN3": charmap.ISO8859_3,
	"LATIN4": charmap.ISO8859_4, "LATIN5": charmap.ISO8859_9, "LATIN6": charmap.ISO8859_10,
	"LATIN7": charmap.ISO8859_13, "LATIN8": charmap.ISO8859_14, "LATIN9": charmap.ISO8859_15,
	"LATIN10": charmap.ISO8859_16, "ISO88595": charmap.ISO8859_5, "ISO88596": charmap.ISO8859_6,
	"ISO88597": charmap.ISO8859_7, "ISO88598": charmap.ISO8859_8,
	"WIN1250": charmap.Windows1250, "WIN1251": charmap.Windows1251, "WIN1252": charmap.Windows1252,
	"WIN1253": charmap.Windows1253, "WIN1254": charmap.Windows1254, "WIN1255": charmap.Windows1255,
	"WIN1256": charmap.Windows1256, "WIN1257": charmap.Windows1257, "WIN1258": charmap.Windows1258,
	"WIN866": charmap.CodePage866, "WIN874": charmap.Windows874,
	"KOI8R": charmap.KOI8R, "KOI8U": charmap.KOI8U,
	"EUCJP": japanese.EUCJP, "SJIS": japanese.ShiftJIS,
	"EUCKR": korean.EUCKR, "UHC": korean.EUCKR,
	"EUCCN": simplifiedchinese.GBK, "GBK": simplifiedchinese.GBK, "GB18030": simplifiedchinese.GB18030,
	"BIG5": traditionalchinese.Big5,
}

// aliases maps other names PostgreSQL accepts to the canonical one.
var aliases = map[string]string{
	"UNICODE": "UTF8", "ISO88591": "LATIN1", "ISO88592": "LATIN2", "ISO88593": "LATIN3",
	"ISO88594": "LATIN4", "ISO88599": "LATIN5", "ISO885910": "LATIN6", "ISO885913": "LATIN7",
	"ISO885914": "LATIN8", "ISO885915": "LATIN9", "ISO885916": "LATIN10",
	"WIN": "WIN1251", "WINDOWS1250": "WIN1250", "WINDOWS1251": "WIN1251", "WINDOWS1252": "WIN1252",
	"WINDOWS1253": "WIN1253", "WINDOWS1254": "WIN1254", "WINDOWS1255": "WIN1255",
	"WINDOWS1256": "WIN1256", "WINDOWS1257": "WIN1257", "WINDOWS1258": "WIN1258",
	"WINDOWS866": "WIN866", "WINDOWS874": "WIN874", "KOI8": "KOI8R", "ALT": "WIN866",
	"SHIFTJIS": "SJIS", "MSKANJI": "SJIS", "WIN932": "SJIS", "WINDOWS932": "SJIS",
	"WIN936": "GBK", "WINDOWS936": "GBK", "CP936": "GBK", "WIN949": "UHC", "WINDOWS949": "UHC",
	"WIN950": "BIG5", "WINDOWS950": "BIG5", "TCVN": "WIN1258", "TCVN5712": "WIN1258",
	"VSCII": "WIN1258", "ABC": "WIN1258",
}

// normEncoding returns PostgreSQL's canonical spelling of an encoding name.
func normEncoding(name string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "", "_", "", " ", "").Replace(name))
	if a, ok := aliases[n]; ok {
		return a
	}
	return n
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// toUTF8 converts a text the client sent into UTF-8 as the backend reads
// it, or refuses it.
func (l *lexical) toUTF8(s string) (string, error) {
	if isASCII(s) {
		return s, nil
	}
	enc := normEncoding(l.clientEncoding)
	switch enc {
	case "", "UTF8":
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("%w: invalid UTF-8", ErrEncoding)
		}
		return s, nil
	case "SQLASCII":
		return "", fmt.Errorf("%w: client_encoding SQL_ASCII carries no encoding for bytes above 0x7F", ErrEncoding)
	}
	dec, ok := decoders[enc]
	if !ok {
		return "", fmt.Errorf("%w: client_encoding %s is not supported for text beyond ASCII; use UTF8", ErrEncoding, l.clientEncoding)
	}
	out, _, err := transform.String(strictDecoder{dec.NewDecoder()}, s)
	if err != nil {
		return "", fmt.Errorf("%w: not valid %s", ErrEncoding, l.clientEncoding)
	}
	return out, nil
}

// strictDecoder fails on input the encoding cannot represent instead of
// substituting U+FFFD, since the backend rejects such input.
type strictDecoder struct{ t transform.Transformer }

func (d strictDecoder) Reset() { d.t.Reset() }

func (d strictDecoder) Transform(dst, src []byte, atEOF bool) (int, int, error) {
	nDst, nSrc, err := d.t.Transform(dst, src, atEOF)
	if bytes.Contains(dst[:nDst], []byte("\uFFFD")) && !bytes.Contains(src[:nSrc], []byte("\uFFFD")) {
		return nDst, nSrc, errors.New("invalid byte sequence")
	}
	return nDst, nSrc, err
}

// key returns the name of a prepared statement or portal as the backend
// keys it: converted to the server encoding, then cut to 63 bytes. ok is
// false when the gateway cannot convert it exactly (the reference is then
// refused).
func (l *lexical) key(name string) (string, bool) {
	if isASCII(name) {
		return nameKey(name), true
	}
	client, server := normEncoding(l.clientEncoding), normEncoding(l.serverEncoding)
	if client == server || client == "" && server == "UTF8" {
		return nameKey(name), true
	}
	u, err := l.toUTF8(name)
	if err != nil {
		return "", false
	}
	if server == "UTF8" {
		return nameKey(u), true
	}
	enc, ok := decoders[server]
	if !ok {
		return "", false
	}
	out, err := enc.NewEncoder().String(u)
	if err != nil {
		return "", false
	}
	return nameKey(out), true
}

// sqlKey returns the name of a prepared statement or cursor given in SQL
// (already lexed to UTF-8 and cut to 63 bytes by the parser) as the backend
// keys it. With a server encoding other than UTF-8, a long non-ASCII name
// may have been cut at another character than the backend cuts it, so it
// cannot be compared exactly.
func (l *lexical) sqlKey(name string) (string, bool) {
	server := normEncoding(l.serverEncoding)
	if isASCII(name) || server == "UTF8" || server == "" {
		return nameKey(name), true
	}
	if len(name) >= maxNameLen-3 {
		return "", false
	}
	enc, ok := decoders[server]
	if !ok {
		return "", false
	}
	out, err := enc.NewEncoder().String(name)
	if err != nil {
		return "", false
	}
	return nameKey(out), true
}

// check refuses what the classifier would read differently from the
// backend under the current settings.
func (l *lexical) check(utf8Text string) error {
	if l.scsOff && strings.IndexByte(utf8Text, '\\') >= 0 {
		return &Error{Code: "0A000", Message: "gatehouse denied the command: with standard_conforming_strings off a backslash in a string literal escapes, and the gateway classifies only texts both settings read alike",
			Hint: "Use E'...' strings for escapes and SET standard_conforming_strings = on, or avoid backslashes."}
	}
	return nil
}

// changesLexical reports whether st may change a lexical setting when it
// runs: SET/RESET of client_encoding (SET NAMES) or
// standard_conforming_strings, RESET ALL, DISCARD ALL, or a call of
// set_config. After such a statement the gateway classifies nothing more
// until the backend has reported the outcome.
func changesLexical(st *sqlclass.Statement) bool {
	switch st.Kind {
	case "set", "reset":
		switch strings.ToLower(st.Name) {
		case "client_encoding", "standard_conforming_strings", "":
			return true
		}
		return st.SubKind == "reset all"
	case "utility":
		return st.SubKind == "discard all"
	}
	for _, f := range st.Functions {
		if f == "set_config" || f == "pg_catalog.set_config" {
			return true
		}
	}
	return false
}

// changesSearchPath reports whether st may change where unqualified names
// resolve: SET/RESET of search_path, RESET ALL, DISCARD ALL, set_config,
// and changes of the current role (which "$user" in the path follows).
// The session's search path is unknown to the gateway from then on.
func changesSearchPath(st *sqlclass.Statement) bool {
	switch st.Kind {
	case "set", "reset":
		switch strings.ToLower(st.Name) {
		case "search_path", "role", "session_authorization", "":
			return true
		}
		return st.SubKind == "reset all" || st.SubKind == "set role" || st.SubKind == "reset role" ||
			st.SubKind == "set session authorization" || st.SubKind == "reset session authorization"
	case "utility":
		return st.SubKind == "discard all"
	}
	for _, f := range st.Functions {
		if f == "set_config" || f == "pg_catalog.set_config" {
			return true
		}
	}
	return false
}
