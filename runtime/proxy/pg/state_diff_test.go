package pg

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The differential state test: random sequences of protocol messages and
// SQL-level session statements through the proxy, comparing after each
// step the gateway's confirmed view of the session (sessionState.snapshot)
// with the backend's own (pg_prepared_statements, pg_cursors). The
// property: the gateway never believes a name exists that the backend does
// not have, and the backend never has a name the gateway does not know.
// A divergence is shrunk to a minimal sequence, replayed on fresh
// connections.

var (
	diffSeed  = flag.Uint64("pgdiff.seed", 0, "run the differential state test with this seed only")
	diffSeeds = flag.Int("pgdiff.seeds", 4, "number of random seeds of the differential state test")
	diffSteps = flag.Int("pgdiff.steps", 300, "steps per seed of the differential state test")
	diffLog   = flag.Bool("pgdiff.log", false, "log every step of the differential state test")
	// diffSyncedQueries keeps a Query inside a batch right after a Sync,
	// where the backend never skips it: a way to look for other
	// divergences while the hang after a skipped Query is open.
	diffSyncedQueries = flag.Bool("pgdiff.synced-queries", false, "put a Query inside a batch only right after a Sync")
)

// diffStepTimeout bounds one step: a hang fails the run. Replays while
// shrinking use replayStepTimeout (every step of the sequences here is
// answered in milliseconds; the bound only tells a hang from an answer).
const (
	diffStepTimeout   = 10 * time.Second
	replayStepTimeout = 3 * time.Second
)

// diffStep is one batch of messages written at once, or a check.
type diffStep struct {
	msgs  []pgproto3.FrontendMessage
	check bool
}

func (s diffStep) String() string {
	if s.check {
		return "CHECK"
	}
	return renderMsgs(s.msgs)
}

func renderMsgs(msgs []pgproto3.FrontendMessage) string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		switch m := m.(type) {
		case *pgproto3.Query:
			out[i] = fmt.Sprintf("Query(%q)", m.String)
		case *pgproto3.Parse:
			out[i] = fmt.Sprintf("Parse(%q, %q)", m.Name, m.Query)
		case *pgproto3.Bind:
			out[i] = fmt.Sprintf("Bind(%q, %q)", m.DestinationPortal, m.PreparedStatement)
		case *pgproto3.Describe:
			out[i] = fmt.Sprintf("Describe(%c, %q)", m.ObjectType, m.Name)
		case *pgproto3.Execute:
			out[i] = fmt.Sprintf("Execute(%q, %d)", m.Portal, m.MaxRows)
		case *pgproto3.Close:
			out[i] = fmt.Sprintf("Close(%c, %q)", m.ObjectType, m.Name)
		case *pgproto3.Sync:
			out[i] = "Sync"
		case *pgproto3.Flush:
			out[i] = "Flush"
		default:
			out[i] = fmt.Sprintf("%T", m)
		}
	}
	return strings.Join(out, ", ")
}

// ---- the generator ----

var (
	diffLongS1 = strings.Repeat("s", 63) + "1"
	diffLongS2 = strings.Repeat("s", 63) + "2"
	diffLongC1 = strings.Repeat("c", 63) + "1"
	diffLongC2 = strings.Repeat("c", 63) + "2"
	// Names differ only in case ("S1" quoted is another object than s1;
	// unquoted it folds to s1) or only after 63 bytes.
	diffStmtNames   = []string{"s1", "S1", "s2", diffLongS1, diffLongS2}
	diffPortalNames = []string{"c1", "C1", "c2", diffLongC1, diffLongC2}
	diffSavepoints  = []string{"sp1", "sp2"}
	// Bodies: rows, rows that fail at execution, a Parse-time failure.
	diffBodies = []string{"SELECT 1", "SELECT generate_series(1, 3)", "SELECT 1/0", "SELECT no_such_column"}
)

type diffGen struct{ r *rand.Rand }

