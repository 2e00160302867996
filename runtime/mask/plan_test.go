package mask

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	oidInt4   = 23
	oidRecord = 2249
	custOID   = 16400
	suppOID   = 16500
)

var testCatalog = mapCatalog{
	{custOID, 1}: {"public", "customers", "id"},
	{custOID, 2}: {"public", "customers", "email"},
	{custOID, 3}: {"public", "customers", "name"},
	{custOID, 4}: {"public", "customers", "ssn"},
	{suppOID, 1}: {"crm", "suppliers", "contact"},
}

func field(name string, tableOID uint32, attnum uint16, typ uint32) pgproto3.FieldDescription {
	return pgproto3.FieldDescription{Name: []byte(name), TableOID: tableOID, TableAttributeNumber: attnum, DataTypeOID: typ}
}

func src(table, column string) []ColumnRef { return []ColumnRef{{Table: table, Column: column}} }

func TestPlanColumns(t *testing.T) {
	t.Parallel()
	m := newMasker(t)
	emailSpec := []*bundle.MaskSpec{{Columns: []string{"customers.email", "*.ssn"}}}
	cases := []struct {
		name    string
		specs   []*bundle.MaskSpec
		cols    []OutputColumn
		tables  []string
		fields  []pgproto3.FieldDescription
		catalog Catalog
		want    []Action
		reason  string // substring of the first non-clear reason
	}{
		{
			name:   "alias resolved through catalog",
			cols:   []OutputColumn{{Name: "e", Sources: src("customers", "email")}},
			fields: []pgproto3.FieldDescription{field("e", custOID, 2, oidText)},
			want:   []Action{Mask}, reason: "public.customers.email",
		},
		{
			name:   "clear column",
			cols:   []OutputColumn{{Name: "name", Sources: src("customers", "name")}},
			fields: []pgproto3.FieldDescription{field("name", custOID, 3, oidText)},
			want:   []Action{Clear},
		},
		{
			name:   "lower(email) derived",
			cols:   []OutputColumn{{Name: "lower", Sources: src("customers", "email"), Derived: true}},
			fields: []pgproto3.FieldDescription{field("lower", 0, 0, oidText)},
			want:   []Action{Mask}, reason: "derived",
		},
		{
			name:   "email concatenation",
			cols:   []OutputColumn{{Name: "x", Sources: src("c", "email"), Derived: true}, {Name: "id", Sources: src("customers", "id")}},
			tables: []string{"customers"},
			fields: []pgproto3.FieldDescription{field("x", 0, 0, oidVarchar), field("id", custOID, 1, oidInt4)},
			want:   []Action{Clear, Clear},
		},
		{
			name:   "substr of ssn any table",
			cols:   []OutputColumn{{Name: "substr", Sources: src("people", "ssn"), Derived: true}},
			fields: []pgproto3.FieldDescription{field("substr", 0, 0, oidText)},
			want:   []Action{Mask},
		},
		{
			name:   "star resolved through catalog",
			cols:   []OutputColumn{{Name: "*", Sources: src("customers", "*"), Star: true}},
			tables: []string{"customers"},
			fields: []pgproto3.FieldDescription{field("id", custOID, 1, oidInt4), field("email", custOID, 2, oidText), field("name", custOID, 3, oidText), field("ssn", custOID, 4, oidBPChar)},
			want:   []Action{Clear, Mask, Clear, Mask},
		},
		{
			name:    "star without catalog fails safe",
			cols:    []OutputColumn{{Name: "*", Sources: src("customers", "*"), Star: true}},
			tables:  []string{"customers"},
			fields:  []pgproto3.FieldDescription{field("id", custOID, 1, oidInt4), field("email", custOID, 2, oidText)},
			catalog: mapCatalog{},
			want:    []Action{Null, Mask}, reason: "star over customers",
		},
		{
			name:   "star between plain columns",
			specs:  []*bundle.MaskSpec{{Columns: []string{"customers.email"}}},
			cols:   []OutputColumn{{Name: "n", Sources: src("orders", "n")}, {Name: "*", Sources: src("orders", "*"), Star: true}, {Name: "lower", Sources: src("customers", "email"), Derived: true}},
			tables: []string{"orders", "customers"},
			fields: []pgproto3.FieldDescription{field("n", 0, 0, oidText), field("a", 0, 0, oidText), field("b", 0, 0, oidText), field("lower", 0, 0, oidText)},
			want:   []Action{Clear, Clear, Clear, Mask},
		},
		{
			name:   "whole row record",
			cols:   []OutputColumn{{Name: "c", Sources: src("customers", "*"), WholeRow: true}},
			fields: []pgproto3.FieldDescription{field("c", 0, 0, oidRecord)},
			want:   []Action{Null}, reason: "non-text",
		},
		{
			name:   "row_to_json whole row",
			cols:   []OutputColumn{{Name: "row_to_json", Sources: src("customers", "*"), WholeRow: true, Derived: true}},
			fields: []pgproto3.FieldDescription{field("row_to_json", 0, 0, oidJSON)},
			want:   []Action{Mask},
		},
		{
			name:   "json_build_object over email",
			cols:   []OutputColumn{{Name: "doc", Sources: []ColumnRef{{"customers", "email"}, {"customers", "name"}}, Derived: true}},
			fields: []pgproto3.FieldDescription{field("doc", 0, 0, oidJSONB)},
			want:   []Action{Mask},
		},
		{
			name:   "union merges sources",
			cols:   []OutputColumn{{Name: "contact", Sources: []ColumnRef{{"customers", "email"}, {"suppliers", "contact"}}}},
			fields: []pgproto3.FieldDescription{field("contact", 0, 0, oidText)},
			want:   []Action{Mask},
		},
		{
			name:   "cte resolved to base column",
			cols:   []OutputColumn{{Name: "email", Sources: src("customers", "email")}},
			fields: []pgproto3.FieldDescription{field("email", 0, 0, oidText)},
			want:   []Action{Mask},
		},
		{
			name:   "schema-qualified pattern other schema",
			specs:  []*bundle.MaskSpec{{Columns: []string{"public.suppliers.contact"}}},
			cols:   []OutputColumn{{Name: "contact", Sources: src("suppliers", "contact")}},
			fields: []pgproto3.FieldDescription{field("contact", suppOID, 1, oidText)},
			want:   []Action{Clear},
		},
		{
			name:   "schema-qualified pattern same schema",
			specs:  []*bundle.MaskSpec{{Columns: []string{"crm.suppliers.contact"}}},
			cols:   []OutputColumn{{Name: "contact", Sources: src("suppliers", "contact")}},
			fields: []pgproto3.FieldDescription{field("contact", suppOID, 1, oidText)},
			want:   []Action{Mask},
		},
		{
			name:   "any-table pattern makes every star suspect",
			cols:   []OutputColumn{{Name: "*", Sources: src("orders", "*"), Star: true}},
			fields: []pgproto3.FieldDescription{field("a", 0, 0, oidText)},
			want:   []Action{Mask}, reason: "star over orders",
		},
		{
			name:   "unresolvable column over masked table",
			cols:   []OutputColumn{{Name: "a"}},
			tables: []string{"public.customers"},
			fields: []pgproto3.FieldDescription{field("a", 0, 0, oidText), field("b", 0, 0, oidText)},
			want:   []Action{Mask, Mask}, reason: "origin unknown",
		},
		{
			name:   "unresolvable column over unmasked table",
			specs:  []*bundle.MaskSpec{{Columns: []string{"customers.email"}}},
			cols:   []OutputColumn{{Name: "a"}},
			tables: []string{"orders"},
			fields: []pgproto3.FieldDescription{field("a", 0, 0, oidText), field("b", 0, 0, oidText)},
			want:   []Action{Clear, Clear},
		},
		{
			name:   "ambiguous source",
			cols:   []OutputColumn{{Name: "email", Sources: []ColumnRef{{"?", "email"}}}},
			fields: []pgproto3.FieldDescription{field("email", 0, 0, oidText)},
			want:   []Action{Mask},
		},
		{
			name:   "binary masked column becomes null",
			cols:   []OutputColumn{{Name: "email", Sources: src("customers", "email")}},
			fields: []pgproto3.FieldDescription{{Name: []byte("email"), TableOID: custOID, TableAttributeNumber: 2, DataTypeOID: oidText, Format: 1}},
			want:   []Action{Null}, reason: "binary",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			specs := c.specs
			if specs == nil {
				specs = emailSpec
			}
			cat := c.catalog
			if cat == nil {
				cat = testCatalog
			}
			p, err := m.NewPlan(context.Background(), PlanInput{Specs: specs, Columns: c.cols, Tables: c.tables, Fields: c.fields, Catalog: cat})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Columns) != len(c.want) {
				t.Fatalf("%d column plans, want %d", len(p.Columns), len(c.want))
			}
			reason := ""
			for i, w := range c.want {
				if p.Columns[i].Action != w {
					t.Errorf("column %d: %v (%s), want %v", i, p.Columns[i].Action, p.Columns[i].Reason, w)
				}
				if reason == "" {
					reason = p.Columns[i].Reason
				}
			}
			if !strings.Contains(reason, c.reason) {
				t.Errorf("reason %q does not mention %q", reason, c.reason)
			}
		})
	}
}

