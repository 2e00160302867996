package record

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned by stores and the recorder. Callers branch with
// errors.Is.
var (
	// ErrNotFound: no session or approval with that id.
	ErrNotFound = errors.New("record: not found")
	// ErrAlreadyExists: a session or approval with that id exists.
	ErrAlreadyExists = errors.New("record: already exists")
	// ErrConflict: an event with the same session and seq but a different
	// hash is already stored.
	ErrConflict = errors.New("record: conflicting event already stored")
	// ErrInvalid: a session, event, approval, vote or filter is malformed.
	ErrInvalid = errors.New("record: invalid input")
	// ErrDuplicateVote: the approver has already voted on this approval.
	ErrDuplicateVote = errors.New("record: approver has already voted")
	// ErrSelfApproval: the requester tried to vote on its own request.
	ErrSelfApproval = errors.New("record: requester may not vote on own request")
	// ErrApprovalClosed: the approval is no longer pending (approved,
	// denied or expired).
	ErrApprovalClosed = errors.New("record: approval is not pending")
	// ErrClosed: the store or recorder has been closed.
	ErrClosed = errors.New("record: closed")
	// ErrRecorderUnavailable: the recorder cannot accept the event (queue
	// full, or the store has been failing and the recorder fails closed).
	// Proxies deny the command with this reason.
	ErrRecorderUnavailable = errors.New("record: recorder unavailable")
	// ErrWouldWait: TryReserve found no room it could take without
	// waiting.
	ErrWouldWait = errors.New("record: reservation would wait")
	// ErrUnflushed: events accepted by the recorder could be neither
	// written nor spooled before the close deadline.
	ErrUnflushed = errors.New("record: events not flushed")
	// ErrChainBroken: a session's hash chain does not verify.
	ErrChainBroken = errors.New("record: hash chain broken")
)

// Store is the write side used by the Recorder. Implementations are safe for
// concurrent use.
//
// Call order: CreateSession before any AppendEvents for that session;
// EndSession after its last event. The store assigns nothing: Seq, PrevHash
// and Hash are computed by the recorder.
type Store interface {
	// CreateSession stores a session header. A second session with the same
	// ID fails with ErrAlreadyExists.
	CreateSession(ctx context.Context, s *Session) error
	// EndSession sets EndedAt and EndReason of an open or ended session
	// (ErrNotFound if there is none).
	EndSession(ctx context.Context, id string, endedAt time.Time, reason string) error
	// AppendEvents stores events atomically: all or none. Appending an
	// event that is already stored with the same hash is a no-op (so a
	// batch can be retried after an ambiguous failure); with a different
	// hash it fails with ErrConflict. The slice is only valid during the
	// call; implementations must not retain it.
	AppendEvents(ctx context.Context, events []Event) error
	// Close releases the store. It is idempotent; later calls fail with
	// ErrClosed.
	Close() error
}

// Reader reads recordings back and applies retention.
type Reader interface {
	// GetSession returns one session header (ErrNotFound).
	GetSession(ctx context.Context, id string) (Session, error)
	// ListSessions returns matching sessions, newest first.
	ListSessions(ctx context.Context, f SessionFilter) ([]Session, error)
	// Events returns all events of a session in Seq order (ErrNotFound if
	// the session does not exist).
	Events(ctx context.Context, sessionID string) ([]Event, error)
	// QueryEvents returns matching events across sessions in time order.
	QueryEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// DeleteBefore deletes whole sessions (header and events) that ended
	// before t and returns how many sessions it deleted. Open sessions are
	// never deleted.
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
}

// ApprovalStore persists approval requests and votes.
type ApprovalStore interface {
	// CreateApproval stores a new pending approval.
	CreateApproval(ctx context.Context, a *Approval) error
	// GetApproval returns an approval with its votes (ErrNotFound).
	GetApproval(ctx context.Context, id string) (Approval, error)
	// AddVote atomically adds a vote, recomputes the status (see ApplyVote)
	// and returns the updated approval. It refuses a second vote by the same
	// approver (ErrDuplicateVote), a vote by the requester
	// (ErrSelfApproval) and votes on approvals that are not pending
	// (ErrApprovalClosed); a vote cast at or after ExpiresAt expires the
	// approval and fails with ErrApprovalClosed.
	AddVote(ctx context.Context, approvalID string, v Vote) (Approval, error)
	// ListApprovals returns approvals with the given status ("" = all),
	// oldest first, at most MaxLimit.
	ListApprovals(ctx context.Context, status string) ([]Approval, error)
	// ExpireApprovals marks pending approvals whose ExpiresAt is at or
	// before now as expired and returns how many it changed.
	ExpireApprovals(ctx context.Context, now time.Time) (int64, error)
}