func (g diffGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// sqlName renders a name as an SQL identifier, quoted or not (unquoted, a
// name with capitals folds to lower case: another object).
func (g diffGen) sqlName(n string) string {
	if g.r.IntN(2) == 0 {
		return `"` + n + `"`
	}
	return n
}

func (g diffGen) stmtName() string   { return g.sqlName(g.pick(diffStmtNames)) }
func (g diffGen) portalName() string { return g.sqlName(g.pick(diffPortalNames)) }

// protoName draws a protocol-level name; "" is the unnamed one.
func (g diffGen) protoName(names []string) string {
	if g.r.IntN(4) == 0 {
		return ""
	}
	return g.pick(names)
}

// sqlStatement is one SQL statement touching the session state.
func (g diffGen) sqlStatement() string {
	switch g.r.IntN(26) {
	case 0, 1, 2:
		return "PREPARE " + g.stmtName() + " AS " + g.pick(diffBodies)
	case 3, 4:
		return "EXECUTE " + g.stmtName()
	case 5:
		return "DEALLOCATE " + g.stmtName()
	case 6:
		return g.pick([]string{"DEALLOCATE ALL", "DEALLOCATE PREPARE " + g.stmtName()})
	case 7, 8, 9:
		scroll, hold := "", ""
		if g.r.IntN(3) == 0 {
			scroll = "SCROLL "
		}
		if g.r.IntN(2) == 0 {
			hold = "WITH HOLD "
		}
		return "DECLARE " + g.portalName() + " " + scroll + "CURSOR " + hold + "FOR " + g.pick(diffBodies)
	case 10, 11:
		return g.pick([]string{"FETCH 1 ", "FETCH ALL FROM ", "FETCH NEXT ", "MOVE 1 ", "FETCH ABSOLUTE 1 "}) + g.portalName()
	case 12:
		return "CLOSE " + g.portalName()
	case 13:
		return "CLOSE ALL"
	case 14:
		return "DISCARD ALL"
	case 15, 16:
		return g.pick([]string{"BEGIN", "START TRANSACTION", "BEGIN"})
	case 17:
		return g.pick([]string{"COMMIT", "END", "COMMIT AND CHAIN"})
	case 18:
		return g.pick([]string{"ROLLBACK", "ABORT", "ROLLBACK AND CHAIN"})
	case 19:
		return "SAVEPOINT " + g.pick(diffSavepoints)
	case 20:
		return "ROLLBACK TO " + g.pick([]string{"", "SAVEPOINT "}) + g.pick(diffSavepoints)
	case 21:
		return "RELEASE " + g.pick([]string{"", "SAVEPOINT "}) + g.pick(diffSavepoints)
	case 22:
		return "SELECT 1/0"
	case 23:
		return "SELEC 1" // a syntax error: the gateway refuses it
	case 24:
		return "PREPARE TRANSACTION 'gatehouse_diff'"
	default:
		return "SELECT 1"
	}
}

// query is a simple Query of one to three statements.
func (g diffGen) query() *pgproto3.Query {
	n := 1
	if g.r.IntN(4) == 0 {
		n = 2 + g.r.IntN(2)
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = g.sqlStatement()
	}
	return &pgproto3.Query{String: strings.Join(parts, "; ")}
}

// extendedMsg is one extended-protocol message.
func (g diffGen) extendedMsg() pgproto3.FrontendMessage {
	switch g.r.IntN(12) {
	case 0, 1, 2:
		body := g.pick(diffBodies)
		if g.r.IntN(3) == 0 {
			body = g.sqlStatement()
		}
		return &pgproto3.Parse{Name: g.protoName(diffStmtNames), Query: body}
	case 3, 4, 5:
		return &pgproto3.Bind{DestinationPortal: g.protoName(diffPortalNames), PreparedStatement: g.protoName(diffStmtNames)}
	case 6:
		return &pgproto3.Describe{ObjectType: 'S', Name: g.protoName(diffStmtNames)}
	case 7:
		return &pgproto3.Describe{ObjectType: 'P', Name: g.protoName(diffPortalNames)}
	case 8, 9:
		return &pgproto3.Execute{Portal: g.protoName(diffPortalNames), MaxRows: uint32(g.r.IntN(2))}
	case 10:
		return &pgproto3.Close{ObjectType: 'S', Name: g.protoName(diffStmtNames)}
	default:
		return &pgproto3.Close{ObjectType: 'P', Name: g.protoName(diffPortalNames)}
	}
}

// step is a simple Query, or one to five extended-protocol messages ending
// with Sync, now and then with a Query or a Sync among them (pipelining
// across epochs; a Query after an error before Sync is skipped by the
// backend).
func (g diffGen) step() diffStep {
	if g.r.IntN(5) < 2 {
		return diffStep{msgs: []pgproto3.FrontendMessage{g.query()}}
	}
	n := 1 + g.r.IntN(5)
	var msgs []pgproto3.FrontendMessage
	for range n {
		switch g.r.IntN(12) {
		case 0:
			if *diffSyncedQueries && len(msgs) > 0 {
				if _, ok := msgs[len(msgs)-1].(*pgproto3.Sync); !ok {
					msgs = append(msgs, &pgproto3.Sync{})
				}
			}
			msgs = append(msgs, g.query())
		case 1:
			if g.r.IntN(3) == 0 {
				msgs = append(msgs, &pgproto3.Flush{})
			} else {
				msgs = append(msgs, &pgproto3.Sync{})
			}
		default:
			msgs = append(msgs, g.extendedMsg())
		}
	}
	return diffStep{msgs: append(msgs, &pgproto3.Sync{})}
}

// ---- the client ----

// diffSession is one client connection through the proxy, with the
// proxy's side of it.
type diffSession struct {
	pc     *pgconn.PgConn
	fe     *pgproto3.Frontend
	c      *conn
	status byte
	trace  []string
	// errs are the messages of the errors in trace.
	errs    []string
	timeout time.Duration
}

func newDiffSession(ctx context.Context, t testing.TB, p *internalProxy) *diffSession {
	t.Helper()
	pc, err := pgconn.Connect(ctx, p.dsn())
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	t.Cleanup(func() { pc.Close(context.Background()) })
	return &diffSession{pc: pc, fe: pc.Frontend(), c: p.relayed(pc.Conn().LocalAddr()), status: 'I', timeout: diffStepTimeout}
}

func (s *diffSession) close() { s.pc.Close(context.Background()) }

// errProtocol is an answer that does not fit the messages sent.
var errProtocol = errors.New("unexpected answer")

// next reads the next answer, skipping asynchronous messages.
func (s *diffSession) next() (pgproto3.BackendMessage, error) {
	for {
		m, err := s.fe.Receive()
		if err != nil {
			return nil, err
		}
		switch m := m.(type) {
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus, *pgproto3.NotificationResponse:
			continue
		case *pgproto3.ErrorResponse:
			s.trace = append(s.trace, "E("+m.Code+")")
			s.errs = append(s.errs, m.Message)
		case *pgproto3.ReadyForQuery:
			s.trace = append(s.trace, "Z"+string(m.TxStatus))
		default:
			s.trace = append(s.trace, fmt.Sprintf("%c", answerCode(m)))
		}
		return m, nil
	}
}

func answerCode(m pgproto3.BackendMessage) byte {
	b, err := m.Encode(nil)
	if err != nil || len(b) == 0 {
		return '?'
	}
	return b[0]
}

// run sends the step and reads exactly the answers PostgreSQL gives to it:
// one per message, nothing for the messages skipped after an error until
// Sync, ReadyForQuery for every Sync and executed Query. It returns the
// answers' codes.
func (s *diffSession) run(msgs []pgproto3.FrontendMessage) (string, error) {
	err := s.exchange(msgs)
	return strings.Join(s.trace, " "), err
}

// backendFatal reports whether the backend itself ended the session with
// a FATAL internal error (PostgreSQL 15 does for EXECUTE of a prepared
// SAVEPOINT, RELEASE or ROLLBACK TO outside a transaction block: "unexpected
// state STARTED"). That is no divergence of the gateway's.
func (s *diffSession) backendFatal(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) && slices.Contains(s.trace, "E(XX000)")
}

