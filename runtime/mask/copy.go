package mask

import "bytes"

// RewriteCopyLine applies the plan to one line of COPY text format: fields
// separated by tabs, "\N" for NULL, backslash escapes inside fields. The
// line may end with "\n" (kept). Fields the plan leaves alone keep their
// exact bytes; changed fields are decoded, rewritten and re-encoded. Lines
// with more fields than the plan have the extra fields set to NULL. The
// input is not modified; it is returned as is when nothing changes.
func (p *Plan) RewriteCopyLine(line []byte) []byte {
	if !p.Active() {
		return line
	}
	body, nl := line, false
	if n := len(body); n > 0 && body[n-1] == '\n' {
		body, nl = body[:n-1], true
		if n := len(body); n > 0 && body[n-1] == '\r' {
			// "\r\n" line endings: a data "\r" would have been escaped.
			body = body[:n-1]
		}
	}
	if len(body) == 0 && len(p.Columns) == 0 {
		return line
	}
	var out []byte
	start, col := 0, 0
	for i := 0; i <= len(body); i++ {
		if i < len(body) && body[i] != '\t' {
			continue
		}
		field := body[start:i]
		nf, changed := p.copyField(col, field)
		if changed && out == nil {
			out = make([]byte, 0, len(line)+16)
			out = append(out, body[:start]...)
		}
		if out != nil {
			out = append(out, nf...)
			if i < len(body) {
				out = append(out, '\t')
			}
		}
		start = i + 1
		col++
	}
	if out == nil {
		return line
	}
	if nl {
		out = append(out, line[len(body):]...)
	}
	return out
}

var copyNull = []byte(`\N`)

// copyField rewrites one raw COPY field.
func (p *Plan) copyField(col int, raw []byte) ([]byte, bool) {
	if bytes.Equal(raw, copyNull) {
		return raw, false
	}
	if col >= len(p.Columns) {
		return copyNull, true
	}
	cp := &p.Columns[col]
	if cp.Action == Clear && p.classifiers.Len() == 0 && !(cp.JSON && len(p.paths) > 0) {
		return raw, false
	}
	v := decodeCopy(raw)
	nv := p.rewriteValue(cp, v)
	if nv == nil {
		return copyNull, true
	}
	if bytes.Equal(nv, v) {
		return raw, false
	}
	return encodeCopy(nil, nv), true
}

// decodeCopy decodes COPY text escapes: \b \f \n \r \t \v \\, octal \ddd,
// hex \xhh; any other escaped character stands for itself.
func decodeCopy(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 == len(raw) {
			out = append(out, c)
			continue
		}
		i++
		c = raw[i]
		switch c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(raw) && isHex(raw[i+1]) {
				i++
				v = v*16 + hexVal(raw[i])
				n++
			}
			if n == 0 {
				out = append(out, 'x')
			} else {
				out = append(out, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(raw) && raw[i+1] >= '0' && raw[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(raw[i]-'0')
			}
			out = append(out, byte(v))
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// encodeCopy escapes a value for COPY text format.
func encodeCopy(dst, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\v':
			dst = append(dst, '\\', 'v')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
