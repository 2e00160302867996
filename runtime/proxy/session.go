package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// SQLVerdict is the outcome of CheckSQL.
type SQLVerdict struct {
	Allow bool
	// Err is set when Allow is false.
	Err *DeniedError
	// Notices are sent to the client before the command runs or waits.
	Notices []string
	// Wait, when set, must return nil before the command is forwarded (an
	// approval). Its error is a *DeniedError.
	Wait func(ctx context.Context) error
	// Masks are the mask specs of all statements (a result may come from
	// any of them, so the union applies). Empty: no masking.
	Masks []*bundle.MaskSpec
	// Statements are the classified statements (their OutputColumns map
	// result columns to sources for masking). For EXECUTE and FETCH they
	// are the prepared statement's or cursor's query.
	Statements []sqlclass.Statement
	RuleIDs    []string
	MaxRows    int
}

// Session judges the commands of one connection. CheckSQL is called by one
// goroutine (the connection's client reader); Done may run concurrently with
// it; Close is called once, last.
type Session struct {
	p         *Pipeline
	principal *identity.Principal
	resource  bundle.Resource
	rec       *record.SessionRecorder

	// decision is reused by CheckSQL (single caller).
	decision engine.Decision
	// sqlState holds the session's PREPAREd statements and DECLAREd
	// cursors. Only CheckSQL touches it.
	sqlState *SQLState

	mu sync.Mutex // guards inflight and templates (Done runs concurrently)
	// inflight holds allowed statements in wire order, awaiting Done.
	inflight []pendingStmt
	// templates keeps the last decision per single-statement text, so
	// repeated executions of a prepared statement (extended protocol) are
	// recorded with their decision.
	templates map[string]record.Event
	msgSeq    uint64
	closed    bool
}

type pendingStmt struct {
	sql   string // the whole message text judged by CheckSQL
	msg   uint64 // message sequence, to drop the rest of a failed message
	multi bool
	ev    record.Event
	start time.Time
}

// maxTemplates bounds the per-session decision templates.
const maxTemplates = 512

func newSession(p *Pipeline, pr *identity.Principal, res bundle.Resource, rec *record.SessionRecorder) *Session {
	return &Session{
		p: p, principal: pr, resource: res, rec: rec,
		sqlState:  NewSQLState(),
		templates: make(map[string]record.Event),
	}
}

// ID is the recording session id.
func (s *Session) ID() string { return s.rec.ID() }

// Identity is the caller's policy identity.
func (s *Session) Identity() *identity.Principal { return s.principal }

// Resource is the policy resource of the session (with its credential
// reference, not the secret).
func (s *Session) Resource() bundle.Resource { return s.resource }

// CheckSQL classifies and judges one message's SQL text.
func (s *Session) CheckSQL(ctx context.Context, sql string) SQLVerdict {
	start := time.Now()
	v := s.checkSQL(ctx, sql)
	s.p.m.decideDur.Observe(time.Since(start).Seconds())
	effect := "allow"
	switch {
	case !v.Allow:
		effect = "deny"
	case v.Wait != nil:
		effect = "approve"
	}
	s.p.m.decisions.WithLabelValues(string(s.resource.Type), effect).Inc()
	return v
}

