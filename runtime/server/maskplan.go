package server

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
)

// maskPlanner builds row rewriters for PostgreSQL results.
type maskPlanner struct{ s *Server }

func newMaskPlanner(s *Server) pg.RowPlanner { return &maskPlanner{s: s} }

// Plan implements pg.RowPlanner.
func (m *maskPlanner) Plan(_ context.Context, _ *proxy.Session, v *proxy.SQLVerdict) (pg.RowRewriter, error) {
	if len(v.Masks) == 0 {
		return nil, nil
	}
	return nil, errors.New("masking is not wired yet")
}
