package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/mask"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// Judgment is the decision for one statement about to run. The protocol
// layer resolves references first (an EXECUTE to its prepared statement, a
// FETCH to its cursor), so the statement judged is the one whose facts
// decide what runs.
type Judgment struct {
	// Effect is allow, deny or approve.
	Effect bundle.Effect
	// Denied is set when Effect is deny: the error the client sees.
	Denied *DeniedError
	// RuleIDs name the deciding rules (see engine.Decision.RuleIDs).
	RuleIDs []string
	Reason  string
	// Revision is the bundle revision that decided.
	Revision string
	// Masks are the mask specs that apply to the statement's results.
	Masks []*bundle.MaskSpec
	// Approval is set when Effect is approve.
	Approval *bundle.ApprovalSpec
	// MaxRows caps the rows of the result (0: no cap).
	MaxRows int
	// Opaque is true when the statement may run functions whose reads the
	// gateway cannot see (functions defined in the database): every output
	// column is then treated as derived from every masked column.
	Opaque bool
	// Facts are the SQL facts the decision was made on (recorded with the
	// event, replayed by conformance).
	Facts SQLFacts
	// Other, when set, is recorded instead of Facts: the facts of a
	// command of another protocol (see JudgeCommand).
	Other any
}

// Resolution is what the protocol layer learned from the backend about the
// names a statement uses. A nil *Resolution means nothing beyond the
// statement's own facts.
type Resolution struct {
	// Tables maps a relation as written to the relation the backend
	// resolves it to ("customers" -> "public.customers").
	Tables map[string]string
	// GrantFunctions are functions (qualified "schema.name") the statement
	// may run that a rule must grant by name, beyond the statement's own
	// DangerousFunctions: functions defined in the database and reached by
	// name, operator or cast.
	GrantFunctions []string
	// Opaque is true when a function defined in the database may run.
	Opaque bool
}

// Judge decides one statement with the active bundle at the session's
// clock. It never consults the backend: everything it needs is in st and
// res. Judge is called by one goroutine per session (the connection's
// client reader).
func (s *Session) Judge(st *sqlclass.Statement, res *Resolution) Judgment {
	start := time.Now()
	j := s.judge(st, res)
	s.p.m.decideDur.Observe(time.Since(start).Seconds())
	s.p.m.decisions.WithLabelValues(string(s.resource.Type), string(j.Effect)).Inc()
	return j
}

func (s *Session) judge(st *sqlclass.Statement, res *Resolution) Judgment {
	eng := s.p.cfg.Engine()
	now := s.p.cfg.Clock()
	j := Judgment{Facts: RecordedFacts(st)}
	if eng != nil {
		j.Revision = eng.Bundle().Manifest.Revision
	}
	if res != nil {
		j.Opaque = res.Opaque
		j.Facts.DangerousFunctions = mergeSorted(j.Facts.DangerousFunctions, res.GrantFunctions)
		if len(res.Tables) > 0 {
			j.Facts.TablesRead = qualify(j.Facts.TablesRead, res.Tables)
			j.Facts.TablesWritten = qualify(j.Facts.TablesWritten, res.Tables)
		}
	}
	if derr := guard(st); derr != nil {
		derr.Revision = j.Revision
		j.Effect, j.Denied, j.Reason = bundle.EffectDeny, derr, derr.Message
		return j
	}
	if ImplicitlyAllowed(st.Kind, st.SubKind) {
		j.Effect, j.Reason = bundle.EffectAllow, ImplicitReason
		return j
	}
	facts := engineFacts(&j.Facts)
	pr := s.Identity()
	req := engine.Request{
		Identity: pr.Name, Groups: pr.Groups, Resource: s.resource.Name, Time: now,
		SQL: &facts,
	}
	d := &s.decision
	eng.Decide(&req, d)
	j.Effect, j.Reason, j.MaxRows = d.Effect, d.Reason, d.MaxRows
	j.RuleIDs = append([]string(nil), d.RuleIDs...)
	j.Masks = append([]*bundle.MaskSpec(nil), d.Masks...)
	j.Approval = d.Approval
	if d.Effect == bundle.EffectDeny {
		j.Denied = s.denial(d, st)
		return j
	}
	if derr := predicateGuard(j.Masks, st, j.Revision); derr != nil {
		j.Effect, j.Denied, j.Reason, j.Masks, j.Approval = bundle.EffectDeny, derr, derr.Message, nil, nil
		return j
	}
	if st.Locking && facts.Kind != "lock" {
		// Row locks are writes: the statement needs a grant for "lock" on
		// the same tables as well as for its own kind, and a rule that
		// denies or approves "lock" applies. The stricter outcome wins.
		facts.Kind = "lock"
		eng.Decide(&req, d)
		switch {
		case d.Effect == bundle.EffectDeny:
			j.Effect, j.Reason, j.Approval, j.Masks = d.Effect, d.Reason, nil, nil
			j.RuleIDs = append([]string(nil), d.RuleIDs...)
			j.Denied = s.denial(d, st)
			return j
		case d.Effect == bundle.EffectApprove && j.Effect == bundle.EffectAllow:
			j.Effect, j.Approval = d.Effect, d.Approval
		}
		for _, id := range d.RuleIDs {
			if !slices.Contains(j.RuleIDs, id) {
				j.RuleIDs = append(j.RuleIDs, id)
			}
		}
		if d.MaxRows > 0 && (j.MaxRows == 0 || d.MaxRows < j.MaxRows) {
			j.MaxRows = d.MaxRows
		}
		for _, m := range d.Masks {
			if !slices.Contains(j.Masks, m) {
				j.Masks = append(j.Masks, m)
			}
		}
	}
	return j
}

