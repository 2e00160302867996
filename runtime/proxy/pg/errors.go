package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Sentinel errors. Callers branch on them with errors.Is; RenderError maps
// each to its SQLSTATE.
var (
	// ErrDenied is the default reason for a statement the policy refused
	// (SQLSTATE 42501).
	ErrDenied = errors.New("permission denied by gatehouse policy")
	// ErrFunctionCall refuses the FunctionCall message, which bypasses SQL
	// parsing (SQLSTATE 42501).
	ErrFunctionCall = errors.New("permission denied: the FunctionCall protocol message is not allowed through gatehouse")
	// ErrAuthFailed is returned when client authentication fails
	// (SQLSTATE 28P01).
	ErrAuthFailed = errors.New("authentication failed")
	// ErrTLSRequired refuses a plaintext startup when Config.RequireTLS is
	// set (SQLSTATE 28000).
	ErrTLSRequired = errors.New("gatehouse requires an encrypted connection (use sslmode=require)")
	// ErrProtocolViolation reports a malformed or unexpected message
	// (SQLSTATE 08P01).
	ErrProtocolViolation = errors.New("protocol violation")
	// ErrMessageTooLarge reports a message longer than the configured limit
	// (SQLSTATE 08P01).
	ErrMessageTooLarge = errors.New("message too large")
	// ErrUnsupportedProtocol refuses protocol versions other than 3.x and
	// replication connections (SQLSTATE 0A000).
	ErrUnsupportedProtocol = errors.New("unsupported frontend protocol")
	// ErrCopyBoth refuses CopyBoth (replication streaming) (SQLSTATE 0A000).
	ErrCopyBoth = errors.New("COPY BOTH is not supported through gatehouse")
	// ErrBackendUnavailable reports that the gateway could not reach or log
	// in to the backend (SQLSTATE 08001).
	ErrBackendUnavailable = errors.New("cannot connect to the database backend")
	// ErrTooManyPending reports a client that pipelined more messages than
	// the gateway tracks without reading responses (SQLSTATE 54000).
	ErrTooManyPending = errors.New("too many pipelined messages awaiting a response")
	// ErrRewrite reports that a row rewriter refused a result: the rows are
	// withheld (SQLSTATE 42501).
	ErrRewrite = errors.New("result withheld: masking could not be applied")
)

// Error is a protocol-neutral error with the fields of a PostgreSQL
// ErrorResponse. Hooks return it to control exactly what the client sees.
type Error struct {
	// Severity is ERROR (default) or FATAL.
	Severity string
	// Code is the SQLSTATE; XX000 when empty.
	Code    string
	Message string
	Detail  string
	Hint    string
	// Err is an optional cause; it is not rendered to the client.
	Err error
}

// Error implements error. It returns Message only (never Err's text, which
// may hold internal detail).
func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s (SQLSTATE %s)", e.Message, e.Code)
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// BackendError reports a failure to connect to the backend. Its text never
// contains the backend credential.
type BackendError struct {
	// Address is the backend host:port.
	Address string
	// ServerMessage is the backend's own error message, if it sent one.
	ServerMessage string
	// Code is the backend's SQLSTATE, if it sent one.
	Code string
	msg  string
}

// Error implements error.
func (e *BackendError) Error() string {
	return fmt.Sprintf("connect to backend %s: %s", e.Address, e.msg)
}

// Unwrap makes errors.Is(err, ErrBackendUnavailable) true.
func (e *BackendError) Unwrap() error { return ErrBackendUnavailable }

// RenderError maps any error to the ErrorResponse sent to the client. Every
// path of the proxy renders errors through it, so clients see consistent
// SQLSTATEs. Errors not known to the proxy render as a generic internal error
// so that internal detail never reaches the client.
func RenderError(err error) *pgproto3.ErrorResponse {
	r := &pgproto3.ErrorResponse{Severity: "ERROR"}
	var ge *Error
	var pe *pgconn.PgError
	var be *BackendError
	switch {
	case err == nil:
		r.Code, r.Message = "XX000", "internal error"
	case errors.As(err, &ge):
		if ge.Severity != "" {
			r.Severity = ge.Severity
		}
		r.Code, r.Message, r.Detail, r.Hint = ge.Code, ge.Message, ge.Detail, ge.Hint
		if r.Code == "" {
			r.Code = "XX000"
		}
	case errors.As(err, &be):
		r.Code, r.Message = "08001", ErrBackendUnavailable.Error()
		r.Detail = be.ServerMessage
	case errors.As(err, &pe):
		r.Severity, r.Code, r.Message, r.Detail, r.Hint = pe.Severity, pe.Code, pe.Message, pe.Detail, pe.Hint
		r.Where, r.Position = pe.Where, pe.Position
		r.SchemaName, r.TableName, r.ColumnName = pe.SchemaName, pe.TableName, pe.ColumnName
		r.DataTypeName, r.ConstraintName = pe.DataTypeName, pe.ConstraintName
	case errors.Is(err, ErrDenied), errors.Is(err, ErrFunctionCall), errors.Is(err, ErrRewrite):
		r.Code, r.Message = "42501", err.Error()
	case errors.Is(err, ErrAuthFailed):
		r.Code, r.Message = "28P01", err.Error()
	case errors.Is(err, ErrTLSRequired):
		r.Code, r.Message = "28000", err.Error()
	case errors.Is(err, ErrProtocolViolation), errors.Is(err, ErrMessageTooLarge):
		r.Code, r.Message = "08P01", err.Error()
	case errors.Is(err, ErrUnsupportedProtocol), errors.Is(err, ErrCopyBoth):
		r.Code, r.Message = "0A000", err.Error()
	case errors.Is(err, ErrBackendUnavailable):
		r.Code, r.Message = "08001", ErrBackendUnavailable.Error()
	case errors.Is(err, ErrTooManyPending):
		r.Code, r.Message = "54000", err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		r.Code, r.Message = "57014", "canceling statement due to timeout"
	case errors.Is(err, context.Canceled):
		r.Code, r.Message = "57014", "canceling statement due to gateway shutdown"
	default:
		r.Code, r.Message = "XX000", "internal error in gatehouse"
	}
	if r.Severity == "" {
		r.Severity = "ERROR"
	}
	r.SeverityUnlocalized = r.Severity
	return r
}

// renderFatal renders err with severity FATAL: the connection closes after it.
func renderFatal(err error) *pgproto3.ErrorResponse {
	r := RenderError(err)
	r.Severity, r.SeverityUnlocalized = "FATAL", "FATAL"
	return r
}
