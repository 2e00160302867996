package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Handler processes a fetched candidate. It returns an error when the
// candidate was rejected; the Poller then keeps the previous ETag (so the
// candidate is fetched and judged again later) and backs off.
type Handler func(ctx context.Context, f Fetched) error

// PollerConfig configures a Poller.
type PollerConfig struct {
	Source Source
	Handle Handler
	// Interval between polls when nothing goes wrong. Default 30s.
	Interval time.Duration
	// Jitter is the fraction of Interval added at random. Default 0.2.
	Jitter float64
	// MinBackoff and MaxBackoff bound the exponential backoff after errors.
	// Defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// InitialETag is the ETag of the bundle already active (restored from
	// disk), so the first poll can be answered 304.
	InitialETag string
	Logger      *slog.Logger
	// After replaces time.After in tests.
	After func(time.Duration) <-chan time.Time
}

// Validate checks the configuration and fills defaults.
func (c *PollerConfig) Validate() error {
	if c.Source == nil {
		return errors.New("poller: Source is required")
	}
	if c.Handle == nil {
		return errors.New("poller: Handle is required")
	}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.Jitter < 0 || c.Jitter > 1 {
		return fmt.Errorf("poller: jitter %v outside [0,1]", c.Jitter)
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.After == nil {
		c.After = time.After
	}
	return nil
}

// Poller fetches from one Source on a schedule and hands candidates to a
// Handler.
type Poller struct {
	cfg  PollerConfig
	etag string
	// failures counts consecutive failed attempts for the backoff.
	failures int
}

// NewPoller validates cfg. It starts nothing.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Poller{cfg: cfg, etag: cfg.InitialETag}, nil
}

// Once performs one fetch-and-handle cycle. It returns ErrNotModified when
// there was nothing new.
func (p *Poller) Once(ctx context.Context) error {
	f, err := p.cfg.Source.Fetch(ctx, p.etag)
	if err != nil {
		return err
	}
	if err := p.cfg.Handle(ctx, f); err != nil {
		return fmt.Errorf("candidate %s rejected: %w", f.ETag, err)
	}
	p.etag = f.ETag
	return nil
}

// Run polls until ctx is done. It returns nil on cancellation.
func (p *Poller) Run(ctx context.Context) error {
	var changes <-chan struct{}
	if w, ok := p.cfg.Source.(Watcher); ok {
		ch, err := w.Changes(ctx)
		if err != nil {
			p.cfg.Logger.WarnContext(ctx, "Bundle watch unavailable, polling only.", "error", err)
		} else {
			changes = ch
		}
	}
	for {
		err := p.Once(ctx)
		switch {
		case err == nil || errors.Is(err, ErrNotModified):
			p.failures = 0
		case ctx.Err() != nil:
			return nil
		default:
			p.failures++
			p.cfg.Logger.WarnContext(ctx, "Bundle poll failed.", "error", err, "failures", p.failures)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.cfg.After(p.nextDelay()):
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		}
	}
}

// nextDelay is the interval with jitter, or the backoff after failures.
func (p *Poller) nextDelay() time.Duration {
	if p.failures == 0 {
		return p.cfg.Interval + time.Duration(rand.Float64()*p.cfg.Jitter*float64(p.cfg.Interval))
	}
	d := p.cfg.MinBackoff
	for i := 1; i < p.failures && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	if d > p.cfg.MaxBackoff {
		d = p.cfg.MaxBackoff
	}
	// Full jitter on the backoff spreads retries of a fleet.
	return d/2 + time.Duration(rand.Float64()*float64(d/2))
}
