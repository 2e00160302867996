package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/identity"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// SQLSTATE codes used for denials.
const (
	CodeInsufficientPrivilege = "42501"
	CodeUnavailable           = "57P03" // cannot_connect_now: recorder down
	CodeSyntaxError           = "42601" // what clients expect for an unparseable text
	CodeProgramLimit          = "54000" // program_limit_exceeded: too large or too deep
)

// DeniedError is a refused command, in a form every protocol can render:
// PostgreSQL uses Code as SQLSTATE and the rest as ErrorResponse fields.
type DeniedError struct {
	Code     string
	Message  string
	Detail   string
	Hint     string
	RuleIDs  []string
	Revision string
	Err      error
}

func (e *DeniedError) Error() string { return e.Message }
func (e *DeniedError) Unwrap() error { return e.Err }

// ErrDenied is wrapped by every DeniedError produced from a policy decision.
var ErrDenied = errors.New("denied by policy")

// Session judges and records the commands of one connection. Judge and
// the approval calls are made by one goroutine (the connection's client
// reader); Reserve, the Slots and the record calls may run concurrently with
// them; Close is called once, last.
type Session struct {
	p        *Pipeline
	resource bundle.Resource
	rec      *record.SessionRecorder
	// principal is re-resolved at every bundle activation (Reconcile).
	principal atomic.Pointer[identity.Principal]
	claims    *identity.Claims

	// decision is reused by Judge (single caller).
	decision engine.Decision

	ended  chan struct{}
	expiry *time.Timer

	mu     sync.Mutex
	closed bool
	endErr *DeniedError
}

func newSession(p *Pipeline, pr *identity.Principal, claims *identity.Claims, res bundle.Resource, rec *record.SessionRecorder) *Session {
	s := &Session{p: p, resource: res, rec: rec, claims: claims, ended: make(chan struct{})}
	s.principal.Store(pr)
	return s
}

// ID is the recording session id.
func (s *Session) ID() string { return s.rec.ID() }

// Identity is the caller's policy identity as the active policy resolves
// it.
func (s *Session) Identity() *identity.Principal { return s.principal.Load() }

// Resource is the policy resource of the session (with its credential
// reference, not the secret).
func (s *Session) Resource() bundle.Resource { return s.resource }

// Slots are places reserved in the recorder for the events of commands
// about to run: a command is forwarded only once the record of its outcome
// has a place, so no executed command goes unrecorded. Record consumes one
// slot; Release returns the unused ones. Slots may be used from another
// goroutine than the one that reserved them.
type Slots struct {
	s   *Session
	res *record.Reservation
}

// Reserve reserves n slots. It blocks while the session has too many
// events waiting to be written (backpressure: the caller stops reading its
// client) and fails at once when the recorder cannot record (fail closed);
// the error is a *DeniedError with SQLSTATE 57P03. Before it blocks it calls
// beforeWait (when set), so that the caller can make the backend send the
// outcomes whose recording frees the session's slots.
func (s *Session) Reserve(ctx context.Context, n int, beforeWait func() error) (*Slots, *DeniedError) {
	res, err := s.rec.TryReserve(n)
	if errors.Is(err, record.ErrWouldWait) {
		if beforeWait != nil {
			if ferr := beforeWait(); ferr != nil {
				return nil, s.Unavailable(ferr)
			}
		}
		res, err = s.rec.Reserve(ctx, n)
	}
	if err != nil {
		if errors.Is(err, record.ErrInvalid) {
			return nil, &DeniedError{Code: CodeProgramLimit, Err: err,
				Message: fmt.Sprintf("gatehouse denied the command: its %d statements are more than the gateway records for one message", n),
				Hint:    "Send fewer statements per message."}
		}
		s.p.cfg.Logger.WarnContext(ctx, "Command refused: recorder unavailable.", "session_id", s.ID(), "error", err)
		return nil, s.Unavailable(err)
	}
	return &Slots{s: s, res: res}, nil
}

// Record records ev in one reserved slot.
func (sl *Slots) Record(ev record.Event) {
	if sl == nil {
		return
	}
	if err := sl.res.Record(ev); err != nil {
		sl.s.p.cfg.Logger.Error("Recording an event failed.", "session_id", sl.s.ID(), "kind", ev.Kind,
			"effect", ev.Effect, "rule_ids", ev.RuleIDs, "error", err)
	}
}

// Release returns the unused slots. It is idempotent.
func (sl *Slots) Release() {
	if sl != nil {
		sl.res.Release()
	}
}

// Event returns the event recorded for a statement judged by j. text is
// what the client sent. The time is left for the recorder to stamp at
// completion.
func (s *Session) Event(text string, j *Judgment) record.Event {
	ev := record.Event{
		Kind: record.KindCommand, Protocol: string(s.resource.Type), Command: text,
		Effect: string(j.Effect), RuleIDs: append([]string(nil), j.RuleIDs...), BundleRevision: j.Revision,
		Reason: j.Reason, Masked: len(j.Masks) > 0, Facts: mustJSON(j.Facts),
	}
	if j.Other != nil {
		ev.Facts = mustJSON(j.Other)
	}
	if j.Denied != nil {
		ev.Reason = j.Denied.Message
		if j.Denied.Detail != "" {
			ev.Reason += ": " + j.Denied.Detail
		}
	}
	return ev
}

