package engine

import (
	"fmt"
	"math/bits"
	"strings"
)

// maxGlobTokens bounds the length of a compiled glob pattern so that the
// matcher's state set fits in a fixed-size bitset (no allocation per match).
const maxGlobTokens = 511

type globKind uint8

const (
	globExact  globKind = iota // no wildcard: byte equality
	globAll                    // matches every input
	globPrefix                 // literal prefix followed by a wildcard that matches anything
	globNFA                    // general case
)

type tokKind uint8

const (
	tokLit   tokKind = iota // one literal byte
	tokOne                  // '?': one byte that is not the separator
	tokStar                 // '*': any run of bytes without the separator
	tokDStar                // '**': any run of bytes
)

type globTok struct {
	kind tokKind
	c    byte
}

// glob is a compiled glob pattern. With a separator, '*' and '?' do not
// match it and '**' matches across it; without one, '*' and '**' are the
// same. With fold set the match ignores ASCII case.
type glob struct {
	kind   globKind
	lit    string // exact text or literal prefix (lower case when fold)
	sep    byte
	hasSep bool
	fold   bool
	toks   []globTok
}

// compileGlob compiles pattern. sep == 0 means no separator.
func compileGlob(pattern string, sep byte, fold bool) (glob, error) {
	if fold {
		pattern = strings.ToLower(pattern)
	}
	g := glob{sep: sep, hasSep: sep != 0, fold: fold}
	var toks []globTok
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			for i+1 < len(pattern) && pattern[i+1] == '*' {
				i++
			}
			toks = appendStar(toks, tokDStar)
		case c == '*':
			k := tokStar
			if !g.hasSep {
				k = tokDStar
			}
			toks = appendStar(toks, k)
		case c == '?':
			toks = append(toks, globTok{kind: tokOne})
		default:
			toks = append(toks, globTok{kind: tokLit, c: c})
		}
	}
	if len(toks) > maxGlobTokens {
		return glob{}, fmt.Errorf("pattern %.40q...: longer than %d characters", pattern, maxGlobTokens)
	}
	// Classify for the fast paths.
	nLit := 0
	for nLit < len(toks) && toks[nLit].kind == tokLit {
		nLit++
	}
	switch {
	case nLit == len(toks):
		g.kind = globExact
		g.lit = pattern
	case nLit == len(toks)-1 && toks[nLit].kind == tokDStar:
		g.kind = globPrefix
		g.lit = literal(toks[:nLit])
		if nLit == 0 {
			g.kind = globAll
		}
	default:
		g.kind = globNFA
		g.toks = toks
	}
	return g, nil
}

// appendStar appends a star token, merging it with a preceding star (the
// stronger one wins: "*" followed by "**" is "**").
func appendStar(toks []globTok, k tokKind) []globTok {
	if n := len(toks); n > 0 && (toks[n-1].kind == tokStar || toks[n-1].kind == tokDStar) {
		if k == tokDStar {
			toks[n-1].kind = tokDStar
		}
		return toks
	}
	return append(toks, globTok{kind: k})
}

func literal(toks []globTok) string {
	b := make([]byte, len(toks))
	for i, t := range toks {
		b[i] = t.c
	}
	return string(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// match reports whether s matches the pattern. It never allocates.
func (g *glob) match(s string) bool {
	switch g.kind {
	case globExact:
		if g.fold {
			return strings.EqualFold(s, g.lit)
		}
		return s == g.lit
	case globAll:
		return true
	case globPrefix:
		if len(s) < len(g.lit) {
			return false
		}
		if g.fold {
			return strings.EqualFold(s[:len(g.lit)], g.lit)
		}
		return s[:len(g.lit)] == g.lit
	}
	return g.matchNFA(s)
}

// stateSet is a bitset over pattern positions 0..maxGlobTokens.
type stateSet [(maxGlobTokens + 1 + 63) / 64]uint64

func (s *stateSet) add(i int)      { s[i>>6] |= 1 << (uint(i) & 63) }
func (s *stateSet) has(i int) bool { return s[i>>6]&(1<<(uint(i)&63)) != 0 }

// matchNFA simulates the pattern as a non-deterministic automaton whose
// states are token positions: O(len(s) * len(toks)) time, no allocation.
func (g *glob) matchNFA(s string) bool {
	toks := g.toks
	n := len(toks)
	words := n/64 + 1
	var cur, next stateSet
	cur.add(0)
	g.closure(&cur)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if g.fold {
			c = lower(c)
		}
		isSep := g.hasSep && c == g.sep
		next = stateSet{}
		alive := false
		for w := 0; w < words; w++ {
			set := cur[w]
			for set != 0 {
				b := bits.TrailingZeros64(set)
				set &= set - 1
				p := w*64 + b
				if p >= n {
					continue
				}
				switch t := toks[p]; t.kind {
				case tokLit:
					if t.c == c {
						next.add(p + 1)
						alive = true
					}
				case tokOne:
					if !isSep {
						next.add(p + 1)
						alive = true
					}
				case tokStar:
					if !isSep {
						next.add(p)
						alive = true
					}
				case tokDStar:
					next.add(p)
					alive = true
				}
			}
		}
		if !alive {
			return false
		}
		g.closure(&next)
		cur = next
	}
	return cur.has(n)
}

// closure adds the positions reachable by letting stars match nothing.
func (g *glob) closure(s *stateSet) {
	for p, t := range g.toks {
		if (t.kind == tokStar || t.kind == tokDStar) && s.has(p) {
			s.add(p + 1)
		}
	}
}

// globList is a list of compiled globs; it matches if any member matches.
type globList []glob

func compileGlobs(patterns []string, sep byte, fold bool) (globList, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	l := make(globList, 0, len(patterns))
	for _, p := range patterns {
		g, err := compileGlob(p, sep, fold)
		if err != nil {
			return nil, err
		}
		l = append(l, g)
	}
	return l, nil
}

func (l globList) matchAny(s string) bool {
	for i := range l {
		if l[i].match(s) {
			return true
		}
	}
	return false
}
