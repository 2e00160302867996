package pg

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// RowPlanner builds the row rewriter that masks the results of one allowed
// statement. It returns an error when the statement cannot be masked
// safely; the statement is then denied.
type RowPlanner interface {
	Plan(ctx context.Context, sess *proxy.Session, j *proxy.Judgment, st *sqlclass.Statement) (RowRewriter, error)
}

// Resolver tells the judge what the backend resolves a statement's names
// to (functions defined in the database, tables through the search path).
// searchPath is the session's effective search path (nil: unknown, because
// the session changed it). Resolve is called from the client reader; an
// error denies the statement (a *proxy.DeniedError is shown as is).
// Invalidate tells it the resource's catalog changed through the gateway.
type Resolver interface {
	Resolve(ctx context.Context, sess *proxy.Session, st *sqlclass.Statement, searchPath []string) (*proxy.Resolution, error)
	Invalidate(resource string)
}

// PolicyHooks adapts the protocol-independent pipeline to Hooks: the
// database name in the startup message selects the policy resource.
type PolicyHooks struct {
	Pipeline *proxy.Pipeline
	// Planner masks results; nil means statements that need masking are
	// denied (never forwarded unmasked).
	Planner RowPlanner
	// Resolver resolves names with the backend's catalog; nil judges
	// statements on their own facts.
	Resolver Resolver
}

var _ Hooks = (*PolicyHooks)(nil)

// Authenticate implements Hooks.
func (h *PolicyHooks) Authenticate(ctx context.Context, req AuthRequest) (Session, error) {
	addr := ""
	if req.ClientAddr != nil {
		addr = req.ClientAddr.String()
	}
	s, err := h.Pipeline.Authenticate(ctx, proxy.ConnInfo{
		Resource: req.Database, Protocol: bundle.ResourcePostgres, ClientAddr: addr, Token: req.Token,
	})
	if err != nil {
		msg := "gatehouse authentication failed"
		var ae *proxy.AuthError
		if errors.As(err, &ae) {
			msg += ": " + ae.Message
		}
		return nil, &Error{Severity: "FATAL", Code: "28P01", Message: msg,
			Hint: "Connect with a fresh token as the password (gatehouse token issue --identity NAME) and the resource name as the database."}
	}
	return &policySession{h: h, s: s}, nil
}

type policySession struct {
	h *PolicyHooks
	s *proxy.Session
	// searchPath is the backend session's search path (SetSearchPath).
	searchPath atomic.Pointer[[]string]
}

func (p *policySession) SetSearchPath(path []string) {
	if path == nil {
		p.searchPath.Store(nil)
		return
	}
	cp := append([]string(nil), path...)
	p.searchPath.Store(&cp)
}

// judged is the Verdict.Ref of the policy session: what is recorded.
type judged struct {
	text       string
	j          proxy.Judgment
	approvalID string
}

func (p *policySession) Classify(sql string) ([]sqlclass.Statement, error) {
	stmts, err := p.s.Classify(sql)
	if err != nil {
		return nil, renderDenied(p.s.Unparseable(err))
	}
	return stmts, nil
}

func (p *policySession) Judge(ctx context.Context, text string, st *sqlclass.Statement) Verdict {
	var res *proxy.Resolution
	if p.h.Resolver != nil {
		var path []string
		if pp := p.searchPath.Load(); pp != nil {
			path = *pp
		}
		r, err := p.h.Resolver.Resolve(ctx, p.s, st, path)
		if err != nil {
			j := proxy.Judgment{Effect: bundle.EffectDeny, Facts: proxy.RecordedFacts(st)}
			var d *proxy.DeniedError
			if !errors.As(err, &d) {
				d = &proxy.DeniedError{Code: proxy.CodeUnavailable, Err: err,
					Message: "gatehouse denied the command: the names it uses could not be checked against the database catalog: " + err.Error(),
					Hint:    "Retry later; the gateway judges functions and tables with the backend's own catalog and refuses when it cannot."}
			}
			j.Denied, j.Reason = d, d.Message
			return Verdict{Err: renderDenied(d), Ref: &judged{text: text, j: j}}
		}
		res = r
	}
	j := p.s.Judge(st, res)
	ref := &judged{text: text, j: j}
	if j.Effect == bundle.EffectDeny {
		return Verdict{Err: renderDenied(j.Denied), Ref: ref}
	}
	v := Verdict{Allow: true, NeedsApproval: j.Effect == bundle.EffectApprove, Ref: ref}
	if len(j.Masks) > 0 || p.h.Planner != nil {
		if p.h.Planner == nil {
			d := &proxy.DeniedError{Code: proxy.CodeInsufficientPrivilege, Err: proxy.ErrDenied,
				Message: "gatehouse denied the command: its results must be masked and masking is not available on this listener"}
			ref.j.Effect, ref.j.Denied = bundle.EffectDeny, d
			return Verdict{Err: renderDenied(d), Ref: ref}
		}
		rw, err := p.h.Planner.Plan(ctx, p.s, &j, st)
		if err != nil {
			var d *proxy.DeniedError
			if !errors.As(err, &d) {
				d = &proxy.DeniedError{Code: proxy.CodeInsufficientPrivilege, Err: errors.Join(proxy.ErrDenied, err),
					Message: "gatehouse denied the command: its results cannot be masked safely: " + err.Error()}
			}
			ref.j.Effect, ref.j.Denied = bundle.EffectDeny, d
			return Verdict{Err: renderDenied(d), Ref: ref}
		}
		v.Rows = rw
	}
	if j.MaxRows > 0 {
		v.Rows = &limitedRows{RowRewriter: v.Rows, max: int64(j.MaxRows)}
	}
	return v
}