func (s *diffSession) exchange(msgs []pgproto3.FrontendMessage) error {
	s.trace = s.trace[:0]
	s.errs = s.errs[:0]
	nc := s.pc.Conn()
	if err := nc.SetDeadline(time.Now().Add(s.timeout)); err != nil {
		return err
	}
	defer nc.SetDeadline(time.Time{})
	for _, m := range msgs {
		s.fe.Send(m)
	}
	if err := s.fe.Flush(); err != nil {
		return err
	}
	skipping := false
	bad := func(m pgproto3.BackendMessage, what pgproto3.FrontendMessage) error {
		return fmt.Errorf("%w %T to %s (answers so far: %s)", errProtocol, m, renderMsgs([]pgproto3.FrontendMessage{what}), strings.Join(s.trace, " "))
	}
	for _, sent := range msgs {
		if _, ok := sent.(*pgproto3.Flush); ok {
			continue // no answer of its own
		}
		if _, ok := sent.(*pgproto3.Sync); !ok && skipping {
			continue
		}
		m, err := s.next()
		if err != nil {
			return err
		}
		if _, ok := m.(*pgproto3.ErrorResponse); ok {
			if _, isQuery := sent.(*pgproto3.Query); !isQuery {
				if _, isSync := sent.(*pgproto3.Sync); !isSync {
					skipping = true
					continue
				}
			}
		}
		switch sent := sent.(type) {
		case *pgproto3.Sync:
			z, ok := m.(*pgproto3.ReadyForQuery)
			if !ok {
				return bad(m, sent)
			}
			s.status, skipping = z.TxStatus, false
		case *pgproto3.Query:
			for {
				if z, ok := m.(*pgproto3.ReadyForQuery); ok {
					s.status = z.TxStatus
					break
				}
				switch m.(type) {
				case *pgproto3.RowDescription, *pgproto3.DataRow, *pgproto3.CommandComplete,
					*pgproto3.EmptyQueryResponse, *pgproto3.ErrorResponse:
				default:
					return bad(m, sent)
				}
				if m, err = s.next(); err != nil {
					return err
				}
			}
		case *pgproto3.Parse:
			if _, ok := m.(*pgproto3.ParseComplete); !ok {
				return bad(m, sent)
			}
		case *pgproto3.Bind:
			if _, ok := m.(*pgproto3.BindComplete); !ok {
				return bad(m, sent)
			}
		case *pgproto3.Close:
			if _, ok := m.(*pgproto3.CloseComplete); !ok {
				return bad(m, sent)
			}
		case *pgproto3.Describe:
			if sent.ObjectType == 'S' {
				if _, ok := m.(*pgproto3.ParameterDescription); !ok {
					return bad(m, sent)
				}
				if m, err = s.next(); err != nil {
					return err
				}
			}
			switch m.(type) {
			case *pgproto3.RowDescription, *pgproto3.NoData:
			case *pgproto3.ErrorResponse:
				// Describing a statement that reads a cursor (FETCH)
				// looks the cursor up after the parameters.
				skipping = true
			default:
				return bad(m, sent)
			}
		case *pgproto3.Execute:
			for done := false; !done; {
				switch m.(type) {
				case *pgproto3.DataRow:
					if m, err = s.next(); err != nil {
						return err
					}
				case *pgproto3.CommandComplete, *pgproto3.PortalSuspended, *pgproto3.EmptyQueryResponse:
					done = true
				case *pgproto3.ErrorResponse:
					skipping, done = true, true
				default:
					return bad(m, sent)
				}
			}
		default:
			return fmt.Errorf("the test sent %T", sent)
		}
	}
	return nil
}