func (s *Session) checkSQL(ctx context.Context, sql string) SQLVerdict {
	eng := s.p.cfg.Engine()
	now := s.p.cfg.Clock()
	revision := ""
	if eng != nil {
		revision = eng.Bundle().Manifest.Revision
	}
	if err := s.p.cfg.Recorder.Healthy(); err != nil {
		// Nothing can be recorded: refuse (fail closed). The denial itself
		// cannot be recorded either; it is logged.
		s.p.cfg.Logger.WarnContext(ctx, "Command refused: recorder unavailable.", "session_id", s.ID(), "error", err)
		return SQLVerdict{Err: &DeniedError{
			Code: CodeUnavailable, Revision: revision, Err: err,
			Message: "gatehouse cannot record commands right now, so it refuses them (fail closed)",
			Hint:    "Retry later; the gateway operator has been alerted by the recorder health check.",
		}}
	}
	stmts, err := s.p.cfg.Classifier.Classify(sql)
	if err != nil {
		d := &DeniedError{
			Code: CodeInsufficientPrivilege, Revision: revision, Err: errors.Join(ErrDenied, err),
			Message: "gatehouse denied the command: it could not be parsed, and unparseable commands are never forwarded",
			Detail:  err.Error(),
		}
		s.recordDenied(sql, nil, d, now)
		return SQLVerdict{Err: d}
	}
	if len(stmts) == 0 {
		return SQLVerdict{Allow: true}
	}

	type judged struct {
		st       sqlclass.Statement // the statement whose facts were judged
		effect   bundle.Effect
		ruleIDs  []string
		reason   string
		masks    []*bundle.MaskSpec
		approval *bundle.ApprovalSpec
		maxRows  int
		denied   *DeniedError
	}
	results := make([]judged, len(stmts))
	var denied *DeniedError
	var approve *judged
	for i := range stmts {
		st := stmts[i]
		j := &results[i]
		target, derr := s.sqlState.Resolve(&st)
		if derr != nil {
			derr.Revision = revision
			j.effect, j.denied, j.reason = bundle.EffectDeny, derr, derr.Message
			if denied == nil {
				denied = derr
			}
			j.st = st
			continue
		}
		j.st = target
		if ImplicitlyAllowed(target.Kind) {
			j.effect, j.reason = bundle.EffectAllow, ImplicitReason
			continue
		}
		facts := Facts(&target)
		req := engine.Request{
			Identity: s.principal.Name, Groups: s.principal.Groups, Resource: s.resource.Name, Time: now,
			SQL: &facts,
		}
		eng.Decide(&req, &s.decision)
		d := &s.decision
		j.effect, j.reason, j.maxRows = d.Effect, d.Reason, d.MaxRows
		j.ruleIDs = append([]string(nil), d.RuleIDs...)
		j.masks = append([]*bundle.MaskSpec(nil), d.Masks...)
		j.approval = d.Approval
		switch d.Effect {
		case bundle.EffectDeny:
			j.denied = s.denial(d, &target, len(stmts) > 1, i)
			if denied == nil {
				denied = j.denied
			}
		case bundle.EffectApprove:
			if approve == nil {
				approve = j
			}
		}
	}

	msg := s.nextMsg()
	if denied != nil {
		// Deny the whole message; record each statement with its own
		// decision, the allowed ones as not executed.
		for i := range results {
			r := &results[i]
			ev := s.event(stmts[i].Text, &r.st, string(bundle.EffectDeny), r.ruleIDs, revision, now)
			if r.denied != nil {
				ev.Reason = r.denied.Message
			} else {
				// Allowed on its own; the rules that allowed it did not
				// decide this outcome, so none are named.
				ev.RuleIDs = nil
				ev.Reason = "not executed: another statement in the same message was denied"
			}
			s.record(ev)
		}
		return SQLVerdict{Err: denied}
	}

	v := SQLVerdict{Allow: true}
	for i := range results {
		r := &results[i]
		v.Masks = append(v.Masks, r.masks...)
		v.Statements = append(v.Statements, r.st)
		v.RuleIDs = append(v.RuleIDs, r.ruleIDs...)
		if r.maxRows > 0 && (v.MaxRows == 0 || r.maxRows < v.MaxRows) {
			v.MaxRows = r.maxRows
		}
	}
	s.sqlState.Commit(stmts)

	var approvalID string
	if approve != nil {
		a, notices, wait, derr := s.requestApproval(ctx, sql, approve.ruleIDs, approve.approval, revision)
		if derr != nil {
			for i := range results {
				ev := s.event(stmts[i].Text, &results[i].st, string(bundle.EffectDeny), results[i].ruleIDs, revision, now)
				ev.Reason = derr.Message
				s.record(ev)
			}
			return SQLVerdict{Err: derr}
		}
		approvalID = a
		v.Notices, v.Wait = notices, wait
	}

	s.mu.Lock()
	for i := range results {
		r := &results[i]
		effect := bundle.EffectAllow
		if approve != nil {
			effect = bundle.EffectApprove
		}
		ev := s.event(stmts[i].Text, &r.st, string(effect), r.ruleIDs, revision, now)
		ev.Reason, ev.ApprovalID, ev.Masked = r.reason, approvalID, len(r.masks) > 0
		s.inflight = append(s.inflight, pendingStmt{sql: sql, msg: msg, multi: len(stmts) > 1, ev: ev, start: time.Now()})
		if len(stmts) == 1 {
			if len(s.templates) >= maxTemplates {
				clear(s.templates)
			}
			s.templates[sql] = ev
		}
	}
	s.mu.Unlock()
	return v
}

