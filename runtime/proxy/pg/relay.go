package pg

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

var zeroTime time.Time

// denySubstitute replaces a denied statement on its way to the backend. It
// is a syntax error, so the backend fails it at parse time without executing
// anything. The backend then behaves exactly as for any failed statement: an
// open transaction block becomes aborted (the client must ROLLBACK), the
// extended protocol skips to Sync, and responses stay in wire order with
// pipelined commands. The proxy replaces the backend's error with the deny.
const denySubstitute = "/* gatehouse: statement denied by policy */ DENIED"

var (
	substituteQuery = mustEncode(&pgproto3.Query{String: denySubstitute})
	substituteParse = mustEncode(&pgproto3.Parse{Query: denySubstitute})
)

func mustEncode(m pgproto3.FrontendMessage) []byte {
	b, err := m.Encode(nil)
	if err != nil {
		panic(err) // constant messages: programmer error
	}
	return b
}

// errTerminated ends the relay after a client Terminate.
var errTerminated = errors.New("client terminated")

// Kinds of messages awaiting a backend response.
const (
	kQuery      = 'Q'
	kParse      = 'P'
	kBind       = 'B'
	kDescStmt   = 'd'
	kDescPortal = 'p'
	kExecute    = 'E'
	kClose      = 'C'
	kSync       = 'S'
)

// stmt is what the proxy remembers of a prepared statement (or a simple
// Query): its text and row rewriter.
type stmt struct {
	sql  string
	rows RowRewriter
	// withheld is set when the rewriter refused the last RowDescription;
	// the backend reader owns it.
	withheld bool
}

// pending is a forwarded message whose response has not been read yet.
type pending struct {
	kind  byte
	st    *stmt
	deny  error
	start time.Time
}

// conn relays one authenticated client connection.
type conn struct {
	cfg     *Config
	log     *slog.Logger
	sess    Session
	client  net.Conn
	backend net.Conn
	dl      *deadlines
	cw      lockedWriter

	// Client reader state.
	crd     msgReader
	bw      *bufio.Writer
	stmts   map[string]*stmt
	portals map[string]*stmt
	discard bool // after a denied Parse, until Sync

	// Queue of forwarded messages awaiting responses, in wire order.
	qmu       sync.Mutex
	q         []pending
	qh        int
	idleArmed bool

	// Backend reader state.
	brd      msgReader
	cur      pending
	hasCur   bool
	suppress bool // drop backend output until ReadyForQuery
	rowCount int64
	dr       pgproto3.DataRow
	rd       pgproto3.RowDescription
	out      []byte
	ebuf     []byte // rewritten errors and notices
	txStatus atomic.Uint32

	firstErr  error
	firstOnce sync.Once
}

func newConn(h *Handler, log *slog.Logger, sess Session, client, backend net.Conn, cw *bufio.Writer, dl *deadlines) *conn {
	c := &conn{
		cfg: &h.cfg, log: log, sess: sess, client: client, backend: backend, dl: dl,
		bw: bufio.NewWriterSize(backend, backendWrite),
	}
	c.cw.w = cw
	c.crd = msgReader{r: bufio.NewReaderSize(client, clientReadBuf), max: h.cfg.MaxMessageSize}
	c.brd = msgReader{r: bufio.NewReaderSize(backend, backendReadBuf), max: h.cfg.MaxBackendMessageSize}
	return c
}

// run relays until either side ends; it waits for both directions.
func (c *conn) run(ctx context.Context, cancel context.CancelFunc) error {
	c.armIdle()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.end(c.backendLoop(ctx), cancel)
	}()
	c.end(c.clientLoop(ctx), cancel)
	<-done
	err := c.firstErr
	switch {
	case err == nil, errors.Is(err, errTerminated), errors.Is(err, io.EOF):
		return nil
	case ctx.Err() != nil && isTimeout(err):
		return context.Cause(ctx)
	}
	return err
}

