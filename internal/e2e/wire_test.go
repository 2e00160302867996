package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// This file is a small raw-protocol client for the wire bypass table: the
// steps of a case are batches of frontend messages written at once, and
// everything the server answers is collected for the leak check.

// Message constructors, so that case tables read like the protocol.

func query(sql string) *pgproto3.Query { return &pgproto3.Query{String: sql} }

func parse(name, sql string) *pgproto3.Parse { return &pgproto3.Parse{Name: name, Query: sql} }

// bind binds portal to stmt with text parameters and text results.
func bind(portal, stmt string, params ...string) *pgproto3.Bind {
	b := &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
	for _, p := range params {
		b.Parameters = append(b.Parameters, []byte(p))
	}
	return b
}

func describeP(name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'P', Name: name}
}

func execute(portal string) *pgproto3.Execute { return &pgproto3.Execute{Portal: portal} }

// executeN executes portal for at most n rows.
func executeN(portal string, n uint32) *pgproto3.Execute {
	return &pgproto3.Execute{Portal: portal, MaxRows: n}
}

func closeS(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'S', Name: name} }

func closeP(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'P', Name: name} }

func syncMsg() *pgproto3.Sync { return &pgproto3.Sync{} }

// fcall is a FunctionCall of the function with OID oid and text arguments.
func fcall(oid uint32, args ...string) *pgproto3.FunctionCall {
	f := &pgproto3.FunctionCall{Function: oid}
	for _, a := range args {
		f.ArgFormatCodes = append(f.ArgFormatCodes, 0)
		f.Arguments = append(f.Arguments, []byte(a))
	}
	return f
}

// extended is sql run through the extended protocol in the unnamed
// statement and portal: Parse, Bind, Describe, Execute, Sync.
func extended(sql string, params ...string) []pgproto3.FrontendMessage {
	return []pgproto3.FrontendMessage{parse("", sql), bind("", "", params...), describeP(""), execute(""), syncMsg()}
}

// want is what one step must end with.
type want int

const (
	// wantAny: only the leak and state checks apply.
	wantAny want = iota
	// wantOK: no ErrorResponse at all.
	wantOK
	// wantDenied: at least one ErrorResponse is a gateway denial.
	wantDenied
	// wantError: at least one ErrorResponse (the gateway's or the
	// backend's): the step must not succeed.
	wantError
)

func (w want) String() string {
	return [...]string{"any", "ok", "denied", "error"}[w]
}

// wireStep is one batch of messages written at once. The reader waits for
// ready ReadyForQuery messages: by default one per Sync, Query and
// FunctionCall in the batch; a step states its own count when the backend
// skips a Query (after an extended-protocol error, until Sync).
type wireStep struct {
	msgs  []pgproto3.FrontendMessage
	ready int
	want  want
	// deniedStep, when set, is the 1-based index of an earlier step whose
	// denial changes what this one must end with: wantIfDenied then
	// applies instead of want (a statement the policy may refuse, such as
	// DISCARD ALL, decides whether the names it would drop still exist).
	deniedStep   int
	wantIfDenied want
}

// ifDenied returns s expecting w instead of its own want when step
// number n of the case was denied.
func ifDenied(n int, w want, s wireStep) wireStep {
	s.deniedStep, s.wantIfDenied = n, w
	return s
}

// X is a step of raw messages.
func X(w want, msgs ...pgproto3.FrontendMessage) wireStep { return wireStep{msgs: msgs, want: w} }

// XN is a step of raw messages answered by n ReadyForQuery messages.
func XN(w want, n int, msgs ...pgproto3.FrontendMessage) wireStep {
	return wireStep{msgs: msgs, ready: n, want: w}
}

// Q is a step of one simple Query.
func Q(w want, sql string) wireStep { return X(w, query(sql)) }

// E is a step running sql in the unnamed statement and portal.
func E(w want, sql string, params ...string) wireStep { return X(w, extended(sql, params...)...) }

// readyCount is the number of ReadyForQuery messages a batch is answered
// with when nothing is skipped.
func (s wireStep) readyCount() int {
	if s.ready > 0 {
		return s.ready
	}
	n := 0
	for _, m := range s.msgs {
		switch m.(type) {
		case *pgproto3.Sync, *pgproto3.Query, *pgproto3.FunctionCall:
			n++
		}
	}
	return n
}

