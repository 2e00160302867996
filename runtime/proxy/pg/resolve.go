package pg

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// maxResolveDepth bounds how many references resolution follows (an
// EXECUTE of a prepared FETCH of a cursor ...).
const maxResolveDepth = 4

// sim is the speculative view used to judge the statements of one message
// in order: what an earlier statement of the message creates or drops is
// seen by the later ones (if the earlier one fails, the later ones do not
// run). A nil *sim resolves nothing that depends on session state.
type sim struct {
	c          *conn
	stmts      map[string]*prepared // overlay; a nil value is dropped
	portals    map[string]*portal
	stmtsAll   bool
	portalsAll bool
	keep       *portal
	// txEnded is set after a transaction-control statement: which cursors
	// survive it is known only from the backend's answer, so later
	// references to cursors in the same message are refused.
	txEnded bool
	// wait is set when a lookup needs the backend's answer to an earlier
	// message first.
	wait bool
}

func (c *conn) newSim() *sim {
	return &sim{c: c, stmts: map[string]*prepared{}, portals: map[string]*portal{}}
}

func (sm *sim) stmt(name string) *prepared {
	key := sm.c.sqlKey(name)
	if p, ok := sm.stmts[key]; ok {
		return p
	}
	if sm.stmtsAll && key != "" {
		return nil
	}
	c := sm.c
	c.state.mu.Lock()
	p, ep := c.state.lookupStmt(key)
	c.state.mu.Unlock()
	if ep != 0 && ep < c.epoch {
		sm.wait = true
	}
	return p
}

func (sm *sim) portal(name string) *portal {
	key := sm.c.sqlKey(name)
	if p, ok := sm.portals[key]; ok {
		return p
	}
	if sm.portalsAll {
		return nil
	}
	c := sm.c
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	if c.headEpochLocked() < c.epoch {
		sm.wait = true
		return nil
	}
	p, _ := c.state.lookupPortal(key)
	return p
}

// resolve returns the statement whose facts decide what st runs, the
// portal it reads (FETCH), or an error when it refers to a prepared
// statement or cursor that does not exist for the gateway. wait is true
// when the answer depends on backend responses not read yet. sm may be nil
// for statements that do not depend on session state.
func (c *conn) resolve(sm *sim, st *sqlclass.Statement, depth int) (target *sqlclass.Statement, pt *portal, err error, wait bool) {
	if depth > maxResolveDepth {
		return nil, nil, &Error{Code: "42501", Message: "gatehouse denied the command: it refers to prepared statements or cursors too deeply"}, false
	}
	switch st.Kind {
	case "prepare", "execute", "deallocate", "declare", "fetch", "close":
		if c != nil && st.Name != "" {
			c.state.mu.Lock()
			_, ok := c.lex.sqlKey(st.Name)
			c.state.mu.Unlock()
			if !ok {
				return nil, nil, unknownName(st.Name), false
			}
		}
	}
	switch st.Kind {
	case "prepare", "declare":
		if st.Inner == nil {
			return st, nil, nil, false // Judge refuses it with the reason
		}
		return st.Inner, nil, nil, false
	case "execute":
		if sm == nil {
			return nil, nil, notKnown("prepared statement", st.Name, "26000"), false
		}
		p := sm.stmt(st.Name)
		if sm.wait {
			return nil, nil, nil, true
		}
		if p == nil {
			return nil, nil, notKnown("prepared statement", st.Name, "26000"), false
		}
		if p.st == nil {
			return st, nil, nil, false
		}
		t, rp, err, w := c.resolve(sm, p.st, depth+1)
		if err != nil || w {
			return nil, nil, err, w
		}
		merged := proxy.WithArgs(t, st)
		return &merged, rp, nil, false
	case "fetch":
		if sm == nil {
			return nil, nil, notKnown("cursor", st.Name, "34000"), false
		}
		if sm.txEnded {
			return nil, nil, &Error{Code: "42501", Message: "gatehouse denied FETCH: the cursor follows a transaction-control statement in the same message; send it in a message of its own"}, false
		}
		p := sm.portal(st.Name)
		if sm.wait {
			return nil, nil, nil, true
		}
		if p == nil {
			return nil, nil, notKnown("cursor", st.Name, "34000"), false
		}
		if p.st == nil {
			return st, p, nil, false
		}
		if deferred(p.st) {
			t, _, err, w := c.resolve(sm, p.st, depth+1)
			return t, p, err, w
		}
		if p.st.Kind == "prepare" || p.st.Kind == "declare" {
			// A portal running PREPARE or DECLARE returns no rows.
			return p.st, p, nil, false
		}
		return p.st, p, nil, false
	}
	if st.Inner != nil && st.Inner.Kind == "execute" {
		// EXPLAIN EXECUTE p, CREATE TABLE t AS EXECUTE p: the outer
		// statement over the prepared statement's facts.
		t, _, err, w := c.resolve(sm, st.Inner, depth+1)
		if err != nil || w {
			return nil, nil, err, w
		}
		out := withInner(st, t)
		return &out, nil, nil, false
	}
	return st, nil, nil, false
}

