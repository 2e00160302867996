package server

import (
	"fmt"
	"path/filepath"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/ui"
)

// dashboardKeyFile keys the dashboard's CSRF tokens. Gateways behind one
// load balancer share it, as they share the masking key, so a form
// rendered by one is accepted by another.
const dashboardKeyFile = "dashboard-csrf.key"

// newDashboard builds the dashboard (runtime/ui) over the server's
// components, with the same authentication as the admin API.
func (s *Server) newDashboard() (*ui.Handler, error) {
	key, err := loadOrCreateKey(filepath.Join(s.cfg.StateDir, dashboardKeyFile))
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return ui.New(ui.Config{
		Key:          key,
		Authenticate: s.authenticateToken,
		Bundle: func() *bundle.Bundle {
			if eng := s.activator.Engine(); eng != nil {
				return eng.Bundle()
			}
			return nil
		},
		Recordings: s.store, ApprovalRecords: s.store, Approvals: s.approvals,
		Status:        func() any { return s.status() },
		SecureCookies: s.cfg.Admin.TLSCert != "",
		Clock:         s.clock,
		Logger:        s.log.With("component", "ui"),
	})
}
