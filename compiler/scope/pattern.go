package scope

import (
	"strings"
)

// maxPatternLen bounds the patterns the coverage checks work on; longer
// patterns are compared for equality only.
const maxPatternLen = 512

// CoverFunc reports whether pattern a covers pattern b.
type CoverFunc func(a, b string) bool

// ListCovers reports whether the pattern list a covers the pattern list b:
// every pattern of b is covered by some pattern of a. An empty list means
// "any" (it stands for "*").
func ListCovers(a, b []string, cover CoverFunc) bool {
	if len(a) == 0 {
		return true
	}
	if len(b) == 0 {
		b = []string{Wildcard}
	}
	for _, y := range b {
		ok := false
		for _, x := range a {
			if cover(x, y) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// ListOverlaps reports whether some value can match both a pattern of a and
// a pattern of b. Empty lists mean "any".
func ListOverlaps(a, b []string, overlap CoverFunc) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if overlap(x, y) {
				return true
			}
		}
	}
	return false
}

// WordCovers compares case-insensitive words where "*" means any word
// (statement kinds, HTTP methods, Kubernetes verbs).
func WordCovers(a, b string) bool {
	return a == Wildcard || strings.EqualFold(a, b)
}

// GlobCovers reports whether glob a matches every string glob b matches.
// "*" matches any sequence (including "/"), "?" any single character.
func GlobCovers(a, b string) bool {
	if a == b || a == Wildcard {
		return true
	}
	if len(a) > maxPatternLen || len(b) > maxPatternLen {
		return false
	}
	// memo[i][j]: 0 unknown, 1 true, 2 false.
	memo := make([][]uint8, len(a)+1)
	for i := range memo {
		memo[i] = make([]uint8, len(b)+1)
	}
	var cov func(i, j int) bool
	cov = func(i, j int) bool {
		if m := memo[i][j]; m != 0 {
			return m == 1
		}
		var res bool
		switch {
		case i == len(a):
			res = j == len(b)
		case a[i] == '*':
			res = cov(i+1, j) || (j < len(b) && cov(i, j+1))
		case j == len(b):
			res = false
		case a[i] == '?':
			res = b[j] != '*' && cov(i+1, j+1)
		default:
			res = a[i] == b[j] && b[j] != '*' && b[j] != '?' && cov(i+1, j+1)
		}
		if res {
			memo[i][j] = 1
		} else {
			memo[i][j] = 2
		}
		return res
	}
	return cov(0, 0)
}

// GlobOverlaps reports whether some string may match both globs. It is
// conservative: it answers true unless the literal prefixes or suffixes
// before the first and after the last wildcard disagree.
func GlobOverlaps(a, b string) bool {
	if a == b || a == Wildcard || b == Wildcard {
		return true
	}
	pa, pb := literalPrefix(a), literalPrefix(b)
	if !strings.HasPrefix(pa, pb) && !strings.HasPrefix(pb, pa) {
		return false
	}
	sa, sb := literalSuffix(a), literalSuffix(b)
	if !strings.HasSuffix(sa, sb) && !strings.HasSuffix(sb, sa) {
		return false
	}
	if !strings.ContainsAny(a, "*?") && !strings.ContainsAny(b, "*?") {
		return a == b
	}
	return true
}

func literalPrefix(s string) string {
	if i := strings.IndexAny(s, "*?"); i >= 0 {
		return s[:i]
	}
	return s
}

func literalSuffix(s string) string {
	if i := strings.LastIndexAny(s, "*?"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// splitQualified splits a dotted SQL pattern into n parts, right-aligned,
// filling missing leading parts with "*". A pattern with more than n parts
// keeps its extra leading parts joined in the first one.
func splitQualified(s string, n int) []string {
	parts := strings.Split(s, ".")
	if len(parts) > n {
		head := strings.Join(parts[:len(parts)-n+1], ".")
		parts = append([]string{head}, parts[len(parts)-n+1:]...)
	}
	for len(parts) < n {
		parts = append([]string{Wildcard}, parts...)
	}
	return parts
}

func partsCover(a, b []string) bool {
	for i := range a {
		if a[i] != Wildcard && !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

func partsOverlap(a, b []string) bool {
	for i := range a {
		if a[i] != Wildcard && b[i] != Wildcard && !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TableParts splits a table pattern ("schema.table", "table", "schema.*",
// "*") into schema and table, "*" standing for any.
func TableParts(p string) (schema, table string) {
	if p == Wildcard || p == "" {
		return Wildcard, Wildcard
	}
	parts := splitQualified(p, 2)
	return parts[0], parts[1]
}

// TableCovers reports whether table pattern a covers table pattern b.
func TableCovers(a, b string) bool {
	as, at := TableParts(a)
	bs, bt := TableParts(b)
	return partsCover([]string{as, at}, []string{bs, bt})
}

// TableOverlaps reports whether some table matches both patterns.
func TableOverlaps(a, b string) bool {
	as, at := TableParts(a)
	bs, bt := TableParts(b)
	return partsOverlap([]string{as, at}, []string{bs, bt})
}

// ColumnParts splits a column pattern ("schema.table.column",
// "table.column", "*.column", "column") into schema, table and column.
func ColumnParts(p string) (schema, table, column string) {
	if p == Wildcard || p == "" {
		return Wildcard, Wildcard, Wildcard
	}
	parts := splitQualified(p, 3)
	return parts[0], parts[1], parts[2]
}

// ColumnCovers reports whether column pattern a covers column pattern b.
func ColumnCovers(a, b string) bool {
	as, at, ac := ColumnParts(a)
	bs, bt, bc := ColumnParts(b)
	return partsCover([]string{as, at, ac}, []string{bs, bt, bc})
}

// FunctionCovers reports whether function pattern a ("fn" or "schema.fn")
// covers b.
func FunctionCovers(a, b string) bool { return TableCovers(a, b) }

// CommandCovers compares SSH command patterns: globs, except that the
// keyword "shell" (an interactive shell) is covered only by itself.
func CommandCovers(a, b string) bool {
	if a == "shell" || b == "shell" {
		return a == b
	}
	return GlobCovers(a, b)
}
