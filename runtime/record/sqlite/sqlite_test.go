package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/recordtest"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

func newStore(t *testing.T) record.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "rec.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawExec(ctx context.Context, s record.Store, q string) error {
	st, ok := s.(*sqlite.Store)
	if !ok {
		return fmt.Errorf("not a sqlite store: %T", s)
	}
	_, err := st.DB().ExecContext(ctx, q)
	return err
}

func TestCompliance(t *testing.T) {
	recordtest.Run(t, newStore, recordtest.WithRawSQL(rawExec))
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "rec.db")
	ctx := t.Context()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	sess := record.Session{ID: "keep", StartedAt: record.Timestamp(record.RealClock.Now())}
	if err := s.CreateSession(ctx, &sess); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, &sess); err != record.ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
	s2, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.GetSession(ctx, "keep"); err != nil {
		t.Fatalf("reopened store lost the session: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  sqlite.Config
	}{
		{"empty path", sqlite.Config{}},
		{"query in path", sqlite.Config{Path: "x.db?mode=memory"}},
		{"negative conns", sqlite.Config{Path: "x.db", ReadConns: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