func TestPlanDeny(t *testing.T) {
	t.Parallel()
	m := newMasker(t)
	ctx := context.Background()
	cols := []OutputColumn{{Name: "email", Sources: src("customers", "email")}}
	bin := []pgproto3.FieldDescription{{Name: []byte("email"), DataTypeOID: oidText, Format: 1}}
	txt := []pgproto3.FieldDescription{field("email", 0, 0, oidText)}
	cases := []struct {
		name string
		in   PlanInput
		want error
	}{
		{"binary deny", PlanInput{Specs: []*bundle.MaskSpec{{Columns: []string{"customers.email"}, Binary: "deny"}}, Columns: cols, Fields: bin}, ErrDeny},
		{"csv copy", PlanInput{Specs: []*bundle.MaskSpec{{Columns: []string{"customers.email"}}}, Columns: cols, Fields: txt, CopyFormat: "csv"}, ErrDeny},
		{"binary copy", PlanInput{Specs: []*bundle.MaskSpec{{Classifiers: []string{"email"}}}, Columns: cols, Fields: txt, CopyFormat: "binary"}, ErrDeny},
		{"bad pattern", PlanInput{Specs: []*bundle.MaskSpec{{Columns: []string{"email"}}}, Fields: txt}, ErrConfig},
		{"bad binary option", PlanInput{Specs: []*bundle.MaskSpec{{Columns: []string{"a.b"}, Binary: "maybe"}}, Fields: txt}, ErrConfig},
		{"bad json path", PlanInput{Specs: []*bundle.MaskSpec{{JSONPaths: []string{"email"}}}, Fields: txt}, ErrConfig},
		{"unknown classifier", PlanInput{Specs: []*bundle.MaskSpec{{Classifiers: []string{"nope"}}}, Fields: txt}, ErrUnknownClassifier},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := m.NewPlan(ctx, c.in); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// A binary column that needs no masking is fine even with deny.
	p, err := m.NewPlan(ctx, PlanInput{Specs: []*bundle.MaskSpec{{Columns: []string{"customers.ssn"}, Binary: "deny"}}, Columns: cols, Fields: bin})
	if err != nil || p.Active() {
		t.Fatalf("plan = %+v, %v; want inactive plan", p, err)
	}
}

func TestRewriteDataRow(t *testing.T) {
	t.Parallel()
	m := newMasker(t)
	ctx := context.Background()
	fields := []pgproto3.FieldDescription{
		field("id", custOID, 1, oidInt4), field("email", custOID, 2, oidText),
		field("note", 0, 0, oidText), field("doc", 0, 0, oidJSONB), field("ssn", custOID, 4, oidInt4),
	}
	cols := []OutputColumn{
		{Name: "id", Sources: src("customers", "id")}, {Name: "email", Sources: src("customers", "email")},
		{Name: "note", Sources: src("notes", "body")}, {Name: "doc", Sources: src("docs", "doc")},
		{Name: "ssn", Sources: src("customers", "ssn")},
	}
	cases := []struct {
		name string
		spec bundle.MaskSpec
		in   []string // "<nil>" is NULL
		want []string
	}{
		{
			name: "redact",
			spec: bundle.MaskSpec{Columns: []string{"customers.email", "customers.ssn"}},
			in:   []string{"1", "bob@example.com", "hi", `{"a":1}`, "123456789"},
			want: []string{"1", "***", "hi", `{"a":1}`, "<nil>"},
		},
		{
			name: "nulls stay null",
			spec: bundle.MaskSpec{Columns: []string{"customers.email"}},
			in:   []string{"1", "<nil>", "<nil>", "<nil>", "<nil>"},
			want: []string{"1", "<nil>", "<nil>", "<nil>", "<nil>"},
		},
		{
			name: "partial",
			spec: bundle.MaskSpec{Columns: []string{"customers.email"}, Style: "partial"},
			in:   []string{"1", "bob@example.com", "x", "{}", "1"},
			want: []string{"1", "***********.com", "x", "{}", "1"},
		},
		{
			name: "classifiers on clear text and inside json",
			spec: bundle.MaskSpec{Classifiers: []string{"email", "credit_card"}},
			in:   []string{"1", "x", "paid with 4111-1111-1111-1111", `{"to":"bob@example.com","n":[1,"a@b.io"]}`, "7"},
			want: []string{"1", "x", "paid with ***", `{"to":"***","n":[1,"***"]}`, "7"},
		},
		{
			name: "json paths",
			spec: bundle.MaskSpec{JSONPaths: []string{"$.email", "$.card.number", "$.items[*].ssn"}},
			in:   []string{"1", "x", "y", `{"email":"a@b.c","card":{"number":4111,"exp":"12/30"},"items":[{"ssn":"1"},{"ssn":null},{"k":2}],"z":true}`, "7"},
			want: []string{"1", "x", "y", `{"email":"***","card":{"number":"***","exp":"12/30"},"items":[{"ssn":"***"},{"ssn":null},{"k":2}],"z":true}`, "7"},
		},
		{
			name: "strongest style wins",
			spec: bundle.MaskSpec{Columns: []string{"customers.email"}, Style: "redact"},
			in:   []string{"1", "bob@example.com", "x", "{}", "1"},
			want: []string{"1", "***", "x", "{}", "1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			specs := []*bundle.MaskSpec{&c.spec}
			if c.name == "strongest style wins" {
				specs = append(specs, &bundle.MaskSpec{Columns: []string{"customers.email"}, Style: "partial"})
			}
			p, err := m.NewPlan(ctx, PlanInput{Specs: specs, Columns: cols, Fields: fields, Catalog: testCatalog})
			if err != nil {
				t.Fatal(err)
			}
			row := make([][]byte, len(c.in))
			for i, v := range c.in {
				if v != "<nil>" {
					row[i] = []byte(v)
				}
			}
			got := p.RewriteDataRow(row)
			for i, w := range c.want {
				g := "<nil>"
				if got[i] != nil {
					g = string(got[i])
				}
				if g != w {
					t.Errorf("value %d = %q, want %q", i, g, w)
				}
			}
		})
	}
}

func TestRewriteDataRowHashStable(t *testing.T) {
	t.Parallel()
	m := newMasker(t)
	p, err := m.NewPlan(context.Background(), PlanInput{
		Specs:   []*bundle.MaskSpec{{Columns: []string{"customers.email"}, Style: "hash"}},
		Columns: []OutputColumn{{Name: "email", Sources: src("customers", "email")}},
		Fields:  []pgproto3.FieldDescription{field("email", 0, 0, oidText)},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := string(p.RewriteDataRow([][]byte{[]byte("bob@example.com")})[0])
	b := string(p.RewriteDataRow([][]byte{[]byte("bob@example.com")})[0])
	c := string(p.RewriteDataRow([][]byte{[]byte("eve@example.com")})[0])
	if a != b || a == c || !strings.HasPrefix(a, "h:") || strings.Contains(a, "bob") {
		t.Fatalf("hash outputs %q %q %q", a, b, c)
	}
}

func TestRewriteDataRowNoAlloc(t *testing.T) {
	m := newMasker(t)
	fields := []pgproto3.FieldDescription{field("id", custOID, 1, oidInt4), field("email", custOID, 2, oidText), field("name", custOID, 3, oidText)}
	cols := []OutputColumn{{Name: "id"}, {Name: "email"}, {Name: "name"}}
	for _, spec := range []bundle.MaskSpec{
		{Columns: []string{"orders.total"}},
		{Columns: []string{"customers.email"}},
		{Classifiers: []string{"email", "credit_card", "us_ssn"}},
	} {
		p, err := m.NewPlan(context.Background(), PlanInput{Specs: []*bundle.MaskSpec{&spec}, Columns: cols, Fields: fields, Catalog: testCatalog})
		if err != nil {
			t.Fatal(err)
		}
		row := [][]byte{[]byte("1"), []byte("plain text"), []byte("Alice")}
		if n := testing.AllocsPerRun(100, func() { p.RewriteDataRow(row) }); n != 0 {
			t.Errorf("spec %+v: %v allocations per row", spec, n)
		}
	}
}

// TestPartialStyleNeverOnDerivedValues: the partial style keeps the end of
// a masked value; for a value computed from a masked column (a CASE over
// it, say) that end can be the whole answer, so it is redacted instead.
func TestPartialStyleNeverOnDerivedValues(t *testing.T) {
	t.Parallel()
	m := newMasker(t)
	fields := []pgproto3.FieldDescription{field("email", custOID, 2, oidText), field("case", 0, 0, oidText)}
	cols := []OutputColumn{
		{Name: "email", Sources: src("customers", "email")},
		{Name: "case", Sources: src("customers", "ssn"), Derived: true},
	}
	spec := bundle.MaskSpec{Columns: []string{"customers.email", "customers.ssn"}, Style: "partial"}
	p, err := m.NewPlan(context.Background(), PlanInput{Specs: []*bundle.MaskSpec{&spec}, Columns: cols, Fields: fields, Catalog: testCatalog})
	if err != nil {
		t.Fatal(err)
	}
	got := p.RewriteDataRow([][]byte{[]byte("bob@example.com"), []byte("starts-with-one")})
	if string(got[0]) != "***********.com" {
		t.Errorf("column itself: %q, want the partial mask", got[0])
	}
	if string(got[1]) != RedactText {
		t.Errorf("derived value: %q, want %q (no characters kept)", got[1], RedactText)
	}
}
