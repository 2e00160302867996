package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
	"github.com/gatehouse/gatehouse/runtime/engine"
)

// Active is one activated bundle. It is immutable; a reload replaces the
// whole value.
type Active struct {
	Engine      *engine.Engine
	Manifest    bundle.Manifest
	ETag        string
	KeyIDs      []string
	ActivatedAt time.Time
}

// BundleStatus is what /status reports about bundles.
type BundleStatus struct {
	Active         bool      `json:"active"`
	Revision       string    `json:"revision,omitempty"`
	Serial         uint64    `json:"serial,omitempty"`
	Expires        time.Time `json:"expires,omitempty"`
	SignedBy       []string  `json:"signed_by,omitempty"`
	ActivatedAt    time.Time `json:"activated_at,omitempty"`
	LastCheck      time.Time `json:"last_check,omitempty"`
	LastRejection  string    `json:"last_rejection,omitempty"`
	LastRejectedAt time.Time `json:"last_rejected_at,omitempty"`
	Restored       bool      `json:"restored_from_disk,omitempty"`
}

// ActivatorConfig configures an Activator.
type ActivatorConfig struct {
	Verifier  *bundle.Verifier
	ClockSkew time.Duration
	// StateDir is where the last good bundle is persisted ("" disables).
	StateDir   string
	Clock      func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// OnActivate, when set, is called with each newly active engine after
	// the swap (open sessions are re-resolved against it).
	OnActivate func(*engine.Engine)
}

// Activator verifies candidate bundles and makes good ones active. It is the
// fetch.Handler of the bundle poller. The active engine is read with one
// atomic load, so a decision in flight always finishes on the engine it
// started with and a reload never blocks the data path.
type Activator struct {
	cfg     ActivatorConfig
	current atomic.Pointer[Active]

	mu     sync.Mutex // serialises activations and guards status
	status BundleStatus

	activations *prometheus.CounterVec
	serial      prometheus.Gauge
}

// NewActivator validates cfg.
func NewActivator(cfg ActivatorConfig) (*Activator, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("activator: Verifier is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	a := &Activator{cfg: cfg}
	a.activations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "bundle", Name: "activations_total",
		Help: "Bundle candidates by outcome: activated, or the rejection reason.",
	}, []string{"result"})
	a.serial = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "bundle", Name: "active_serial",
		Help: "Serial of the active bundle (0 when none is active).",
	})
	for _, c := range []prometheus.Collector{a.activations, a.serial} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("activator: register metrics: %w", err)
		}
	}
	return a, nil
}

// Engine returns the active engine, or nil when no bundle is active (a nil
// engine denies everything).
func (a *Activator) Engine() *engine.Engine {
	if cur := a.current.Load(); cur != nil {
		return cur.Engine
	}
	return nil
}

// Current returns the active bundle, or nil.
func (a *Activator) Current() *Active { return a.current.Load() }

// Ready reports whether a bundle is active.
func (a *Activator) Ready() bool { return a.current.Load() != nil }

// Status returns a snapshot of the bundle status.
func (a *Activator) Status() BundleStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

// ETag returns the ETag of the active bundle ("" when none).
func (a *Activator) ETag() string {
	if cur := a.current.Load(); cur != nil {
		return cur.ETag
	}
	return ""
}

// Handle implements fetch.Handler: verify, check, build the engine, swap,
// persist. Any failure leaves the active bundle untouched. A candidate that
// is the active bundle again is not an error.
func (a *Activator) Handle(ctx context.Context, f fetch.Fetched) error {
	err := a.activate(f.Data, f.ETag, true)
	if errors.Is(err, bundle.ErrNotNewer) {
		return nil
	}
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "Bundle candidate rejected.", "etag", f.ETag, "error", err)
	}
	return err
}

var _ fetch.Handler = (*Activator)(nil).Handle

