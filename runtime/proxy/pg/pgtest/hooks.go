package pgtest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// Hooks is a policy fake: it accepts one token and judges SQL by markers.
// The zero value accepts nothing; set Token.
type Hooks struct {
	// Token is the only accepted password.
	Token string
	// DenyMarker denies any statement containing it (when non-empty).
	DenyMarker string
	// DenyErr is the error of denied statements (nil: pg.ErrDenied).
	DenyErr error
	// MaskColumn names a result column whose non-NULL values become Mask.
	MaskColumn string
	// Mask replaces masked values; "***" when empty.
	Mask string
	// CopySecret is replaced by Mask inside COPY TO STDOUT data.
	CopySecret string
	// ApproveMarker makes statements containing it wait for a value on
	// Approvals (nil error: approved) before they run.
	ApproveMarker string
	Approvals     chan error
	// Notice is sent with every approval request when non-empty.
	Notice string
	// Unavailable, when set, is returned by Reserve (a failing recorder).
	Unavailable error
	// NoHistory keeps no texts or results (for memory tests).
	NoHistory bool
	// MaxRows limits the rows of every masked result (needs MaskColumn).
	MaxRows int64

	mu       sync.Mutex
	sessions []*Session
}

var _ pg.Hooks = (*Hooks)(nil)

// Authenticate implements pg.Hooks.
func (h *Hooks) Authenticate(_ context.Context, req pg.AuthRequest) (pg.Session, error) {
	if h.Token == "" || req.Token != h.Token {
		return nil, errors.New("token rejected")
	}
	s := &Session{h: h, Req: req, ended: make(chan struct{})}
	s.Req.Token = "" // never keep it
	h.mu.Lock()
	h.sessions = append(h.sessions, s)
	h.mu.Unlock()
	return s, nil
}

// Sessions returns the sessions opened so far.
func (h *Hooks) Sessions() []*Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Session(nil), h.sessions...)
}

// Session records what the proxy asked and reported.
type Session struct {
	h *Hooks
	// Req is the authentication request, token removed.
	Req pg.AuthRequest

	mu         sync.Mutex
	checked    []string
	results    []pg.CommandResult
	denied     []Denial
	approvals  []pg.ApprovalItem
	closed     bool
	ended      chan struct{}
	endErr     error
	searchPath []string
}

var _ pg.Session = (*Session)(nil)

var classifier = func() sqlclass.Classifier {
	c, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		panic(err) // constant configuration: programmer error
	}
	return c
}()

// Classify implements pg.Session with the real classifier.
func (s *Session) Classify(sql string) ([]sqlclass.Statement, error) {
	stmts, err := classifier.Classify(sql)
	if err != nil {
		return nil, &pg.Error{Code: "42601", Message: "gatehouse denied the command: " + err.Error()}
	}
	return stmts, nil
}

// Judge implements pg.Session: markers in text decide.
func (s *Session) Judge(_ context.Context, text string, _ *sqlclass.Statement) pg.Verdict {
	h := s.h
	if !h.NoHistory {
		s.mu.Lock()
		s.checked = append(s.checked, text)
		s.mu.Unlock()
	}
	if h.DenyMarker != "" && strings.Contains(text, h.DenyMarker) {
		return pg.Verdict{Err: h.DenyErr, Ref: text}
	}
	v := pg.Verdict{Allow: true, Ref: text}
	if h.MaskColumn != "" || h.CopySecret != "" {
		mask := h.Mask
		if mask == "" {
			mask = "***"
		}
		v.Rows = &Masker{Column: h.MaskColumn, Mask: []byte(mask), CopySecret: []byte(h.CopySecret), Limit: h.MaxRows}
	}
	if h.ApproveMarker != "" && strings.Contains(text, h.ApproveMarker) {
		v.NeedsApproval = true
	}
	return v
}