// divergence is a difference between the gateway's view and the
// backend's.
type divergence struct {
	// kinds name the classes of difference found (for shrinking).
	kinds []string
	text  string
}

// failureKind classifies an error of run or check as a divergence kind.
func failureKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "hang"
	case errors.Is(err, errProtocol):
		return "unexpected answer"
	case errors.Is(err, errCheck):
		return "check query failed"
	}
	return "connection failed"
}

// errCheck is a failure of the check query itself.
var errCheck = errors.New("the check query failed")

// check compares the gateway's confirmed view with the backend's. It
// changes the session like any simple Query (it drops the unnamed
// statement and portal), and first, when the gateway believes the unnamed
// statement exists, asks the backend to describe it.
func (s *diffSession) check() (*divergence, error) {
	snap := s.c.state.snapshot()
	var kinds, texts []string
	if snap.Unnamed {
		if _, err := s.run([]pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{}}); err != nil {
			return nil, fmt.Errorf("describe the unnamed statement: %w", err)
		}
		// 26000 is also the answer when the statement exists but is an
		// EXECUTE whose target is gone; only the message tells them apart.
		if slices.Contains(s.errs, "unnamed prepared statement does not exist") {
			kinds = append(kinds, "gateway-only unnamed statement")
			texts = append(texts, "the gateway believes the unnamed statement exists; the backend has none")
		}
		if s.status == 'E' {
			// The failed Describe aborted the transaction: compare later.
			return &divergence{kinds: kinds, text: strings.Join(texts, "; ")}, nil
		}
	}
	q := "SELECT 's', name FROM pg_prepared_statements UNION ALL SELECT 'p', name FROM pg_cursors"
	nc := s.pc.Conn()
	if err := nc.SetDeadline(time.Now().Add(s.timeout)); err != nil {
		return nil, err
	}
	defer nc.SetDeadline(time.Time{})
	s.fe.Send(&pgproto3.Query{String: q})
	if err := s.fe.Flush(); err != nil {
		return nil, err
	}
	var stmts, portals []string
	for {
		m, err := s.next()
		if err != nil {
			return nil, err
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			if string(m.Values[0]) == "s" {
				stmts = append(stmts, string(m.Values[1]))
			} else {
				portals = append(portals, string(m.Values[1]))
			}
			continue
		case *pgproto3.ErrorResponse:
			return nil, fmt.Errorf("%w: %s %s", errCheck, m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			s.status = m.TxStatus
		default:
			continue
		}
		break
	}
	slices.Sort(stmts)
	slices.Sort(portals)
	for _, d := range []struct {
		what             string
		gateway, backend []string
	}{{"statement", snap.Statements, stmts}, {"portal", snap.Portals, portals}} {
		if only := minus(d.gateway, d.backend); len(only) > 0 {
			kinds = append(kinds, "gateway-only "+d.what)
			texts = append(texts, fmt.Sprintf("the gateway believes in %s %q, which the backend does not have", d.what, only))
		}
		if only := minus(d.backend, d.gateway); len(only) > 0 {
			kinds = append(kinds, "backend-only "+d.what)
			texts = append(texts, fmt.Sprintf("the backend has %s %q, which the gateway does not know", d.what, only))
		}
	}
	if len(kinds) == 0 {
		return nil, nil
	}
	return &divergence{kinds: kinds, text: strings.Join(texts, "; ")}, nil
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// ---- the test ----

// TestStateDifferential runs random sequences (see diffGen) and compares
// the views after each step that leaves the backend idle or in a healthy
// transaction. Flags: -pgdiff.seed, -pgdiff.seeds, -pgdiff.steps,
// -pgdiff.log.
func TestStateDifferential(t *testing.T) {
	p := startInternalProxy(t, nil)
	var seeds []uint64
	if *diffSeed != 0 {
		seeds = []uint64{*diffSeed}
	} else {
		for range *diffSeeds {
			seeds = append(seeds, rand.Uint64()>>1|1)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runDifferential(t, p, seed, *diffSteps)
		})
	}
}

