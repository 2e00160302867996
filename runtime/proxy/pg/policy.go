package pg

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/proxy"
)

// RowPlanner builds the row rewriter that masks the results of an allowed
// statement. It returns an error when the statement cannot be masked
// safely; the statement is then denied.
type RowPlanner interface {
	Plan(ctx context.Context, sess *proxy.Session, v *proxy.SQLVerdict) (RowRewriter, error)
}

// PolicyHooks adapts the protocol-independent pipeline to Hooks: the
// database name in the startup message selects the policy resource.
type PolicyHooks struct {
	Pipeline *proxy.Pipeline
	// Planner masks results; nil means statements that need masking are
	// denied (never forwarded unmasked).
	Planner RowPlanner
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
}

func (p *policySession) CheckQuery(ctx context.Context, sql string) Verdict {
	v := p.s.CheckSQL(ctx, sql)
	if !v.Allow {
		return Verdict{Err: renderDenied(v.Err)}
	}
	out := Verdict{Allow: true, Notices: v.Notices}
	if v.Wait != nil {
		out.Wait = func(ctx context.Context) error {
			if err := v.Wait(ctx); err != nil {
				var d *proxy.DeniedError
				if errors.As(err, &d) {
					return renderDenied(d)
				}
				return err
			}
			return nil
		}
	}
	if len(v.Masks) > 0 || p.h.Planner != nil {
		if p.h.Planner == nil {
			return Verdict{Err: &Error{Code: proxy.CodeInsufficientPrivilege,
				Message: "gatehouse denied the command: its results must be masked and masking is not available on this listener"}}
		}
		rw, err := p.h.Planner.Plan(ctx, p.s, &v)
		if err != nil {
			var d *proxy.DeniedError
			if errors.As(err, &d) {
				return Verdict{Err: renderDenied(d)}
			}
			return Verdict{Err: &Error{Code: proxy.CodeInsufficientPrivilege,
				Message: "gatehouse denied the command: its results cannot be masked safely: " + err.Error()}}
		}
		out.Rows = rw
	}
	if v.MaxRows > 0 {
		out.Rows = &limitedRows{RowRewriter: out.Rows, max: int64(v.MaxRows)}
	}
	return out
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

func (p *policySession) Done(ctx context.Context, res CommandResult) {
	if res.Denied {
		return // recorded by the pipeline when it denied
	}
	rows := res.Rows
	if rows == 0 {
		rows = tagRows(res.Tag)
	}
	p.s.Done(ctx, proxy.CommandResult{SQL: res.SQL, Rows: rows, Err: res.Err, Duration: res.Duration})
}

func (p *policySession) Close() { p.s.Close("client disconnected") }

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