func (c *conn) end(err error, cancel context.CancelFunc) {
	c.firstOnce.Do(func() { c.firstErr = err })
	cancel()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ---- client to backend ----

func (c *conn) clientLoop(ctx context.Context) error {
	for {
		if !c.crd.ready() {
			if err := c.bw.Flush(); err != nil {
				return fmt.Errorf("write to backend: %w", err)
			}
		}
		msg, err := c.crd.next()
		if err != nil {
			if errors.Is(err, ErrProtocolViolation) || errors.Is(err, ErrMessageTooLarge) {
				return c.fatalClient(err)
			}
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("read from client: %w", err)
		}
		if err := c.fromClient(ctx, msg); err != nil {
			if errors.Is(err, ErrProtocolViolation) || errors.Is(err, ErrTooManyPending) {
				return c.fatalClient(err)
			}
			return err
		}
	}
}

func (c *conn) fromClient(ctx context.Context, msg []byte) error {
	typ, body := msg[0], msg[5:]
	if c.discard && typ != 'S' && typ != 'X' && typ != 'd' && typ != 'c' && typ != 'f' {
		return nil // ignored until Sync, as the backend does after an error
	}
	switch typ {
	case 'Q':
		sqlb, _, err := cbytes(body)
		if err != nil {
			return err
		}
		st := &stmt{sql: string(sqlb)}
		rows, derr, err := c.check(ctx, st.sql)
		if err != nil {
			return err
		}
		if derr != nil {
			return c.forwardDenied(kQuery, st, derr, substituteQuery)
		}
		st.rows = rows
		return c.forward(pending{kind: kQuery, st: st, start: c.cfg.Now()}, msg)
	case 'P':
		name, rest, err := cstring(body)
		if err != nil {
			return err
		}
		sqlb, _, err := cbytes(rest)
		if err != nil {
			return err
		}
		st := &stmt{sql: string(sqlb)}
		rows, derr, err := c.check(ctx, st.sql)
		if err != nil {
			return err
		}
		if derr != nil {
			delete(c.stmts, name)
			c.discard = true
			return c.forwardDenied(kParse, st, derr, substituteParse)
		}
		st.rows = rows
		if c.stmts == nil {
			c.stmts = make(map[string]*stmt)
		}
		c.stmts[name] = st
		return c.forward(pending{kind: kParse, st: st}, msg)
	case 'B':
		portal, rest, err := cbytes(body)
		if err != nil {
			return err
		}
		sname, _, err := cbytes(rest)
		if err != nil {
			return err
		}
		st := c.stmts[string(sname)]
		if c.portals == nil {
			c.portals = make(map[string]*stmt)
		}
		if p, ok := c.portals[string(portal)]; !ok || p != st {
			c.portals[string(portal)] = st
		}
		return c.forward(pending{kind: kBind, st: st}, msg)
	case 'D', 'C':
		if len(body) < 2 {
			return fmt.Errorf("%w: short %q message", ErrProtocolViolation, typ)
		}
		name, _, err := cbytes(body[1:])
		if err != nil {
			return err
		}
		var st *stmt
		kind := byte(kClose)
		switch body[0] {
		case 'S':
			st = c.stmts[string(name)]
			if typ == 'C' {
				delete(c.stmts, string(name))
			} else {
				kind = kDescStmt
			}
		case 'P':
			st = c.portals[string(name)]
			if typ == 'C' {
				delete(c.portals, string(name))
			} else {
				kind = kDescPortal
			}
		default:
			return fmt.Errorf("%w: %q message with target %q", ErrProtocolViolation, typ, body[0])
		}
		return c.forward(pending{kind: kind, st: st}, msg)
	case 'E':
		portal, _, err := cbytes(body)
		if err != nil {
			return err
		}
		return c.forward(pending{kind: kExecute, st: c.portals[string(portal)], start: c.cfg.Now()}, msg)
	case 'S':
		c.discard = false
		return c.forward(pending{kind: kSync}, msg)
	case 'H', 'd', 'c', 'f':
		return c.write(msg)
	case 'F':
		return c.forwardDenied(kQuery, &stmt{}, ErrFunctionCall, substituteQuery)
	case 'X':
		if err := c.write(msg); err != nil {
			return err
		}
		_ = c.bw.Flush()
		return errTerminated
	default:
		return fmt.Errorf("%w: unexpected message type %q", ErrProtocolViolation, typ)
	}
}

// check asks the session about sql. It returns a deny error, or a fatal
// error when the connection broke while flushing before an approval wait.
func (c *conn) check(ctx context.Context, sql string) (RowRewriter, error, error) {
	v := c.sess.CheckQuery(ctx, sql)
	waiting := v.Allow && v.Wait != nil
	if len(v.Notices) > 0 {
		if err := c.sendNotices(v.Notices, waiting); err != nil {
			return nil, nil, err
		}
	}
	if !v.Allow {
		if v.Err == nil {
			return nil, ErrDenied, nil
		}
		return nil, v.Err, nil
	}
	if waiting {
		// Earlier pipelined commands must not wait behind the approval.
		if err := c.bw.Flush(); err != nil {
			return nil, nil, fmt.Errorf("write to backend: %w", err)
		}
		if err := v.Wait(ctx); err != nil {
			return nil, err, nil
		}
	}
	return v.Rows, nil, nil
}

func (c *conn) sendNotices(notices []string, flush bool) error {
	c.cw.mu.Lock()
	defer c.cw.mu.Unlock()
	var buf []byte
	for _, n := range notices {
		buf, _ = (&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "00000", Message: n}).Encode(buf)
	}
	if _, err := c.cw.w.Write(buf); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	if flush {
		if err := c.cw.w.Flush(); err != nil {
			return fmt.Errorf("write to client: %w", err)
		}
	}
	return nil
}

