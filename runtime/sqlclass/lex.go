package sqlclass

import "strings"

// Tokens of lexToken.
const (
	tokEOF = iota
	// tokUnterminated is a string, quoted identifier or comment without
	// its end; the parser rejects the text.
	tokUnterminated
	tokComment
	tokString // '', E'', B'', X'', N'', U&'', $$...$$
	tokQuotedIdent
	tokParam
	tokNumber
	tokWord // identifier or keyword
	tokOperator
	tokTypecast    // ::
	tokColonEquals // :=
	tokColon
	tokDot
	tokDotDot
	tokOpen
	tokClose
	tokOpenBracket
	tokCloseBracket
	tokComma
	tokSemicolon
	tokOther
)

// lexToken skips the whitespace at sql[i:] and returns the next token and
// its span. It follows the lexer libpg_query parses with (PostgreSQL's
// scan.l with standard_conforming_strings on and libpg_query's change that
// makes comments tokens, so a comment does not join two string constants):
//
//   - comments: -- to the end of the line; /* */, nested;
//   - string constants: ” with a doubled quote for a quote; E” where a
//     backslash also escapes the next byte; B”, X”, N”, U&” (a prefix
//     is a one-letter word directly before the quote, as scan.l's longest
//     match makes it); a string continues across whitespace that holds a
//     newline (no comments) into a following quote, lexed the same way;
//     dollar quoting, $tag$ ... $tag$, where a '$' directly after an
//     identifier byte belongs to the identifier;
//   - quoted identifiers "" and U&"";
//   - parameters $1; numbers; identifiers (letters, '_', bytes >= 0x80,
//     then also digits and '$');
//   - operators: a run of op_chars, cut before a comment start (see
//     operatorTokens for how many tokens it makes); '::', ':=', '..'.
//
// Nothing it treats as a literal or comment is code to libpg_query: the
// tests compare it with libpg_query's own scanner.
func lexToken(sql string, i int) (tok, start, end int) {
	n := len(sql)
	for i < n && isSpace(sql[i]) {
		i++
	}
	if i >= n {
		return tokEOF, n, n
	}
	start = i
	c := sql[i]
	switch {
	case c == '-' && i+1 < n && sql[i+1] == '-':
		for i < n && sql[i] != '\n' && sql[i] != '\r' {
			i++
		}
		return tokComment, start, i
	case c == '/' && i+1 < n && sql[i+1] == '*':
		depth := 1
		i += 2
		for depth > 0 {
			if i+1 >= n {
				return tokUnterminated, start, n
			}
			switch {
			case sql[i] == '/' && sql[i+1] == '*':
				depth++
				i += 2
			case sql[i] == '*' && sql[i+1] == '/':
				depth--
				i += 2
			default:
				i++
			}
		}
		return tokComment, start, i
	case c == '\'':
		return stringToken(sql, start, i+1, strPlain)
	case c == '"':
		return quotedIdentToken(sql, start, i+1)
	case c == '$':
		j := i + 1
		if j < n && isDigit(sql[j]) {
			for j < n && isDigit(sql[j]) {
				j++
			}
			return tokParam, start, j
		}
		if tagEnd, ok := dollarTagEnd(sql, i); ok {
			tag := sql[i:tagEnd]
			k := strings.Index(sql[tagEnd:], tag)
			if k < 0 {
				return tokUnterminated, start, n
			}
			return tokString, start, tagEnd + k + len(tag)
		}
		return tokOther, start, i + 1
	case isDigit(c) || (c == '.' && i+1 < n && isDigit(sql[i+1])):
		return tokNumber, start, lexNumberEnd(sql, i)
	case isWordStart(c):
		j := i + 1
		for j < n && isWordByte(sql[j]) {
			j++
		}
		if j == i+1 && j < n {
			l := c | 0x20
			switch {
			case sql[j] == '\'' && l == 'e':
				return stringToken(sql, start, j+1, strE)
			case sql[j] == '\'' && (l == 'b' || l == 'x'):
				return stringToken(sql, start, j+1, strBits)
			case l == 'u' && sql[j] == '&' && j+1 < n && sql[j+1] == '\'':
				return stringToken(sql, start, j+2, strPlain)
			case l == 'u' && sql[j] == '&' && j+1 < n && sql[j+1] == '"':
				return quotedIdentToken(sql, start, j+2)
			}
		}
		return tokWord, start, j
	case c == '(':
		return tokOpen, start, i + 1
	case c == ')':
		return tokClose, start, i + 1
	case c == '[':
		return tokOpenBracket, start, i + 1
	case c == ']':
		return tokCloseBracket, start, i + 1
	case c == ',':
		return tokComma, start, i + 1
	case c == ';':
		return tokSemicolon, start, i + 1
	case c == '.':
		if i+1 < n && sql[i+1] == '.' {
			return tokDotDot, start, i + 2
		}
		return tokDot, start, i + 1
	case c == ':':
		if i+1 < n && sql[i+1] == ':' {
			return tokTypecast, start, i + 2
		}
		if i+1 < n && sql[i+1] == '=' {
			return tokColonEquals, start, i + 2
		}
		return tokColon, start, i + 1
	case isOpChar(c):
		j := i + 1
		for j < n && isOpChar(sql[j]) {
			if j+1 < n && ((sql[j] == '-' && sql[j+1] == '-') || (sql[j] == '/' && sql[j+1] == '*')) {
				break
			}
			j++
		}
		return tokOperator, start, j
	}
	return tokOther, start, i + 1
}

