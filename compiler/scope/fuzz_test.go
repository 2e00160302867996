package scope

import "testing"

// FuzzGlobCovers checks that coverage never panics, is reflexive, and that
// "*" covers everything.
func FuzzGlobCovers(f *testing.F) {
	f.Add("git *", "git status")
	f.Add("a?c*", "a*")
	f.Fuzz(func(t *testing.T, a, b string) {
		_ = GlobCovers(a, b)
		_ = GlobOverlaps(a, b)
		_ = TableCovers(a, b)
		_ = ColumnCovers(a, b)
		if !GlobCovers(a, a) || !GlobCovers("*", b) {
			t.Fatalf("reflexivity or wildcard failed for %q, %q", a, b)
		}
	})
}