// ApprovalWatcher notifies about approval changes, across gateways when the
// store is shared.
type ApprovalWatcher interface {
	// WatchApprovals returns a channel that receives the id of every
	// approval that is created or changes (vote, resolution, expiry) after
	// the call returns. The channel is closed when ctx is done or the
	// watch fails; a consumer then re-reads the approvals it waits for and
	// watches again. Notifications may be coalesced or repeated, never
	// reordered past a change they follow.
	WatchApprovals(ctx context.Context) (<-chan string, error)
}

// EvidenceStore persists what the gateway signs: the seals of ended
// sessions and its checkpoints. The Recorder writes to it when it has a
// Signer.
type EvidenceStore interface {
	// PutSeal stores the seal of a session, replacing an earlier one
	// (ErrNotFound if the session does not exist). Writing the same seal
	// again is a no-op.
	PutSeal(ctx context.Context, s *Seal) error
	// PutCheckpoint stores a checkpoint and its entries atomically.
	// Storing the same checkpoint again (same gateway, seq and hash) is a
	// no-op; a different one with the same gateway and seq fails with
	// ErrConflict.
	PutCheckpoint(ctx context.Context, c *Checkpoint) error
	// LastCheckpoint returns the gateway's checkpoint with the highest
	// Seq, without its entries (ErrNotFound if it has none).
	LastCheckpoint(ctx context.Context, gatewayID string) (Checkpoint, error)
}

// EvidenceReader reads seals and checkpoints back for verification.
type EvidenceReader interface {
	// GetSeal returns a session's seal (ErrNotFound if it has none).
	GetSeal(ctx context.Context, sessionID string) (Seal, error)
	// CheckpointChains returns, for every gateway with checkpoints, the
	// lowest and highest Seq stored, sorted by gateway id.
	CheckpointChains(ctx context.Context) ([]ChainHead, error)
	// ListCheckpoints returns checkpoints of f.GatewayID in Seq order,
	// with their entries (see CheckpointFilter).
	ListCheckpoints(ctx context.Context, f CheckpointFilter) ([]Checkpoint, error)
	// CheckpointsNaming returns the checkpoints that have an entry for
	// the session, in gateway and Seq order (Hash as stored).
	CheckpointsNaming(ctx context.Context, sessionID string) ([]CheckpointRef, error)
}

// ChainHead describes the stored checkpoints of one gateway.
type ChainHead struct {
	GatewayID string `json:"gateway_id"`
	First     int64  `json:"first"`
	Last      int64  `json:"last"`
}

// CheckpointFilter selects checkpoints of one gateway: Seq >= FromSeq and,
// when Since is set, Time >= Since.
type CheckpointFilter struct {
	GatewayID string
	FromSeq   int64
	Since     time.Time
	// Limit defaults to DefaultCheckpointLimit and is capped at
	// MaxCheckpointLimit.
	Limit int
}

// Read limits for ListCheckpoints (a checkpoint carries one entry per
// session it covers).
const (
	DefaultCheckpointLimit = 100
	MaxCheckpointLimit     = 1000
)

// EffectiveCheckpointLimit returns the limit a store applies to
// ListCheckpoints.
func EffectiveCheckpointLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultCheckpointLimit
	case limit > MaxCheckpointLimit:
		return MaxCheckpointLimit
	default:
		return limit
	}
}

// Backend is everything a store implementation provides: what the server
// wires, the CLI reads and the compliance suite checks.
type Backend interface {
	Store
	Reader
	ApprovalStore
	ApprovalWatcher
	EvidenceStore
	EvidenceReader
}
