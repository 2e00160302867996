package mask

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// builtins are the patterns the compiler ships (compiler/builtin.go).
var builtins = []bundle.Classifier{
	{Name: "email", Builtin: true, Pattern: `[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`},
	{Name: "credit_card", Builtin: true, Pattern: `\b(?:\d[ \-]?){12,18}\d\b`, Validator: "luhn"},
	{Name: "us_ssn", Builtin: true, Pattern: `\b(?:00[1-9]|0[1-9]\d|[1-578]\d{2}|6[0-57-9]\d|66[0-57-9])-(?:0[1-9]|[1-9]\d)-(?:000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})\b`},
	{Name: "iban", Builtin: true, Pattern: `\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b`, Validator: "iban"},
	{Name: "phone", Builtin: true, Pattern: `(?:\+\d{1,3}[ \-.]?)?(?:\(\d{2,4}\)|\d{2,4})[ \-.]\d{3,4}[ \-.]\d{3,4}\b`},
	{Name: "order_ref", Pattern: `ORD-[0-9]{6}`, Replacement: "ORD-######"},
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newMasker(t testing.TB) *Masker {
	t.Helper()
	m, err := New(Config{Classifiers: builtins, HashKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mapCatalog is a fixed catalog for unit tests; the PostgreSQL-backed
// catalog is tested against the local server in catalog_test.go.
type mapCatalog map[[2]int64][3]string

func (c mapCatalog) Lookup(_ context.Context, oid uint32, attnum int16) (string, string, string, bool) {
	v, ok := c[[2]int64{int64(oid), int64(attnum)}]
	return v[0], v[1], v[2], ok
}