// predicateGuard refuses a statement whose conditions, grouping or ordering
// use a column masked by a spec with predicates "deny".
func predicateGuard(masks []*bundle.MaskSpec, st *sqlclass.Statement, revision string) *DeniedError {
	for _, m := range masks {
		if m == nil || m.Predicates != "deny" {
			continue
		}
		for _, c := range st.FilterColumns {
			if mask.Covers(m, c) {
				return &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied, Revision: revision,
					Message: fmt.Sprintf("gatehouse denied %s: it filters, groups or sorts on %s, a masked column, and conditions on masked columns would reveal their values", strings.ToUpper(st.Kind), c),
					Hint:    "Select the rows by other columns; the masked column can still be returned (masked)."}
			}
		}
	}
	return nil
}

// JudgeCommand decides a command of a protocol other than SQL (SSH,
// HTTP, Kubernetes): set fills that protocol's facts into the engine
// request; recorded is what the event records as the command's facts (and
// what conformance replays). It is called by one goroutine per session.
func (s *Session) JudgeCommand(set func(*engine.Request), recorded any) Judgment {
	start := time.Now()
	eng := s.p.cfg.Engine()
	j := Judgment{Other: recorded}
	if eng != nil {
		j.Revision = eng.Bundle().Manifest.Revision
	}
	pr := s.Identity()
	req := engine.Request{Identity: pr.Name, Groups: pr.Groups, Resource: s.resource.Name, Time: s.p.cfg.Clock()}
	set(&req)
	d := &s.decision
	eng.Decide(&req, d)
	j.Effect, j.Reason, j.MaxRows = d.Effect, d.Reason, d.MaxRows
	j.RuleIDs = append([]string(nil), d.RuleIDs...)
	j.Masks = append([]*bundle.MaskSpec(nil), d.Masks...)
	j.Approval = d.Approval
	if d.Effect == bundle.EffectDeny {
		detail := "bundle revision " + d.BundleRevision
		if len(d.RuleIDs) > 0 {
			detail = "rule " + strings.Join(d.RuleIDs, ", ") + "; " + detail
		}
		j.Denied = &DeniedError{Code: CodeInsufficientPrivilege, Message: "gatehouse denied the command: " + d.Reason, Detail: detail,
			RuleIDs: append([]string(nil), d.RuleIDs...), Revision: d.BundleRevision, Err: ErrDenied}
	}
	s.p.m.decideDur.Observe(time.Since(start).Seconds())
	s.p.m.decisions.WithLabelValues(string(s.resource.Type), string(j.Effect)).Inc()
	return j
}

