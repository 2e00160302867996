package proxy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/identity"
)

// Revocation: stale access must disappear from open sessions too, not only
// from new ones. Every bundle activation re-resolves the identity of each
// open session from its verified token claims against the new policy: the
// next command is judged with the new groups, and a session whose identity
// or resource no longer exists (or whose token now resolves to another
// identity) is ended. A session also ends when its token expires: its
// lifetime is bounded by the token's, so revoking a token at the identity
// provider takes effect within one token lifetime.

// CodeRevoked is the SQLSTATE of a session the gateway ended because its
// access was revoked or its token expired (invalid_authorization_specification).
const CodeRevoked = "28000"

// ErrRevoked is wrapped by the reason a session was ended.
var ErrRevoked = errors.New("session access revoked")

// Ended is closed when the gateway ends the session (revocation, token
// expiry); EndReason then returns why, as a *DeniedError. The protocol
// layer tells its client and closes the connection.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// EndReason returns why the session was ended, or nil.
func (s *Session) EndReason() *DeniedError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endErr
}

func (s *Session) revoke(msg string) {
	s.mu.Lock()
	if s.endErr != nil || s.closed {
		s.mu.Unlock()
		return
	}
	s.endErr = &DeniedError{Code: CodeRevoked, Err: ErrRevoked, Message: "gatehouse ended the session: " + msg,
		Hint: "Connect again with a fresh token; access is decided by the active policy."}
	s.mu.Unlock()
	s.p.cfg.Logger.Info("Session ended by the gateway.", "session_id", s.ID(), "identity", s.Identity().Name, "reason", msg)
	close(s.ended)
}

// armExpiry ends the session when its token expires.
func (s *Session) armExpiry() {
	c := s.claims
	if c == nil || c.ExpiresAt.IsZero() {
		return
	}
	d := c.ExpiresAt.Sub(s.p.cfg.Clock())
	if d <= 0 {
		s.revoke("the token expired")
		return
	}
	s.expiry = time.AfterFunc(d, func() { s.revoke("the token expired at " + c.ExpiresAt.UTC().Format(time.RFC3339)) })
}

// Reconcile re-resolves every open session against eng's policy. The
// server calls it after each bundle activation.
func (p *Pipeline) Reconcile(eng *engine.Engine) {
	if eng == nil {
		return
	}
	policy := &eng.Bundle().Policy
	revision := eng.Bundle().Manifest.Revision
	p.mu.Lock()
	open := make([]*Session, 0, len(p.open))
	for s := range p.open {
		open = append(open, s)
	}
	p.mu.Unlock()
	for _, s := range open {
		old := s.Identity()
		pr, err := identity.Resolve(policy, s.claims)
		switch {
		case err != nil:
			s.revoke(fmt.Sprintf("identity %s no longer exists in policy revision %s", old.Name, revision))
			continue
		case pr.Name != old.Name:
			s.revoke(fmt.Sprintf("the token now resolves to identity %s instead of %s in policy revision %s", pr.Name, old.Name, revision))
			continue
		}
		res, ok := findResource(policy, s.resource.Name)
		if !ok || res.Type != s.resource.Type {
			s.revoke(fmt.Sprintf("resource %s no longer exists in policy revision %s", s.resource.Name, revision))
			continue
		}
		if !slices.Equal(pr.Groups, old.Groups) {
			p.cfg.Logger.Info("Session groups changed with the policy.", "session_id", s.ID(), "identity", pr.Name,
				"groups", pr.Groups, "bundle_revision", revision)
		}
		s.principal.Store(pr)
	}
}