// Kinds of string constant bodies.
const (
	strPlain = iota // '', U&'' and N'' (N is a token of its own)
	strE            // E'': a backslash escapes the next byte
	strBits         // B'' and X'': no doubled quotes, the string ends at a quote
)

// stringToken lexes a string constant whose body starts at sql[i].
func stringToken(sql string, start, i, kind int) (int, int, int) {
	end, ok := stringEnd(sql, i, kind)
	if !ok {
		return tokUnterminated, start, len(sql)
	}
	return tokString, start, end
}

// quotedIdentToken lexes a quoted identifier whose body starts at sql[i].
func quotedIdentToken(sql string, start, i int) (int, int, int) {
	for i < len(sql) {
		if sql[i] == '"' {
			if i+1 < len(sql) && sql[i+1] == '"' {
				i += 2
				continue
			}
			return tokQuotedIdent, start, i + 1
		}
		i++
	}
	return tokUnterminated, start, len(sql)
}

// stringEnd returns the index after the string constant whose body starts
// at sql[i]: a doubled quote stands for a quote (except in B” and X”); in
// an E” string a backslash escapes the next byte. A string continues past
// its closing quote when only whitespace holding a newline separates it
// from another quote; the continuation is lexed like the beginning, so
// E'a'<newline>'\” is one string.
func stringEnd(sql string, i int, kind int) (int, bool) {
	for i < len(sql) {
		switch sql[i] {
		case '\\':
			if kind == strE {
				i += 2
				continue
			}
		case '\'':
			if kind != strBits && i+1 < len(sql) && sql[i+1] == '\'' {
				i += 2
				continue
			}
			if k, ok := continuation(sql, i+1); ok {
				i = k
				continue
			}
			return i + 1, true
		}
		i++
	}
	return 0, false
}

// continuation reports whether a quote continuing a string constant
// follows sql[i:] (scan.l quotecontinue, {whitespace_with_newline}{quote},
// which libpg_query narrows to horizontal space, a newline, then any
// space), and returns the index after that quote.
func continuation(sql string, i int) (int, bool) {
	newline := false
	for ; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\n' || c == '\r':
			newline = true
		case isSpace(c):
		case c == '\'' && newline:
			return i + 1, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// dollarTagEnd reports whether a dollar-quote delimiter ($$ or $tag$,
// scan.l dolqdelim) starts at sql[i] (a '$'), and returns the index after
// it.
func dollarTagEnd(sql string, i int) (int, bool) {
	j := i + 1
	if j < len(sql) && isWordStart(sql[j]) {
		j++
		for j < len(sql) && (isWordStart(sql[j]) || isDigit(sql[j])) {
			j++
		}
	}
	if j < len(sql) && sql[j] == '$' {
		return j + 1, true
	}
	return 0, false
}

// lexNumberEnd returns the index after the numeric constant starting at
// sql[i] (a digit, or a '.' before a digit), as scan.l's decinteger,
// numeric and real rules take it: digits and '_', a '.' not followed by
// another '.', more digits, an exponent with an optional sign; then any
// letters, digits and '_' (hexadecimal, octal and binary integers, and the
// trailing junk the lexer rejects).
func lexNumberEnd(sql string, i int) int {
	n := len(sql)
	digits := func() {
		for i < n && (isDigit(sql[i]) || sql[i] == '_') {
			i++
		}
	}
	digits()
	if i < n && sql[i] == '.' && !(i+1 < n && sql[i+1] == '.') {
		i++
		digits()
	}
	if i < n && sql[i]|0x20 == 'e' {
		j := i + 1
		if j < n && (sql[j] == '+' || sql[j] == '-') {
			j++
		}
		if j < n && isDigit(sql[j]) {
			i = j
			digits()
		}
	}
	for i < n && (isDigit(sql[i]) || sql[i] == '_' || (sql[i]|0x20 >= 'a' && sql[i]|0x20 <= 'z')) {
		i++
	}
	return i
}

// isSpace reports whether c is scan.l whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isWordStart reports whether c starts an identifier or keyword (scan.l
// ident_start: letters, '_', and every byte of a multibyte character).
func isWordStart(c byte) bool {
	return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80
}

// isWordByte reports whether c continues an identifier (ident_cont: also
// digits and '$').
func isWordByte(c byte) bool { return isWordStart(c) || isDigit(c) || c == '$' }

// isOpChar reports whether c is one of scan.l's op_chars.
func isOpChar(c byte) bool {
	switch c {
	case '~', '!', '@', '#', '^', '&', '|', '`', '?', '+', '-', '*', '/', '%', '<', '>', '=':
		return true
	}
	return false
}

// operatorTokens returns how many operator tokens scan.l makes of a run of
// op_chars (free of comment starts after its first byte). scan.l takes the
// whole run as one operator unless it ends in '+' or '-' and holds none of
// ~ ! @ # % ^ & | ` ?; then it drops the trailing signs (keeping at least
// one character) and lexes the rest again. So such a run is one operator up
// to its last character that is not a sign (or its first character, if all
// are signs), then one operator per remaining sign.
func operatorTokens(run string) int {
	last := run[len(run)-1]
	if last != '+' && last != '-' {
		return 1
	}
	p := -1
	for i := 0; i < len(run); i++ {
		switch run[i] {
		case '~', '!', '@', '#', '^', '&', '|', '`', '?', '%':
			return 1
		case '+', '-':
		default:
			p = i
		}
	}
	if p < 0 {
		return len(run)
	}
	return 1 + len(run) - (p + 1)
}
