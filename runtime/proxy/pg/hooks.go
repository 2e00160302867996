package pg

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// Hooks is the policy side of the proxy: it authenticates a client and
// returns the Session that judges its commands.
type Hooks interface {
	// Authenticate verifies the client's token (sent as the password) and
	// returns the session. It is called once per connection, before the
	// backend is contacted. A returned *Error is rendered as is (with
	// severity FATAL); any other error renders as SQLSTATE 28P01 without
	// detail. The token must never appear in the returned error.
	Authenticate(ctx context.Context, req AuthRequest) (Session, error)
}

// AuthRequest is what the client presented at startup.
type AuthRequest struct {
	User     string
	Database string
	// Token is the password message: the agent's OIDC token. Never log it.
	Token      string
	ClientAddr net.Addr
	// TLS reports whether the client connection is encrypted.
	TLS bool
	// Params holds every startup parameter, user and database included.
	Params map[string]string
}

// LogValue keeps the token out of logs.
func (r AuthRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", r.User), slog.String("database", r.Database),
		slog.String("token", "REDACTED"), slog.Bool("tls", r.TLS))
}

// Session judges and records the commands of one client connection. The
// proxy owns the session state (prepared statements, portals, cursors,
// transactions) and resolves every reference before it asks: Judge always
// sees the statement whose facts decide what runs.
//
// Call order: Classify, Judge, Approve and Reserve are called from the
// connection's client reader, in wire order. Record and Deny may also be
// called from the backend reader. Close is called once, last, after both
// readers stopped.
type Session interface {
	// Classify splits and classifies the SQL text of a Query or Parse
	// message. An error means the text cannot be classified safely; it is
	// rendered to the client (use *Error to choose the SQLSTATE) and the
	// text never reaches the backend.
	Classify(sql string) ([]sqlclass.Statement, error)
	// Judge decides one statement. text is the statement as the client
	// sent it; target is the statement whose facts decide: for EXECUTE the
	// prepared statement with the arguments' facts merged, for FETCH the
	// cursor's query, for PREPARE and DECLARE their inner statement,
	// otherwise the statement itself.
	Judge(ctx context.Context, text string, target *sqlclass.Statement) Verdict
	// Approve asks for approval of every item and returns the notices to
	// send to the client and the wait, which returns nil once all are
	// granted, else the error to render.
	Approve(ctx context.Context, items []ApprovalItem) (notices []string, wait func(context.Context) error, err error)
	// Reserve blocks until the outcomes of n commands can be recorded, so
	// that nothing runs unrecorded; it returns an error (rendered to the
	// client) when the recorder refuses. Before it blocks it calls flush,
	// which sends what the proxy buffered for the backend (whose answers
	// free recording slots).
	Reserve(ctx context.Context, n int, flush func() error) (Slots, error)
	// Deny records a command the proxy refused (with its own slot).
	Deny(ctx context.Context, text string, v *Verdict, err error)
	// SetSearchPath tells the session the backend session's effective search
	// path (current_schemas(true)), learned at login; nil when the session
	// has changed it since.
	SetSearchPath(path []string)
	// Ended is closed when the policy side ends the session (its identity
	// left the policy, its token expired); EndReason then says why. The
	// proxy sends it to the client as a FATAL error and closes the
	// connection.
	Ended() <-chan struct{}
	EndReason() error
	// Close ends the session.
	Close()
}

// CatalogWatcher is optionally implemented by a Session that caches what
// it learned from the backend's catalog: the proxy calls CatalogChanged
// after the backend confirmed a statement that changes the catalog (DDL,
// GRANT and the like), from the backend reader.
type CatalogWatcher interface {
	CatalogChanged()
}

// Slots are recording places reserved by Session.Reserve.
type Slots interface {
	// Record records the outcome of one command judged by v.
	Record(v *Verdict, res CommandResult)
	// Release returns the unused slots; idempotent.
	Release()
}

// ApprovalItem is one statement that must be approved before it runs.
type ApprovalItem struct {
	// Text is the statement as the client sent it.
	Text string
	// Params are its parameter values, rendered for the approver.
	Params []string
	// Message is the whole client message when it holds several statements.
	Message string
	// Verdict is the statement's verdict (its Approval is set).
	Verdict *Verdict
}

// Verdict is the decision for one statement.
type Verdict struct {
	// Allow lets the statement run. When false the statement text never
	// reaches the backend.
	Allow bool
	// Err is rendered on deny through RenderError; nil means ErrDenied
	// (SQLSTATE 42501). Use *Error to set SQLSTATE, message, detail and hint.
	Err error
	// NeedsApproval is true when the statement may run only after a human
	// approved it (see Session.Approve).
	NeedsApproval bool
	// Rows rewrites the statement's results; nil passes them through. A
	// rewriter serves one result at a time; Judge returns a fresh one per
	// call.
	Rows RowRewriter
	// Ref is the session's own reference for recording; the proxy passes
	// the Verdict back to Slots.Record and Session.Deny.
	Ref any
}

// RowRewriter rewrites the results of one statement (masking).
//
// Its methods are called from the connection's backend reader only, never
// concurrently. Describe is called with the RowDescription of the result
// (for a portal executed without a RowDescription of its own, the proxy
// asks the backend for one first), then Rewrite for every DataRow.
type RowRewriter interface {
	// Describe receives the columns of the next rows. An error withholds the
	// result: the client receives ErrRewrite (or the returned error, if it
	// is an *Error) and no rows.
	Describe(fields []pgproto3.FieldDescription) error
	// Rewrite returns the values to send for one DataRow; nil entries are
	// SQL NULL. values and its elements are valid only during the call; the
	// returned slices are encoded before the next call.
	Rewrite(values [][]byte) [][]byte
	// CopyData rewrites one CopyData message of a COPY TO STDOUT. An error
	// ends the copy with that error and withholds the rest of the result.
	CopyData(data []byte) ([]byte, error)
}

// ErrorRewriter is optionally implemented by a RowRewriter to rewrite the
// backend's ErrorResponse and NoticeResponse messages of its statement: their
// texts can quote the values the rows would have masked (`invalid input
// syntax for type integer: "..."`). RewriteError changes the fields of e in
// place; it is called from the backend reader only, like the other methods.
type ErrorRewriter interface {
	RewriteError(e *pgproto3.ErrorResponse)
}

// CommandResult is the outcome of one command reported to Slots.Record.
type CommandResult struct {
	// Text is filled by test fakes with the recorded statement text.
	Text string
	// Tag is the command tag (for example "SELECT 3"); empty on error.
	Tag string
	// Rows counts the DataRow messages sent to the client.
	Rows int64
	// Err is the backend's error (*pgconn.PgError) or the proxy's.
	Err error
	// Duration runs from forwarding the command to its completion.
	Duration time.Duration
	// NotExecuted, when set, says why the command never ran.
	NotExecuted string
}

// RowLimiter is implemented by a RowRewriter whose statement may return at
// most MaxRows rows (a policy's max_rows). The rows up to the limit reach
// the client; the next one ends the result with an error (SQLSTATE 54000)
// and the rest is discarded, so the command is reported as failed.
type RowLimiter interface {
	MaxRows() int64
}

func rowLimitError(n int64) error {
	return &Error{Code: "54000",
		Message: fmt.Sprintf("gatehouse cut the result after %d rows: the policy allows at most %d rows per statement (max_rows)", n, n),
		Hint:    "Add a LIMIT or a narrower WHERE clause."}
}