func (c *conn) forward(p pending, msg []byte) error {
	if err := c.push(p); err != nil {
		return err
	}
	return c.write(msg)
}

func (c *conn) forwardDenied(kind byte, st *stmt, deny error, substitute []byte) error {
	c.log.Debug("Statement denied.", "error", deny)
	return c.forward(pending{kind: kind, st: st, deny: deny, start: c.cfg.Now()}, substitute)
}

func (c *conn) write(msg []byte) error {
	if _, err := c.bw.Write(msg); err != nil {
		return fmt.Errorf("write to backend: %w", err)
	}
	return nil
}

// fatalClient sends a FATAL error to the client and returns err.
func (c *conn) fatalClient(err error) error {
	buf, _ := renderFatal(err).Encode(nil)
	c.cw.mu.Lock()
	_, _ = c.cw.w.Write(buf)
	_ = c.cw.w.Flush()
	c.cw.mu.Unlock()
	return err
}

// ---- response queue ----

func (c *conn) push(p pending) error {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.q)-c.qh >= c.cfg.MaxPending {
		return ErrTooManyPending
	}
	if c.qh > 256 && c.qh*2 > len(c.q) {
		n := copy(c.q, c.q[c.qh:])
		clear(c.q[n:])
		c.q, c.qh = c.q[:n], 0
	}
	c.q = append(c.q, p)
	if c.idleArmed {
		c.dl.set(c.client, true, zeroTime)
		c.idleArmed = false
	}
	return nil
}

// current returns the entry whose response is being read, taking the next
// one from the queue if needed; nil when nothing is outstanding.
func (c *conn) current() *pending {
	if c.hasCur {
		return &c.cur
	}
	c.qmu.Lock()
	if c.qh == len(c.q) {
		c.qmu.Unlock()
		return nil
	}
	c.cur = c.q[c.qh]
	c.q[c.qh] = pending{}
	c.qh++
	if c.qh == len(c.q) {
		c.q, c.qh = c.q[:0], 0
	}
	c.qmu.Unlock()
	c.hasCur, c.rowCount = true, 0
	return &c.cur
}

// finish completes the current entry.
func (c *conn) finish() {
	c.hasCur = false
	c.cur = pending{}
	c.armIdle()
}