// withInner returns outer (EXPLAIN, CREATE TABLE AS) with its inner
// statement replaced by target and target's facts added.
func withInner(outer, target *sqlclass.Statement) sqlclass.Statement {
	out := *outer
	out.Inner = target
	out.TablesRead = union(outer.TablesRead, target.TablesRead)
	out.TablesWritten = union(outer.TablesWritten, target.TablesWritten)
	out.Columns = union(outer.Columns, target.Columns)
	out.Functions = union(outer.Functions, target.Functions)
	out.DangerousFunctions = union(outer.DangerousFunctions, target.DangerousFunctions)
	if outer.SubKind == "explain analyze" {
		// EXPLAIN ANALYZE runs the statement.
		out.Kind, out.HasWhere = target.Kind, target.HasWhere
	}
	if outer.Kind == "create" {
		out.OutputColumns = target.OutputColumns
	}
	return out
}

func union(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := append(append([]string(nil), a...), b...)
	sortStrings(out)
	n := 0
	for i, s := range out {
		if i > 0 && s == out[n-1] {
			continue
		}
		out[n] = s
		n++
	}
	return out[:n]
}

// effects returns the changes st makes to the session state when it
// completes, and applies them to the speculative view sm. running is the
// portal executing st (extended protocol), which a CLOSE ALL keeps.
func (c *conn) effects(sm *sim, st *sqlclass.Statement, running *portal) []*op {
	if st == nil {
		return nil
	}
	switch st.Kind {
	case "prepare":
		key := c.sqlKey(st.Name)
		p := &prepared{text: st.Text, st: st.Inner, sqlLevel: true}
		sm.stmts[key] = p
		return []*op{{ns: nsStmt, kind: opSet, name: key, stmt: p}}
	case "deallocate":
		if st.SubKind == "deallocate all" || st.Name == "" {
			sm.stmtsAll = true
			for k := range sm.stmts {
				if k != "" {
					sm.stmts[k] = nil
				}
			}
			return []*op{{ns: nsStmt, kind: opDelAll}}
		}
		key := c.sqlKey(st.Name)
		sm.stmts[key] = nil
		return []*op{{ns: nsStmt, kind: opDel, name: key}}
	case "declare":
		key := c.sqlKey(st.Name)
		pt := &portal{text: st.Text, st: st.Inner, cursor: true, holdable: st.SubKind == "declare with hold"}
		sm.portals[key] = pt
		return []*op{{ns: nsPortal, kind: opSet, name: key, portal: pt}}
	case "close":
		if st.Name == "" {
			sm.portalsAll, sm.keep = true, running
			clear(sm.portals)
			if running != nil {
				sm.txEnded = true // which portal survives is the backend's business
			}
			return []*op{{ns: nsPortal, kind: opDelAll, keep: running}}
		}
		key := c.sqlKey(st.Name)
		sm.portals[key] = nil
		return []*op{{ns: nsPortal, kind: opDel, name: key}}
	case "utility":
		if st.SubKind == "discard all" {
			sm.stmtsAll, sm.portalsAll = true, true
			clear(sm.portals)
			for k := range sm.stmts {
				if k != "" {
					sm.stmts[k] = nil
				}
			}
			return []*op{{ns: nsStmt, kind: opDelAll}, {ns: nsPortal, kind: opDelAll, keep: running}}
		}
	case "transaction":
		switch st.SubKind {
		case "commit", "rollback", "rollback to", "prepare transaction":
			sm.txEnded = true
		}
	}
	return nil
}

// bindMsg is a decoded Bind message.
type bindMsg struct {
	portal, stmt  string
	paramFormats  []int16
	params        [][]byte // nil entry: NULL
	resultFormats []int16
}

