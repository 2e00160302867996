package sqlclass

import "strings"

// quickNormalize is the fast path of normalize: for the plain query texts
// that simple-protocol clients send over and over with a different literal
// each time ("SELECT ... WHERE id = 42"), it replaces every numeric and
// string constant with '$' in Go, which costs a fraction of a call into the
// PostgreSQL lexer.
//
// Two texts with the same key must lex, in PostgreSQL, into the same tokens
// apart from the values of constants; otherwise one would be judged by the
// other's classification. The key keeps every byte outside the constants,
// so this holds exactly when the spans this function treats as constants
// are the spans the PostgreSQL lexer treats as constants. To be sure of
// that, it only accepts texts whose lexing has no context: it gives up
// (ok false; the caller then uses the PostgreSQL lexer) on
//
//   - any byte outside printable ASCII, tab, newline and carriage return;
//   - backslash (escape strings, standard_conforming_strings), '$' (dollar
//     quoting, parameters; '$' is also the placeholder, so a key can never
//     be confused with a text), '&' (U& strings and identifiers with
//     UESCAPE), "--" and "/*" (comments), even inside strings and quoted
//     identifiers;
//   - a string constant with a prefix (E'a', B'1', X'1F', N'a', or an identifier
//     directly before the quote), whose body rules differ from plain
//     strings;
//   - a number that is not digits[.digits][e[+-]digits] standing alone:
//     .5, 1., 0x1F, 1_000, 1e, 12abc, a digit after '.', and the like.
//
// Quoted identifiers are copied verbatim (they are not constants).
func quickNormalize(sql string) (string, bool) {
	if strings.Contains(sql, "--") || strings.Contains(sql, "/*") {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'':
			if i > 0 && isIdentByte(sql[i-1]) {
				return "", false // prefixed or typed-by-identifier string
			}
			end, ok := quotedEnd(sql, i)
			if !ok || continues(sql, end) {
				return "", false
			}
			b.WriteByte('$')
			i = end
		case c == '"':
			end, ok := quotedEnd(sql, i)
			if !ok || end == i+2 { // "" is not an identifier
				return "", false
			}
			b.WriteString(sql[i:end])
			i = end
		case isDigit(c):
			// Identifiers are consumed whole below, so a digit here
			// starts a number, unless a dot precedes it (".5").
			if i > 0 && sql[i-1] == '.' {
				return "", false
			}
			end, ok := numberEnd(sql, i)
			if !ok {
				return "", false
			}
			b.WriteByte('$')
			i = end
		case isIdentStart(c):
			j := i
			for j < len(sql) && isIdentByte(sql[j]) {
				j++
			}
			b.WriteString(sql[i:j])
			i = j
		case refused(c):
			return "", false
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), true
}

// quotedEnd returns the index after the string constant or quoted
// identifier that starts at the quote sql[start] (' or "): a doubled quote
// stands for itself inside.
func quotedEnd(sql string, start int) (int, bool) {
	q := sql[start]
	for i := start + 1; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == q:
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1, true
		case refused(c):
			return 0, false
		}
	}
	return 0, false // unterminated
}

// continues reports whether the string constant that ends before sql[end]
// continues: PostgreSQL joins two string constants separated only by
// whitespace that holds a newline into one constant.
func continues(sql string, end int) bool {
	newline := false
	for i := end; i < len(sql); i++ {
		switch sql[i] {
		case '\n', '\r':
			newline = true
		case ' ', '\t':
		case '\'':
			return newline
		default:
			return false
		}
	}
	return false
}

// numberEnd returns the index after the number starting at the digit
// sql[start], accepting only digits[.digits][(e|E)[+|-]digits] followed by
// a byte that cannot continue a number or identifier.
func numberEnd(sql string, start int) (int, bool) {
	i := digitsEnd(sql, start)
	if i < len(sql) && sql[i] == '.' {
		j := digitsEnd(sql, i+1)
		if j == i+1 {
			return 0, false // "1." or "1.." or "1.e5"
		}
		i = j
	}
	if i < len(sql) && (sql[i] == 'e' || sql[i] == 'E') {
		j := i + 1
		if j < len(sql) && (sql[j] == '+' || sql[j] == '-') {
			j++
		}
		k := digitsEnd(sql, j)
		if k == j {
			return 0, false
		}
		i = k
	}
	if i < len(sql) && (isIdentByte(sql[i]) || sql[i] == '.' || sql[i] == '$') {
		return 0, false
	}
	return i, true
}

func digitsEnd(sql string, i int) int {
	for i < len(sql) && isDigit(sql[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentByte(c byte) bool { return isIdentStart(c) || isDigit(c) }

// refused reports whether c makes quickNormalize give up wherever it
// appears: anything but printable ASCII, tab, newline and carriage return,
// and the bytes whose meaning depends on context (see quickNormalize).
func refused(c byte) bool {
	plain := c == '\t' || c == '\n' || c == '\r' || (c >= ' ' && c <= '~')
	return !plain || c == '\\' || c == '$' || c == '&'
}
