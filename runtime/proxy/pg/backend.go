package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// connectBackend logs in to the backend with pgconn (trust, MD5,
// SCRAM-SHA-256, TLS) and takes over the raw connection. Errors never
// contain the credential.
func connectBackend(ctx context.Context, bc BackendConfig, params map[string]string) (*pgconn.HijackedConn, []string, error) {
	host, portStr, err := net.SplitHostPort(bc.Address)
	if err != nil {
		return nil, nil, &BackendError{Address: bc.Address, msg: "invalid address (want host:port)"}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, nil, &BackendError{Address: bc.Address, msg: "invalid port"}
	}
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, nil, &BackendError{Address: bc.Address, msg: "invalid default configuration"}
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.User, cfg.Password, cfg.Database = bc.User, bc.Password, bc.Database
	cfg.TLSConfig = bc.TLS
	cfg.Fallbacks = nil
	cfg.ValidateConnect, cfg.AfterConnect = nil, nil
	cfg.OnNotice, cfg.OnNotification = nil, nil
	cfg.ConnectTimeout = bc.ConnectTimeout
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	cfg.RuntimeParams = params
	if bc.Dial != nil {
		cfg.DialFunc = bc.Dial
		cfg.LookupFunc = func(_ context.Context, h string) ([]string, error) { return []string{h}, nil }
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, sanitizeConnectError(bc, err)
	}
	// The session's effective search path decides where unqualified names
	// resolve; the gateway asks the backend rather than assume it.
	path := sessionSearchPath(ctx, pc)
	// pgconn may have started a background reader during login (its
	// slow-write timer); taking the connection over while it runs could let
	// it swallow the first response the client's session expects.
	if err := pc.SyncConn(ctx); err != nil {
		_ = pc.Close(ctx)
		return nil, nil, sanitizeConnectError(bc, err)
	}
	hj, err := pc.Hijack()
	if err != nil {
		_ = pc.Close(ctx)
		return nil, nil, sanitizeConnectError(bc, err)
	}
	return hj, path, nil
}

// sessionSearchPath returns current_schemas(true) of the backend session,
// or nil when it cannot be read (unqualified names are then refused).
func sessionSearchPath(ctx context.Context, pc *pgconn.PgConn) []string {
	res := pc.ExecParams(ctx, "SELECT pg_catalog.current_schemas(true)", nil, nil, nil, []int16{pgtype.TextFormatCode}).Read()
	if res.Err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 || len(res.FieldDescriptions) != 1 {
		return nil
	}
	var path []string
	if err := pgtype.NewMap().Scan(res.FieldDescriptions[0].DataTypeOID, pgtype.TextFormatCode, res.Rows[0][0], &path); err != nil {
		return nil
	}
	if path == nil {
		path = []string{}
	}
	return path
}

// sanitizeConnectError keeps the backend's own message and the network cause
// and drops everything that could hold the connection string.
func sanitizeConnectError(bc BackendConfig, err error) error {
	be := &BackendError{Address: bc.Address}
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		be.Code, be.ServerMessage = pe.Code, redactSecret(pe.Message, bc.Password)
		be.msg = fmt.Sprintf("server error %s: %s", be.Code, be.ServerMessage)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		be.msg = "timeout or cancelled"
	case errors.As(err, &ne):
		be.msg = redactSecret(ne.Error(), bc.Password)
	default:
		be.msg = "login failed"
	}
	return be
}

func redactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "REDACTED")
}
