package server

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is the whole gateway configuration. docs/configuration.md lists
// every key; the mapstructure tags are the keys of gatehouse.yaml and, upper
// cased with "_" for ".", of the GATEHOUSE_* environment variables.
type Config struct {
	// GatewayID names this gateway in recordings (default: host name).
	GatewayID string `mapstructure:"gateway_id"`
	// StateDir holds the last good bundle, the development issuer's keys and
	// the default SQLite store.
	StateDir string    `mapstructure:"state_dir"`
	Log      LogConfig `mapstructure:"log"`

	Bundle    BundleConfig              `mapstructure:"bundle"`
	Admin     AdminConfig               `mapstructure:"admin"`
	Identity  IdentityConfig            `mapstructure:"identity"`
	Recording RecordingConfig           `mapstructure:"recording"`
	Approvals ApprovalsConfig           `mapstructure:"approvals"`
	Postgres  PostgresConfig            `mapstructure:"postgres"`
	Resources map[string]ResourceConfig `mapstructure:"resources"`
	// ShutdownGrace bounds how long open connections may finish their
	// current command after a shutdown signal.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
}

// LogConfig configures structured logging.
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error
	Format string `mapstructure:"format"` // text | json
}

// BundleConfig says where bundles come from and whom to trust.
type BundleConfig struct {
	// Source is a file path, file:// URL or http(s):// URL.
	Source string `mapstructure:"source"`
	// Keys are paths to PEM public keys trusted to sign bundles.
	Keys []string `mapstructure:"keys"`
	// Threshold is how many distinct trusted keys must have signed (k of n).
	Threshold int `mapstructure:"threshold"`
	// AllowUnsigned accepts bundles without signatures. Only for local
	// development; the gateway logs a warning at start.
	AllowUnsigned bool          `mapstructure:"allow_unsigned"`
	PollInterval  time.Duration `mapstructure:"poll_interval"`
	// ClockSkew tolerated on the bundle's not-before and expiry.
	ClockSkew time.Duration `mapstructure:"clock_skew"`
}

// AdminConfig configures the admin HTTP server (status, API, metrics,
// development issuer).
type AdminConfig struct {
	Listen  string `mapstructure:"listen"`
	TLSCert string `mapstructure:"tls_cert"`
	TLSKey  string `mapstructure:"tls_key"`
}

// IdentityConfig configures token verification.
type IdentityConfig struct {
	// Audience every accepted token must carry (default "gatehouse").
	Audience string         `mapstructure:"audience"`
	Issuers  []IssuerConfig `mapstructure:"issuers"`
	// DevIssuer enables the built-in development issuer.
	DevIssuer DevIssuerConfig `mapstructure:"dev_issuer"`
	Leeway    time.Duration   `mapstructure:"leeway"`
}

// IssuerConfig is one trusted OIDC issuer.
type IssuerConfig struct {
	Issuer       string   `mapstructure:"issuer"`
	DiscoveryURL string   `mapstructure:"discovery_url"`
	JWKSURL      string   `mapstructure:"jwks_url"`
	JWKSFile     string   `mapstructure:"jwks_file"`
	Algorithms   []string `mapstructure:"algorithms"`
}

// DevIssuerConfig configures the built-in development issuer.
type DevIssuerConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Issuer is the issuer URL written into tokens.
	Issuer string `mapstructure:"issuer"`
}

