package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/record/recordtest"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

func BenchmarkStoreAppend(b *testing.B) {
	s, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recordtest.BenchmarkAppend(b, s, 256)
}

func BenchmarkStoreAppendGateway(b *testing.B) {
	s, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recordtest.BenchmarkAppendGateway(b, s, 8, 256)
}
