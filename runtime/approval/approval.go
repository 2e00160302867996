package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
)

// Errors returned by the Service.
var (
	// ErrNotMember: the approver is not in the approval's group.
	ErrNotMember = errors.New("approver is not a member of the approver group")
	// ErrDenied: an approver denied the command.
	ErrDenied = errors.New("approval denied")
	// ErrExpired: no quorum was reached before the timeout.
	ErrExpired = errors.New("approval timed out")
)

// Store is what the Service needs from the record store.
type Store interface {
	record.ApprovalStore
	record.ApprovalWatcher
}

// Notifier is told about new approvals (webhooks). Notify must not block for
// long; errors are logged, never fatal to the request.
type Notifier interface {
	Notify(ctx context.Context, a record.Approval) error
}

// Config configures a Service.
type Config struct {
	Store     Store
	Notifiers []Notifier
	// DefaultTimeout applies when a request names none. Default 15m.
	DefaultTimeout time.Duration
	// MaxTimeout caps any timeout. Default 24h.
	MaxTimeout time.Duration
	Clock      func() time.Time
	Logger     *slog.Logger
}

// Validate checks cfg and fills defaults.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("approval: Store is required")
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = 15 * time.Minute
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = 24 * time.Hour
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Service manages approvals.
type Service struct {
	cfg Config

	mu      sync.Mutex
	waiters map[string][]chan struct{} // approval id -> waiters to wake
}

// New validates cfg. It starts nothing; call Run to process store
// notifications and expiry.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, waiters: make(map[string][]chan struct{})}, nil
}

// Request describes a command that needs approval.
type Request struct {
	SessionID string
	Identity  string
	Resource  string
	Command   string
	RuleID    string
	Group     string
	Count     int
	Timeout   time.Duration
}

// Create stores a pending approval and notifies. The returned approval's ID
// is what humans approve.
func (s *Service) Create(ctx context.Context, r Request) (record.Approval, error) {
	if r.Group == "" {
		return record.Approval{}, fmt.Errorf("approval: no approver group")
	}
	if r.Count < 1 {
		r.Count = 1
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = s.cfg.DefaultTimeout
	}
	timeout = min(timeout, s.cfg.MaxTimeout)
	now := s.cfg.Clock()
	a := record.Approval{
		ID:        record.NewID(now),
		SessionID: r.SessionID,
		Identity:  r.Identity,
		Resource:  r.Resource,
		Command:   r.Command,
		RuleID:    r.RuleID,
		Group:     r.Group,
		Count:     r.Count,
		Status:    record.StatusPending,
		CreatedAt: now,
		ExpiresAt: now.Add(timeout),
	}
	if err := s.cfg.Store.CreateApproval(ctx, &a); err != nil {
		return record.Approval{}, fmt.Errorf("create approval: %w", err)
	}
	for _, n := range s.cfg.Notifiers {
		if err := n.Notify(ctx, a); err != nil {
			s.cfg.Logger.WarnContext(ctx, "Approval notification failed.", "approval_id", a.ID, "error", err)
		}
	}
	return a, nil
}

// Wait blocks until the approval is approved (nil), denied (ErrDenied),
// expired (ErrExpired) or ctx is done. It wakes on store notifications
// (delivered by Run) and at the approval's deadline.
func (s *Service) Wait(ctx context.Context, id string) (record.Approval, error) {
	wake := make(chan struct{}, 1)
	s.mu.Lock()
	s.waiters[id] = append(s.waiters[id], wake)
	s.mu.Unlock()
	defer s.removeWaiter(id, wake)

	for {
		a, err := s.cfg.Store.GetApproval(ctx, id)
		if err != nil {
			return record.Approval{}, fmt.Errorf("wait for approval %s: %w", id, err)
		}
		switch a.Status {
		case record.StatusApproved:
			return a, nil
		case record.StatusDenied:
			return a, fmt.Errorf("approval %s: %w%s", id, ErrDenied, denyReason(a))
		case record.StatusExpired:
			return a, fmt.Errorf("approval %s: %w", id, ErrExpired)
		}
		now := s.cfg.Clock()
		if !now.Before(a.ExpiresAt) {
			if _, err := s.cfg.Store.ExpireApprovals(ctx, now); err != nil {
				return a, fmt.Errorf("expire approval %s: %w", id, err)
			}
			continue
		}
		timer := time.NewTimer(a.ExpiresAt.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return a, ctx.Err()
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func denyReason(a record.Approval) string {
	for _, v := range a.Votes {
		if v.Decision == record.DecisionDeny {
			if v.Reason != "" {
				return fmt.Sprintf(" by %s: %s", v.Approver, v.Reason)
			}
			return " by " + v.Approver
		}
	}
	return ""
}

func (s *Service) removeWaiter(id string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.DeleteFunc(s.waiters[id], func(c chan struct{}) bool { return c == ch })
	if len(list) == 0 {
		delete(s.waiters, id)
	} else {
		s.waiters[id] = list
	}
}

// wake signals every waiter of id without blocking.
func (s *Service) wake(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// wakeAll signals every waiter (after a lost watch, when any change may
// have been missed).
func (s *Service) wakeAll() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.waiters))
	for id := range s.waiters {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.wake(id)
	}
}

// Approver is the verified human casting a vote.
type Approver struct {
	Name   string
	Groups []string
}

// Vote records an approver's decision ("approve" or "deny") with a reason.
// The approver must be a member of the approval's group; the store refuses
// self-approval and a second vote by the same approver.
func (s *Service) Vote(ctx context.Context, id string, who Approver, decision, reason string) (record.Approval, error) {
	a, err := s.cfg.Store.GetApproval(ctx, id)
	if err != nil {
		return record.Approval{}, fmt.Errorf("vote on approval %s: %w", id, err)
	}
	if !slices.Contains(who.Groups, a.Group) {
		return a, fmt.Errorf("vote on approval %s: %s: %w %q", id, who.Name, ErrNotMember, a.Group)
	}
	updated, err := s.cfg.Store.AddVote(ctx, id, record.Vote{
		Approver: who.Name, Decision: decision, Reason: reason, Time: s.cfg.Clock(),
	})
	if err != nil {
		return updated, fmt.Errorf("vote on approval %s: %w", id, err)
	}
	s.wake(id)
	return updated, nil
}

// List returns approvals with the given status ("" = all).
func (s *Service) List(ctx context.Context, status string) ([]record.Approval, error) {
	return s.cfg.Store.ListApprovals(ctx, status)
}

// Get returns one approval.
func (s *Service) Get(ctx context.Context, id string) (record.Approval, error) {
	return s.cfg.Store.GetApproval(ctx, id)
}

// Run relays store notifications to waiters and expires overdue approvals
// until ctx is done. A failed watch is re-established with backoff; every
// waiter re-reads its approval then, so no change is missed.
func (s *Service) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	expiry := time.NewTicker(5 * time.Second)
	defer expiry.Stop()
	for {
		ch, err := s.cfg.Store.WatchApprovals(ctx)
		if err != nil {
			s.cfg.Logger.WarnContext(ctx, "Approval watch failed.", "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		s.wakeAll()
	loop:
		for {
			select {
			case <-ctx.Done():
				return nil
			case id, ok := <-ch:
				if !ok {
					break loop
				}
				s.wake(id)
			case <-expiry.C:
				if n, err := s.cfg.Store.ExpireApprovals(ctx, s.cfg.Clock()); err != nil {
					s.cfg.Logger.WarnContext(ctx, "Expiring approvals failed.", "error", err)
				} else if n > 0 {
					s.wakeAll()
				}
			}
		}
	}
}