func (p *policySession) Approve(ctx context.Context, items []ApprovalItem) ([]string, func(context.Context) error, error) {
	var in []proxy.ApprovalItem
	var refs []*judged
	revision := ""
	for _, it := range items {
		ref, _ := it.Verdict.Ref.(*judged)
		if ref == nil {
			return nil, nil, &Error{Code: proxy.CodeInsufficientPrivilege, Message: "gatehouse denied the command: it needs approval and its decision is unknown"}
		}
		revision = ref.j.Revision
		refs = append(refs, ref)
		in = append(in, proxy.ApprovalItem{Text: it.Text, Params: it.Params, Message: it.Message,
			RuleIDs: ref.j.RuleIDs, Spec: ref.j.Approval})
	}
	ids, notices, wait, derr := p.s.RequestApprovals(ctx, in, revision)
	if derr != nil {
		return nil, nil, renderDenied(derr)
	}
	for i, id := range ids {
		refs[i].approvalID = id
	}
	if wait == nil {
		return notices, nil, nil
	}
	return notices, func(ctx context.Context) error {
		if err := wait(ctx); err != nil {
			var d *proxy.DeniedError
			if errors.As(err, &d) {
				return renderDenied(d)
			}
			return err
		}
		return nil
	}, nil
}

func (p *policySession) Reserve(ctx context.Context, n int, flush func() error) (Slots, error) {
	sl, derr := p.s.Reserve(ctx, n, flush)
	if derr != nil {
		return nil, renderDenied(derr)
	}
	return &policySlots{p: p, sl: sl}, nil
}

type policySlots struct {
	p  *policySession
	sl *proxy.Slots
}

func (s *policySlots) Record(v *Verdict, res CommandResult) {
	var ref *judged
	if v != nil {
		ref, _ = v.Ref.(*judged)
	}
	if ref == nil {
		ref = &judged{j: proxy.Judgment{Effect: bundle.EffectAllow, Reason: "decision not retained"}}
	}
	ev := s.p.s.Event(ref.text, &ref.j)
	ev.ApprovalID = ref.approvalID
	rows := res.Rows
	if rows == 0 {
		rows = tagRows(res.Tag)
	}
	s.p.s.Complete(s.sl, ev, proxy.CommandResult{Rows: rows, Err: res.Err, Duration: res.Duration, NotExecuted: res.NotExecuted})
}

func (s *policySlots) Release() { s.sl.Release() }

func (p *policySession) Deny(ctx context.Context, text string, v *Verdict, err error) {
	j := proxy.Judgment{Effect: bundle.EffectDeny}
	if v != nil {
		if ref, ok := v.Ref.(*judged); ok {
			j = ref.j
			if text == "" {
				text = ref.text
			}
		}
	}
	var d *proxy.DeniedError
	if !errors.As(err, &d) {
		d = &proxy.DeniedError{Code: proxy.CodeInsufficientPrivilege, Message: errText(err), Err: err}
		var ge *Error
		if errors.As(err, &ge) {
			d.Code, d.Message, d.Detail = ge.Code, ge.Message, ge.Detail
		}
		if j.Effect == bundle.EffectDeny && j.Denied != nil {
			d.RuleIDs = j.Denied.RuleIDs
		}
	}
	p.s.RecordDenied(ctx, text, &j, d)
}

func errText(err error) string {
	if err == nil {
		return ErrDenied.Error()
	}
	return err.Error()
}

func (p *policySession) Close() { p.s.Close("client disconnected") }

// CatalogChanged implements CatalogWatcher.
func (p *policySession) CatalogChanged() {
	if p.h.Resolver != nil {
		p.h.Resolver.Invalidate(p.s.Resource().Name)
	}
}

func (p *policySession) Ended() <-chan struct{} { return p.s.Ended() }

func (p *policySession) EndReason() error {
	if d := p.s.EndReason(); d != nil {
		e := renderDenied(d).(*Error)
		e.Severity = "FATAL"
		return e
	}
	return nil
}

// limitedRows adds a row limit to a rewriter (or to pass-through rows).
type limitedRows struct {
	RowRewriter // nil: rows pass unchanged
	max         int64
}

var (
	_ RowLimiter    = (*limitedRows)(nil)
	_ ErrorRewriter = (*limitedRows)(nil)
)

func (l *limitedRows) MaxRows() int64 { return l.max }

func (l *limitedRows) Describe(fields []pgproto3.FieldDescription) error {
	if l.RowRewriter == nil {
		return nil
	}
	return l.RowRewriter.Describe(fields)
}

func (l *limitedRows) Rewrite(values [][]byte) [][]byte {
	if l.RowRewriter == nil {
		return values
	}
	return l.RowRewriter.Rewrite(values)
}

// RewriteError forwards to the wrapped rewriter, so that the row limit
// does not hide its rewriting of error and notice texts.
func (l *limitedRows) RewriteError(e *pgproto3.ErrorResponse) {
	if er, ok := l.RowRewriter.(ErrorRewriter); ok {
		er.RewriteError(e)
	}
}

func (l *limitedRows) CopyData(data []byte) ([]byte, error) {
	if l.RowRewriter == nil {
		return data, nil
	}
	return l.RowRewriter.CopyData(data)
}

// tagRows reads the row count of a command tag ("UPDATE 3", "INSERT 0 3",
// "COPY 5"); 0 when the tag carries none.
func tagRows(tag string) int64 {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func renderDenied(d *proxy.DeniedError) error {
	if d == nil {
		return ErrDenied
	}
	code := d.Code
	if code == "" {
		code = proxy.CodeInsufficientPrivilege
	}
	return &Error{Code: code, Message: d.Message, Detail: d.Detail, Hint: d.Hint, Err: d}
}