func runDifferential(t *testing.T, p *internalProxy, seed uint64, steps int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g := diffGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s := newDiffSession(ctx, t, p)
	var hist []diffStep
	checks := 0
	for i := 0; i < steps; i++ {
		st := g.step()
		hist = append(hist, st)
		trace, err := s.run(st.msgs)
		if *diffLog {
			t.Logf("%d: %s\n    <- %s", i+1, st, trace)
		}
		var d *divergence
		if err != nil && s.backendFatal(err) {
			t.Logf("seed %d: the backend ended the session with an internal FATAL error at step %d (%s); %d checks, stopping here", seed, i+1, st, checks)
			return
		}
		if err != nil {
			d = &divergence{kinds: []string{failureKind(err)}, text: fmt.Sprintf("step %d: %v", i+1, err)}
		} else if s.status != 'E' && g.r.IntN(10) < 7 {
			hist = append(hist, diffStep{check: true})
			checks++
			if d, err = s.check(); err != nil {
				d = &divergence{kinds: []string{failureKind(err)}, text: fmt.Sprintf("check after step %d: %v", i+1, err)}
			}
		}
		if d == nil || len(d.kinds) == 0 {
			continue
		}
		t.Logf("seed %d: %s: %s; shrinking", seed, strings.Join(d.kinds, ", "), d.text)
		minimal, md := shrinkDivergence(ctx, t, p, hist, d.kinds)
		t.Errorf("seed %d: %s: %s\nminimal sequence (%d steps):\n%s", seed, strings.Join(md.kinds, ", "), md.text, len(minimal), renderHistory(minimal))
		return
	}
	t.Logf("seed %d: %d steps, %d checks, no divergence", seed, steps, checks)
}