// guard refuses, whatever the policy grants, what the gateway cannot judge
// soundly: prepared statements and cursors named with the gateway's
// reserved prefix, and statements whose inner statement could not be
// classified. (Changes of client_encoding and standard_conforming_strings
// are ordinary SET statements: the protocol layer takes the new values from
// the backend's reports before it classifies anything after them.)
func guard(st *sqlclass.Statement) *DeniedError {
	switch st.Kind {
	case "prepare", "execute", "deallocate", "declare", "fetch", "close":
		if strings.HasPrefix(st.Name, ReservedNamePrefix) {
			return &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied,
				Message: fmt.Sprintf("gatehouse denied %s: names starting with %q are reserved for the gateway", strings.ToUpper(st.Kind), ReservedNamePrefix)}
		}
	}
	if (st.Kind == "prepare" || st.Kind == "declare") && st.Inner == nil {
		return &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied,
			Message: "gatehouse denied the command: its inner statement could not be classified"}
	}
	return nil
}

// ReservedNamePrefix starts the names of prepared statements and portals
// that only the gateway uses (its deny substitutes refer to a statement of
// such a name, which therefore must never exist).
const ReservedNamePrefix = "__gatehouse"

func (s *Session) denial(d *engine.Decision, st *sqlclass.Statement) *DeniedError {
	kind := st.Kind
	if st.Locking && kind == "select" {
		kind = "select ... for update/share"
	}
	msg := "gatehouse denied " + strings.ToUpper(kind) + ": " + d.Reason
	detail := "bundle revision " + d.BundleRevision
	if len(d.RuleIDs) > 0 {
		detail = "rule " + strings.Join(d.RuleIDs, ", ") + "; " + detail
	}
	return &DeniedError{
		Code: CodeInsufficientPrivilege, Message: msg, Detail: detail,
		Hint: fmt.Sprintf("Access for %s to %s is defined in the policy repository; propose a rule change there (reviewed, tested and signed) to get it.",
			s.Identity().Name, s.resource.Name),
		RuleIDs: append([]string(nil), d.RuleIDs...), Revision: d.BundleRevision, Err: ErrDenied,
	}
}

// Unavailable is the refusal when the recorder cannot take events.
func (s *Session) Unavailable(err error) *DeniedError {
	revision := ""
	if eng := s.p.cfg.Engine(); eng != nil {
		revision = eng.Bundle().Manifest.Revision
	}
	return &DeniedError{
		Code: CodeUnavailable, Revision: revision, Err: err,
		Message: "gatehouse cannot record commands right now, so it refuses them (fail closed)",
		Hint:    "Retry later; the gateway operator has been alerted by the recorder health check.",
	}
}

// Unparseable is the refusal of a text the classifier rejected. Clients
// see the SQLSTATE they expect for a syntax error (42601), with the
// gateway's reason.
func (s *Session) Unparseable(err error) *DeniedError {
	revision := ""
	if eng := s.p.cfg.Engine(); eng != nil {
		revision = eng.Bundle().Manifest.Revision
	}
	code := CodeSyntaxError
	msg := "gatehouse denied the command: it could not be parsed, and unparseable commands are never forwarded"
	switch {
	case errors.Is(err, sqlclass.ErrTooLarge):
		code, msg = CodeProgramLimit, "gatehouse denied the command: it is larger than the gateway classifies"
	case errors.Is(err, sqlclass.ErrTooComplex):
		code, msg = CodeProgramLimit, "gatehouse denied the command: it is nested too deeply to classify safely"
	}
	return &DeniedError{Code: code, Revision: revision, Err: errors.Join(ErrDenied, err), Message: msg, Detail: err.Error()}
}

// Classify classifies a message's SQL text with the session's classifier.
func (s *Session) Classify(sql string) ([]sqlclass.Statement, error) {
	return s.p.cfg.Classifier.Classify(sql)
}

// engineFacts converts recorded facts into the engine's request facts.
func engineFacts(f *SQLFacts) engine.SQLFacts {
	tables := make([]string, 0, len(f.TablesRead)+len(f.TablesWritten))
	tables = append(tables, f.TablesRead...)
	for _, t := range f.TablesWritten {
		if !slices.Contains(tables, t) {
			tables = append(tables, t)
		}
	}
	return engine.SQLFacts{
		Kind:      f.Kind,
		Tables:    tables,
		Columns:   f.Columns,
		Functions: f.DangerousFunctions,
		HasWhere:  f.HasWhere,
	}
}

