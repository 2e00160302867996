package server

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/identity"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/postgres"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
	"github.com/gatehouse/gatehouse/runtime/ui"
)

// Server is a running gateway.
type Server struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry

	activator *Activator
	poller    *fetch.Poller
	store     record.Backend
	recorder  *record.Recorder
	approvals *approval.Service
	dev       *identity.DevIssuer
	verifier  *policyVerifier
	clock     func() time.Time
	pipeline  *proxy.Pipeline
	pgHandler *pg.Handler
	dashboard *ui.Handler
	// maskKey keys the "hash" masking style, so equal values hash equally
	// across sessions (joins still work) but cannot be looked up without it.
	maskKey []byte
	// recordingKeys sign the recordings (recordkey.go).
	recordingKeys *recordingKeys

	// Listeners are opened in Listen (or by Run) so tests can bind port 0
	// and read the address before serving.
	mu      sync.Mutex
	pgLn    net.Listener
	adminLn net.Listener
	closers []func() error
}

// Option adjusts a Server beyond what its configuration can say.
type Option func(*Server)

// WithClock makes the gateway read the time from clock instead of the wall
// clock, everywhere the time is compared with something it stored or was
// given: rule expiry and time windows, bundle validity, tokens, recordings,
// approvals, retention and the dashboard's review. Tests use it to run the
// example policies at a fixed date. Timers still run on the wall clock, so
// clock should advance at its pace.
func WithClock(clock func() time.Time) Option {
	return func(s *Server) { s.clock = clock }
}

