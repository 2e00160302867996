package pg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults filled by Config.Validate.
const (
	DefaultMaxMessageSize        = 16 << 20
	DefaultMaxBackendMessageSize = 256 << 20
	DefaultMaxTokenSize          = 64 << 10
	DefaultStartupTimeout        = 30 * time.Second
	DefaultMaxPending            = 1 << 16
	DefaultMaxStatements         = 1000
	DefaultMaxPortals            = 1000
	DefaultMaxSessionText        = 32 << 20
	maxStartupPacket             = 10000 // as PostgreSQL's MAX_STARTUP_PACKET_LENGTH
)

// DefaultForwardParams are the client startup parameters passed on to the
// backend: presentation settings, the client encoding (the gateway reads
// the value the backend reports and converts text accordingly), and
// settings that only restrict the session (read-only transactions,
// timeouts). Parameters that choose another role or pass arbitrary options
// (role, session_authorization, options, replication) are never forwarded.
var DefaultForwardParams = []string{
	"application_name", "client_encoding", "DateStyle", "IntervalStyle",
	"TimeZone", "extra_float_digits", "default_transaction_read_only",
	"default_transaction_isolation", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout",
}

// BackendConfig is where and how the gateway logs in to the backend. Password
// is the resolved secret: it never reaches the client, a log or an error.
type BackendConfig struct {
	// Address is host:port.
	Address  string
	User     string
	Password string
	Database string
	// TLS, when set, is required for the backend connection.
	TLS *tls.Config
	// ConnectTimeout bounds the backend login; 0 means 10 seconds.
	ConnectTimeout time.Duration
	// Dial replaces the TCP dialer (tests, tunnels). Optional.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// LogValue keeps the credential out of logs.
func (b BackendConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("address", b.Address), slog.String("user", b.User),
		slog.String("database", b.Database), slog.String("password", "REDACTED"),
		slog.Bool("tls", b.TLS != nil))
}

// String keeps the credential out of formatted output.
func (b BackendConfig) String() string {
	return fmt.Sprintf("postgres backend %s user=%s database=%s password=REDACTED", b.Address, b.User, b.Database)
}

// Config configures a Handler.
type Config struct {
	// Hooks authenticates clients and judges their commands. Required.
	Hooks Hooks
	// Backend resolves the backend for a requested database. Required.
	Backend func(ctx context.Context, database string) (BackendConfig, error)
	// TLSConfig enables TLS towards clients (answer 'S' to SSLRequest).
	TLSConfig *tls.Config
	// RequireTLS refuses plaintext startups. Needs TLSConfig.
	RequireTLS bool
	// Logger receives operational logs; never tokens, passwords or rows.
	Logger *slog.Logger
	// MaxMessageSize bounds one client message body.
	MaxMessageSize int
	// MaxBackendMessageSize bounds one backend message body.
	MaxBackendMessageSize int
	// MaxTokenSize bounds the password message carrying the token.
	MaxTokenSize int
	// StartupTimeout bounds the startup and authentication phase.
	StartupTimeout time.Duration
	// IdleTimeout closes a connection whose client sends nothing for this
	// long while no response is outstanding. 0 disables it.
	IdleTimeout time.Duration
	// MaxPending bounds messages pipelined by a client and not yet answered;
	// beyond it the gateway stops reading the client until answers arrive.
	MaxPending int
	// MaxStatements and MaxPortals bound the named prepared statements and
	// the named portals and cursors of one session; MaxSessionText bounds
	// the bytes of SQL text the gateway keeps for them. Past a bound the
	// statement that would create one more is refused (SQLSTATE 53400).
	MaxStatements  int
	MaxPortals     int
	MaxSessionText int
	// ForwardParams lists the startup parameters passed to the backend;
	// nil means DefaultForwardParams.
	ForwardParams []string
	// Now is the clock for durations; nil means time.Now.
	Now func() time.Time

	// onConn, when set (tests of this package), sees every relayed
	// connection before it starts.
	onConn func(*conn)
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Hooks == nil {
		return errors.New("pg proxy config: Hooks is required")
	}
	if c.Backend == nil {
		return errors.New("pg proxy config: Backend is required")
	}
	if c.RequireTLS && c.TLSConfig == nil {
		return errors.New("pg proxy config: RequireTLS needs TLSConfig")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = c.Logger.With("component", "proxy.pg")
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxBackendMessageSize <= 0 {
		c.MaxBackendMessageSize = DefaultMaxBackendMessageSize
	}
	if c.MaxTokenSize <= 0 {
		c.MaxTokenSize = DefaultMaxTokenSize
	}
	if c.StartupTimeout <= 0 {
		c.StartupTimeout = DefaultStartupTimeout
	}
	if c.IdleTimeout < 0 {
		return errors.New("pg proxy config: IdleTimeout must not be negative")
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxStatements <= 0 {
		c.MaxStatements = DefaultMaxStatements
	}
	if c.MaxPortals <= 0 {
		c.MaxPortals = DefaultMaxPortals
	}
	if c.MaxSessionText <= 0 {
		c.MaxSessionText = DefaultMaxSessionText
	}
	if c.ForwardParams == nil {
		c.ForwardParams = DefaultForwardParams
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