// RecordingConfig configures the recorder.
type RecordingConfig struct {
	// Store is "sqlite:PATH" or a postgres:// URL.
	Store      string `mapstructure:"store"`
	FailClosed bool   `mapstructure:"fail_closed"`
	QueueSize  int    `mapstructure:"queue_size"`
	// SessionQueue bounds the events one session may have waiting to be
	// written; a session past it is slowed (its client is not read) rather
	// than allowed to fill QueueSize for everyone (default 1024).
	SessionQueue  int           `mapstructure:"session_queue"`
	BatchSize     int           `mapstructure:"batch_size"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	SpoolDir      string        `mapstructure:"spool_dir"`
	// Retention deletes sessions that ended longer ago (0 keeps forever).
	Retention time.Duration `mapstructure:"retention"`
	// Signing configures the gateway's signatures over its recordings.
	Signing SigningConfig `mapstructure:"signing"`
}

// ApprovalsConfig configures approval notifications.
type ApprovalsConfig struct {
	Webhooks []WebhookConfig `mapstructure:"webhooks"`
	// URL is the externally reachable admin URL put into notifications.
	URL string `mapstructure:"url"`
}

// WebhookConfig is one notification endpoint.
type WebhookConfig struct {
	URL    string `mapstructure:"url"`
	Format string `mapstructure:"format"` // json | slack
}

// PostgresConfig configures the PostgreSQL listener.
type PostgresConfig struct {
	// Listen address; empty disables the listener.
	Listen     string `mapstructure:"listen"`
	TLSCert    string `mapstructure:"tls_cert"`
	TLSKey     string `mapstructure:"tls_key"`
	RequireTLS bool   `mapstructure:"require_tls"`
	// CatalogRefresh is how long the gateway uses what it read from a
	// backend's catalog (user functions, operators, casts, where names
	// resolve) before it checks for changes made by other clients
	// (default 2s). Objects another client creates under a name the
	// gateway did not know are seen at once; see runtime/pgcatalog.
	CatalogRefresh time.Duration `mapstructure:"catalog_refresh"`
}

// ResourceConfig overrides where a policy resource lives, for environments
// where the address differs from the policy's (local development, tests).
type ResourceConfig struct {
	Address    string `mapstructure:"address"`
	Database   string `mapstructure:"database"`
	User       string `mapstructure:"user"`
	Credential string `mapstructure:"credential"`
}

// Defaults returns the configuration used when nothing is set: the embedded
// defaults of the demo (SQLite store in the state directory, development
// issuer on, local listeners).
func Defaults() Config {
	return Config{
		StateDir: ".gatehouse",
		Log:      LogConfig{Level: "info", Format: "text"},
		Bundle: BundleConfig{
			Threshold:    1,
			PollInterval: 30 * time.Second,
			ClockSkew:    time.Minute,
		},
		Admin: AdminConfig{Listen: "127.0.0.1:8081"},
		Identity: IdentityConfig{
			Audience:  "gatehouse",
			DevIssuer: DevIssuerConfig{Enabled: true},
			Leeway:    30 * time.Second,
		},
		Recording: RecordingConfig{
			FailClosed:    true,
			QueueSize:     10000,
			BatchSize:     256,
			FlushInterval: 50 * time.Millisecond,
			Signing:       SigningConfig{CheckpointInterval: time.Minute, CheckpointEvents: 10000},
		},
		Postgres:      PostgresConfig{Listen: "127.0.0.1:6543"},
		ShutdownGrace: 10 * time.Second,
	}
}

// Validate checks the configuration and fills values derived from others.
func (c *Config) Validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir: must be set"))
	}
	if c.Bundle.Source == "" {
		errs = append(errs, errors.New("bundle.source: must be set (a file path or an http(s) URL)"))
	}
	if len(c.Bundle.Keys) == 0 && !c.Bundle.AllowUnsigned {
		errs = append(errs, errors.New("bundle.keys: no trusted keys; set bundle.allow_unsigned for local development only"))
	}
	if c.Bundle.Threshold < 1 {
		errs = append(errs, fmt.Errorf("bundle.threshold: %d, must be at least 1", c.Bundle.Threshold))
	}
	if len(c.Bundle.Keys) > 0 && c.Bundle.Threshold > len(c.Bundle.Keys) {
		errs = append(errs, fmt.Errorf("bundle.threshold: %d exceeds the %d configured keys", c.Bundle.Threshold, len(c.Bundle.Keys)))
	}
	for name, addr := range map[string]string{"admin.listen": c.Admin.Listen, "postgres.listen": c.Postgres.Listen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if (c.Postgres.TLSCert == "") != (c.Postgres.TLSKey == "") {
		errs = append(errs, errors.New("postgres.tls_cert and postgres.tls_key must be set together"))
	}
	if c.Postgres.RequireTLS && c.Postgres.TLSCert == "" {
		errs = append(errs, errors.New("postgres.require_tls: needs postgres.tls_cert and postgres.tls_key"))
	}
	if c.Recording.Store == "" {
		c.Recording.Store = "sqlite:" + strings.TrimSuffix(c.StateDir, "/") + "/gatehouse.db"
	}
	if len(c.Identity.Issuers) == 0 && !c.Identity.DevIssuer.Enabled {
		errs = append(errs, errors.New("identity: no issuers configured and the development issuer is disabled: no token could ever be accepted"))
	}
	for i, w := range c.Approvals.Webhooks {
		if w.Format != "" && w.Format != "json" && w.Format != "slack" {
			errs = append(errs, fmt.Errorf("approvals.webhooks[%d].format: %q, want json or slack", i, w.Format))
		}
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q, want text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}
