package identity

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults and bounds.
const (
	// MaxTokenSize bounds the length of a token accepted by Verify.
	MaxTokenSize = 16 << 10
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultKeyRefreshInterval is the minimum time between two fetches of
	// one issuer's key set, whatever triggers them.
	DefaultKeyRefreshInterval = time.Minute
	// DefaultKeyCacheTTL is how long a fetched key set is used before it is
	// fetched again on the next verification.
	DefaultKeyCacheTTL = time.Hour
	// DefaultHTTPTimeout bounds one discovery or JWKS request when Config
	// has no HTTPClient.
	DefaultHTTPTimeout = 10 * time.Second
	// maxDiscoveryBytes and maxJWKSBytes bound documents read from issuers.
	maxDiscoveryBytes = 64 << 10
	maxJWKSBytes      = 512 << 10
	// discoveryPath is appended to the issuer to find its discovery document.
	discoveryPath = "/.well-known/openid-configuration"
)

// DefaultAlgorithms is the signature algorithm allow-list used when an
// IssuerConfig names none.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// supportedAlgorithms are the asymmetric JWS algorithms Gatehouse accepts on
// an allow-list. Symmetric (HS*) and "none" are deliberately absent: a
// gateway holds no shared secrets with identity providers, and accepting HMAC
// would let a public key be used as a secret.
var supportedAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// Config configures a Verifier.
type Config struct {
	// Issuers are the accepted token issuers; at least one.
	Issuers []IssuerConfig
	// Leeway is the tolerated clock skew (default DefaultLeeway; at most 5
	// minutes).
	Leeway time.Duration
	// KeyRefreshInterval is the minimum time between two key set fetches of
	// one issuer (default DefaultKeyRefreshInterval).
	KeyRefreshInterval time.Duration
	// KeyCacheTTL is how long a fetched key set is trusted before it is
	// fetched again (default DefaultKeyCacheTTL).
	KeyCacheTTL time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// HTTPClient fetches discovery documents and key sets (default: a client
	// with DefaultHTTPTimeout).
	HTTPClient *http.Client
	// Logger receives key set refresh events (default: discard).
	Logger *slog.Logger
	// AllowInsecureHTTP permits plain-http discovery and JWKS URLs on
	// non-loopback hosts. Loopback hosts may always use http.
	AllowInsecureHTTP bool
}

// IssuerConfig describes one accepted issuer. Exactly one key source is
// used, in this order of precedence: JWKS, JWKSFile, JWKSURL, DiscoveryURL;
// setting more than one of JWKS, JWKSFile and JWKSURL is an error.
type IssuerConfig struct {
	// Issuer must equal the token's iss claim exactly.
	Issuer string
	// Audience must be contained in the token's aud claim.
	Audience string
	// DiscoveryURL is the OpenID discovery document (default Issuer +
	// "/.well-known/openid-configuration"); its "issuer" must equal Issuer
	// and its "jwks_uri" gives the key set.
	DiscoveryURL string
	// JWKSFile is a static JWKS file, for air-gapped setups. It is read on
	// first use and re-read when a token names an unknown key.
	JWKSFile string
	// JWKSURL is the key set URL; setting it skips discovery.
	JWKSURL string
	// JWKS is an in-process key set document (for example DevIssuer.JWKS()).
	JWKS []byte
	// Algorithms is the signature algorithm allow-list (default
	// DefaultAlgorithms). Only asymmetric algorithms are accepted.
	Algorithms []string
}

// Validate checks the configuration and fills defaults in place.
func (c *Config) Validate() error {
	if len(c.Issuers) == 0 {
		return fmt.Errorf("%w: no issuers configured", ErrInvalidConfig)
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		return fmt.Errorf("%w: leeway %s outside 0..5m", ErrInvalidConfig, c.Leeway)
	}
	if c.KeyRefreshInterval == 0 {
		c.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if c.KeyRefreshInterval < 0 {
		return fmt.Errorf("%w: negative key refresh interval", ErrInvalidConfig)
	}
	if c.KeyCacheTTL == 0 {
		c.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if c.KeyCacheTTL < c.KeyRefreshInterval {
		return fmt.Errorf("%w: key cache ttl %s shorter than refresh interval %s", ErrInvalidConfig, c.KeyCacheTTL, c.KeyRefreshInterval)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	seen := make(map[string]bool, len(c.Issuers))
	for i := range c.Issuers {
		ic := &c.Issuers[i]
		if err := ic.validate(c.AllowInsecureHTTP); err != nil {
			return fmt.Errorf("issuer %d: %w", i, err)
		}
		if seen[ic.Issuer] {
			return fmt.Errorf("%w: issuer %q configured twice", ErrInvalidConfig, ic.Issuer)
		}
		seen[ic.Issuer] = true
	}
	return nil
}

func (ic *IssuerConfig) validate(allowHTTP bool) error {
	if ic.Issuer == "" {
		return fmt.Errorf("%w: empty issuer", ErrInvalidConfig)
	}
	if ic.Audience == "" {
		return fmt.Errorf("%w: issuer %q has no audience", ErrInvalidConfig, ic.Issuer)
	}
	sources := 0
	for _, set := range []bool{len(ic.JWKS) > 0, ic.JWKSFile != "", ic.JWKSURL != ""} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return fmt.Errorf("%w: issuer %q sets more than one of jwks, jwks_file, jwks_url", ErrInvalidConfig, ic.Issuer)
	}
	if sources == 0 && ic.DiscoveryURL == "" {
		ic.DiscoveryURL = strings.TrimSuffix(ic.Issuer, "/") + discoveryPath
	}
	if ic.JWKSURL != "" {
		if err := checkFetchURL(ic.JWKSURL, allowHTTP); err != nil {
			return fmt.Errorf("issuer %q jwks url: %w", ic.Issuer, err)
		}
	} else if sources == 0 {
		if err := checkFetchURL(ic.DiscoveryURL, allowHTTP); err != nil {
			return fmt.Errorf("issuer %q discovery url: %w", ic.Issuer, err)
		}
	}
	if len(ic.Algorithms) == 0 {
		ic.Algorithms = append([]string(nil), DefaultAlgorithms...)
	}
	for _, a := range ic.Algorithms {
		if !supportedAlgorithms[a] {
			return fmt.Errorf("%w: issuer %q: algorithm %q is not an accepted asymmetric JWS algorithm", ErrInvalidConfig, ic.Issuer, a)
		}
	}
	return nil
}

// checkFetchURL accepts https URLs, and http URLs on loopback hosts (or
// anywhere when allowHTTP is set).
func checkFetchURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: parse url: %w", ErrInvalidConfig, err)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: url %q has no host", ErrInvalidConfig, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: url %q uses plain http on a non-loopback host", ErrInvalidConfig, raw)
	default:
		return fmt.Errorf("%w: url %q: scheme must be https", ErrInvalidConfig, raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