// Approve implements pg.Session: it waits for a value on Hooks.Approvals.
func (s *Session) Approve(_ context.Context, items []pg.ApprovalItem) ([]string, func(context.Context) error, error) {
	s.mu.Lock()
	s.approvals = append(s.approvals, items...)
	s.mu.Unlock()
	notices := []string{"waiting for approval"}
	if s.h.Notice != "" {
		notices = append(notices, s.h.Notice)
	}
	return notices, func(ctx context.Context) error {
		select {
		case err := <-s.h.Approvals:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// Reserve implements pg.Session.
func (s *Session) Reserve(context.Context, int, func() error) (pg.Slots, error) {
	if s.h.Unavailable != nil {
		return nil, s.h.Unavailable
	}
	return slots{s}, nil
}

type slots struct{ s *Session }

func (sl slots) Record(v *pg.Verdict, res pg.CommandResult) {
	if v != nil {
		if t, ok := v.Ref.(string); ok {
			res.Text = t
		}
	}
	if sl.s.h.NoHistory {
		return
	}
	sl.s.mu.Lock()
	sl.s.results = append(sl.s.results, res)
	sl.s.mu.Unlock()
}

func (slots) Release() {}

// Deny implements pg.Session.
func (s *Session) Deny(_ context.Context, text string, _ *pg.Verdict, err error) {
	s.mu.Lock()
	s.denied = append(s.denied, Denial{Text: text, Err: err})
	s.mu.Unlock()
}

// End makes the session end with err (as a revocation would).
func (s *Session) End(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endErr != nil {
		return
	}
	s.endErr = err
	close(s.ended)
}

// SetSearchPath implements pg.Session.
func (s *Session) SetSearchPath(path []string) {
	s.mu.Lock()
	s.searchPath = append([]string(nil), path...)
	s.mu.Unlock()
}

// SearchPath returns the last search path the proxy reported.
func (s *Session) SearchPath() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.searchPath...)
}

// Ended implements pg.Session.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// EndReason implements pg.Session.
func (s *Session) EndReason() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endErr
}

// Close implements pg.Session.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// Denial is a refusal reported to Deny.
type Denial struct {
	Text string
	Err  error
}

// Denied returns the refusals reported so far.
func (s *Session) Denied() []Denial {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Denial(nil), s.denied...)
}

// Approvals returns the approval requests made so far.
func (s *Session) Approvals() []pg.ApprovalItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pg.ApprovalItem(nil), s.approvals...)
}

// Checked returns the statement texts passed to Judge.
func (s *Session) Checked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.checked...)
}

// Results returns the results recorded through the reserved slots.
func (s *Session) Results() []pg.CommandResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pg.CommandResult(nil), s.results...)
}

// Closed reports whether Close was called.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Masker replaces the values of one column by name, and a secret inside
// COPY data. A column named "fail_describe" makes Describe fail.
type Masker struct {
	// Limit is returned by MaxRows (pg.RowLimiter); 0 means no limit.
	Limit int64

	Column     string
	Mask       []byte
	CopySecret []byte
	idx        int
	described  bool
}

var _ pg.RowRewriter = (*Masker)(nil)

// Describe implements pg.RowRewriter.
func (m *Masker) Describe(fields []pgproto3.FieldDescription) error {
	m.idx, m.described = -1, true
	for i, f := range fields {
		if string(f.Name) == "fail_describe" {
			return errors.New("column fail_describe cannot be masked")
		}
		if string(f.Name) == m.Column {
			m.idx = i
		}
	}
	return nil
}

// Rewrite implements pg.RowRewriter.
func (m *Masker) Rewrite(values [][]byte) [][]byte {
	if !m.described {
		for i := range values {
			values[i] = m.Mask // columns unknown: mask everything
		}
		return values
	}
	if m.idx >= 0 && m.idx < len(values) && values[m.idx] != nil {
		values[m.idx] = m.Mask
	}
	return values
}

// CopyData implements pg.RowRewriter.
func (m *Masker) CopyData(data []byte) ([]byte, error) {
	if len(m.CopySecret) == 0 {
		return data, nil
	}
	return bytes.ReplaceAll(data, m.CopySecret, m.Mask), nil
}

var _ pg.RowLimiter = (*Masker)(nil)

// MaxRows implements pg.RowLimiter.
func (m *Masker) MaxRows() int64 { return m.Limit }