func (a *Activator) activate(data []byte, etag string, persist bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Clock()
	a.status.LastCheck = now

	verified, err := a.cfg.Verifier.VerifyDetailed(data)
	if err == nil {
		var active *bundle.Manifest
		if cur := a.current.Load(); cur != nil {
			active = &cur.Manifest
		}
		err = bundle.Check(verified.Bundle, active, now, bundle.WithClockSkew(a.cfg.ClockSkew))
	}
	var eng *engine.Engine
	if err == nil {
		eng, err = engine.New(verified.Bundle)
		if err != nil {
			err = fmt.Errorf("compile bundle for evaluation: %w", err)
		}
	}
	if err != nil {
		if !errors.Is(err, bundle.ErrNotNewer) {
			a.activations.WithLabelValues(rejectionLabel(err)).Inc()
			a.status.LastRejection = err.Error()
			a.status.LastRejectedAt = now
		}
		return err
	}
	next := &Active{
		Engine:      eng,
		Manifest:    verified.Bundle.Manifest,
		ETag:        etag,
		KeyIDs:      verified.KeyIDs,
		ActivatedAt: now,
	}
	if persist && a.cfg.StateDir != "" {
		// Persist before the swap: if the disk write fails we still
		// activate (the bundle is valid), but say so loudly.
		if err := a.persist(data, etag); err != nil {
			a.cfg.Logger.Error("Persisting the last good bundle failed; a restart with the source down will start without it.", "error", err)
		}
	}
	a.current.Store(next)
	a.activations.WithLabelValues("activated").Inc()
	a.serial.Set(float64(next.Manifest.Serial))
	a.status.Active = true
	a.status.Revision = next.Manifest.Revision
	a.status.Serial = next.Manifest.Serial
	a.status.Expires = next.Manifest.Expires
	a.status.SignedBy = next.KeyIDs
	a.status.ActivatedAt = now
	a.status.Restored = !persist
	a.cfg.Logger.Info("Bundle activated.", "bundle_revision", next.Manifest.Revision,
		"serial", next.Manifest.Serial, "rules", len(verified.Bundle.Policy.Rules))
	if a.cfg.OnActivate != nil {
		a.cfg.OnActivate(eng)
	}
	return nil
}

// rejectionLabel maps an error to a bounded metric label.
func rejectionLabel(err error) string {
	for _, c := range []struct {
		err   error
		label string
	}{
		{bundle.ErrUnsigned, "unsigned"},
		{bundle.ErrUnknownKey, "unknown_key"},
		{bundle.ErrThreshold, "threshold"},
		{bundle.ErrBadSignature, "bad_signature"},
		{bundle.ErrDigestMismatch, "digest_mismatch"},
		{bundle.ErrFormatVersion, "format_version"},
		{bundle.ErrRollback, "rollback"},
		{bundle.ErrExpired, "expired"},
		{bundle.ErrNotYetValid, "not_yet_valid"},
		{bundle.ErrTooLarge, "too_large"},
		{bundle.ErrMalformed, "malformed"},
	} {
		if errors.Is(err, c.err) {
			return c.label
		}
	}
	return "other"
}

const (
	lastGoodFile = "last-good.bundle"
	lastGoodETag = "last-good.etag"
)

// persist writes the last good bundle and its ETag by temp file and rename,
// so a crash never leaves a half-written bundle.
func (a *Activator) persist(data []byte, etag string) error {
	dir := filepath.Join(a.cfg.StateDir, "bundle")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, lastGoodFile), data); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, lastGoodETag), []byte(etag))
}

// Restore activates the persisted last good bundle, if any, so a gateway
// restarted while its bundle source is down keeps enforcing the policy it
// had. The persisted bundle goes through the same verification and checks
// as a fetched one (it may have expired meanwhile: then nothing is active).
func (a *Activator) Restore(ctx context.Context) error {
	if a.cfg.StateDir == "" {
		return nil
	}
	dir := filepath.Join(a.cfg.StateDir, "bundle")
	data, err := os.ReadFile(filepath.Join(dir, lastGoodFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore last good bundle: %w", err)
	}
	etag, _ := os.ReadFile(filepath.Join(dir, lastGoodETag))
	if err := a.activate(data, string(etag), false); err != nil {
		return fmt.Errorf("restore last good bundle: %w", err)
	}
	a.cfg.Logger.InfoContext(ctx, "Restored the last good bundle from disk.", "dir", dir)
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
