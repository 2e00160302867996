package pg

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
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

// Session judges and records the commands of one client connection.
//
// Call order: CheckQuery is called from the connection's client reader for
// every simple Query message and every Parse message, in wire order. Done is
// called from the connection's backend reader when a command completes; it
// may run concurrently with CheckQuery. Close is called once, last, after
// both readers stopped.
type Session interface {
	// CheckQuery judges sql, the complete text of a Query message (possibly
	// several statements) or of a Parse message. It must not retain sql's
	// backing memory beyond the call unless it copies it (the proxy passes a
	// fresh string, so retaining it is safe but costs memory).
	CheckQuery(ctx context.Context, sql string) Verdict
	// Done reports the outcome of one command: each CommandComplete,
	// EmptyQueryResponse or ErrorResponse of an allowed statement, and one
	// result with Err set for each denied statement.
	Done(ctx context.Context, res CommandResult)
	// Close ends the session.
	Close()
}

// Verdict is the decision for one CheckQuery.
type Verdict struct {
	// Allow forwards the statement. When false the statement text never
	// reaches the backend.
	Allow bool
	// Err is rendered on deny through RenderError; nil means ErrDenied
	// (SQLSTATE 42501). Use *Error to set SQLSTATE, message, detail and hint.
	Err error
	// Notices are sent to the client as NoticeResponse messages before the
	// statement is forwarded or refused.
	Notices []string
	// Rows rewrites the results of the statement; nil passes them through.
	Rows RowRewriter
	// Wait, when set on an allowed verdict, is called after the notices are
	// flushed and before the statement is forwarded (approval). A non-nil
	// error turns the verdict into a deny with that error. Only the waiting
	// connection blocks.
	Wait func(ctx context.Context) error
}

// RowRewriter rewrites the results of one statement (masking).
//
// Its methods are called from the connection's backend reader only, never
// concurrently for one connection. A prepared statement keeps its rewriter:
// Describe is called for each RowDescription the backend sends for it (at
// Describe of the statement, or per result of a simple Query), and Rewrite
// for every DataRow of every portal later executed from it, even when the
// client does not ask for the RowDescription again.
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

// CommandResult is the outcome of one command reported to Session.Done.
type CommandResult struct {
	// SQL is the text judged by CheckQuery (the whole Query text, or the
	// Parse text of the executed prepared statement; empty if the statement
	// was prepared outside the extended protocol).
	SQL string
	// Tag is the command tag (for example "SELECT 3"); empty on error.
	Tag string
	// Rows counts the DataRow messages sent to the client.
	Rows int64
	// Err is the backend's error (*pgconn.PgError) or the deny error.
	Err error
	// Duration runs from forwarding the command to its completion.
	Duration time.Duration
	// Denied is true when the proxy refused the statement.
	Denied bool
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
