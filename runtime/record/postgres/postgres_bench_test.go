package postgres_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/testdb"
	"github.com/gatehouse/gatehouse/runtime/record/postgres"
	"github.com/gatehouse/gatehouse/runtime/record/recordtest"
)

func BenchmarkStoreAppend(b *testing.B) {
	dsn := testdb.Postgres(b)
	s, err := postgres.Open(b.Context(), postgres.Config{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recordtest.BenchmarkAppend(b, s, 256)
}

func BenchmarkStoreAppendGateway(b *testing.B) {
	dsn := testdb.Postgres(b)
	s, err := postgres.Open(b.Context(), postgres.Config{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recordtest.BenchmarkAppendGateway(b, s, 8, 256)
}
