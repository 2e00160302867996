package mask

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxJSONDepth bounds the nesting of JSON values the masker rewrites;
// deeper values are masked whole.
const maxJSONDepth = 128

// jsonPath is a parsed path: "$.a.b", "$.items[*].ssn", "$.a[0]",
// "$['x y']".
type jsonPath []pathSeg

type pathSeg struct {
	key   string
	index int  // for array steps; -1 = [*]
	array bool // array step
}

func parseJSONPath(s string) (jsonPath, error) {
	bad := func(why string) error {
		return fmt.Errorf("mask: JSON path %q: %s: %w", s, why, ErrConfig)
	}
	if !strings.HasPrefix(s, "$") {
		return nil, bad("must start with $")
	}
	rest := s[1:]
	var p jsonPath
	for rest != "" {
		switch {
		case rest[0] == '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			if end == 0 {
				return nil, bad("empty key")
			}
			k := rest[:end]
			if k == "*" {
				p = append(p, pathSeg{key: "*"})
			} else {
				p = append(p, pathSeg{key: k})
			}
			rest = rest[end:]
		case strings.HasPrefix(rest, "[*]"):
			p = append(p, pathSeg{array: true, index: -1})
			rest = rest[3:]
		case strings.HasPrefix(rest, "['"):
			end := strings.Index(rest, "']")
			if end < 0 {
				return nil, bad("unterminated ['...']")
			}
			p = append(p, pathSeg{key: rest[2:end]})
			rest = rest[end+2:]
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, bad("unterminated [")
			}
			n, err := strconv.Atoi(rest[1:end])
			if err != nil || n < 0 {
				return nil, bad("bad index")
			}
			p = append(p, pathSeg{array: true, index: n})
			rest = rest[end+1:]
		default:
			return nil, bad("unexpected " + strconv.Quote(rest[:1]))
		}
	}
	if len(p) == 0 {
		return nil, bad("path selects the whole value; mask the column instead")
	}
	return p, nil
}

// jv is a JSON value that keeps object key order.
type jv struct {
	kind byte // '{', '[', 's', 'r' (raw literal: number, true, false, null)
	keys []string
	vals []*jv
	str  string
}

// rewriteJSON masks the plan's JSON paths and runs the classifiers on the
// string values of a JSON document. ok is false when v is not valid JSON.
// The output keeps key order but not insignificant whitespace.
func (p *Plan) rewriteJSON(v []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	root, err := decodeJV(dec, 0)
	if err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	changed := false
	for _, path := range p.paths {
		changed = p.maskPath(root, path) || changed
	}
	if p.classifiers.Len() > 0 {
		changed = p.classifyJV(root) || changed
	}
	if !changed {
		return v, true
	}
	return appendJV(make([]byte, 0, len(v)), root), true
}

func decodeJV(dec *json.Decoder, depth int) (*jv, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &jv{kind: '{'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				val, err := decodeJV(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k)
				o.vals = append(o.vals, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			a := &jv{kind: '['}
			for dec.More() {
				val, err := decodeJV(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a.vals = append(a.vals, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
		return nil, fmt.Errorf("unexpected delimiter %v", t)
	case string:
		return &jv{kind: 's', str: t}, nil
	case json.Number:
		return &jv{kind: 'r', str: t.String()}, nil
	case bool:
		return &jv{kind: 'r', str: strconv.FormatBool(t)}, nil
	case nil:
		return &jv{kind: 'r', str: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// maskPath replaces every value the path selects with the mask string.
func (p *Plan) maskPath(v *jv, path jsonPath) bool {
	if v == nil || len(path) == 0 {
		return false
	}
	seg, rest := path[0], path[1:]
	changed := false
	visit := func(parent *jv, i int) {
		child := parent.vals[i]
		if len(rest) == 0 {
			if child.kind == 'r' && child.str == "null" {
				return
			}
			parent.vals[i] = p.maskedJV(child)
			changed = true
			return
		}
		changed = p.maskPath(child, rest) || changed
	}
	switch {
	case seg.array && v.kind == '[':
		for i := range v.vals {
			if seg.index < 0 || seg.index == i {
				visit(v, i)
			}
		}
	case !seg.array && v.kind == '{':
		for i, k := range v.keys {
			if seg.key == "*" || k == seg.key {
				visit(v, i)
			}
		}
	}
	return changed
}

// maskedJV is the mask of a JSON value: a string in the plan's style.
func (p *Plan) maskedJV(v *jv) *jv {
	if p.style == StyleRedact || p.style == "" {
		return &jv{kind: 's', str: RedactText}
	}
	raw := v.str
	if v.kind == '{' || v.kind == '[' {
		raw = string(appendJV(nil, v))
	}
	return &jv{kind: 's', str: string(appendMasked(nil, p.style, p.key, []byte(raw)))}
}

func (p *Plan) classifyJV(v *jv) bool {
	switch v.kind {
	case 's':
		if out, ok := p.classifiers.Redact([]byte(v.str)); ok {
			v.str = string(out)
			return true
		}
	case '{', '[':
		changed := false
		for _, c := range v.vals {
			changed = p.classifyJV(c) || changed
		}
		return changed
	}
	return false
}

func appendJV(dst []byte, v *jv) []byte {
	switch v.kind {
	case '{':
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, []byte(k))
			dst = append(dst, ':')
			dst = appendJV(dst, v.vals[i])
		}
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		for i, c := range v.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJV(dst, c)
		}
		return append(dst, ']')
	case 's':
		return appendJSONString(dst, []byte(v.str))
	}
	return append(dst, v.str...)
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst, s []byte) []byte {
	b, err := json.Marshal(string(s))
	if err != nil {
		return append(dst, `""`...)
	}
	// json.Marshal escapes <, > and & for HTML; that is still valid JSON.
	return append(dst, b...)
}