// asExtended returns the step with a single Query replaced by the same SQL
// through the extended protocol; other steps are returned unchanged.
func (s wireStep) asExtended() wireStep {
	if len(s.msgs) != 1 {
		return s
	}
	q, ok := s.msgs[0].(*pgproto3.Query)
	if !ok {
		return s
	}
	s.msgs = extended(q.String)
	return s
}

// describeMsg renders a frontend message for failure reports.
func describeMsg(m pgproto3.FrontendMessage) string {
	switch m := m.(type) {
	case *pgproto3.Query:
		return fmt.Sprintf("Query(%q)", m.String)
	case *pgproto3.Parse:
		return fmt.Sprintf("Parse(%q, %q)", m.Name, m.Query)
	case *pgproto3.Bind:
		ps := make([]string, len(m.Parameters))
		for i, p := range m.Parameters {
			ps[i] = fmt.Sprintf("%q", p)
		}
		return fmt.Sprintf("Bind(portal %q, stmt %q, [%s])", m.DestinationPortal, m.PreparedStatement, strings.Join(ps, ", "))
	case *pgproto3.Describe:
		return fmt.Sprintf("Describe(%c, %q)", m.ObjectType, m.Name)
	case *pgproto3.Execute:
		return fmt.Sprintf("Execute(%q, %d)", m.Portal, m.MaxRows)
	case *pgproto3.Close:
		return fmt.Sprintf("Close(%c, %q)", m.ObjectType, m.Name)
	case *pgproto3.Sync:
		return "Sync"
	case *pgproto3.Flush:
		return "Flush"
	case *pgproto3.FunctionCall:
		as := make([]string, len(m.Arguments))
		for i, a := range m.Arguments {
			as[i] = fmt.Sprintf("%q", a)
		}
		return fmt.Sprintf("FunctionCall(oid %d, [%s])", m.Function, strings.Join(as, ", "))
	}
	return fmt.Sprintf("%T", m)
}

func describeMsgs(msgs []pgproto3.FrontendMessage) string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = describeMsg(m)
	}
	return strings.Join(out, ", ")
}

// stepResult is what the server answered to one step.
type stepResult struct {
	// trace lists the answers in order, one short entry per message.
	trace []string
	// denials and failures count ErrorResponses from the gateway and from
	// the backend; rows counts DataRows.
	denials, failures, rows int
	// errs are the ErrorResponses' SQLSTATE and message.
	errs []string
	// statuses are the ReadyForQuery transaction statuses.
	statuses []byte
}

func (r *stepResult) String() string { return clip(strings.Join(r.trace, " "), 1500) }

// stepTimeout bounds how long one step may wait for its answers: a hang
// fails the case instead of the whole test binary.
const stepTimeout = 10 * time.Second

// errHang reports a step whose answers did not all arrive.
var errHang = errors.New("no complete answer within the step deadline (hang)")