func (s *Session) denial(d *engine.Decision, st *sqlclass.Statement, multi bool, index int) *DeniedError {
	msg := "gatehouse denied " + strings.ToUpper(st.Kind) + ": " + d.Reason
	if multi {
		msg += fmt.Sprintf(" (statement %d of the message; the whole message was refused)", index+1)
	}
	detail := "bundle revision " + d.BundleRevision
	if len(d.RuleIDs) > 0 {
		detail = "rule " + strings.Join(d.RuleIDs, ", ") + "; " + detail
	}
	return &DeniedError{
		Code: CodeInsufficientPrivilege, Message: msg, Detail: detail,
		Hint: fmt.Sprintf("Access for %s to %s is defined in the policy repository; propose a rule change there (reviewed, tested and signed) to get it.",
			s.principal.Name, s.resource.Name),
		RuleIDs: append([]string(nil), d.RuleIDs...), Revision: d.BundleRevision, Err: ErrDenied,
	}
}

// requestApproval creates the approval and returns the notices and the
// wait function.
func (s *Session) requestApproval(ctx context.Context, sql string, ruleIDs []string, spec *bundle.ApprovalSpec, revision string) (string, []string, func(context.Context) error, *DeniedError) {
	ruleID := ""
	if len(ruleIDs) > 0 {
		ruleID = ruleIDs[0]
	}
	if s.p.cfg.Approvals == nil || spec == nil {
		return "", nil, nil, &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied, Revision: revision, RuleIDs: ruleIDs,
			Message: "gatehouse denied the command: rule " + ruleID + " requires approval, and approvals are not configured on this gateway"}
	}
	timeout, err := time.ParseDuration(spec.Timeout)
	if err != nil || timeout <= 0 {
		timeout = 15 * time.Minute
	}
	a, err := s.p.cfg.Approvals.Create(ctx, approvalRequest(s, sql, ruleID, spec, timeout))
	if err != nil {
		return "", nil, nil, &DeniedError{Code: CodeInsufficientPrivilege, Err: errors.Join(ErrDenied, err), Revision: revision, RuleIDs: ruleIDs,
			Message: "gatehouse denied the command: rule " + ruleID + " requires approval, but the approval could not be created"}
	}
	notice := fmt.Sprintf("gatehouse: rule %s requires approval by %d member(s) of group %q. Approval id %s; waiting up to %s. Approve with: %s %s --reason '...'",
		ruleID, a.Count, a.Group, a.ID, timeout, s.p.cfg.ApprovalHint, a.ID)
	wait := func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
		defer cancel()
		got, err := s.p.cfg.Approvals.Wait(wctx, a.ID)
		if err == nil {
			s.recordApproval(got, "approved")
			return nil
		}
		s.recordApproval(got, err.Error())
		return &DeniedError{
			Code: CodeInsufficientPrivilege, Err: errors.Join(ErrDenied, err), Revision: revision, RuleIDs: ruleIDs,
			Message: "gatehouse denied the command: approval " + a.ID + " was not granted: " + err.Error(),
			Hint:    "Ask a member of group " + a.Group + " to approve it, then run the command again.",
		}
	}
	return a.ID, []string{notice}, wait, nil
}

func (s *Session) recordApproval(a record.Approval, outcome string) {
	voters := make([]string, 0, len(a.Votes))
	for _, v := range a.Votes {
		voters = append(voters, v.Approver+":"+v.Decision)
	}
	s.record(record.Event{Kind: record.KindApproval, Protocol: string(s.resource.Type), ApprovalID: a.ID,
		Command: a.Command, Reason: outcome, Effect: a.Status, RuleIDs: []string{a.RuleID},
		Facts: mustJSON(map[string]any{"votes": voters, "group": a.Group, "count": a.Count})})
}