func renderHistory(h []diffStep) string {
	var b strings.Builder
	for i, s := range h {
		fmt.Fprintf(&b, "  %3d  %s\n", i+1, s)
	}
	return b.String()
}

// replay runs h on a fresh connection and returns the first divergence
// whose kinds share one with want (any divergence when want is nil), or
// nil.
func replay(ctx context.Context, t *testing.T, p *internalProxy, h []diffStep, want []string) *divergence {
	s := newDiffSession(ctx, t, p)
	s.timeout = replayStepTimeout
	defer s.close()
	matches := func(d *divergence) *divergence {
		if d != nil && len(d.kinds) > 0 && want == nil {
			return d
		}
		if d != nil && slices.ContainsFunc(d.kinds, func(k string) bool { return slices.Contains(want, k) }) {
			return d
		}
		return nil
	}
	for i, st := range h {
		if st.check {
			if s.status == 'E' {
				continue
			}
			d, err := s.check()
			if err != nil {
				return matches(&divergence{kinds: []string{failureKind(err)}, text: fmt.Sprintf("check after step %d: %v", i, err)})
			}
			if d = matches(d); d != nil {
				return d
			}
			continue
		}
		if _, err := s.run(st.msgs); err != nil {
			return matches(&divergence{kinds: []string{failureKind(err)}, text: fmt.Sprintf("step %d: %v", i+1, err)})
		}
	}
	return nil
}

// shrinkBudget bounds the time spent minimising one divergence.
const shrinkBudget = 60 * time.Second