// New validates cfg and builds every component. It opens the record store
// and restores the last good bundle; it serves nothing until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GatewayID == "" {
		cfg.GatewayID, _ = os.Hostname()
	}
	s := &Server{cfg: cfg, log: logger, registry: prometheus.NewRegistry(), clock: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}

	// Bundles.
	verifier, err := newBundleVerifier(cfg.Bundle)
	if err != nil {
		return nil, err
	}
	if verifier.Insecure() {
		logger.Warn("Bundle signatures are NOT verified (bundle.allow_unsigned). Use this only for local development.")
	}
	s.activator, err = NewActivator(ActivatorConfig{
		Verifier: verifier, ClockSkew: cfg.Bundle.ClockSkew, StateDir: cfg.StateDir, Clock: s.clock,
		Logger: logger.With("component", "bundle"), Registerer: s.registry,
		OnActivate: func(eng *engine.Engine) {
			// Open sessions follow the new policy: groups re-resolved,
			// sessions of removed identities or resources ended.
			if s.pipeline != nil {
				s.pipeline.Reconcile(eng)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := s.activator.Restore(ctx); err != nil {
		logger.Warn("The persisted bundle was not restored.", "error", err)
	}
	src, err := fetch.NewSource(cfg.Bundle.Source, nil)
	if err != nil {
		return nil, fmt.Errorf("bundle.source: %w", err)
	}
	s.poller, err = fetch.NewPoller(fetch.PollerConfig{
		Source: src, Handle: s.activator.Handle, Interval: cfg.Bundle.PollInterval,
		InitialETag: s.activator.ETag(), Logger: logger.With("component", "bundle.fetch"),
	})
	if err != nil {
		return nil, err
	}

	// Recording.
	s.store, err = OpenStore(ctx, cfg.Recording.Store, logger)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.store.Close)
	if s.recordingKeys, err = openRecordingKeys(cfg, logger); err != nil {
		return nil, err
	}
	rcfg := record.Config{
		Store: s.store, QueueSize: cfg.Recording.QueueSize, SessionQueue: cfg.Recording.SessionQueue, BatchSize: cfg.Recording.BatchSize,
		FlushInterval: cfg.Recording.FlushInterval, FailOpen: !cfg.Recording.FailClosed,
		SpoolDir: cfg.Recording.SpoolDir, Clock: record.NowFunc(s.clock),
		Logger: logger.With("component", "record"), Registerer: s.registry,
	}
	s.recordingKeys.configure(&rcfg, cfg)
	s.recorder, err = record.New(rcfg)
	if err != nil {
		return nil, err
	}

	// Approvals.
	var notifiers []approval.Notifier
	for _, w := range cfg.Approvals.Webhooks {
		notifiers = append(notifiers, &approval.Webhook{URL: w.URL, Format: w.Format, AdminURL: cfg.Approvals.URL})
	}
	s.approvals, err = approval.New(approval.Config{Store: s.store, Notifiers: notifiers, Clock: s.clock,
		Logger: logger.With("component", "approval")})
	if err != nil {
		return nil, err
	}

	// Identity.
	if cfg.Identity.DevIssuer.Enabled {
		s.dev, err = identity.OpenDevIssuer(identity.DevIssuerConfig{
			Dir: filepath.Join(cfg.StateDir, "dev-issuer"), Issuer: cfg.Identity.DevIssuer.Issuer,
			Audience: cfg.Identity.Audience, Clock: s.clock, Logger: logger,
		})
		if err != nil {
			return nil, err
		}
		logger.Warn("The development token issuer is enabled: anyone with access to the state directory can mint tokens. Disable identity.dev_issuer in production.")
	}
	s.verifier = &policyVerifier{cfg: cfg.Identity, dev: s.dev, activator: s.activator, clock: s.clock, log: logger}
	if _, err := s.verifier.current(); err != nil && len(cfg.Identity.Issuers) > 0 {
		return nil, err
	}

	// Data path.
	if s.maskKey, err = loadOrCreateKey(filepath.Join(cfg.StateDir, "mask-hash.key")); err != nil {
		return nil, err
	}
	s.pipeline, err = proxy.New(proxy.Config{
		Engine: s.activator.Engine, Verifier: s.verifier,
		Classifier: sqlclass.NewCache(mustPostgresClassifier(), 10000),
		Recorder:   s.recorder, Approvals: s.approvals, GatewayID: cfg.GatewayID, Clock: s.clock,
		Logger: logger.With("component", "proxy"), Registerer: s.registry,
	})
	if err != nil {
		return nil, err
	}
	if s.dashboard, err = s.newDashboard(); err != nil {
		return nil, err
	}
	if cfg.Postgres.Listen != "" {
		var tlsCfg *tls.Config
		if cfg.Postgres.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.Postgres.TLSCert, cfg.Postgres.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("postgres.tls_cert: %w", err)
			}
			tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		s.pgHandler, err = pg.New(pg.Config{
			Hooks:     &pg.PolicyHooks{Pipeline: s.pipeline, Planner: newMaskPlanner(s), Resolver: newCatalogResolver(s)},
			Backend:   s.postgresBackend,
			TLSConfig: tlsCfg, RequireTLS: cfg.Postgres.RequireTLS,
			Logger: logger,
		})
		if err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

func mustPostgresClassifier() *sqlclass.Postgres {
	c, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		panic(err) // the zero config is valid
	}
	return c
}

func newBundleVerifier(cfg BundleConfig) (*bundle.Verifier, error) {
	var keys []crypto.PublicKey
	for _, path := range cfg.Keys {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("bundle.keys: %w", err)
		}
		k, err := bundle.LoadPublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("bundle.keys: %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	var opts []bundle.VerifierOption
	if cfg.AllowUnsigned && len(keys) == 0 {
		opts = append(opts, bundle.AllowUnsigned())
	}
	v, err := bundle.NewVerifier(keys, cfg.Threshold, opts...)
	if err != nil {
		return nil, fmt.Errorf("bundle keys: %w", err)
	}
	return v, nil
}

// OpenStore opens the record store named by a location: "sqlite:PATH" or a
// postgres:// (postgresql://) URL.
func OpenStore(ctx context.Context, location string, logger *slog.Logger) (record.Backend, error) {
	switch {
	case strings.HasPrefix(location, "sqlite:"):
		st, err := sqlite.Open(ctx, sqlite.Config{Path: strings.TrimPrefix(location, "sqlite:"), Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("recording.store: %w", err)
		}
		return st, nil
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		st, err := postgres.Open(ctx, postgres.Config{DSN: location, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("recording.store: %w", err)
		}
		return st, nil
	default:
		return nil, errors.New(`recording.store: want "sqlite:PATH" or a postgres:// URL`)
	}
}

// postgresBackend resolves where the gateway logs in for a database name:
// the policy resource of that name, with the configuration's overrides, and
// its credential resolved from the environment or a file.
func (s *Server) postgresBackend(_ context.Context, database string) (pg.BackendConfig, error) {
	eng := s.activator.Engine()
	if eng == nil {
		return pg.BackendConfig{}, errors.New("no policy bundle is active")
	}
	var res *bundle.Resource
	for i := range eng.Bundle().Policy.Resources {
		if r := &eng.Bundle().Policy.Resources[i]; r.Name == database {
			res = r
		}
	}
	if res == nil || res.Type != bundle.ResourcePostgres {
		return pg.BackendConfig{}, fmt.Errorf("no postgres resource %q", database)
	}
	bc := pg.BackendConfig{Address: res.Address, User: res.User, Database: res.Database}
	ref := res.Credential
	if o, ok := s.cfg.Resources[res.Name]; ok {
		if o.Address != "" {
			bc.Address = o.Address
		}
		if o.Database != "" {
			bc.Database = o.Database
		}
		if o.User != "" {
			bc.User = o.User
		}
		if o.Credential != "" {
			ref = o.Credential
		}
	}
	if bc.User == "" {
		bc.User = "gatehouse"
	}
	if bc.Database == "" {
		bc.Database = res.Name
	}
	pw, err := proxy.ResolveCredential(ref)
	if err != nil {
		return pg.BackendConfig{}, err
	}
	bc.Password = pw
	switch res.TLS.Mode {
	case "require":
		bc.TLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // "require" means encrypt without verifying, as libpq's sslmode=require
	case "verify-full":
		bc.TLS = &tls.Config{ServerName: res.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if bc.TLS.ServerName == "" {
			bc.TLS.ServerName, _, _ = net.SplitHostPort(bc.Address)
		}
	}
	return bc, nil
}

// Listen opens the listeners. Run calls it if it was not called before.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pgHandler != nil && s.pgLn == nil {
		ln, err := net.Listen("tcp", s.cfg.Postgres.Listen)
		if err != nil {
			return fmt.Errorf("postgres.listen: %w", err)
		}
		s.pgLn = ln
	}
	if s.cfg.Admin.Listen != "" && s.adminLn == nil {
		ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
		s.adminLn = ln
	}
	return nil
}

// PostgresAddr is the PostgreSQL listener's address (after Listen).
func (s *Server) PostgresAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pgLn == nil {
		return nil
	}
	return s.pgLn.Addr()
}

// AdminAddr is the admin listener's address (after Listen).
func (s *Server) AdminAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Activator returns the bundle activator.
func (s *Server) Activator() *Activator { return s.activator }

// Store returns the record store.
func (s *Server) Store() record.Backend { return s.store }

// Approvals returns the approval service.
func (s *Server) Approvals() *approval.Service { return s.approvals }

// DevIssuer returns the development issuer, or nil when disabled.
func (s *Server) DevIssuer() *identity.DevIssuer { return s.dev }

// Run serves until ctx is done or a component fails.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.recorder.Run(ctx) })
	g.Go(func() error { return s.poller.Run(ctx) })
	g.Go(func() error { return s.approvals.Run(ctx) })
	if s.cfg.Recording.Retention > 0 {
		g.Go(func() error { return s.retention(ctx) })
	}
	if s.adminLn != nil {
		srv := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			var err error
			if s.cfg.Admin.TLSCert != "" {
				err = srv.ServeTLS(s.adminLn, s.cfg.Admin.TLSCert, s.cfg.Admin.TLSKey)
			} else {
				err = srv.Serve(s.adminLn)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("admin server: %w", err)
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	if s.pgLn != nil {
		g.Go(func() error { return s.servePostgres(ctx) })
	}
	s.log.Info("Gateway started.", "postgres", addrString(s.pgLn), "admin", addrString(s.adminLn),
		"bundle_source", s.cfg.Bundle.Source, "store", redactStore(s.cfg.Recording.Store))
	err := g.Wait()
	return err
}

func addrString(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

func redactStore(loc string) string {
	if strings.HasPrefix(loc, "sqlite:") {
		return loc
	}
	return "postgres (DSN redacted)"
}

// servePostgres accepts PostgreSQL clients until ctx is done, then gives
// open connections ShutdownGrace to finish before cancelling them.
func (s *Server) servePostgres(ctx context.Context) error {
	connCtx, cancelConns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConns()
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { s.pgLn.Close() })
	defer stop()
	for {
		c, err := s.pgLn.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			cancelConns()
			wg.Wait()
			return fmt.Errorf("postgres listener: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.pgHandler.ServeConn(connCtx, c); err != nil {
				s.log.Debug("PostgreSQL connection ended with an error.", "error", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownGrace):
		s.log.Warn("Shutdown grace period over; closing the remaining connections.")
		cancelConns()
		<-done
	}
	return nil
}

func (s *Server) retention(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.deleteRecordingsBefore(ctx, s.clock().Add(-s.cfg.Recording.Retention))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("Retention cleanup failed.", "error", err)
		} else if n > 0 {
			s.log.Info("Retention removed old sessions.", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close releases what New opened. It is safe after a partial New.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.recorder != nil {
		if err := s.recorder.Close(); err != nil && !errors.Is(err, record.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil && !errors.Is(err, record.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	for _, ln := range []net.Listener{s.pgLn, s.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
	return errors.Join(errs...)
}