func decodeBind(b []byte) (*bindMsg, error) {
	bad := func(what string) error { return fmt.Errorf("%w: Bind message: %s", ErrProtocolViolation, what) }
	m := &bindMsg{}
	var err error
	if m.portal, b, err = cstring(b); err != nil {
		return nil, err
	}
	if m.stmt, b, err = cstring(b); err != nil {
		return nil, err
	}
	readN := func() (int, error) {
		if len(b) < 2 {
			return 0, bad("truncated")
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		return n, nil
	}
	n, err := readN()
	if err != nil {
		return nil, err
	}
	if len(b) < 2*n {
		return nil, bad("truncated parameter formats")
	}
	for i := 0; i < n; i++ {
		m.paramFormats = append(m.paramFormats, int16(binary.BigEndian.Uint16(b[2*i:])))
	}
	b = b[2*n:]
	if n, err = readN(); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, bad("truncated parameter")
		}
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if l < 0 {
			m.params = append(m.params, nil)
			continue
		}
		if int(l) > len(b) {
			return nil, bad("parameter longer than the message")
		}
		m.params = append(m.params, b[:l:l])
		b = b[l:]
	}
	if n, err = readN(); err != nil {
		return nil, err
	}
	if len(b) < 2*n {
		return nil, bad("truncated result formats")
	}
	for i := 0; i < n; i++ {
		m.resultFormats = append(m.resultFormats, int16(binary.BigEndian.Uint16(b[2*i:])))
	}
	return m, nil
}

// maxShownParam bounds how much of one parameter an approver sees; longer
// values are shown with their length and SHA-256 (the approval still binds
// to the exact bytes: the waiting Bind is the one forwarded).
const maxShownParam = 1024

// renderParams renders the Bind's parameters for an approver; oids are
// the statement's parameter types (may be short or empty).
func (m *bindMsg) renderParams(oids []uint32) []string {
	out := make([]string, len(m.params))
	for i, p := range m.params {
		format := int16(0)
		switch {
		case len(m.paramFormats) == 1:
			format = m.paramFormats[0]
		case i < len(m.paramFormats):
			format = m.paramFormats[i]
		}
		var oid uint32
		if i < len(oids) {
			oid = oids[i]
		}
		out[i] = renderParam(p, format, oid)
	}
	return out
}

// Type OIDs whose binary form renderParam decodes.
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidOID     = 26
	oidFloat4  = 700
	oidFloat8  = 701
	oidBPChar  = 1042
	oidVarchar = 1043
	oidName    = 19
	oidUUID    = 2950
)

// renderParam shows one parameter value as an approver should read it:
// text as a quoted string, binary values of common types decoded, other
// binary values in hex with their type OID.
func renderParam(p []byte, format int16, oid uint32) string {
	if p == nil {
		return "NULL"
	}
	var s string
	if format == 0 {
		if utf8.Valid(p) {
			s = strconv.Quote(string(p))
		} else {
			s = `'\x` + hex.EncodeToString(p) + `' (not valid UTF-8)`
		}
	} else {
		s = decodeBinary(p, oid)
	}
	if len(s) > maxShownParam {
		sum := sha256.Sum256(p)
		s = s[:maxShownParam] + fmt.Sprintf("... (%d bytes, sha256 %x)", len(p), sum)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func decodeBinary(p []byte, oid uint32) string {
	switch {
	case oid == oidBool && len(p) == 1:
		return strconv.FormatBool(p[0] != 0)
	case oid == oidInt2 && len(p) == 2:
		return strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(p))), 10)
	case oid == oidInt4 && len(p) == 4:
		return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(p))), 10)
	case oid == oidOID && len(p) == 4:
		return strconv.FormatUint(uint64(binary.BigEndian.Uint32(p)), 10)
	case oid == oidInt8 && len(p) == 8:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(p)), 10)
	case oid == oidFloat4 && len(p) == 4:
		return strconv.FormatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(p))), 'g', -1, 32)
	case oid == oidFloat8 && len(p) == 8:
		return strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(p)), 'g', -1, 64)
	case (oid == oidText || oid == oidVarchar || oid == oidBPChar || oid == oidName) && utf8.Valid(p):
		return strconv.Quote(string(p))
	case oid == oidUUID && len(p) == 16:
		h := hex.EncodeToString(p)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	return fmt.Sprintf(`'\x%s' (binary, type oid %d)`, hex.EncodeToString(p), oid)
}

// paramTypes reads the parameter type OIDs at the end of a Parse message
// (0: unspecified); malformed input yields none (the backend rejects it).
func paramTypes(b []byte) []uint32 {
	if len(b) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < 4*n {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out
}

// sqlKey keys a name given in SQL; names resolve has refused never get
// here, so a failure falls back to the plain key.
func (c *conn) sqlKey(name string) string {
	c.state.mu.Lock()
	k, ok := c.lex.sqlKey(name)
	c.state.mu.Unlock()
	if !ok {
		return nameKey(name)
	}
	return k
}
