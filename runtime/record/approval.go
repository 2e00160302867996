package record

import (
	"fmt"
	"time"
)

// ValidateApproval checks a new approval and normalises its times. It sets
// Status to StatusPending when empty.
func ValidateApproval(a *Approval) error {
	if !ValidID(a.ID) {
		return fmt.Errorf("%w: approval id %q", ErrInvalid, a.ID)
	}
	if a.Identity == "" {
		return fmt.Errorf("%w: approval %s: identity is required", ErrInvalid, a.ID)
	}
	if a.Count < 1 {
		return fmt.Errorf("%w: approval %s: count must be at least 1", ErrInvalid, a.ID)
	}
	if a.CreatedAt.IsZero() || a.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: approval %s: created_at and expires_at are required", ErrInvalid, a.ID)
	}
	if a.Status == "" {
		a.Status = StatusPending
	}
	if a.Status != StatusPending {
		return fmt.Errorf("%w: approval %s: a new approval must be pending", ErrInvalid, a.ID)
	}
	if len(a.Votes) > 0 {
		return fmt.Errorf("%w: approval %s: a new approval has no votes", ErrInvalid, a.ID)
	}
	a.CreatedAt = Timestamp(a.CreatedAt)
	a.ExpiresAt = Timestamp(a.ExpiresAt)
	a.ResolvedAt = time.Time{}
	return nil
}

// ApplyVote is the approval state machine shared by all stores. It
// validates v against a (pending, not expired, not the requester, no
// earlier vote by the approver), appends it and recomputes Status: any deny
// vote denies; Count approve votes from distinct approvers approve;
// otherwise the approval stays pending. A vote at or after ExpiresAt sets
// Status to expired and returns ErrApprovalClosed; the caller persists a
// with that status.
func ApplyVote(a *Approval, v *Vote) error {
	if v.Approver == "" {
		return fmt.Errorf("%w: vote: approver is required", ErrInvalid)
	}
	if v.Decision != DecisionApprove && v.Decision != DecisionDeny {
		return fmt.Errorf("%w: vote: decision %q (want approve or deny)", ErrInvalid, v.Decision)
	}
	if v.Time.IsZero() {
		return fmt.Errorf("%w: vote: time is required", ErrInvalid)
	}
	v.Time = Timestamp(v.Time)
	if a.Status != StatusPending {
		return fmt.Errorf("approval %s is %s: %w", a.ID, a.Status, ErrApprovalClosed)
	}
	if !v.Time.Before(a.ExpiresAt) {
		a.Status = StatusExpired
		a.ResolvedAt = a.ExpiresAt
		return fmt.Errorf("approval %s expired at %s: %w", a.ID, a.ExpiresAt.Format(time.RFC3339), ErrApprovalClosed)
	}
	if v.Approver == a.Identity {
		return fmt.Errorf("approval %s: %w", a.ID, ErrSelfApproval)
	}
	for _, old := range a.Votes {
		if old.Approver == v.Approver {
			return fmt.Errorf("approval %s: %s: %w", a.ID, v.Approver, ErrDuplicateVote)
		}
	}
	a.Votes = append(a.Votes, *v)
	a.Status = StatusFromVotes(a.Votes, a.Count)
	if a.Status != StatusPending {
		a.ResolvedAt = v.Time
	}
	return nil
}

// StatusFromVotes computes the status of a pending approval from its votes.
func StatusFromVotes(votes []Vote, count int) string {
	approvals := 0
	for _, v := range votes {
		if v.Decision == DecisionDeny {
			return StatusDenied
		}
		approvals++
	}
	if approvals >= count {
		return StatusApproved
	}
	return StatusPending
}
