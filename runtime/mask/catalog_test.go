package mask_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/mask"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// convert turns sqlclass output columns into mask output columns, as the
// proxy does.
func convert(cols []sqlclass.OutputColumn) []mask.OutputColumn {
	out := make([]mask.OutputColumn, len(cols))
	for i, c := range cols {
		oc := mask.OutputColumn{Name: c.Name, Star: c.Star, WholeRow: c.WholeRow, Derived: c.Derived}
		for _, s := range c.Sources {
			oc.Sources = append(oc.Sources, mask.ColumnRef{Table: s.Table, Column: s.Column})
		}
		out[i] = oc
	}
	return out
}

// TestPlanAgainstPostgres runs real queries, takes PostgreSQL's
// RowDescription (table OID, attribute number, type) and checks which
// columns the plan masks and what the rows look like afterwards.
func TestPlanAgainstPostgres(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	testdb.Exec(t, dsn,
		`CREATE SCHEMA crm`,
		`CREATE TABLE customers (id int PRIMARY KEY, email text, name text, ssn text)`,
		`CREATE TABLE crm.customers (id int, email text)`,
		`CREATE TABLE orders (id int, customer_id int, note text)`,
		`INSERT INTO customers VALUES (1, 'bob@example.com', 'Bob', '123-45-6789')`,
		`INSERT INTO crm.customers VALUES (1, 'crm@example.com')`,
		`INSERT INTO orders VALUES (10, 1, 'card 4111 1111 1111 1111')`,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	m, err := mask.New(mask.Config{Classifiers: []bundle.Classifier{
		{Name: "credit_card", Builtin: true, Pattern: `\b(?:\d[ \-]?){12,18}\d\b`, Validator: "luhn"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	classifier, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	catalog := mask.NewPGCatalog(conn, 0)
	specs := []*bundle.MaskSpec{{Columns: []string{"public.customers.email", "*.ssn"}, Classifiers: []string{"credit_card"}}}

	cases := []struct {
		sql  string
		want []string // values of the first row after masking; "<nil>" for NULL
	}{
		{`SELECT id, email, name FROM customers`, []string{"1", "***", "Bob"}},
		{`SELECT email AS e FROM customers`, []string{"***"}},
		{`SELECT * FROM customers`, []string{"1", "***", "Bob", "***"}},
		{`SELECT c.* FROM customers c`, []string{"1", "***", "Bob", "***"}},
		{`SELECT lower(email) FROM customers`, []string{"***"}},
		{`SELECT email || '' AS x FROM customers`, []string{"***"}},
		{`SELECT substr(ssn, 1, 3) FROM customers`, []string{"***"}},
		{`SELECT row_to_json(c) FROM customers c`, []string{`"***"`}},
		{`SELECT json_build_object('e', email) FROM customers`, []string{`"***"`}},
		{`SELECT c FROM customers c`, []string{"<nil>"}},
		{`WITH x AS (SELECT email FROM customers) SELECT email FROM x`, []string{"***"}},
		{`SELECT s.e FROM (SELECT email AS e FROM customers) s`, []string{"***"}},
		{`SELECT email FROM customers UNION ALL SELECT note FROM orders`, []string{"***"}},
		{`SELECT id, email FROM crm.customers`, []string{"1", "crm@example.com"}},
		{`SELECT o.note, c.name FROM orders o JOIN customers c ON c.id = o.customer_id`, []string{"card ***", "Bob"}},
		{`SELECT count(*) FROM customers`, []string{"1"}},
	}
	for _, c := range cases {
		stmts, err := classifier.Classify(c.sql)
		if err != nil || len(stmts) != 1 {
			t.Fatalf("%s: classify: %v %v", c.sql, stmts, err)
		}
		rows, err := conn.Query(ctx, c.sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		var fields []pgproto3.FieldDescription
		for _, f := range rows.FieldDescriptions() {
			fields = append(fields, pgproto3.FieldDescription{
				Name: []byte(f.Name), TableOID: f.TableOID, TableAttributeNumber: f.TableAttributeNumber,
				DataTypeOID: f.DataTypeOID, DataTypeSize: f.DataTypeSize, TypeModifier: f.TypeModifier, Format: f.Format,
			})
		}
		var raw [][]byte
		if rows.Next() {
			for _, v := range rows.RawValues() {
				raw = append(raw, append([]byte(nil), v...))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		p, err := m.NewPlan(ctx, mask.PlanInput{
			Specs: specs, Columns: convert(stmts[0].OutputColumns), Tables: stmts[0].TablesRead,
			Fields: fields, Catalog: catalog,
		})
		if err != nil {
			t.Fatalf("%s: plan: %v", c.sql, err)
		}
		got := p.RewriteDataRow(raw)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d values, want %d", c.sql, len(got), len(c.want))
		}
		for i, w := range c.want {
			g := "<nil>"
			if got[i] != nil {
				g = string(got[i])
			}
			if g != w {
				t.Errorf("%s: value %d = %q, want %q (plan %+v)", c.sql, i, g, w, p.Columns[i])
			}
		}
	}

	// The catalog answers from PostgreSQL and caches.
	var oid uint32
	if err := conn.QueryRow(ctx, `SELECT 'crm.customers'::regclass::oid`).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	schema, table, column, ok := catalog.Lookup(ctx, oid, 2)
	if !ok || schema != "crm" || table != "customers" || column != "email" {
		t.Fatalf("Lookup = %q %q %q %v", schema, table, column, ok)
	}
	if _, _, _, ok := catalog.Lookup(ctx, oid, 99); ok {
		t.Fatal("Lookup of a missing attribute succeeded")
	}
	if _, _, _, ok := catalog.Lookup(ctx, 0, 1); ok {
		t.Fatal("Lookup of OID 0 succeeded")
	}
}