func (s *Session) nextMsg() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgSeq++
	return s.msgSeq
}

// CommandResult is the outcome of one command.
type CommandResult struct {
	// SQL is the message text the command came from.
	SQL      string
	Rows     int64
	Err      error
	Duration time.Duration
}

// Done records the outcome of one allowed command.
func (s *Session) Done(ctx context.Context, res CommandResult) {
	s.mu.Lock()
	var evs []record.Event
	var ev record.Event
	found := false
	for len(s.inflight) > 0 {
		front := s.inflight[0]
		s.inflight = s.inflight[1:]
		if front.sql == res.SQL {
			ev, found = front.ev, true
			if res.Err != nil && front.multi {
				// The rest of a failed multi-statement message never runs.
				for len(s.inflight) > 0 && s.inflight[0].msg == front.msg {
					skipped := s.inflight[0].ev
					skipped.Error = "not executed: an earlier statement of the same message failed"
					evs = append(evs, skipped)
					s.inflight = s.inflight[1:]
				}
			}
			break
		}
		// A statement that never produced a result (prepared but not
		// executed, or skipped): record it as such.
		front.ev.Error = "no result: prepared or skipped without execution"
		evs = append(evs, front.ev)
	}
	if !found {
		if t, ok := s.templates[res.SQL]; ok {
			ev, found = t, true
		}
	}
	s.mu.Unlock()
	if !found {
		ev = record.Event{Kind: record.KindCommand, Protocol: string(s.resource.Type), Command: res.SQL,
			Effect: string(bundle.EffectAllow), Reason: "decision not retained for this text"}
	}
	ev.Time = time.Time{} // the recorder stamps completion time
	ev.DurationMicros = res.Duration.Microseconds()
	ev.Rows = res.Rows
	if res.Err != nil {
		ev.Error = res.Err.Error()
	}
	ev.RuleIDs = append([]string(nil), ev.RuleIDs...)
	// Order: the completed command last, after skipped ones before it.
	for _, e := range evs {
		s.record(e)
	}
	s.record(ev)
}

// Close records statements that never completed and ends the session.
func (s *Session) Close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	rest := s.inflight
	s.inflight = nil
	s.mu.Unlock()
	for _, p := range rest {
		p.ev.Error = "no result: the connection ended first"
		s.record(p.ev)
	}
	if err := s.rec.End(reason); err != nil {
		s.p.cfg.Logger.Error("Recording the end of a session failed.", "session_id", s.ID(), "error", err)
	}
	s.p.m.sessions.Dec()
}

func (s *Session) recordDenied(text string, st *sqlclass.Statement, d *DeniedError, now time.Time) {
	ev := s.event(text, st, string(bundle.EffectDeny), d.RuleIDs, d.Revision, now)
	ev.Reason = d.Message
	if d.Detail != "" {
		ev.Reason += ": " + d.Detail
	}
	s.record(ev)
}

func (s *Session) event(text string, st *sqlclass.Statement, effect string, ruleIDs []string, revision string, now time.Time) record.Event {
	ev := record.Event{
		Kind: record.KindCommand, Protocol: string(s.resource.Type), Command: text,
		Effect: effect, RuleIDs: append([]string(nil), ruleIDs...), BundleRevision: revision, Time: now,
	}
	if st != nil {
		ev.Facts = mustJSON(RecordedFacts(st))
	}
	return ev
}

// record writes an event; a failure is logged with the event's identity
// (never silently dropped: the recorder itself refuses new commands once
// it is unhealthy).
func (s *Session) record(ev record.Event) {
	if err := s.rec.Record(ev); err != nil {
		s.p.cfg.Logger.Error("Recording an event failed.", "session_id", s.ID(), "kind", ev.Kind,
			"effect", ev.Effect, "rule_ids", ev.RuleIDs, "error", err)
	}
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