// qualify maps each table through m (as written -> resolved), keeping
// names m does not know.
func qualify(tables []string, m map[string]string) []string {
	if len(tables) == 0 {
		return tables
	}
	out := make([]string, len(tables))
	for i, t := range tables {
		if q, ok := m[t]; ok && q != "" {
			out[i] = q
		} else {
			out[i] = t
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mergeSorted returns the sorted union of a and b.
func mergeSorted(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := append(append([]string(nil), a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Wait helpers for approvals ------------------------------------------------

// ApprovalItem is one statement that needs approval, as the approver sees
// it.
type ApprovalItem struct {
	// Text is the statement.
	Text string
	// Params are the statement's parameter values as the approver sees
	// them (rendered by the protocol layer); empty for none.
	Params []string
	// Message is the whole client message when it holds several
	// statements, for context.
	Message string
	RuleIDs []string
	Spec    *bundle.ApprovalSpec
}

// RequestApprovals creates one approval per item and returns their ids,
// the notices that tell the client what it waits for, and the wait: it
// returns nil once every approval is granted, else a *DeniedError. Every
// approval covers exactly its item (statement and parameters), once.
func (s *Session) RequestApprovals(ctx context.Context, items []ApprovalItem, revision string) ([]string, []string, func(context.Context) error, *DeniedError) {
	if len(items) == 0 {
		return nil, nil, nil, nil
	}
	type made struct {
		id      string
		group   string
		ruleIDs []string
		timeout time.Duration
	}
	var all []made
	var notices []string
	for _, it := range items {
		ruleID := ""
		if len(it.RuleIDs) > 0 {
			ruleID = it.RuleIDs[0]
		}
		if s.p.cfg.Approvals == nil || it.Spec == nil {
			return nil, nil, nil, &DeniedError{Code: CodeInsufficientPrivilege, Err: ErrDenied, Revision: revision, RuleIDs: it.RuleIDs,
				Message: "gatehouse denied the command: rule " + ruleID + " requires approval, and approvals are not configured on this gateway"}
		}
		timeout, err := time.ParseDuration(it.Spec.Timeout)
		if err != nil || timeout <= 0 {
			timeout = 15 * time.Minute
		}
		a, err := s.p.cfg.Approvals.Create(ctx, approvalRequest(s, approvalCommand(it), ruleID, it.Spec, timeout))
		if err != nil {
			return nil, nil, nil, &DeniedError{Code: CodeInsufficientPrivilege, Err: errors.Join(ErrDenied, err), Revision: revision, RuleIDs: it.RuleIDs,
				Message: "gatehouse denied the command: rule " + ruleID + " requires approval, but the approval could not be created"}
		}
		all = append(all, made{id: a.ID, group: a.Group, ruleIDs: it.RuleIDs, timeout: timeout})
		notices = append(notices, fmt.Sprintf("gatehouse: rule %s requires approval by %d member(s) of group %q. Approval id %s; waiting up to %s. Approve with: %s %s --reason '...'",
			ruleID, a.Count, a.Group, a.ID, timeout, s.p.cfg.ApprovalHint, a.ID))
	}
	ids := make([]string, len(all))
	for i, m := range all {
		ids[i] = m.id
	}
	wait := func(ctx context.Context) error {
		for _, m := range all {
			wctx, cancel := context.WithTimeout(ctx, m.timeout+5*time.Second)
			got, err := s.p.cfg.Approvals.Wait(wctx, m.id)
			cancel()
			if err == nil {
				s.recordApproval(ctx, got, "approved")
				continue
			}
			s.recordApproval(ctx, got, err.Error())
			return &DeniedError{
				Code: CodeInsufficientPrivilege, Err: errors.Join(ErrDenied, err), Revision: revision, RuleIDs: m.ruleIDs,
				Message: "gatehouse denied the command: approval " + m.id + " was not granted: " + err.Error(),
				Hint:    "Ask a member of group " + m.group + " to approve it, then run the command again.",
			}
		}
		return nil
	}
	return ids, notices, wait, nil
}

// approvalCommand is the text an approver sees: the statement, its
// parameters, and the message it came in.
func approvalCommand(it ApprovalItem) string {
	var b strings.Builder
	b.WriteString(it.Text)
	for i, p := range it.Params {
		fmt.Fprintf(&b, "\n  $%d = %s", i+1, p)
	}
	if it.Message != "" && it.Message != it.Text {
		b.WriteString("\n-- in the message: ")
		b.WriteString(it.Message)
	}
	return b.String()
}