// CommandResult is the outcome of one command.
type CommandResult struct {
	Rows     int64
	Err      error
	Duration time.Duration
	// NotExecuted, when set, says why an allowed command never ran (an
	// earlier statement of its message failed, the connection ended).
	NotExecuted string
}

// Complete fills ev with the outcome and records it in a slot.
func (s *Session) Complete(sl *Slots, ev record.Event, res CommandResult) {
	ev.Time = time.Time{} // the recorder stamps completion time
	ev.DurationMicros = res.Duration.Microseconds()
	ev.Rows = res.Rows
	switch {
	case res.NotExecuted != "":
		ev.Error = "not executed: " + res.NotExecuted
	case res.Err != nil:
		ev.Error = res.Err.Error()
	}
	sl.Record(ev)
}

// RecordDenied records a refused command at once: the refusal itself is
// evidence. It reserves its own slot.
func (s *Session) RecordDenied(ctx context.Context, text string, j *Judgment, derr *DeniedError) {
	ev := s.Event(text, j)
	ev.Effect = string(bundle.EffectDeny)
	ev.Masked = false // nothing ran, nothing was masked
	ev.Time = s.p.cfg.Clock()
	if derr != nil {
		ev.Reason = derr.Message
		if derr.Detail != "" {
			ev.Reason += ": " + derr.Detail
		}
		if len(derr.RuleIDs) > 0 || j.Effect != bundle.EffectDeny {
			ev.RuleIDs = append([]string(nil), derr.RuleIDs...)
		}
	}
	sl, rerr := s.Reserve(ctx, 1, nil)
	if rerr != nil {
		// Nothing can be recorded: the refusal is logged instead.
		s.p.cfg.Logger.WarnContext(ctx, "Refusal not recorded: recorder unavailable.", "session_id", s.ID(),
			"rule_ids", ev.RuleIDs, "error", rerr.Err)
		return
	}
	sl.Record(ev)
}

func (s *Session) recordApproval(ctx context.Context, a record.Approval, outcome string) {
	voters := make([]string, 0, len(a.Votes))
	for _, v := range a.Votes {
		voters = append(voters, v.Approver+":"+v.Decision)
	}
	ev := record.Event{Kind: record.KindApproval, Protocol: string(s.resource.Type), ApprovalID: a.ID,
		Command: a.Command, Reason: outcome, Effect: a.Status, RuleIDs: []string{a.RuleID},
		Facts: mustJSON(map[string]any{"votes": voters, "group": a.Group, "count": a.Count})}
	sl, derr := s.Reserve(ctx, 1, nil)
	if derr != nil {
		s.p.cfg.Logger.Error("Recording an approval outcome failed.", "session_id", s.ID(), "approval_id", a.ID, "error", derr.Err)
		return
	}
	sl.Record(ev)
}

// Close ends the session's recording with reason (or, when the gateway
// ended the session, with why).
func (s *Session) Close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.endErr != nil {
		reason = s.endErr.Message
	}
	s.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.p.mu.Lock()
	delete(s.p.open, s)
	s.p.mu.Unlock()
	if err := s.rec.End(reason); err != nil {
		s.p.cfg.Logger.Error("Recording the end of a session failed.", "session_id", s.ID(), "error", err)
	}
	s.p.m.sessions.Dec()
}

// Facts converts a classified statement into the engine's SQL facts.
func Facts(st *sqlclass.Statement) engine.SQLFacts {
	tables := make([]string, 0, len(st.TablesRead)+len(st.TablesWritten))
	tables = append(tables, st.TablesRead...)
	for _, t := range st.TablesWritten {
		dup := false
		for _, r := range tables {
			if r == t {
				dup = true
				break
			}
		}
		if !dup {
			tables = append(tables, t)
		}
	}
	return engine.SQLFacts{
		Kind:      st.Kind,
		Tables:    tables,
		Columns:   st.Columns,
		Functions: st.DangerousFunctions,
		HasWhere:  st.HasWhere,
	}
}

// SQLFacts is how a statement's facts are recorded (and exported for
// conformance replay and access reviews).
type SQLFacts struct {
	Kind               string   `json:"kind"`
	SubKind            string   `json:"sub_kind,omitempty"`
	Name               string   `json:"name,omitempty"`
	TablesRead         []string `json:"tables_read,omitempty"`
	TablesWritten      []string `json:"tables_written,omitempty"`
	Columns            []string `json:"columns,omitempty"`
	Functions          []string `json:"functions,omitempty"`
	DangerousFunctions []string `json:"dangerous_functions,omitempty"`
	HasWhere           bool     `json:"has_where,omitempty"`
}

// RecordedFacts extracts the recorded facts of a statement.
func RecordedFacts(st *sqlclass.Statement) SQLFacts {
	return SQLFacts{
		Kind: st.Kind, SubKind: st.SubKind, Name: st.Name,
		TablesRead: st.TablesRead, TablesWritten: st.TablesWritten, Columns: st.Columns,
		Functions: st.Functions, DangerousFunctions: st.DangerousFunctions, HasWhere: st.HasWhere,
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
