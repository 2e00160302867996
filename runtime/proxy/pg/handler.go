package pg

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Handler serves PostgreSQL client connections. It is safe for concurrent
// use: call ServeConn from one goroutine per accepted connection.
type Handler struct {
	cfg    Config
	cancel registry
}

// New validates cfg and returns a Handler. It starts no goroutines.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg}, nil
}

// startup is the outcome of the startup phase.
type startup struct {
	conn   net.Conn // the client connection, TLS if negotiated
	tls    bool
	params map[string]string
}

// errCancelHandled ends ServeConn quietly after a CancelRequest.
var errCancelHandled = errors.New("cancel request handled")

// ServeConn runs one client connection to completion and closes it. It
// returns nil when the client terminates normally or sent a CancelRequest.
// Cancelling ctx closes the client and backend connections.
func (h *Handler) ServeConn(ctx context.Context, nc net.Conn) error {
	defer nc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dl := &deadlines{}
	dl.add(nc)
	stop := context.AfterFunc(ctx, dl.cancel)
	defer stop()
	log := h.cfg.Logger.With("client", nc.RemoteAddr().String())

	dl.set(nc, false, h.cfg.Now().Add(h.cfg.StartupTimeout))
	st, err := h.startup(ctx, nc)
	if errors.Is(err, errCancelHandled) {
		return nil
	}
	if err != nil {
		log.DebugContext(ctx, "Startup failed.", "error", err)
		return err
	}
	if st.conn != nc {
		defer st.conn.Close()
	}
	cw := bufio.NewWriterSize(st.conn, clientWriteBuf)
	fatal := func(err error) error {
		buf, _ := renderFatal(err).Encode(nil)
		_, _ = cw.Write(buf)
		_ = cw.Flush()
		return err
	}

	token, err := h.readPassword(st.conn, cw)
	if err != nil {
		return fatal(err)
	}
	req := AuthRequest{
		User: st.params["user"], Database: st.params["database"], Token: token,
		ClientAddr: nc.RemoteAddr(), TLS: st.tls, Params: st.params,
	}
	sess, err := h.cfg.Hooks.Authenticate(ctx, req)
	if err != nil {
		log.InfoContext(ctx, "Client authentication failed.", "identity", req.User, "error", redactSecret(err.Error(), token))
		var ge *Error
		if !errors.As(err, &ge) {
			err = fmt.Errorf("%w: password authentication failed for user %q", ErrAuthFailed, req.User)
		}
		return fatal(err)
	}
	if sess == nil {
		return fatal(fmt.Errorf("%w: no session", ErrAuthFailed))
	}
	defer sess.Close()

	bc, err := h.cfg.Backend(ctx, req.Database)
	if err != nil {
		log.InfoContext(ctx, "Backend resolution failed.", "identity", req.User, "database", req.Database, "error", redactSecret(err.Error(), bc.Password))
		return fatal(err)
	}
	fwd := make(map[string]string)
	for _, k := range h.cfg.ForwardParams {
		if v, ok := st.params[k]; ok {
			fwd[k] = v
		}
	}
	hj, searchPath, err := connectBackend(ctx, bc, fwd)
	if err != nil {
		log.WarnContext(ctx, "Backend connection failed.", "identity", req.User, "resource", bc.Address, "error", err)
		return fatal(err)
	}
	bconn := hj.Conn
	defer bconn.Close()
	dl.add(bconn)

	var lex lexical
	for k, v := range hj.ParameterStatuses {
		lex.set(k, v)
	}
	key := make([]byte, len(hj.SecretKey))
	copy(key, hj.SecretKey)
	target := &cancelTarget{backend: bc, backendPID: hj.PID, backendKey: key}
	pid, err := h.cancel.add(target)
	if err != nil {
		return fatal(err)
	}
	defer h.cancel.remove(pid)
	secret := target.secret // set by add before it returned

	var out []byte
	out, _ = (&pgproto3.AuthenticationOk{}).Encode(out)
	names := make([]string, 0, len(hj.ParameterStatuses))
	for k := range hj.ParameterStatuses {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		out, _ = (&pgproto3.ParameterStatus{Name: k, Value: hj.ParameterStatuses[k]}).Encode(out)
	}
	out, _ = (&pgproto3.BackendKeyData{ProcessID: pid, SecretKey: secret[:]}).Encode(out)
	txs := hj.TxStatus
	if txs == 0 {
		txs = 'I'
	}
	out, _ = (&pgproto3.ReadyForQuery{TxStatus: txs}).Encode(out)
	if _, err := cw.Write(out); err != nil {
		return fmt.Errorf("write startup response: %w", err)
	}
	if err := cw.Flush(); err != nil {
		return fmt.Errorf("write startup response: %w", err)
	}
	dl.set(nc, false, zeroTime)
	log.DebugContext(ctx, "Session started.", "identity", req.User, "resource", bc.Address)

	sess.SetSearchPath(searchPath)
	c := newConn(h, log, sess, st.conn, bconn, cw, dl, txs, lex)
	return c.run(ctx, cancel)
}

