package record

import (
	"encoding/json"
	"time"
)

// Event kinds.
const (
	KindCommand  = "command"
	KindAuth     = "auth"
	KindApproval = "approval"
	KindError    = "error"
	KindEnd      = "end"
)

// Approval statuses.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusDenied   = "denied"
	StatusExpired  = "expired"
)

// Vote decisions.
const (
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
)

// Session is the header of one recorded connection: who, what resource, when.
//
// Every field except EndedAt and EndReason is immutable once the session is
// created and is covered by the session's hash chain (see HeaderHash). The
// end of a session is covered by its final "end" event.
type Session struct {
	// ID is random and sortable: a millisecond time prefix and 80 random
	// bits (see NewID).
	ID           string   `json:"id"`
	Identity     string   `json:"identity"`
	IdentityKind string   `json:"identity_kind"`
	Groups       []string `json:"groups,omitempty"`
	// Claims is a small allow-listed subset of the verified token's claims.
	// After a round trip through a store numbers are json.Number.
	Claims         map[string]any `json:"claims,omitempty"`
	Resource       string         `json:"resource"`
	ResourceType   string         `json:"resource_type"`
	ClientAddr     string         `json:"client_addr"`
	GatewayID      string         `json:"gateway_id"`
	BundleRevision string         `json:"bundle_revision"`
	StartedAt      time.Time      `json:"started_at"`
	// EndedAt is zero while the session is open.
	EndedAt   time.Time `json:"ended_at,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
}

// Event is one recorded step of a session. Events of a session form a hash
// chain in Seq order (see Hash).
type Event struct {
	SessionID string `json:"session_id"`
	// Seq numbers the events of a session from 1 without gaps.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Kind is one of KindCommand, KindAuth, KindApproval, KindError, KindEnd.
	Kind     string `json:"kind"`
	Protocol string `json:"protocol"`
	// Command is the command text: SQL, an ssh command, "GET /path".
	Command string `json:"command"`
	// Facts are the parsed facts of the command (kind, tables, columns,
	// functions, has_where) as compact JSON.
	Facts json.RawMessage `json:"facts,omitempty"`
	// Effect is the decision: allow, deny or approve.
	Effect         string   `json:"effect"`
	RuleIDs        []string `json:"rule_ids,omitempty"`
	BundleRevision string   `json:"bundle_revision"`
	Reason         string   `json:"reason,omitempty"`
	ApprovalID     string   `json:"approval_id,omitempty"`
	Masked         bool     `json:"masked,omitempty"`
	DurationMicros int64    `json:"duration_micros,omitempty"`
	Rows           int64    `json:"rows,omitempty"`
	Error          string   `json:"error,omitempty"`
	// Results are recorded only when policy asks for them, already masked,
	// as compact JSON.
	Results json.RawMessage `json:"results,omitempty"`
	// PrevHash is the Hash of the previous event, or the session's
	// HeaderHash for the first event.
	PrevHash string `json:"prev_hash"`
	// Hash is hex(sha256(PrevHash || EncodeEvent(event))).
	Hash string `json:"hash"`
}

// Vote is one approver's decision on an Approval.
type Vote struct {
	Approver string `json:"approver"`
	// Decision is DecisionApprove or DecisionDeny.
	Decision string    `json:"decision"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`
}

// Approval is a request for human approval of one command. Approvals are
// persisted in the store so that several gateways share them.
type Approval struct {
	ID        string `json:"id"`
	SessionID string `json:"session_id"`
	// Identity is the requester; it may not vote on its own request.
	Identity string `json:"identity"`
	Resource string `json:"resource"`
	Command  string `json:"command"`
	RuleID   string `json:"rule_id"`
	// Group is the group whose members may approve; Count approvals from
	// distinct members are needed. Membership is checked by the caller.
	Group  string `json:"group"`
	Count  int    `json:"count"`
	Status string `json:"status"`
	// CreatedAt, ExpiresAt are set by the creator; ResolvedAt is zero while
	// pending.
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ResolvedAt time.Time `json:"resolved_at,omitempty"`
	// Votes in the order they were cast.
	Votes []Vote `json:"votes,omitempty"`
}

// SessionFilter selects sessions. Zero fields do not filter. Since and Until
// bound StartedAt (Since inclusive, Until exclusive). Sessions are returned
// newest first.
type SessionFilter struct {
	Identity string
	Resource string
	Since    time.Time
	Until    time.Time
	// Limit defaults to DefaultLimit and is capped at MaxLimit.
	Limit  int
	Offset int
}

// EventFilter selects events across sessions. Identity and Resource match
// the session header; Since and Until bound the event time (Since
// inclusive, Until exclusive). Events are returned in time order.
type EventFilter struct {
	Identity string
	Resource string
	Since    time.Time
	Until    time.Time
	Effect   string
	RuleID   string
	// Limit defaults to DefaultLimit and is capped at MaxLimit.
	Limit int
}

// Read limits for ListSessions and QueryEvents.
const (
	DefaultLimit = 1000
	MaxLimit     = 100000
)

// EffectiveLimit returns the limit a store applies for a requested limit.
func EffectiveLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	default:
		return limit
	}
}

// Timestamp normalises a time the way stores keep it: UTC, microsecond
// precision. The zero time stays zero.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
