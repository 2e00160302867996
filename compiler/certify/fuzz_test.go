package certify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/compiler/certify"
)

// FuzzParseDecisions: a decisions file never panics the parser; whatever
// it accepts has a known action and, for shorten, a date.
func FuzzParseDecisions(f *testing.F) {
	for _, s := range []string{
		decisionsYAML,
		`{"a": "revoke", "b": {"shorten": {"expires": "2027-01-01"}}}`,
		`a: {action: keep, expires: "2027-01-01T00:00:00Z"}`,
		`a: [keep]`, `a: {shorten: 3}`, `- a`, `a: &x keep` + "\nb: *x", ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		dec, err := certify.ParseDecisions(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, certify.ErrDecisions) {
				t.Fatalf("error %v does not match ErrDecisions", err)
			}
			return
		}
		for id, d := range dec {
			switch d.Action {
			case certify.ActionKeep, certify.ActionRevoke:
			case certify.ActionShorten:
				if d.Expires == "" {
					t.Fatalf("%s: shorten without a date", id)
				}
			default:
				t.Fatalf("%s: action %q accepted", id, d.Action)
			}
		}
	})
}