// runWireStep writes the step's messages at once and reads every answer
// until the expected number of ReadyForQuery messages, appending to seen
// everything the server sent that could carry data: row values (raw and
// hex), error and notice fields, notification payloads, column names,
// COPY data, function results and parameter values.
func runWireStep(ctx context.Context, pc *pgconn.PgConn, s wireStep, seen *strings.Builder) (*stepResult, error) {
	nc := pc.Conn()
	deadline := time.Now().Add(stepTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	defer nc.SetDeadline(time.Time{})
	fe := pc.Frontend()
	for _, m := range s.msgs {
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	res := &stepResult{}
	for want := s.readyCount(); want > 0; {
		msg, err := fe.Receive()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return res, fmt.Errorf("%w: after %s", errHang, res)
			}
			return res, fmt.Errorf("read after %s: %w", res, err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			want--
			res.statuses = append(res.statuses, m.TxStatus)
			res.trace = append(res.trace, "Z"+string(m.TxStatus))
		case *pgproto3.RowDescription:
			names := make([]string, len(m.Fields))
			for i, f := range m.Fields {
				names[i] = string(f.Name)
			}
			seen.WriteString(strings.Join(names, "\t") + "\n")
			res.trace = append(res.trace, "T["+strings.Join(names, ",")+"]")
		case *pgproto3.DataRow:
			res.rows++
			vals := make([]string, len(m.Values))
			for i, v := range m.Values {
				seen.Write(v)
				fmt.Fprintf(seen, "\t%x\t", v)
				vals[i] = clip(string(v), 40)
				if v == nil {
					vals[i] = "NULL"
				}
			}
			seen.WriteByte('\n')
			res.trace = append(res.trace, "D["+strings.Join(vals, ",")+"]")
		case *pgproto3.ErrorResponse:
			seen.WriteString(errorText((*pgproto3.NoticeResponse)(m)))
			entry := m.Code + " " + m.Message
			res.errs = append(res.errs, entry)
			if strings.HasPrefix(m.Message, "gatehouse denied") {
				res.denials++
				res.trace = append(res.trace, "DENIED("+clip(entry, 120)+")")
			} else {
				res.failures++
				res.trace = append(res.trace, "E("+clip(entry, 120)+")")
			}
		case *pgproto3.NoticeResponse:
			seen.WriteString(errorText(m))
			res.trace = append(res.trace, "N("+clip(m.Message, 80)+")")
		case *pgproto3.NotificationResponse:
			fmt.Fprintf(seen, "NOTIFY %s %s\n", m.Channel, m.Payload)
			res.trace = append(res.trace, "A("+m.Channel+")")
		case *pgproto3.CopyData:
			seen.Write(m.Data)
			fmt.Fprintf(seen, "\t%x\n", m.Data)
			res.rows++
			res.trace = append(res.trace, "d")
		case *pgproto3.CopyInResponse:
			// Nothing to feed: end the COPY so the batch can complete.
			fe.Send(&pgproto3.CopyFail{Message: "e2e: no data"})
			if err := fe.Flush(); err != nil {
				return res, fmt.Errorf("write CopyFail: %w", err)
			}
			res.trace = append(res.trace, "G")
		case *pgproto3.FunctionCallResponse:
			seen.Write(m.Result)
			fmt.Fprintf(seen, "\t%x\n", m.Result)
			res.rows++
			res.trace = append(res.trace, "V["+clip(string(m.Result), 40)+"]")
		case *pgproto3.ParameterStatus:
			fmt.Fprintf(seen, "%s=%s\n", m.Name, m.Value)
			res.trace = append(res.trace, "S("+m.Name+")")
		case *pgproto3.CommandComplete:
			res.trace = append(res.trace, "C("+string(m.CommandTag)+")")
		case *pgproto3.ParseComplete:
			res.trace = append(res.trace, "1")
		case *pgproto3.BindComplete:
			res.trace = append(res.trace, "2")
		case *pgproto3.CloseComplete:
			res.trace = append(res.trace, "3")
		case *pgproto3.ParameterDescription:
			res.trace = append(res.trace, "t")
		case *pgproto3.NoData:
			res.trace = append(res.trace, "n")
		case *pgproto3.PortalSuspended:
			res.trace = append(res.trace, "s")
		case *pgproto3.EmptyQueryResponse:
			res.trace = append(res.trace, "I")
		case *pgproto3.CopyOutResponse:
			res.trace = append(res.trace, "H")
		case *pgproto3.CopyDone:
			res.trace = append(res.trace, "c")
		case *pgproto3.CopyBothResponse:
			return res, fmt.Errorf("CopyBothResponse after %s", res)
		default:
			res.trace = append(res.trace, fmt.Sprintf("%T", msg))
		}
	}
	return res, nil
}

// errorText renders every field of an ErrorResponse or NoticeResponse.
func errorText(m *pgproto3.NoticeResponse) string {
	return fmt.Sprintf("ERROR %s %s %s | %s | %s | %s | %s | %s %s %s %s %s | %s | %s\n",
		m.Severity, m.Code, m.Message, m.Detail, m.Hint, m.Where, m.InternalQuery,
		m.SchemaName, m.TableName, m.ColumnName, m.DataTypeName, m.ConstraintName, m.File, m.Routine)
}
