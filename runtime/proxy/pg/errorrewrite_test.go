package pg

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// errorMasker is a RowRewriter that also rewrites errors.
type errorMasker struct{ RowRewriter }

func (errorMasker) RewriteError(e *pgproto3.ErrorResponse) { e.Message = "withheld" }

// TestErrorRewriterThroughWrappers: wrapping a rewriter (the row limit)
// must keep its error rewriting.
func TestErrorRewriterThroughWrappers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rows RowRewriter
		want string
	}{
		{"masker", errorMasker{}, "withheld"},
		{"limited masker", &limitedRows{RowRewriter: errorMasker{}, max: 10}, "withheld"},
		{"limited pass-through", &limitedRows{max: 10}, "value 42"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			er, _ := c.rows.(ErrorRewriter)
			if er == nil {
				t.Fatal("no ErrorRewriter found")
			}
			e := &pgproto3.ErrorResponse{Message: "value 42"}
			er.RewriteError(e)
			if e.Message != c.want {
				t.Errorf("message %q, want %q", e.Message, c.want)
			}
		})
	}
	var e *entry
	if e.curStmt() != nil {
		t.Error("a nil entry has a current statement")
	}
}
