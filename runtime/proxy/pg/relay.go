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

	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

var zeroTime time.Time

// denySubstitute replaces a denied simple Query on its way to the backend.
// It is a syntax error, so the backend fails it at parse time without
// executing anything. The backend then behaves exactly as for any failed
// statement: an open transaction block becomes aborted (the client must
// ROLLBACK) and responses stay in wire order with pipelined commands. The
// proxy replaces the backend's error with the deny.
const denySubstitute = "/* gatehouse: statement denied by policy */ DENIED"

// deniedName is a prepared statement that never exists: the gateway refuses
// to create any name with its reserved prefix. A denied extended-protocol
// message is replaced by a Describe of it, which fails without any side
// effect, so the backend skips the rest of the client's batch until Sync
// exactly as after any failure.
const deniedName = "__gatehouse_denied"

var (
	substituteQuery    = mustEncode(&pgproto3.Query{String: denySubstitute})
	substituteDescribe = mustEncode(&pgproto3.Describe{ObjectType: 'S', Name: deniedName})
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

// errDesync ends a connection whose backend answered something the gateway
// did not expect: it can no longer tell which statement a response belongs
// to, so it must not relay anything more.
var errDesync = fmt.Errorf("%w: unexpected backend response; the connection is closed to keep results attributed", ErrProtocolViolation)

// Kinds of entries awaiting a backend response.
const (
	kQuery      = 'Q' // simple Query (or a substitute for a denied Query or FunctionCall)
	kParse      = 'P'
	kBind       = 'B'
	kDescStmt   = 'd'
	kDescPortal = 'p'
	kInternal   = 'i' // Describe of a portal injected by the gateway; answer consumed
	kDenied     = 'x' // substitute for a denied extended-protocol message
	kExecute    = 'E'
	kClose      = 'C'
	kSync       = 'S'
)

// execStmt is one statement that runs: a statement of a simple Query, or
// the statement of an executed portal.
type execStmt struct {
	text string
	st   *sqlclass.Statement
	v    *Verdict
	// ops change the session state when the statement completes.
	ops []*op
	// portal is the portal the statement reads (FETCH, protocol Execute):
	// it fails with the statement.
	portal *portal
	// keep is the portal running a CLOSE ALL (it survives it).
	rows     RowRewriter
	planned  bool // the rewriter has seen the result's fields
	withheld bool
	done     bool
	rowCount int64
	start    time.Time
}

func (es *execStmt) described() { es.planned = true }

// entry is a forwarded message whose response has not been read yet.
type entry struct {
	kind  byte
	epoch uint64
	// ops change the session state when the message succeeds.
	ops []*op
	// stmts run (Query: each statement; Execute: one).
	stmts []*execStmt
	cur   int
	slots Slots
	// deny is rendered in place of the backend's error (a substitute).
	deny error
	// stmt and portal are what a Describe describes or an Execute runs.
	stmt   *prepared
	portal *portal
	// dropped is set once a Query's effect on the unnamed statement and
	// portal has been applied.
	dropped bool
	start   time.Time
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

	state *sessionState
	// lex are the lexical settings the backend reported (guarded by
	// state.mu); lexDirty is set by the client reader after forwarding a
	// statement that may change them, until the backend has answered.
	lex      lexical
	lexDirty bool
	// searchPath is the backend session's search path as the gateway
	// knows it (nil: unknown since the session changed it); client reader
	// only.
	searchPath []string

	// Client reader state.
	crd     msgReader
	bw      *bufio.Writer
	discard bool   // after a denied extended message, until Sync
	epoch   uint64 // current epoch (see state.go)

	// Queue of forwarded messages awaiting responses, in wire order;
	// guarded by state.mu.
	q         []*entry
	qh        int
	idleArmed bool

	// Backend reader state.
	brd msgReader
	cur *entry
	// skipping is set while the backend skips messages until Sync (after
	// an error in the extended protocol); syncs counts the Syncs forwarded
	// and not answered yet. Both are guarded by state.mu: push uses them
	// to settle at once an entry the backend will skip.
	skipping bool
	syncs    int
	dr       pgproto3.DataRow
	rd       pgproto3.RowDescription
	out      []byte
	ebuf     []byte
	txStatus atomic.Uint32

	firstErr  error
	firstOnce sync.Once
}

func newConn(h *Handler, log *slog.Logger, sess Session, client, backend net.Conn, cw *bufio.Writer, dl *deadlines, txs byte, lex lexical, searchPath []string) *conn {
	c := &conn{
		cfg: &h.cfg, log: log, sess: sess, client: client, backend: backend, dl: dl,
		bw:    bufio.NewWriterSize(backend, backendWrite),
		state: newSessionState(txs),
		epoch: 1,
		lex:   lex,
		// searchPath is what the session was told at login.
		searchPath: searchPath,
	}
	c.cw.w = cw
	c.crd = msgReader{r: bufio.NewReaderSize(client, clientReadBuf), max: h.cfg.MaxMessageSize}
	c.brd = msgReader{r: bufio.NewReaderSize(backend, backendReadBuf), max: h.cfg.MaxBackendMessageSize}
	c.txStatus.Store(uint32(txs))
	if h.cfg.onConn != nil {
		h.cfg.onConn(c)
	}
	return c
}

// run relays until either side ends; it waits for both directions.
func (c *conn) run(ctx context.Context, cancel context.CancelFunc) error {
	c.armIdle()
	stop := context.AfterFunc(ctx, c.state.end)
	defer stop()
	go func() {
		select {
		case <-c.sess.Ended():
			// The policy side ended the session (revocation, token
			// expiry): tell the client why, then close.
			c.end(c.fatalClient(c.sess.EndReason()), cancel)
		case <-ctx.Done():
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.end(c.backendLoop(ctx), cancel)
	}()
	c.end(c.clientLoop(ctx), cancel)
	<-done
	c.abandon()
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
	c.state.end()
	cancel()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// abandon records the statements still awaiting a response when the
// connection ended.
func (c *conn) abandon() {
	c.state.mu.Lock()
	var rest []*entry
	if c.cur != nil {
		rest = append(rest, c.cur)
		c.cur = nil
	}
	rest = append(rest, c.q[c.qh:]...)
	c.q, c.qh = nil, 0
	c.state.mu.Unlock()
	for _, e := range rest {
		c.notExecuted(e, "the connection ended first")
	}
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
			if errors.Is(err, ErrProtocolViolation) {
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
		return c.query(ctx, string(sqlb), msg)
	case 'P':
		name, rest, err := cstring(body)
		if err != nil {
			return err
		}
		sqlb, rest, err := cbytes(rest)
		if err != nil {
			return err
		}
		return c.parse(ctx, name, string(sqlb), paramTypes(rest), msg)
	case 'B':
		return c.bind(ctx, body, msg)
	case 'D':
		if len(body) < 2 {
			return fmt.Errorf("%w: short Describe message", ErrProtocolViolation)
		}
		name, _, err := cstring(body[1:])
		if err != nil {
			return err
		}
		return c.describe(ctx, body[0], name, msg)
	case 'C':
		if len(body) < 2 {
			return fmt.Errorf("%w: short Close message", ErrProtocolViolation)
		}
		name, _, err := cstring(body[1:])
		if err != nil {
			return err
		}
		return c.close(ctx, body[0], name, msg)
	case 'E':
		name, _, err := cstring(body)
		if err != nil {
			return err
		}
		return c.execute(ctx, name, msg)
	case 'S':
		c.discard = false
		if err := c.push(ctx, &entry{kind: kSync}, nil); err != nil {
			return err
		}
		c.epoch++
		return c.write(msg)
	case 'H', 'd', 'c', 'f':
		return c.write(msg)
	case 'F':
		// FunctionCall runs a function by OID, bypassing SQL: refused.
		c.sess.Deny(ctx, "FunctionCall", nil, ErrFunctionCall)
		return c.denyQuery(ctx, ErrFunctionCall)
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

// text converts a Query or Parse text to UTF-8 as the backend will read
// it, after waiting for the backend's answer to any earlier statement that
// may have changed how it reads text.
func (c *conn) text(ctx context.Context, raw string) (string, error) {
	if c.lexDirty {
		if err := c.waitConfirmed(ctx); err != nil {
			return "", err
		}
		c.state.mu.Lock()
		// Inside a transaction block, COMMIT or ROLLBACK may still undo a
		// SET: stay careful until the block ends.
		c.lexDirty = c.state.tx.status != 'I'
		c.state.mu.Unlock()
	}
	c.state.mu.Lock()
	lex := c.lex
	c.state.mu.Unlock()
	u, err := lex.toUTF8(raw)
	if err != nil {
		return "", &Error{Code: "22021", Message: "gatehouse denied the command: " + err.Error(), Err: err}
	}
	if err := lex.check(u); err != nil {
		return "", err
	}
	return u, nil
}

// keyOf returns a protocol-level name as the backend keys it, or false
// when the gateway cannot compare it exactly.
// room checks the session's bounds before one more named statement or
// portal is created.
func (c *conn) room(ns byte, text int) error {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	maxCount := c.cfg.MaxStatements
	if ns == nsPortal {
		maxCount = c.cfg.MaxPortals
	}
	return c.state.room(ns, text, maxCount, c.cfg.MaxSessionText)
}

func (c *conn) keyOf(name string) (string, bool) {
	c.state.mu.Lock()
	lex := c.lex
	c.state.mu.Unlock()
	return lex.key(name)
}

func unknownName(name string) error {
	return &Error{Code: "22021", Message: fmt.Sprintf("gatehouse denied the reference to %q: the name cannot be compared exactly in the session's encodings", name),
		Hint: "Use ASCII names for prepared statements and portals, or client_encoding equal to the server encoding."}
}

// query judges a simple Query message statement by statement.
func (c *conn) query(ctx context.Context, raw string, msg []byte) error {
	sql, err := c.text(ctx, raw)
	if err != nil {
		c.sess.Deny(ctx, raw, nil, err)
		return c.denyQuery(ctx, err)
	}
	stmts, err := c.sess.Classify(sql)
	if err != nil {
		c.sess.Deny(ctx, sql, nil, err)
		return c.denyQuery(ctx, err)
	}
	var (
		es    []*execStmt
		ops   []*op
		items []ApprovalItem
	)
	pathBefore, pathChanged := c.searchPath, false
	restorePath := func() {
		if pathChanged {
			c.sess.SetSearchPath(pathBefore)
		}
	}
	for {
		es, ops, items = es[:0], ops[:0], items[:0]
		sim := c.newSim()
		wait := false
		var denied error
		var deniedAt int
		for i := range stmts {
			st := &stmts[i]
			target, pt, derr, w := c.resolve(sim, st, 0)
			if w {
				wait = true
				break
			}
			if derr == nil && (st.Kind == "prepare" || st.Kind == "declare") {
				ns := byte(nsStmt)
				if st.Kind == "declare" {
					ns = nsPortal
				}
				derr = c.room(ns, len(st.Text))
			}
			var v Verdict
			if derr != nil {
				v = Verdict{Err: derr}
			} else {
				v = c.sess.Judge(ctx, st.Text, target)
			}
			if !v.Allow {
				denied, deniedAt = v.Err, i
				if denied == nil {
					denied = ErrDenied
				}
				es = append(es, &execStmt{text: st.Text, st: st, v: &v})
				break
			}
			if v.NeedsApproval && !(pt != nil && pt.once) {
				items = append(items, ApprovalItem{Text: st.Text, Message: sql, Verdict: &v})
			}
			run := c.executed(sim, st, 0)
			if changesSearchPath(run) {
				// Later statements of this message run with a search path
				// the gateway does not know.
				pathChanged = true
				c.sess.SetSearchPath(nil)
			}
			so := c.effects(sim, run, nil)
			ops = append(ops, so...)
			es = append(es, &execStmt{text: st.Text, st: run, v: &v, ops: so, portal: pt, rows: v.Rows})
		}
		if wait {
			restorePath()
			if err := c.waitConfirmed(ctx); err != nil {
				return err
			}
			continue
		}
		if denied != nil {
			restorePath()
			for i := range stmts {
				switch {
				case i == deniedAt:
					c.sess.Deny(ctx, stmts[i].Text, es[i].v, denied)
				case i < deniedAt:
					c.sess.Deny(ctx, stmts[i].Text, es[i].v, fmt.Errorf("not executed: statement %d of the same message was denied", deniedAt+1))
				default:
					c.sess.Deny(ctx, stmts[i].Text, nil, fmt.Errorf("not executed: statement %d of the same message was denied", deniedAt+1))
				}
			}
			return c.denyQuery(ctx, multiDenial(denied, deniedAt, len(stmts)))
		}
		break
	}
	if err := c.approve(ctx, items); err != nil {
		restorePath()
		for _, e := range es {
			c.sess.Deny(ctx, e.text, e.v, err)
		}
		return c.denyQuery(ctx, err)
	}
	var slots Slots
	if len(es) > 0 { // an empty query string records nothing
		var err error
		if slots, err = c.sess.Reserve(ctx, len(es), c.flushBackend); err != nil {
			restorePath()
			return c.denyQuery(ctx, err)
		}
	}
	if pathChanged {
		c.searchPath = nil
	}
	now := c.cfg.Now()
	for _, e := range es {
		e.start = now
	}
	drop := &op{kind: opDropUnnamed}
	e := &entry{kind: kQuery, ops: []*op{drop}, stmts: es, slots: slots, start: now}
	if err := c.push(ctx, e, append([]*op{drop}, ops...)); err != nil {
		slots.Release()
		return err
	}
	c.epoch++
	for _, e := range es {
		if e.st != nil && changesLexical(e.st) {
			c.lexDirty = true
		}
	}
	return c.write(msg)
}

// multiDenial names the statement that was denied in a message of several.
func multiDenial(err error, at, n int) error {
	if n <= 1 {
		return err
	}
	var ge *Error
	if errors.As(err, &ge) {
		cp := *ge
		cp.Message += fmt.Sprintf(" (statement %d of the message; the whole message was refused)", at+1)
		return &cp
	}
	return err
}

// denyQuery forwards the substitute Query in place of a denied Query or
// FunctionCall; the backend's syntax error is replaced by err.
func (c *conn) denyQuery(ctx context.Context, err error) error {
	c.log.Debug("Statement denied.", "error", err)
	drop := &op{kind: opDropUnnamed}
	e := &entry{kind: kQuery, deny: err, ops: []*op{drop}, start: c.cfg.Now()}
	if perr := c.push(ctx, e, []*op{drop}); perr != nil {
		return perr
	}
	c.epoch++
	return c.write(substituteQuery)
}

// denyExtended forwards the substitute Describe in place of a denied
// extended-protocol message and discards the client's messages until Sync.
func (c *conn) denyExtended(ctx context.Context, err error) error {
	c.log.Debug("Extended-protocol message denied.", "error", err)
	if perr := c.push(ctx, &entry{kind: kDenied, deny: err, start: c.cfg.Now()}, nil); perr != nil {
		return perr
	}
	c.discard = true
	return c.write(substituteDescribe)
}

func (c *conn) parse(ctx context.Context, name, raw string, oids []uint32, msg []byte) error {
	sql, err := c.text(ctx, raw)
	if err != nil {
		c.sess.Deny(ctx, raw, nil, err)
		return c.denyExtended(ctx, err)
	}
	key, ok := c.keyOf(name)
	if !ok {
		err := unknownName(name)
		c.sess.Deny(ctx, sql, nil, err)
		return c.denyExtended(ctx, err)
	}
	if hasReservedPrefix(key) {
		err := reservedNameError("prepared statement", name)
		c.sess.Deny(ctx, sql, nil, err)
		return c.denyExtended(ctx, err)
	}
	stmts, err := c.sess.Classify(sql)
	if err != nil {
		c.sess.Deny(ctx, sql, nil, err)
		return c.denyExtended(ctx, err)
	}
	if len(stmts) > 1 {
		err := &Error{Code: "42601", Message: "cannot insert multiple commands into a prepared statement"}
		c.sess.Deny(ctx, sql, nil, err)
		return c.denyExtended(ctx, err)
	}
	if key != "" {
		if err := c.room(nsStmt, len(sql)); err != nil {
			c.sess.Deny(ctx, sql, nil, err)
			return c.denyExtended(ctx, err)
		}
	}
	p := &prepared{text: sql, paramOIDs: oids}
	if len(stmts) == 1 {
		p.st = &stmts[0]
		if !deferred(p.st) {
			// Judged now so that a denied statement is never prepared; it
			// is judged again at every Bind, with the policy active then.
			target, _, derr, _ := c.resolve(nil, p.st, 0)
			v := Verdict{Err: derr}
			if derr == nil {
				v = c.sess.Judge(ctx, sql, target)
			}
			if !v.Allow {
				if v.Err == nil {
					v.Err = ErrDenied
				}
				c.sess.Deny(ctx, sql, &v, v.Err)
				return c.denyExtended(ctx, v.Err)
			}
		}
	}
	o := &op{ns: nsStmt, kind: opParse, name: key, stmt: p}
	if err := c.push(ctx, &entry{kind: kParse, ops: []*op{o}, stmt: p}, []*op{o}); err != nil {
		return err
	}
	return c.write(msg)
}

// deferred reports whether a prepared statement's meaning depends on the
// session state when it runs (EXECUTE, FETCH, MOVE), so it is judged at
// execution rather than when prepared.
func deferred(st *sqlclass.Statement) bool {
	if st == nil {
		return false
	}
	switch st.Kind {
	case "execute", "fetch":
		return true
	}
	return st.Inner != nil && st.Inner.Kind == "execute"
}

func (c *conn) bind(ctx context.Context, body, msg []byte) error {
	b, err := decodeBind(body)
	if err != nil {
		return err
	}
	pkey, ok1 := c.keyOf(b.portal)
	skey, ok2 := c.keyOf(b.stmt)
	if !ok1 || !ok2 {
		err := unknownName(b.portal + "/" + b.stmt)
		c.sess.Deny(ctx, "Bind", nil, err)
		return c.denyExtended(ctx, err)
	}
	if hasReservedPrefix(pkey) {
		err := reservedNameError("portal", b.portal)
		c.sess.Deny(ctx, "Bind", nil, err)
		return c.denyExtended(ctx, err)
	}
	var p *prepared
	for {
		var ep uint64
		c.state.mu.Lock()
		p, ep = c.state.lookupStmt(skey)
		c.state.mu.Unlock()
		if ep != 0 && ep < c.epoch {
			if err := c.waitConfirmed(ctx); err != nil {
				return err
			}
			continue
		}
		break
	}
	if p == nil {
		err := notKnown("prepared statement", b.stmt, "26000")
		c.sess.Deny(ctx, "Bind", nil, err)
		return c.denyExtended(ctx, err)
	}
	if pkey != "" {
		if err := c.room(nsPortal, 0); err != nil {
			c.sess.Deny(ctx, p.text, nil, err)
			return c.denyExtended(ctx, err)
		}
	}
	np := &portal{text: p.text, st: p.st, stmt: p, formats: b.resultFormats}
	if p.st != nil && !deferred(p.st) {
		target, _, derr, _ := c.resolve(nil, p.st, 0)
		v := Verdict{Err: derr}
		if derr == nil {
			v = c.sess.Judge(ctx, p.text, target)
		}
		if !v.Allow {
			if v.Err == nil {
				v.Err = ErrDenied
			}
			c.sess.Deny(ctx, p.text, &v, v.Err)
			return c.denyExtended(ctx, v.Err)
		}
		if v.NeedsApproval {
			c.state.mu.Lock()
			oids := p.paramOIDs
			c.state.mu.Unlock()
			item := ApprovalItem{Text: p.text, Params: b.renderParams(oids), Verdict: &v}
			if err := c.approve(ctx, []ApprovalItem{item}); err != nil {
				c.sess.Deny(ctx, p.text, &v, err)
				return c.denyExtended(ctx, err)
			}
			np.once = true
		}
		np.verdict = &v
	}
	o := &op{ns: nsPortal, kind: opSet, name: pkey, portal: np}
	if err := c.push(ctx, &entry{kind: kBind, ops: []*op{o}, portal: np}, []*op{o}); err != nil {
		return err
	}
	return c.write(msg)
}

func (c *conn) describe(ctx context.Context, target byte, name string, msg []byte) error {
	key, ok := c.keyOf(name)
	if !ok {
		err := unknownName(name)
		c.sess.Deny(ctx, "Describe", nil, err)
		return c.denyExtended(ctx, err)
	}
	switch target {
	case 'S':
		p, err := c.lookupStmtWait(ctx, key)
		if err != nil {
			return err
		}
		if p == nil {
			err := notKnown("prepared statement", name, "26000")
			c.sess.Deny(ctx, "Describe", nil, err)
			return c.denyExtended(ctx, err)
		}
		if err := c.push(ctx, &entry{kind: kDescStmt, stmt: p}, nil); err != nil {
			return err
		}
	case 'P':
		pt, err := c.lookupPortalWait(ctx, key)
		if err != nil {
			return err
		}
		if pt == nil {
			err := notKnown("portal", name, "34000")
			c.sess.Deny(ctx, "Describe", nil, err)
			return c.denyExtended(ctx, err)
		}
		if err := c.push(ctx, &entry{kind: kDescPortal, portal: pt}, nil); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: Describe message with target %q", ErrProtocolViolation, target)
	}
	return c.write(msg)
}

func (c *conn) close(ctx context.Context, target byte, name string, msg []byte) error {
	key, ok := c.keyOf(name)
	if !ok {
		err := unknownName(name)
		c.sess.Deny(ctx, "Close", nil, err)
		return c.denyExtended(ctx, err)
	}
	var o *op
	switch target {
	case 'S':
		o = &op{ns: nsStmt, kind: opDel, name: key}
	case 'P':
		o = &op{ns: nsPortal, kind: opDel, name: key}
	default:
		return fmt.Errorf("%w: Close message with target %q", ErrProtocolViolation, target)
	}
	if err := c.push(ctx, &entry{kind: kClose, ops: []*op{o}}, []*op{o}); err != nil {
		return err
	}
	return c.write(msg)
}

func (c *conn) execute(ctx context.Context, name string, msg []byte) error {
	key, ok := c.keyOf(name)
	if !ok {
		err := unknownName(name)
		c.sess.Deny(ctx, "Execute", nil, err)
		return c.denyExtended(ctx, err)
	}
	var (
		pt   *portal
		es   *execStmt
		ops  []*op
		item []ApprovalItem
	)
	for {
		var err error
		pt, err = c.lookupPortalWait(ctx, key)
		if err != nil {
			return err
		}
		if pt == nil {
			err := notKnown("portal", name, "34000")
			c.sess.Deny(ctx, "Execute", nil, err)
			return c.denyExtended(ctx, err)
		}
		c.state.mu.Lock()
		ran := pt.ran
		c.state.mu.Unlock()
		if pt.once && ran {
			err := &Error{Code: "42501", Message: "gatehouse denied the execution: its approval covered one execution, which has run",
				Hint: "Bind the statement again to ask for a new approval."}
			c.sess.Deny(ctx, pt.text, pt.verdict, err)
			return c.denyExtended(ctx, err)
		}
		if pt.verdict != nil && !pt.cursor {
			// A portal bound from a statement judged at Bind: only its own
			// SQL-level effects remain to compute.
			v := pt.verdict
			sim := c.newSim()
			run := c.executed(sim, pt.st, 0)
			ops = c.effects(sim, run, pt)
			es = &execStmt{text: pt.text, st: run, v: v, ops: ops, portal: pt, rows: v.Rows}
			if v.Rows != nil {
				// Each execution gets a fresh rewriter: Judge again only
				// for the rewriter, the decision is the Bind's.
				es.rows = c.freshRows(ctx, pt)
			}
			break
		}
		if pt.st == nil {
			// An empty statement: the backend answers EmptyQueryResponse.
			v := &Verdict{Allow: true}
			es = &execStmt{text: pt.text, v: v, portal: pt}
			break
		}
		sim := c.newSim()
		st := pt.st
		if pt.cursor {
			// A cursor executed through the protocol reads its query.
			target := pt.st
			v := c.sess.Judge(ctx, "FETCH (Execute of cursor "+name+")", target)
			if !v.Allow {
				if v.Err == nil {
					v.Err = ErrDenied
				}
				c.sess.Deny(ctx, pt.text, &v, v.Err)
				return c.denyExtended(ctx, v.Err)
			}
			es = &execStmt{text: pt.text, st: target, v: &v, portal: pt, rows: v.Rows}
			break
		}
		target, rp, derr, w := c.resolve(sim, st, 0)
		if w {
			if err := c.waitConfirmed(ctx); err != nil {
				return err
			}
			continue
		}
		v := Verdict{Err: derr}
		if derr == nil {
			v = c.sess.Judge(ctx, pt.text, target)
		}
		if !v.Allow {
			if v.Err == nil {
				v.Err = ErrDenied
			}
			c.sess.Deny(ctx, pt.text, &v, v.Err)
			return c.denyExtended(ctx, v.Err)
		}
		if v.NeedsApproval && !(rp != nil && rp.once) {
			item = []ApprovalItem{{Text: pt.text, Verdict: &v}}
		}
		run := c.executed(sim, st, 0)
		ops = c.effects(sim, run, pt)
		es = &execStmt{text: pt.text, st: run, v: &v, ops: ops, portal: rp, rows: v.Rows}
		break
	}
	if err := c.approve(ctx, item); err != nil {
		c.sess.Deny(ctx, pt.text, es.v, err)
		return c.denyExtended(ctx, err)
	}
	slots, err := c.sess.Reserve(ctx, 1, c.flushBackend)
	if err != nil {
		return c.denyExtended(ctx, err)
	}
	if es.rows != nil {
		c.state.mu.Lock()
		known := pt.described
		c.state.mu.Unlock()
		if !known {
			// The client did not describe this portal: ask the backend for
			// its RowDescription (with the real formats) so the rows can be
			// masked; the answer is consumed here.
			if err := c.push(ctx, &entry{kind: kInternal, portal: pt}, nil); err != nil {
				slots.Release()
				return err
			}
			d, _ := (&pgproto3.Describe{ObjectType: 'P', Name: name}).Encode(nil)
			if err := c.write(d); err != nil {
				slots.Release()
				return err
			}
		}
	}
	es.start = c.cfg.Now()
	e := &entry{kind: kExecute, stmts: []*execStmt{es}, slots: slots, portal: pt, ops: nil, start: es.start}
	if err := c.push(ctx, e, ops); err != nil {
		slots.Release()
		return err
	}
	if es.st != nil && changesLexical(es.st) {
		c.lexDirty = true
	}
	if es.st != nil && changesSearchPath(es.st) {
		c.searchPath = nil
		c.sess.SetSearchPath(nil)
	}
	return c.write(msg)
}

// freshRows returns a new rewriter for another execution of a bound
// portal: the Bind's decision stands (and its approval), the masking
// starts afresh.
func (c *conn) freshRows(ctx context.Context, pt *portal) RowRewriter {
	if pt.verdict == nil {
		return nil
	}
	target, _, derr, _ := c.resolve(nil, pt.st, 0)
	if derr != nil {
		return withholdAll{}
	}
	v := c.sess.Judge(ctx, pt.text, target)
	if !v.Allow || v.Rows == nil {
		// The policy changed since Bind: withhold rather than pass rows.
		if pt.verdict.Rows != nil {
			return withholdAll{}
		}
		return nil
	}
	return v.Rows
}

// withholdAll refuses every result.
type withholdAll struct{}

func (withholdAll) Describe([]pgproto3.FieldDescription) error { return ErrRewrite }
func (withholdAll) Rewrite(v [][]byte) [][]byte {
	out := make([][]byte, len(v))
	return out
}
func (withholdAll) CopyData([]byte) ([]byte, error) { return nil, ErrRewrite }

// approve asks for the items' approvals and waits (only this connection's
// client reader blocks).
func (c *conn) approve(ctx context.Context, items []ApprovalItem) error {
	if len(items) == 0 {
		return nil
	}
	notices, wait, err := c.sess.Approve(ctx, items)
	if err != nil {
		return err
	}
	if err := c.sendNotices(notices, true); err != nil {
		return err
	}
	// Earlier pipelined commands must not wait behind the approval.
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write to backend: %w", err)
	}
	if wait == nil {
		return nil
	}
	return wait(ctx)
}

func (c *conn) sendNotices(notices []string, flush bool) error {
	if len(notices) == 0 {
		return nil
	}
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

// flushBackend sends what is buffered for the backend, with a Flush so
// that the backend sends the answers it holds back until Sync (the
// recording of their outcomes frees this session's recording slots).
func (c *conn) flushBackend() error {
	if _, err := c.bw.Write(flushMsg); err != nil {
		return fmt.Errorf("write to backend: %w", err)
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write to backend: %w", err)
	}
	return nil
}

var flushMsg = mustEncode(&pgproto3.Flush{})

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

// ---- session state lookups (client reader) ----

// waitConfirmed blocks until the backend has answered every message of the
// earlier epochs, flushing first so that it can.
func (c *conn) waitConfirmed(ctx context.Context) error {
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write to backend: %w", err)
	}
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	for !c.state.ended && c.headEpochLocked() < c.epoch {
		c.state.cond.Wait()
	}
	if c.state.ended {
		if err := ctx.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	return nil
}

// headEpochLocked is the epoch of the oldest unanswered entry (max when
// none); the caller holds state.mu.
func (c *conn) headEpochLocked() uint64 {
	if c.cur != nil {
		return c.cur.epoch
	}
	if c.qh < len(c.q) {
		return c.q[c.qh].epoch
	}
	return ^uint64(0)
}

func (c *conn) lookupStmtWait(ctx context.Context, key string) (*prepared, error) {
	for {
		c.state.mu.Lock()
		p, ep := c.state.lookupStmt(key)
		c.state.mu.Unlock()
		if ep != 0 && ep < c.epoch {
			if err := c.waitConfirmed(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return p, nil
	}
}

// lookupPortalWait resolves a portal; portals depend on transaction ends,
// so any unanswered message of an earlier epoch is waited for.
func (c *conn) lookupPortalWait(ctx context.Context, key string) (*portal, error) {
	for {
		c.state.mu.Lock()
		old := c.headEpochLocked() < c.epoch
		var pt *portal
		if !old {
			pt, _ = c.state.lookupPortal(key)
		}
		c.state.mu.Unlock()
		if old {
			if err := c.waitConfirmed(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return pt, nil
	}
}

func hasReservedPrefix(name string) bool {
	return len(name) >= len(reservedPrefix) && name[:len(reservedPrefix)] == reservedPrefix
}

// reservedPrefix is proxy.ReservedNamePrefix (not imported to keep this
// package independent of the pipeline).
const reservedPrefix = "__gatehouse"

func reservedNameError(what, name string) error {
	return &Error{Code: "42501", Message: fmt.Sprintf("gatehouse denied the %s %q: names starting with %q are reserved for the gateway", what, name, reservedPrefix)}
}

func notKnown(what, name, code string) error {
	return &Error{Code: code, Message: fmt.Sprintf("gatehouse denied the reference to %s %q: it does not exist in this session as far as the gateway knows", what, name),
		Hint: "The gateway tracks prepared statements and portals from the backend's own answers; create it in this session first."}
}

// ---- response queue ----

// push queues e (and registers its unconfirmed ops) before its message is
// written. It blocks while MaxPending messages are unanswered
// (backpressure instead of refusal).
func (c *conn) push(ctx context.Context, e *entry, ops []*op) error {
	e.epoch = c.epoch
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	for len(c.q)-c.qh >= c.cfg.MaxPending && !c.state.ended {
		c.state.mu.Unlock()
		err := c.bw.Flush()
		c.state.mu.Lock()
		if err != nil {
			return fmt.Errorf("write to backend: %w", err)
		}
		if len(c.q)-c.qh < c.cfg.MaxPending || c.state.ended {
			break
		}
		c.state.cond.Wait()
	}
	if c.state.ended {
		if err := ctx.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	if c.skipping && c.syncs == 0 && e.kind != kSync {
		// The backend is skipping until a Sync the client has not sent
		// yet: it will answer nothing for this message.
		c.state.register(e.epoch, ops)
		c.skipEntryLocked(e)
		c.state.mu.Unlock()
		c.notExecuted(e, "an earlier message of the same batch failed")
		c.state.mu.Lock()
		return nil
	}
	if e.kind == kSync {
		c.syncs++
	}
	if c.qh > 256 && c.qh*2 > len(c.q) {
		n := copy(c.q, c.q[c.qh:])
		clear(c.q[n:])
		c.q, c.qh = c.q[:n], 0
	}
	c.q = append(c.q, e)
	c.state.register(e.epoch, ops)
	if c.idleArmed {
		c.dl.set(c.client, true, zeroTime)
		c.idleArmed = false
	}
	return nil
}

// current returns the entry whose response is being read, taking the next
// one from the queue if needed; nil when nothing is outstanding. Entries
// the backend skips (after an error, until Sync) are settled on the way.
func (c *conn) current() *entry {
	if c.cur != nil {
		return c.cur
	}
	var skipped []*entry
	c.state.mu.Lock()
	for c.qh < len(c.q) {
		e := c.q[c.qh]
		c.q[c.qh] = nil
		c.qh++
		if c.skipping && e.kind != kSync {
			c.skipEntryLocked(e)
			skipped = append(skipped, e)
			continue
		}
		c.cur = e
		break
	}
	if c.qh == len(c.q) {
		c.q, c.qh = c.q[:0], 0
	}
	if len(skipped) > 0 {
		c.state.cond.Broadcast()
	}
	c.state.mu.Unlock()
	for _, e := range skipped {
		c.notExecuted(e, "an earlier message of the same batch failed")
	}
	return c.cur
}

// startSkip notes that the backend skips everything up to the next Sync
// (after an error in the extended protocol) and settles at once the
// entries already queued before that Sync: no answer will come for them,
// and a client reader waiting for one (a Query the backend skips) must not
// wait for the Sync it has not forwarded yet.
func (c *conn) startSkip() {
	var skipped []*entry
	c.state.mu.Lock()
	c.skipping = true
	for c.qh < len(c.q) && c.q[c.qh].kind != kSync {
		e := c.q[c.qh]
		c.q[c.qh] = nil
		c.qh++
		c.skipEntryLocked(e)
		skipped = append(skipped, e)
	}
	if c.qh == len(c.q) {
		c.q, c.qh = c.q[:0], 0
	}
	c.state.cond.Broadcast()
	c.state.mu.Unlock()
	for _, e := range skipped {
		c.notExecuted(e, "an earlier message of the same batch failed")
	}
}

// skipEntryLocked settles the state changes of an entry the backend
// skipped; the caller holds state.mu.
func (c *conn) skipEntryLocked(e *entry) {
	for _, o := range e.ops {
		c.state.skip(o)
	}
	for _, es := range e.stmts {
		for _, o := range es.ops {
			c.state.skip(o)
		}
	}
}

// finish completes the current entry.
func (c *conn) finish() {
	c.state.mu.Lock()
	c.cur = nil
	c.state.cond.Broadcast()
	c.state.mu.Unlock()
	c.armIdle()
}

// armIdle starts the idle timer when no response is outstanding.
func (c *conn) armIdle() {
	if c.cfg.IdleTimeout <= 0 {
		return
	}
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	if c.cur == nil && c.qh == len(c.q) && !c.idleArmed {
		c.dl.set(c.client, true, c.cfg.Now().Add(c.cfg.IdleTimeout))
		c.idleArmed = true
	}
}

// notExecuted records the statements of an entry that never ran.
func (c *conn) notExecuted(e *entry, why string) {
	for _, es := range e.stmts {
		if es.done {
			continue
		}
		es.done = true
		if e.slots != nil {
			e.slots.Record(es.v, CommandResult{NotExecuted: why})
		}
	}
	if e.slots != nil {
		e.slots.Release()
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
			if errors.Is(err, errDesync) {
				return c.fatalClient(err)
			}
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

// curStmt is the statement whose result is being read, or nil.
func (e *entry) curStmt() *execStmt {
	if e == nil || e.cur >= len(e.stmts) {
		return nil
	}
	return e.stmts[e.cur]
}

func (c *conn) fromBackend(ctx context.Context, msg []byte) error {
	typ, body := msg[0], msg[5:]
	switch typ {
	case 'N': // NoticeResponse
		if er := c.noticeRewriter(); er != nil {
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
		c.state.mu.Lock()
		c.lex.set(ps.Name, ps.Value)
		c.state.mu.Unlock()
		return c.writeClient(msg)
	case 'A': // NotificationResponse
		return c.writeClient(msg)
	case 'K', 'v', 'R':
		return nil // only valid during startup
	}
	e := c.current()
	if e == nil {
		return errDesync
	}
	switch e.kind {
	case kParse, kBind, kClose:
		return c.simpleAnswer(e, typ, msg)
	case kDescStmt, kDescPortal, kInternal:
		return c.describeAnswer(e, typ, body, msg)
	case kDenied:
		if typ != 'E' {
			return errDesync
		}
		err := c.writeDeny(e.deny)
		c.startSkip()
		c.finish()
		return err
	case kExecute:
		return c.executeAnswer(ctx, e, typ, body, msg)
	case kSync:
		switch typ {
		case 'Z':
			return c.readyForQuery(e, body, msg)
		case 'E':
			// The implicit commit at Sync failed (a deferred constraint):
			// the transaction is rolled back; ReadyForQuery follows.
			c.state.mu.Lock()
			c.state.tx.failed = true
			c.state.mu.Unlock()
			return c.writeClient(msg)
		}
		return errDesync
	case kQuery:
		return c.queryAnswer(ctx, e, typ, body, msg)
	}
	return errDesync
}

// simpleAnswer handles the answer to Parse, Bind and Close.
func (c *conn) simpleAnswer(e *entry, typ byte, msg []byte) error {
	want := map[byte]byte{kParse: '1', kBind: '2', kClose: '3'}[e.kind]
	switch typ {
	case want:
		c.state.mu.Lock()
		for _, o := range e.ops {
			c.state.apply(o)
		}
		c.state.mu.Unlock()
		c.finish()
		return c.writeClient(msg)
	case 'E':
		c.state.mu.Lock()
		for _, o := range e.ops {
			c.state.fail(o)
		}
		c.state.tx.failed = true
		c.state.mu.Unlock()
		c.startSkip()
		c.finish()
		return c.writeClient(msg)
	}
	return errDesync
}

// describeAnswer handles the answer to Describe (the client's or the
// gateway's own).
func (c *conn) describeAnswer(e *entry, typ byte, body, msg []byte) error {
	internal := e.kind == kInternal
	switch typ {
	case 't': // ParameterDescription (statements only)
		if e.kind != kDescStmt {
			return errDesync
		}
		var pd pgproto3.ParameterDescription
		if err := pd.Decode(body); err != nil {
			return fmt.Errorf("%w: backend ParameterDescription: %v", ErrProtocolViolation, err)
		}
		c.state.mu.Lock()
		e.stmt.paramOIDs = append([]uint32(nil), pd.ParameterOIDs...)
		c.state.mu.Unlock()
		return c.writeClient(msg)
	case 'T', 'n':
		var fields []pgproto3.FieldDescription
		if typ == 'T' {
			if err := c.rd.Decode(body); err != nil {
				return fmt.Errorf("%w: backend RowDescription: %v", ErrProtocolViolation, err)
			}
			fields = copyFields(c.rd.Fields)
		}
		c.state.mu.Lock()
		if e.stmt != nil {
			e.stmt.fields, e.stmt.described = fields, true
		}
		if e.portal != nil {
			e.portal.fields, e.portal.described = fields, true
		}
		c.state.mu.Unlock()
		c.finish()
		if internal {
			return nil
		}
		return c.writeClient(msg)
	case 'E':
		c.state.mu.Lock()
		c.state.tx.failed = true
		c.state.mu.Unlock()
		c.startSkip()
		c.finish()
		return c.writeClient(msg)
	}
	return errDesync
}

// copyFields copies a RowDescription's fields out of the decoder's buffer.
func copyFields(in []pgproto3.FieldDescription) []pgproto3.FieldDescription {
	out := make([]pgproto3.FieldDescription, len(in))
	for i, f := range in {
		f.Name = append([]byte(nil), f.Name...)
		out[i] = f
	}
	return out
}

// executeAnswer handles the answer to Execute.
func (c *conn) executeAnswer(ctx context.Context, e *entry, typ byte, body, msg []byte) error {
	es := e.stmts[0]
	switch typ {
	case 'D':
		if es.rows != nil && !es.withheld && !es.planned {
			// Rows without a RowDescription for this portal (it could not
			// be described): planning fails closed in the rewriter.
			c.state.mu.Lock()
			fields := e.portal.fields
			c.state.mu.Unlock()
			if err := es.rows.Describe(fields); err != nil {
				return c.withhold(ctx, e, es, err)
			}
			es.described()
		}
		return c.dataRow(ctx, e, es, body, msg)
	case 'C', 'I':
		tag := ""
		if typ == 'C' {
			tag, _, _ = cstring(body)
		}
		c.complete(e, es, tag, nil)
		c.state.mu.Lock()
		if e.portal != nil {
			e.portal.ran = true
		}
		c.state.mu.Unlock()
		c.finish()
		return c.writeClient(msg)
	case 's': // PortalSuspended: the execution continues with the next Execute
		c.complete(e, es, "", nil)
		c.finish()
		return c.writeClient(msg)
	case 'E':
		return c.statementError(e, es, body, msg, true)
	case 'G', 'H', 'c': // COPY through the extended protocol
		return c.writeClient(msg)
	case 'd':
		return c.copyData(ctx, e, es, body, msg)
	case 'W':
		return c.fatalClient(ErrCopyBoth)
	}
	return errDesync
}

// queryAnswer handles the answers to a simple Query.
func (c *conn) queryAnswer(ctx context.Context, e *entry, typ byte, body, msg []byte) error {
	if !e.dropped {
		// The backend dropped the unnamed statement and portal when it
		// started the Query.
		e.dropped = true
		c.state.mu.Lock()
		for _, o := range e.ops {
			c.state.apply(o)
		}
		c.state.mu.Unlock()
	}
	if e.deny != nil {
		switch typ {
		case 'E':
			return c.writeDeny(e.deny)
		case 'Z':
			return c.readyForQuery(e, body, msg)
		}
		return errDesync
	}
	es := e.curStmt()
	switch typ {
	case 'T':
		if es == nil {
			return errDesync
		}
		if es.rows != nil {
			if err := c.rd.Decode(body); err != nil {
				return fmt.Errorf("%w: backend RowDescription: %v", ErrProtocolViolation, err)
			}
			if err := es.rows.Describe(c.rd.Fields); err != nil {
				return c.withhold(ctx, e, es, err)
			}
			es.described()
		}
		return c.writeClient(msg)
	case 'D':
		if es == nil {
			return errDesync
		}
		return c.dataRow(ctx, e, es, body, msg)
	case 'C':
		if es == nil {
			return errDesync
		}
		tag, _, _ := cstring(body)
		c.complete(e, es, tag, nil)
		e.cur++
		if es.withheld {
			return nil
		}
		return c.writeClient(msg)
	case 'I':
		// An empty query string: no statements.
		return c.writeClient(msg)
	case 'E':
		if es == nil {
			// An error before any statement ran (for example out of
			// memory parsing): nothing to attribute.
			c.state.mu.Lock()
			c.state.tx.failed = true
			c.state.mu.Unlock()
			return c.writeClient(msg)
		}
		return c.statementError(e, es, body, msg, false)
	case 'G', 'H', 'c':
		if es != nil && es.withheld {
			if typ == 'G' {
				return c.fatalClient(ErrRewrite) // cannot feed a COPY whose client was told it failed
			}
			return nil
		}
		return c.writeClient(msg)
	case 'd':
		if es == nil {
			return errDesync
		}
		return c.copyData(ctx, e, es, body, msg)
	case 'W':
		return c.fatalClient(ErrCopyBoth)
	case 'Z':
		return c.readyForQuery(e, body, msg)
	}
	return errDesync
}

// statementError handles an ErrorResponse for a running statement.
func (c *conn) statementError(e *entry, es *execStmt, body, msg []byte, extended bool) error {
	var er pgproto3.ErrorResponse
	if err := er.Decode(body); err != nil {
		return fmt.Errorf("%w: backend ErrorResponse: %v", ErrProtocolViolation, err)
	}
	out := msg
	if rw, ok := es.rows.(ErrorRewriter); ok && es.rows != nil {
		rw.RewriteError(&er)
		buf, err := er.Encode(c.ebuf[:0])
		if err != nil {
			return fmt.Errorf("encode ErrorResponse: %w", err)
		}
		c.ebuf, out = buf, buf
	}
	if !es.withheld {
		c.complete(e, es, "", pgconn.ErrorResponseToPgError(&er))
	}
	c.state.mu.Lock()
	for _, o := range es.ops {
		c.state.skip(o)
	}
	// A portal whose run fails stays in PostgreSQL's namespace (marked
	// failed, unusable) until its transaction ends or it is closed; the
	// transaction rules drop it when PostgreSQL does.
	c.state.tx.failed = true
	c.state.mu.Unlock()
	// The rest of the message never runs.
	for _, rest := range e.stmts[e.cur+1:] {
		c.state.mu.Lock()
		for _, o := range rest.ops {
			c.state.skip(o)
		}
		c.state.mu.Unlock()
		if !rest.done {
			rest.done = true
			if e.slots != nil {
				e.slots.Record(rest.v, CommandResult{NotExecuted: "an earlier statement of the same message failed"})
			}
		}
	}
	e.cur = len(e.stmts)
	if extended {
		c.startSkip()
		if e.slots != nil {
			e.slots.Release()
		}
		c.finish()
	}
	if es.withheld {
		return nil
	}
	return c.writeClient(out)
}

// complete records one statement's outcome and applies its effects on
// the session state.
func (c *conn) complete(e *entry, es *execStmt, tag string, err error) {
	if es.done {
		return
	}
	es.done = true
	if e.slots != nil {
		e.slots.Record(es.v, CommandResult{Tag: tag, Rows: rowsOf(es.rowCount, tag), Err: err, Duration: c.cfg.Now().Sub(es.start)})
	}
	if err != nil || tag == "" {
		return
	}
	c.state.mu.Lock()
	for _, o := range es.ops {
		c.state.apply(o)
	}
	c.transaction(es.st, tag)
	c.state.mu.Unlock()
	if w, ok := c.sess.(CatalogWatcher); ok && es.st != nil && changesCatalog(es.st) {
		w.CatalogChanged()
	}
}

// changesCatalog reports whether st changes what the backend's catalog
// says about names (functions, operators, casts, relations, schemas).
func changesCatalog(st *sqlclass.Statement) bool {
	switch st.Kind {
	case "create", "alter", "drop", "grant", "revoke", "comment":
		return true
	case "utility":
		return st.SubKind != "discard all" && st.SubKind != "discard plans" && st.SubKind != "checkpoint"
	}
	return false
}

// transaction applies a transaction-control statement's effect on portals;
// the caller holds state.mu.
func (c *conn) transaction(st *sqlclass.Statement, tag string) {
	if st == nil || st.Kind != "transaction" {
		return
	}
	s := c.state
	switch st.SubKind {
	case "commit", "rollback", "prepare transaction":
		s.endXact(tag == "COMMIT" || tag == "PREPARE TRANSACTION")
	case "savepoint":
		s.savepoint(st.Name)
	case "release":
		s.release(st.Name)
	case "rollback to":
		s.rollbackTo(st.Name)
	}
}

func rowsOf(n int64, tag string) int64 {
	if n > 0 {
		return n
	}
	return tagRows(tag)
}

// readyForQuery completes a Sync or Query.
func (c *conn) readyForQuery(e *entry, body, msg []byte) error {
	if len(body) != 1 {
		return fmt.Errorf("%w: backend ReadyForQuery length", ErrProtocolViolation)
	}
	status := body[0]
	c.txStatus.Store(uint32(status))
	c.state.mu.Lock()
	c.state.tx.status = status
	if status == 'I' {
		// Outside a transaction block: whatever transaction was open has
		// ended, committed unless it failed.
		c.state.endXact(!c.state.tx.failed)
	}
	c.state.mu.Unlock()
	for _, es := range e.stmts {
		if !es.done {
			es.done = true
			if e.slots != nil {
				e.slots.Record(es.v, CommandResult{NotExecuted: "the backend did not run it"})
			}
		}
	}
	if e.slots != nil {
		e.slots.Release()
	}
	c.state.mu.Lock()
	c.skipping = false
	if e.kind == kSync {
		c.syncs--
	}
	c.state.mu.Unlock()
	c.finish()
	return c.writeClient(msg)
}

func (c *conn) writeDeny(err error) error {
	buf, _ := RenderError(err).Encode(c.out[:0])
	c.out = buf
	return c.writeClient(buf)
}

// dataRow rewrites and relays one DataRow.
func (c *conn) dataRow(ctx context.Context, e *entry, es *execStmt, body, msg []byte) error {
	if es.withheld {
		return nil
	}
	if es.rows == nil {
		es.rowCount++
		return c.writeClient(msg)
	}
	if lim, ok := es.rows.(RowLimiter); ok {
		if n := lim.MaxRows(); n > 0 && es.rowCount >= n {
			return c.withhold(ctx, e, es, rowLimitError(n))
		}
	}
	if err := c.dr.Decode(body); err != nil {
		return fmt.Errorf("%w: backend DataRow: %v", ErrProtocolViolation, err)
	}
	vals := es.rows.Rewrite(c.dr.Values)
	var err error
	c.out, err = (&pgproto3.DataRow{Values: vals}).Encode(c.out[:0])
	if err != nil {
		return c.withhold(ctx, e, es, err)
	}
	es.rowCount++
	return c.writeClient(c.out)
}

// copyData rewrites one CopyData message of a COPY TO STDOUT.
func (c *conn) copyData(ctx context.Context, e *entry, es *execStmt, body, msg []byte) error {
	if es.withheld {
		return nil
	}
	if es.rows == nil {
		return c.writeClient(msg)
	}
	data, err := es.rows.CopyData(body)
	if err != nil {
		return c.withhold(ctx, e, es, err)
	}
	c.out = append(c.out[:0], 'd', 0, 0, 0, 0)
	c.out = append(c.out, data...)
	binary.BigEndian.PutUint32(c.out[1:], uint32(len(data)+4))
	return c.writeClient(c.out)
}

// withhold replaces a result the rewriter refused with an error and drops
// the rest of the statement's output, so no unrewritten row leaks.
func (c *conn) withhold(_ context.Context, e *entry, es *execStmt, err error) error {
	c.log.Warn("Result withheld.", "error", err)
	var ge *Error
	if !errors.As(err, &ge) {
		err = ErrRewrite // the rewriter's own text may describe the data
	}
	c.complete(e, es, "", err)
	es.withheld = true
	buf, _ := RenderError(err).Encode(c.out[:0])
	c.out = buf
	return c.writeClient(buf)
}

// noticeRewriter returns the rewriter of the statement a notice belongs to.
func (c *conn) noticeRewriter() ErrorRewriter {
	e := c.cur
	if e == nil {
		c.state.mu.Lock()
		if c.qh < len(c.q) {
			e = c.q[c.qh]
		}
		c.state.mu.Unlock()
	}
	es := e.curStmt()
	if es == nil || es.rows == nil {
		return nil
	}
	er, _ := es.rows.(ErrorRewriter)
	return er
}
