package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/identity"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// TokenVerifier verifies a bearer token.
type TokenVerifier interface {
	Verify(ctx context.Context, rawToken string) (*identity.Claims, error)
}

// Recorder starts session recordings.
type Recorder interface {
	StartSession(ctx context.Context, s *record.Session) (*record.SessionRecorder, error)
	// Available returns an error when nothing can be recorded (the
	// recorder closed, or the store failing with nothing to absorb it); a
	// full queue is not an error, it only makes reservations wait.
	Available() error
}

// Approvals creates approvals and waits for them.
type Approvals interface {
	Create(ctx context.Context, r approval.Request) (record.Approval, error)
	Wait(ctx context.Context, id string) (record.Approval, error)
}

var (
	_ TokenVerifier = (*identity.Verifier)(nil)
	_ Recorder      = (*record.Recorder)(nil)
	_ Approvals     = (*approval.Service)(nil)
)

// Config configures a Pipeline.
type Config struct {
	// Engine returns the active engine (nil: no bundle, everything denied).
	Engine     func() *engine.Engine
	Verifier   TokenVerifier
	Classifier sqlclass.Classifier
	Recorder   Recorder
	// Approvals may be nil: approve decisions are then denied with a reason.
	Approvals Approvals
	GatewayID string
	Clock     func() time.Time
	Logger    *slog.Logger
	// Registerer receives the pipeline's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// ApprovalHint is how a client is told to get a command approved; the
	// approval id is appended. Default: "gatehouse approvals approve".
	ApprovalHint string
}

// Validate checks cfg and fills defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Engine == nil {
		errs = append(errs, errors.New("proxy: Engine is required"))
	}
	if c.Verifier == nil {
		errs = append(errs, errors.New("proxy: Verifier is required"))
	}
	if c.Classifier == nil {
		errs = append(errs, errors.New("proxy: Classifier is required"))
	}
	if c.Recorder == nil {
		errs = append(errs, errors.New("proxy: Recorder is required"))
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ApprovalHint == "" {
		c.ApprovalHint = "gatehouse approvals approve"
	}
	return errors.Join(errs...)
}

// Pipeline authenticates connections and judges their commands. It is safe
// for concurrent use; one Pipeline serves every connection of a gateway.
type Pipeline struct {
	cfg Config
	m   *metrics

	mu   sync.Mutex
	open map[*Session]struct{} // sessions Reconcile re-resolves
}

// New validates cfg and registers metrics.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Pipeline{cfg: cfg, m: m, open: map[*Session]struct{}{}}, nil
}

// AuthError is an authentication failure. Message is safe to show to the
// client: it never contains the token.
type AuthError struct {
	Message string
	Err     error
}

func (e *AuthError) Error() string { return e.Message }
func (e *AuthError) Unwrap() error { return e.Err }

// ConnInfo describes a connection being authenticated.
type ConnInfo struct {
	// Resource is the policy resource the client asked for (for
	// PostgreSQL: the database name in the startup message).
	Resource string
	// Protocol is the resource type the listener serves.
	Protocol   bundle.ResourceType
	ClientAddr string
	Token      string
}

// Authenticate verifies the token, maps it to a policy identity, checks the
// resource, and starts the session recording. The returned Session carries
// the resolved resource (with its credential reference) for the backend
// login.
func (p *Pipeline) Authenticate(ctx context.Context, ci ConnInfo) (*Session, error) {
	eng := p.cfg.Engine()
	if eng == nil {
		p.m.auth.WithLabelValues("no_bundle").Inc()
		return nil, &AuthError{Message: "gatehouse has no valid policy bundle active; all access is denied"}
	}
	claims, err := p.cfg.Verifier.Verify(ctx, ci.Token)
	if err != nil {
		p.m.auth.WithLabelValues("bad_token").Inc()
		return nil, &AuthError{Message: "token rejected: " + err.Error(), Err: err}
	}
	policy := &eng.Bundle().Policy
	principal, err := identity.Resolve(policy, claims)
	if err != nil {
		p.m.auth.WithLabelValues("unknown_identity").Inc()
		return nil, &AuthError{Message: "token accepted but " + err.Error(), Err: err}
	}
	res, ok := findResource(policy, ci.Resource)
	if !ok {
		p.m.auth.WithLabelValues("unknown_resource").Inc()
		return nil, &AuthError{Message: fmt.Sprintf("no resource %q in the active policy (the database name selects the resource)", ci.Resource)}
	}
	if ci.Protocol != "" && res.Type != ci.Protocol {
		p.m.auth.WithLabelValues("wrong_protocol").Inc()
		return nil, &AuthError{Message: fmt.Sprintf("resource %q is of type %s, not %s", res.Name, res.Type, ci.Protocol)}
	}
	if err := p.cfg.Recorder.Available(); err != nil {
		p.m.auth.WithLabelValues("recorder_unavailable").Inc()
		return nil, &AuthError{Message: "recording is unavailable, so gatehouse refuses new sessions: " + err.Error(), Err: err}
	}
	sess := &record.Session{
		Identity:       principal.Name,
		IdentityKind:   principal.Kind,
		Groups:         append([]string(nil), principal.Groups...),
		Claims:         principal.Claims,
		Resource:       res.Name,
		ResourceType:   string(res.Type),
		ClientAddr:     ci.ClientAddr,
		GatewayID:      p.cfg.GatewayID,
		BundleRevision: eng.Bundle().Manifest.Revision,
	}
	rec, err := p.cfg.Recorder.StartSession(ctx, sess)
	if err != nil {
		p.m.auth.WithLabelValues("recorder_unavailable").Inc()
		return nil, &AuthError{Message: "recording is unavailable, so gatehouse refuses new sessions", Err: err}
	}
	p.m.auth.WithLabelValues("ok").Inc()
	p.m.sessions.Inc()
	s := newSession(p, principal, claims, res, rec)
	p.mu.Lock()
	p.open[s] = struct{}{}
	p.mu.Unlock()
	s.armExpiry()
	p.cfg.Logger.InfoContext(ctx, "Session started.", "session_id", rec.ID(), "identity", principal.Name,
		"resource", res.Name, "bundle_revision", sess.BundleRevision)
	return s, nil
}

func findResource(p *bundle.Policy, name string) (bundle.Resource, bool) {
	for _, r := range p.Resources {
		if r.Name == name {
			return r, true
		}
	}
	return bundle.Resource{}, false
}

type metrics struct {
	auth      *prometheus.CounterVec
	decisions *prometheus.CounterVec
	sessions  prometheus.Gauge
	decideDur prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "authentications_total",
			Help: "Connection authentications by result.",
		}, []string{"result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "decisions_total",
			Help: "Statement decisions by protocol and effect.",
		}, []string{"protocol", "effect"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "open_sessions",
			Help: "Sessions currently open.",
		}),
		decideDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "check_seconds",
			Help:    "Time to classify and decide one command (excluding approval waits).",
			Buckets: []float64{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.auth, m.decisions, m.sessions, m.decideDur} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("proxy: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