// startup reads SSLRequest, GSSENCRequest, CancelRequest and the
// StartupMessage. It reads exactly one packet at a time without buffering,
// so no plaintext bytes survive a TLS upgrade.
func (h *Handler) startup(ctx context.Context, nc net.Conn) (*startup, error) {
	conn := net.Conn(nc)
	isTLS := false
	fatal := func(err error) error {
		buf, _ := renderFatal(err).Encode(nil)
		_, _ = conn.Write(buf)
		return err
	}
	for range 4 {
		var hdr [4]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return nil, fmt.Errorf("read startup packet: %w", err)
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < 8 || n > maxStartupPacket {
			return nil, fatal(fmt.Errorf("%w: invalid startup packet length %d", ErrProtocolViolation, n))
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(conn, body); err != nil {
			return nil, fmt.Errorf("read startup packet: %w", err)
		}
		code := binary.BigEndian.Uint32(body[:4])
		switch code {
		case sslRequestCode:
			if n != 8 {
				return nil, fatal(fmt.Errorf("%w: invalid SSLRequest length", ErrProtocolViolation))
			}
			if h.cfg.TLSConfig == nil || isTLS {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return nil, fmt.Errorf("answer SSLRequest: %w", err)
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, fmt.Errorf("answer SSLRequest: %w", err)
			}
			tc := tls.Server(nc, h.cfg.TLSConfig)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, fmt.Errorf("client tls handshake: %w", err)
			}
			conn, isTLS = tc, true
		case gssEncRequestCode:
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return nil, fmt.Errorf("answer GSSENCRequest: %w", err)
			}
		case cancelRequestCode:
			h.handleCancel(ctx, body[4:])
			return nil, errCancelHandled
		default:
			major, minor := code>>16, code&0xffff
			if major != 3 {
				return nil, fatal(fmt.Errorf("%w %d.%d: server supports 3.0", ErrUnsupportedProtocol, major, minor))
			}
			params, err := parseStartupParams(body[4:])
			if err != nil {
				return nil, fatal(err)
			}
			if h.cfg.RequireTLS && !isTLS {
				return nil, fatal(ErrTLSRequired)
			}
			if params["user"] == "" {
				return nil, fatal(&Error{Code: "28000", Message: "no PostgreSQL user name specified in startup packet"})
			}
			if params["database"] == "" {
				params["database"] = params["user"]
			}
			if r, ok := params["replication"]; ok && !isFalse(r) {
				return nil, fatal(fmt.Errorf("%w: replication connections are not supported", ErrUnsupportedProtocol))
			}
			var unrecognised []string
			for k := range params {
				if strings.HasPrefix(k, "_pq_.") {
					unrecognised = append(unrecognised, k)
					delete(params, k)
				}
			}
			if minor > 0 || len(unrecognised) > 0 {
				slices.Sort(unrecognised)
				buf, _ := (&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unrecognised}).Encode(nil)
				if _, err := conn.Write(buf); err != nil {
					return nil, fmt.Errorf("negotiate protocol version: %w", err)
				}
			}
			return &startup{conn: conn, tls: isTLS, params: params}, nil
		}
	}
	return nil, fatal(fmt.Errorf("%w: too many startup negotiation packets", ErrProtocolViolation))
}

func isFalse(s string) bool {
	switch strings.ToLower(s) {
	case "false", "off", "no", "0":
		return true
	}
	return false
}

// parseStartupParams decodes the NUL-terminated name/value pairs.
func parseStartupParams(b []byte) (map[string]string, error) {
	params := make(map[string]string)
	for len(b) > 0 && b[0] != 0 {
		k, rest, err := cstring(b)
		if err != nil {
			return nil, fmt.Errorf("startup parameters: %w", err)
		}
		v, rest, err := cstring(rest)
		if err != nil {
			return nil, fmt.Errorf("startup parameters: %w", err)
		}
		params[k] = v
		b = rest
	}
	if len(b) != 1 {
		return nil, fmt.Errorf("%w: startup parameters not terminated", ErrProtocolViolation)
	}
	return params, nil
}

// readPassword asks for a cleartext password (the token) and reads it.
func (h *Handler) readPassword(conn net.Conn, cw *bufio.Writer) (string, error) {
	buf, _ := (&pgproto3.AuthenticationCleartextPassword{}).Encode(nil)
	if _, err := cw.Write(buf); err != nil {
		return "", fmt.Errorf("request password: %w", err)
	}
	if err := cw.Flush(); err != nil {
		return "", fmt.Errorf("request password: %w", err)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if hdr[0] != 'p' {
		return "", fmt.Errorf("%w: expected password message, got %q", ErrProtocolViolation, hdr[0])
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 5 || n-4 > h.cfg.MaxTokenSize {
		return "", fmt.Errorf("%w: password message length %d", ErrAuthFailed, n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(conn, body); err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	tok, rest, err := cstring(body)
	if err != nil || len(rest) != 0 || tok == "" {
		return "", fmt.Errorf("%w: empty or malformed password message", ErrAuthFailed)
	}
	return tok, nil
}

// handleCancel forwards a CancelRequest only on an exact key match; anything
// else is dropped silently, as PostgreSQL does.
func (h *Handler) handleCancel(ctx context.Context, b []byte) {
	if len(b) < 8 {
		return
	}
	pid := binary.BigEndian.Uint32(b[:4])
	t := h.cancel.lookup(pid, b[4:])
	if t == nil {
		h.cfg.Logger.DebugContext(ctx, "Cancel request with unknown key dropped.")
		return
	}
	if err := forwardCancel(ctx, t); err != nil {
		h.cfg.Logger.WarnContext(ctx, "Cancel request forwarding failed.", "error", err)
	}
}