// shrinkDivergence removes steps (chunks first, then single steps and
// single messages) while the replay still diverges the same way.
func shrinkDivergence(ctx context.Context, t *testing.T, p *internalProxy, h []diffStep, kinds []string) ([]diffStep, *divergence) {
	deadline := time.Now().Add(shrinkBudget)
	best := slices.Clone(h)
	bestDiv := replay(ctx, t, p, best, kinds)
	if bestDiv == nil {
		return h, &divergence{kinds: kinds, text: strings.Join(kinds, ", ") + " (did not reproduce on a fresh connection)"}
	}
	try := func(cand []diffStep) bool {
		if time.Now().After(deadline) || len(cand) == 0 {
			return false
		}
		for _, st := range cand {
			// A batch must end with Sync: the backend answers nothing
			// before it.
			if !st.check {
				if _, ok := st.msgs[len(st.msgs)-1].(*pgproto3.Sync); !ok {
					if _, ok := st.msgs[len(st.msgs)-1].(*pgproto3.Query); !ok || len(st.msgs) > 1 {
						return false
					}
				}
			}
		}
		if d := replay(ctx, t, p, cand, kinds); d != nil {
			best, bestDiv = cand, d
			return true
		}
		return false
	}
	for chunk := len(best) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(best); {
			cand := slices.Concat(best[:i], best[i+chunk:])
			if !try(cand) {
				i += chunk
			}
		}
	}
	// Single messages inside the remaining batches.
	for i := 0; i < len(best); i++ {
		for j := 0; j < len(best[i].msgs) && len(best[i].msgs) > 1; {
			msgs := slices.Concat(best[i].msgs[:j], best[i].msgs[j+1:])
			cand := slices.Clone(best)
			cand[i] = diffStep{msgs: msgs}
			if !try(cand) {
				j++
			}
		}
	}
	// Checks only change the session by dropping the unnamed statement:
	// keep them only where needed.
	for i := len(best) - 1; i >= 0; i-- {
		if best[i].check {
			try(slices.Concat(best[:i], best[i+1:]))
		}
	}
	return best, bestDiv
}

// Sequences for TestStateDivergences.
func dq(sql string) diffStep {
	return diffStep{msgs: []pgproto3.FrontendMessage{&pgproto3.Query{String: sql}}}
}

func dx(msgs ...pgproto3.FrontendMessage) diffStep {
	return diffStep{msgs: append(msgs, &pgproto3.Sync{})}
}

var dcheck = diffStep{check: true}

