package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/runtime/identity"
)

// policyVerifier verifies tokens against the configured issuers and, when
// the development issuer is on, against the dev key for its own URL and for
// every issuer the active policy names (so `gatehouse token issue` can mint
// tokens that look like the real IdP's). Because that set depends on the
// active bundle, the verifier is rebuilt when the bundle revision changes.
type policyVerifier struct {
	cfg       IdentityConfig
	dev       *identity.DevIssuer
	activator *Activator
	clock     func() time.Time
	log       *slog.Logger

	mu       sync.Mutex
	revision string
	v        *identity.Verifier
}

func (p *policyVerifier) Verify(ctx context.Context, raw string) (*identity.Claims, error) {
	v, err := p.current()
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, raw)
}

func (p *policyVerifier) current() (*identity.Verifier, error) {
	revision := ""
	if cur := p.activator.Current(); cur != nil {
		revision = cur.Manifest.Revision
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.v != nil && p.revision == revision {
		return p.v, nil
	}
	var issuers []identity.IssuerConfig
	configured := map[string]bool{}
	for _, ic := range p.cfg.Issuers {
		issuers = append(issuers, identity.IssuerConfig{
			Issuer: ic.Issuer, Audience: p.cfg.Audience, DiscoveryURL: ic.DiscoveryURL,
			JWKSURL: ic.JWKSURL, JWKSFile: ic.JWKSFile, Algorithms: ic.Algorithms,
		})
		configured[ic.Issuer] = true
	}
	if p.dev != nil {
		names := []string{p.dev.Issuer()}
		if eng := p.activator.Engine(); eng != nil {
			names = append(names, identity.PolicyIssuers(&eng.Bundle().Policy)...)
		}
		for _, n := range names {
			if n == "" || configured[n] {
				continue
			}
			configured[n] = true
			issuers = append(issuers, p.dev.IssuerConfig(n, p.cfg.Audience))
		}
	}
	if len(issuers) == 0 {
		return nil, errors.New("no token issuer is configured")
	}
	v, err := identity.New(identity.Config{Issuers: issuers, Leeway: p.cfg.Leeway, Clock: p.clock, Logger: p.log})
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	p.v, p.revision = v, revision
	return v, nil
}
