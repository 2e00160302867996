package mask

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/jackc/pgx/v5/pgproto3"
)

func BenchmarkRewriteDataRow(b *testing.B) {
	m := newMasker(b)
	fields := []pgproto3.FieldDescription{
		field("id", custOID, 1, oidInt4), field("email", custOID, 2, oidText),
		field("name", custOID, 3, oidText), field("note", 0, 0, oidText),
	}
	cols := []OutputColumn{{Name: "id"}, {Name: "email"}, {Name: "name"}, {Name: "note", Sources: src("orders", "note")}}
	row := [][]byte{[]byte("42"), []byte("bob@example.com"), []byte("Bob Example"), []byte("delivered on time, no issues reported")}
	for _, bc := range []struct {
		name string
		spec bundle.MaskSpec
	}{
		{"nothing to mask", bundle.MaskSpec{Columns: []string{"orders.total"}}},
		{"one masked column", bundle.MaskSpec{Columns: []string{"customers.email"}}},
		{"classifiers", bundle.MaskSpec{Classifiers: []string{"email", "credit_card", "us_ssn", "phone"}}},
	} {
		p, err := m.NewPlan(context.Background(), PlanInput{Specs: []*bundle.MaskSpec{&bc.spec}, Columns: cols, Fields: fields, Catalog: testCatalog})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			values := make([][]byte, len(row))
			b.ReportAllocs()
			for b.Loop() {
				copy(values, row)
				p.RewriteDataRow(values)
			}
		})
	}
}