// armIdle starts the idle timer when no response is outstanding.
func (c *conn) armIdle() {
	if c.cfg.IdleTimeout <= 0 {
		return
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if !c.hasCur && c.qh == len(c.q) && !c.idleArmed {
		c.dl.set(c.client, true, c.cfg.Now().Add(c.cfg.IdleTimeout))
		c.idleArmed = true
	}
}

// completeSync consumes entries up to and including the Sync or Query that
// a ReadyForQuery answers; entries the backend skipped after an error are
// dropped with it.
func (c *conn) completeSync() {
	for {
		cur := c.current()
		if cur == nil {
			return
		}
		k := cur.kind
		c.finish()
		if k == kSync || k == kQuery {
			return
		}
	}
}

// ---- backend to client ----

func (c *conn) backendLoop(ctx context.Context) error {
	for {
		if !c.brd.ready() {
			if err := c.flushClient(); err != nil {
				return err
			}
		}
		msg, err := c.brd.next()
		if err != nil {
			_ = c.flushClient()
			if errors.Is(err, ErrProtocolViolation) || errors.Is(err, ErrMessageTooLarge) {
				return c.fatalClient(fmt.Errorf("backend: %w", err))
			}
			return fmt.Errorf("read from backend: %w", err)
		}
		if err := c.fromBackend(ctx, msg); err != nil {
			_ = c.flushClient()
			return err
		}
	}
}

func (c *conn) flushClient() error {
	c.cw.mu.Lock()
	defer c.cw.mu.Unlock()
	if err := c.cw.w.Flush(); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

func (c *conn) writeClient(msg []byte) error {
	c.cw.mu.Lock()
	_, err := c.cw.w.Write(msg)
	c.cw.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

func (c *conn) fromBackend(ctx context.Context, msg []byte) error {
	typ, body := msg[0], msg[5:]
	switch typ {
	case 'N': // NoticeResponse
		if er := errorRewriter(c.peekStmt()); er != nil {
			var n pgproto3.NoticeResponse
			if err := n.Decode(body); err != nil {
				return fmt.Errorf("%w: backend NoticeResponse: %v", ErrProtocolViolation, err)
			}
			er.RewriteError((*pgproto3.ErrorResponse)(&n))
			buf, err := n.Encode(c.ebuf[:0])
			if err != nil {
				return fmt.Errorf("encode NoticeResponse: %w", err)
			}
			c.ebuf = buf
			return c.writeClient(buf)
		}
		return c.writeClient(msg)
	case 'S': // ParameterStatus
		var ps pgproto3.ParameterStatus
		if err := ps.Decode(body); err != nil {
			return fmt.Errorf("%w: backend ParameterStatus: %v", ErrProtocolViolation, err)
		}
		if err := checkSetting(ps.Name, ps.Value); err != nil {
			// The backend now reads SQL differently from the classifier:
			// nothing more may be forwarded on this connection.
			return c.fatalClient(err)
		}
		return c.writeClient(msg)
	case 'A': // NotificationResponse
		return c.writeClient(msg)
	case 'Z':
		if len(body) != 1 {
			return fmt.Errorf("%w: backend ReadyForQuery length", ErrProtocolViolation)
		}
		c.txStatus.Store(uint32(body[0]))
		c.completeSync()
		c.suppress = false
		return c.writeClient(msg)
	case 'K', 'v', 'R':
		return nil // only valid during startup
	}
	if c.suppress {
		if typ == 'G' {
			return c.fatalClient(ErrRewrite) // cannot feed a COPY whose client was told it failed
		}
		return nil
	}
	cur := c.current()
	switch typ {
	case '1', '2', '3': // ParseComplete, BindComplete, CloseComplete
		if cur == nil {
			return c.writeClient(msg)
		}
		if cur.deny != nil {
			// The substitute should never parse; refuse anyway.
			err := c.denied(ctx, cur)
			c.suppress = true
			c.finish()
			return err
		}
		c.finish()
		return c.writeClient(msg)
	case 't': // ParameterDescription
		return c.writeClient(msg)
	case 'n': // NoData
		if cur != nil && (cur.kind == kDescStmt || cur.kind == kDescPortal) {
			c.finish()
		}
		return c.writeClient(msg)
	case 'T': // RowDescription
		if cur != nil && cur.st != nil && cur.st.rows != nil {
			if err := c.rd.Decode(body); err != nil {
				return fmt.Errorf("%w: backend RowDescription: %v", ErrProtocolViolation, err)
			}
			if err := cur.st.rows.Describe(c.rd.Fields); err != nil {
				cur.st.withheld = true
				return c.withhold(ctx, cur, err)
			}
			cur.st.withheld = false
		}
		if cur != nil && (cur.kind == kDescStmt || cur.kind == kDescPortal) {
			c.finish()
		}
		return c.writeClient(msg)
	case 'D': // DataRow
		if cur == nil || cur.st == nil || cur.st.rows == nil {
			c.rowCount++
			return c.writeClient(msg)
		}
		if cur.st.withheld {
			return c.withhold(ctx, cur, ErrRewrite)
		}
		if lim, ok := cur.st.rows.(RowLimiter); ok {
			if n := lim.MaxRows(); n > 0 && c.rowCount >= n {
				return c.withhold(ctx, cur, rowLimitError(n))
			}
		}
		if err := c.dr.Decode(body); err != nil {
			return fmt.Errorf("%w: backend DataRow: %v", ErrProtocolViolation, err)
		}
		vals := cur.st.rows.Rewrite(c.dr.Values)
		var err error
		c.out, err = (&pgproto3.DataRow{Values: vals}).Encode(c.out[:0])
		if err != nil {
			return c.withhold(ctx, cur, err)
		}
		c.rowCount++
		return c.writeClient(c.out)
	case 'C', 'I': // CommandComplete, EmptyQueryResponse
		if cur != nil {
			tag := ""
			if typ == 'C' {
				tag, _, _ = cstring(body)
			}
			c.done(ctx, cur, tag, nil)
			switch cur.kind {
			case kQuery:
				cur.start, c.rowCount = c.cfg.Now(), 0
			case kExecute:
				c.finish()
			}
		}
		return c.writeClient(msg)
	case 's': // PortalSuspended
		if cur != nil && cur.kind == kExecute {
			c.finish()
		}
		return c.writeClient(msg)
	case 'E': // ErrorResponse
		var err error
		if cur != nil && cur.deny != nil {
			err = c.denied(ctx, cur)
		} else {
			out := msg
			rw := errorRewriter(cur)
			if cur != nil && (rw != nil || cur.kind == kQuery || cur.kind == kExecute) {
				var er pgproto3.ErrorResponse
				if derr := er.Decode(body); derr != nil {
					return fmt.Errorf("%w: backend ErrorResponse: %v", ErrProtocolViolation, derr)
				}
				if rw != nil {
					rw.RewriteError(&er)
					buf, eerr := er.Encode(c.ebuf[:0])
					if eerr != nil {
						return fmt.Errorf("encode ErrorResponse: %w", eerr)
					}
					c.ebuf, out = buf, buf
				}
				if cur.kind == kQuery || cur.kind == kExecute {
					c.done(ctx, cur, "", pgconn.ErrorResponseToPgError(&er))
				}
			}
			err = c.writeClient(out)
		}
		if cur != nil && cur.kind != kQuery && cur.kind != kSync {
			c.finish() // the backend skips to Sync; completeSync drops the rest
		}
		return err
	case 'G', 'H', 'c', 'V': // CopyInResponse, CopyOutResponse, CopyDone, FunctionCallResponse
		return c.writeClient(msg)
	case 'W':
		return c.fatalClient(ErrCopyBoth)
	case 'd': // CopyData (COPY TO STDOUT)
		if cur == nil || cur.st == nil || cur.st.rows == nil {
			return c.writeClient(msg)
		}
		data, err := cur.st.rows.CopyData(body)
		if err != nil {
			return c.withhold(ctx, cur, err)
		}
		c.out = append(c.out[:0], 'd', 0, 0, 0, 0)
		c.out = append(c.out, data...)
		binary.BigEndian.PutUint32(c.out[1:], uint32(len(data)+4))
		return c.writeClient(c.out)
	default:
		return fmt.Errorf("%w: unexpected backend message type %q", ErrProtocolViolation, typ)
	}
}

// errorRewriter returns the statement's ErrorRewriter, or nil.
func errorRewriter(p any) ErrorRewriter {
	var st *stmt
	switch x := p.(type) {
	case *pending:
		if x != nil {
			st = x.st
		}
	case *stmt:
		st = x
	}
	if st == nil || st.rows == nil {
		return nil
	}
	er, _ := st.rows.(ErrorRewriter)
	return er
}

// peekStmt returns the statement whose response is being read or is next,
// without taking it from the queue (notices may precede its first message).
func (c *conn) peekStmt() *stmt {
	if c.hasCur {
		return c.cur.st
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.qh < len(c.q) {
		return c.q[c.qh].st
	}
	return nil
}

// denied sends the deny error in place of the substitute's error.
func (c *conn) denied(ctx context.Context, cur *pending) error {
	buf, _ := RenderError(cur.deny).Encode(c.out[:0])
	c.out = buf
	c.sess.Done(ctx, CommandResult{SQL: stmtSQL(cur.st), Err: cur.deny, Denied: true, Duration: c.cfg.Now().Sub(cur.start)})
	return c.writeClient(buf)
}

// withhold replaces a result the rewriter refused with an error and drops
// the backend's output until ReadyForQuery, so no unrewritten row leaks.
func (c *conn) withhold(ctx context.Context, cur *pending, err error) error {
	c.log.Warn("Result withheld.", "error", err)
	var ge *Error
	if !errors.As(err, &ge) {
		err = ErrRewrite // the rewriter's own text may describe the data
	}
	c.done(ctx, cur, "", err)
	buf, _ := RenderError(err).Encode(c.out[:0])
	c.out = buf
	c.suppress = true
	return c.writeClient(buf)
}

func (c *conn) done(ctx context.Context, cur *pending, tag string, err error) {
	if cur.kind != kQuery && cur.kind != kExecute {
		return
	}
	c.sess.Done(ctx, CommandResult{SQL: stmtSQL(cur.st), Tag: tag, Rows: c.rowCount, Err: err, Duration: c.cfg.Now().Sub(cur.start)})
}

func stmtSQL(st *stmt) string {
	if st == nil {
		return ""
	}
	return st.sql
}