// TestStateDivergences replays, deterministically, the minimal sequences
// the differential test found, one class of divergence each, and checks
// the same property at every CHECK (and that no step hangs).
func TestStateDivergences(t *testing.T) {
	p := startInternalProxy(t, nil)
	parse := func(name, sql string) *pgproto3.Parse { return &pgproto3.Parse{Name: name, Query: sql} }
	bind := func(portal, stmt string) *pgproto3.Bind {
		return &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
	}
	execute := func(portal string) *pgproto3.Execute { return &pgproto3.Execute{Portal: portal} }
	cases := []struct {
		name  string
		steps []diffStep
	}{
		// The backend skips a Query after an extended-protocol error until
		// Sync and answers nothing for it; a later message of the batch
		// that waits for the backend's confirmation of earlier epochs must
		// not wait for that answer.
		{"portal lookup after a skipped Query", []diffStep{
			dq("BEGIN"), dx(parse("s", "SELECT 1"), bind("q", "s")),
			dx(parse("", "SELECT no_such_column"), &pgproto3.Query{String: "SELECT 1"}, execute("q")), dcheck}},
		{"statement lookup after a skipped Query", []diffStep{
			dx(parse("", "SELECT no_such_column"), &pgproto3.Query{String: "PREPARE z AS SELECT 1"}, bind("", "z")), dcheck}},
		// Queries refused in an aborted transaction block, then an Execute
		// that waits for their answers.
		{"portal lookup after refused Queries in an aborted block", []diffStep{
			dq(`PREPARE "` + long("s", 1) + `" AS SELECT generate_series(1, 3)`),
			dx(parse("s2", "SELECT 1"), parse(long("s", 2), "SELECT 1")),
			dx(bind("c1", "s2"), bind("C1", long("s", 1)), &pgproto3.Query{String: "BEGIN"}, execute(long("c", 2)), &pgproto3.Describe{ObjectType: 'S', Name: "s1"}),
			dx(parse("", "SELECT 1/0"), &pgproto3.Close{ObjectType: 'P', Name: ""}, &pgproto3.Query{String: "DISCARD ALL"},
				&pgproto3.Query{String: `DISCARD ALL; DECLARE "c2" SCROLL CURSOR WITH HOLD FOR SELECT no_such_column`}, execute("c2")), dcheck}},
		// Parse of an EXECUTE names a prepared statement that is closed in
		// the same batch: the unnamed statement still exists, but describing
		// it fails with the same code as a missing one.
		{"unnamed Parse of EXECUTE, then Close of its target", []diffStep{
			dx(parse(long("s", 1), "SELECT 1/0")),
			dx(parse("", "EXECUTE "+long("s", 1)), &pgproto3.Close{ObjectType: 'S', Name: long("s", 1)}), dcheck}},
		// EXECUTE runs a prepared utility statement with its effect on the
		// session.
		{"EXECUTE of a prepared DEALLOCATE", []diffStep{
			dq("PREPARE x AS SELECT 1"), dx(parse("d", "DEALLOCATE x")), dq("EXECUTE d"), dcheck}},
		{"EXECUTE of a prepared PREPARE", []diffStep{
			dx(parse("p", "PREPARE x AS SELECT 1")), dq("EXECUTE p"), dcheck}},
		{"EXECUTE of a prepared DECLARE", []diffStep{
			dx(parse("dc", "DECLARE k CURSOR WITH HOLD FOR SELECT 1")), dq("EXECUTE dc"), dcheck}},
		{"EXECUTE of a prepared CLOSE ALL", []diffStep{
			dq("DECLARE k CURSOR WITH HOLD FOR SELECT 1"), dx(parse("ca", "CLOSE ALL")), dq("EXECUTE ca"), dcheck}},
		{"Execute of a Parsed EXECUTE of a prepared DEALLOCATE", []diffStep{
			dq("PREPARE x AS SELECT 1"), dx(parse("d", "DEALLOCATE x")),
			dx(parse("", "EXECUTE d"), bind("", ""), execute("")), dcheck}},
		// A statement refused because the transaction is aborted (25P02)
		// never touched the cursor it names.
		{"FETCH refused in an aborted transaction", []diffStep{
			dq("DECLARE h CURSOR WITH HOLD FOR SELECT 1"), dq("BEGIN"), dq("SELECT 1/0"), dq("FETCH 1 h"), dq("ROLLBACK"), dcheck}},
		{"Execute refused in an aborted transaction", []diffStep{
			dq("DECLARE h CURSOR WITH HOLD FOR SELECT 1"), dx(&pgproto3.Describe{ObjectType: 'P', Name: "h"}),
			dq("BEGIN"), dq("SELECT 1/0"), dx(execute("h")), dq("ROLLBACK"), dcheck}},
		{"FETCH refused in an aborted savepoint", []diffStep{
			dq("BEGIN"), dq("DECLARE c CURSOR FOR SELECT 1"), dq("SAVEPOINT a"), dq("SELECT 1/0"), dq("FETCH 1 c"), dq("ROLLBACK TO a"), dcheck}},
		// A holdable cursor of an earlier transaction that fails keeps its
		// name (PostgreSQL marks it failed; CLOSE drops it).
		{"failed FETCH of a holdable cursor", []diffStep{
			dq("DECLARE c CURSOR WITH HOLD FOR SELECT 1"), dq("FETCH NEXT c"), dq("FETCH ABSOLUTE 1 c"), dcheck}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if d := replay(ctx, t, p, c.steps, nil); d != nil {
				t.Errorf("%s: %s\nsequence:\n%s", strings.Join(d.kinds, ", "), d.text, renderHistory(c.steps))
			}
		})
	}
}

// long returns a name of 64 bytes: prefix repeated, then n.
func long(prefix string, n int) string {
	return strings.Repeat(prefix, 63) + string(rune('0'+n))
}
