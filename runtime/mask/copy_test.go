package mask

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/jackc/pgx/v5/pgproto3"
)

func copyPlan(t testing.TB, spec bundle.MaskSpec) *Plan {
	t.Helper()
	m := newMasker(t)
	// COPY gives no RowDescription: one field per column, types unknown.
	fields := make([]pgproto3.FieldDescription, 3)
	cols := []OutputColumn{
		{Name: "id", Sources: src("customers", "id")},
		{Name: "email", Sources: src("customers", "email")},
		{Name: "note", Sources: src("customers", "note")},
	}
	p, err := m.NewPlan(context.Background(), PlanInput{Specs: []*bundle.MaskSpec{&spec}, Columns: cols, Fields: fields, CopyFormat: "text"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRewriteCopyLine(t *testing.T) {
	t.Parallel()
	col := bundle.MaskSpec{Columns: []string{"customers.email"}}
	cls := bundle.MaskSpec{Classifiers: []string{"email", "credit_card"}}
	cases := []struct {
		name string
		spec bundle.MaskSpec
		in   string
		want string
	}{
		{"mask column", col, "1\tbob@example.com\thello\n", "1\t***\thello\n"},
		{"null stays null", col, "1\t\\N\thello\n", "1\t\\N\thello\n"},
		{"no trailing newline", col, "1\tbob@example.com\thello", "1\t***\thello"},
		{"escaped tab in field", col, "1\ta\\tb\tx\\ty\n", "1\t***\tx\\ty\n"},
		{"crlf", col, "1\tb@x.io\tz\r\n", "1\t***\tz\r\n"},
		{"classifier with escapes kept", cls, "1\tx\tline1\\nmail bob@example.com\\\\end\n", "1\tx\tline1\\nmail ***\\\\end\n"},
		{"classifier octal and hex escapes", cls, "1\tx\t\\142ob@example.com \\x41\n", "1\tx\t*** A\n"},
		{"clean line untouched", cls, "1\tx\tnothing here\n", "1\tx\tnothing here\n"},
		{"extra fields nulled", col, "1\ta\tb\tc\n", "1\t***\tb\t\\N\n"},
		{"empty field", col, "1\t\tb\n", "1\t***\tb\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := copyPlan(t, c.spec)
			in := []byte(c.in)
			got := string(p.RewriteCopyLine(in))
			if got != c.want {
				t.Fatalf("RewriteCopyLine(%q) = %q, want %q", c.in, got, c.want)
			}
			if string(in) != c.in {
				t.Fatal("input modified")
			}
		})
	}
}

func TestCopyEscapesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"plain", "tab\there", "nl\nx", "back\\slash", "\r\b\f\v", ""} {
		enc := encodeCopy(nil, []byte(v))
		if got := string(decodeCopy(enc)); got != v {
			t.Errorf("round trip %q -> %q -> %q", v, enc, got)
		}
	}
}

func TestJSONPathParse(t *testing.T) {
	t.Parallel()
	good := []string{"$.email", "$.card.number", "$.items[*].ssn", "$.a[0]", "$['odd key'].x", "$.*"}
	for _, s := range good {
		if _, err := parseJSONPath(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := []string{"", "email", "$", "$.", "$.a[", "$.a[x]", "$['a", "$..a"}
	for _, s := range bad {
		if _, err := parseJSONPath(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
