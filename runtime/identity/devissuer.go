package identity

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Development issuer defaults.
const (
	// DefaultDevIssuerURL is the issuer URL of the development issuer when
	// none is configured; the gateway's admin server serves its discovery
	// document below it.
	DefaultDevIssuerURL = "http://127.0.0.1:8081/dev"
	// DefaultAudience is the audience tokens are issued for when neither the
	// request nor the configuration names one.
	DefaultAudience = "gatehouse"
	// DefaultDevMaxTTL bounds the lifetime of development tokens.
	DefaultDevMaxTTL = 24 * time.Hour
	// DevKeyFile is the name of the signing key file inside the directory.
	DevKeyFile = "key.pem"
	// maxKeyFileBytes bounds the key file read.
	maxKeyFileBytes = 16 << 10
)

// ErrDevIssuer reports a failure of the development issuer: unusable key
// file, refused token request.
var ErrDevIssuer = errors.New("development issuer")

// DevIssuerConfig configures a DevIssuer.
type DevIssuerConfig struct {
	// Dir holds the signing key (Dir/key.pem, mode 0600); created with mode
	// 0700 if missing. Typically "<state dir>/dev-issuer". Required.
	Dir string
	// Issuer is the issuer URL (default DefaultDevIssuerURL).
	Issuer string
	// Algorithm for a newly generated key: "ES256" (default) or "EdDSA". An
	// existing key file keeps its own algorithm.
	Algorithm string
	// Audience of issued tokens when a request names none (default
	// DefaultAudience).
	Audience string
	// MaxTTL bounds token lifetimes (default DefaultDevMaxTTL).
	MaxTTL time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Logger (default: discard).
	Logger *slog.Logger
}

// Validate checks the configuration and fills defaults in place.
func (c *DevIssuerConfig) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: dev issuer: no key directory", ErrInvalidConfig)
	}
	if c.Issuer == "" {
		c.Issuer = DefaultDevIssuerURL
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: dev issuer url %q: want an http or https URL", ErrInvalidConfig, c.Issuer)
	}
	switch c.Algorithm {
	case "":
		c.Algorithm = "ES256"
	case "ES256", "EdDSA":
	default:
		return fmt.Errorf("%w: dev issuer algorithm %q: want ES256 or EdDSA", ErrInvalidConfig, c.Algorithm)
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultDevMaxTTL
	}
	if c.MaxTTL < 0 {
		return fmt.Errorf("%w: dev issuer: negative max ttl", ErrInvalidConfig)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// DevIssuer issues signed tokens for development and the embedded default
// setup. It is safe for concurrent use. Anyone who can reach its key file can
// mint any identity: never enable it in production.
type DevIssuer struct {
	cfg    DevIssuerConfig
	alg    jose.SignatureAlgorithm
	kid    string
	signer jose.Signer
	jwks   []byte
	log    *slog.Logger
}

// OpenDevIssuer validates cfg, then loads the signing key from cfg.Dir, or
// generates and persists one if the directory holds none. Concurrent first
// openings agree on one key: the key file is published with a hard link,
// which never overwrites.
func OpenDevIssuer(cfg DevIssuerConfig) (*DevIssuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "identity.dev")
	priv, err := loadOrCreateKey(cfg.Dir, cfg.Algorithm, log)
	if err != nil {
		return nil, err
	}
	var alg jose.SignatureAlgorithm
	var pub crypto.PublicKey
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: key file: ecdsa curve %s, want P-256", ErrDevIssuer, k.Curve.Params().Name)
		}
		alg, pub = jose.ES256, &k.PublicKey
	case ed25519.PrivateKey:
		alg, pub = jose.EdDSA, k.Public()
	default:
		return nil, fmt.Errorf("%w: key file: unsupported key type %T", ErrDevIssuer, priv)
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: string(alg), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: key thumbprint: %w", ErrDevIssuer, err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		return nil, fmt.Errorf("%w: encode jwks: %w", ErrDevIssuer, err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: jwk.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %w", ErrDevIssuer, err)
	}
	return &DevIssuer{cfg: cfg, alg: alg, kid: jwk.KeyID, signer: signer, jwks: jwks, log: log}, nil
}

// Issuer returns the issuer URL.
func (d *DevIssuer) Issuer() string { return d.cfg.Issuer }

// KeyID returns the key id (RFC 7638 SHA-256 thumbprint) of the signing key.
func (d *DevIssuer) KeyID() string { return d.kid }

// Algorithm returns the signature algorithm, "ES256" or "EdDSA".
func (d *DevIssuer) Algorithm() string { return string(d.alg) }

// JWKS returns the public key set document. The caller may keep but must not
// modify it.
func (d *DevIssuer) JWKS() []byte { return d.jwks }

// IssuerConfig returns a Verifier issuer entry that trusts this issuer's key
// in-process, without HTTP. An empty issuer means the dev issuer's own URL;
// passing another URL makes the Verifier accept development tokens that
// claim that issuer (see Issue), which is only acceptable in development.
// An empty audience means the configured default.
func (d *DevIssuer) IssuerConfig(issuer, audience string) IssuerConfig {
	if issuer == "" {
		issuer = d.cfg.Issuer
	}
	if audience == "" {
		audience = d.cfg.Audience
	}
	return IssuerConfig{Issuer: issuer, Audience: audience, JWKS: d.jwks, Algorithms: []string{string(d.alg)}}
}

// TokenRequest describes a token to issue.
type TokenRequest struct {
	// Issuer is the iss claim (default: the dev issuer URL).
	Issuer string
	// Subject is the sub claim; required.
	Subject string
	// Email, when set, is the email claim (with email_verified true).
	Email string
	// Audience is the aud claim (default: the configured audience).
	Audience []string
	// Claims are extra claims; registered claims (iss, sub, aud, exp, nbf,
	// iat, jti) cannot be set here.
	Claims map[string]any
	// TTL is the token lifetime, 0 < TTL <= MaxTTL.
	TTL time.Duration
}

var reservedClaims = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true}

// Issue returns a token that Resolve maps to id: its iss, sub and email are
// the identity's Match values (iss defaults to the dev issuer URL, sub to the
// identity name) and its Match.Claims become string claims. A Match issuer
// other than the dev issuer URL is only accepted by a Verifier configured
// with IssuerConfig(thatIssuer, ...).
func (d *DevIssuer) Issue(id bundle.Identity, ttl time.Duration) (string, error) {
	req := TokenRequest{Issuer: id.Match.Issuer, Subject: id.Match.Subject, Email: id.Match.Email, TTL: ttl}
	if req.Subject == "" {
		req.Subject = id.Name
	}
	if len(id.Match.Claims) > 0 {
		req.Claims = make(map[string]any, len(id.Match.Claims))
		for k, v := range id.Match.Claims {
			req.Claims[k] = v
		}
	}
	return d.IssueToken(req)
}

// IssueToken signs a token for req.
func (d *DevIssuer) IssueToken(req TokenRequest) (string, error) {
	if req.Subject == "" {
		return "", fmt.Errorf("%w: token request has no subject", ErrDevIssuer)
	}
	if req.TTL <= 0 || req.TTL > d.cfg.MaxTTL {
		return "", fmt.Errorf("%w: ttl %s outside (0, %s]", ErrDevIssuer, req.TTL, d.cfg.MaxTTL)
	}
	extra := make(map[string]any, len(req.Claims)+2)
	for k, v := range req.Claims {
		if reservedClaims[k] {
			return "", fmt.Errorf("%w: claim %q cannot be set as an extra claim", ErrDevIssuer, k)
		}
		extra[k] = v
	}
	if req.Email != "" {
		if _, ok := extra["email"]; !ok {
			extra["email"] = req.Email
		}
		if _, ok := extra["email_verified"]; !ok {
			extra["email_verified"] = true
		}
	}
	iss := cmp.Or(req.Issuer, d.cfg.Issuer)
	aud := req.Audience
	if len(aud) == 0 {
		aud = []string{d.cfg.Audience}
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("%w: token id: %w", ErrDevIssuer, err)
	}
	now := d.cfg.Clock()
	tok, err := jwt.Signed(d.signer).Claims(extra).Claims(jwt.Claims{
		Issuer: iss, Subject: req.Subject, Audience: aud, ID: base64.RawURLEncoding.EncodeToString(jti),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(req.TTL)),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("%w: sign: %w", ErrDevIssuer, err)
	}
	d.log.Info("Development token issued.", "sub", req.Subject, "iss", iss, "ttl", req.TTL.String())
	return tok, nil
}

// Handler serves the issuer's OpenID discovery document at
// ".../.well-known/openid-configuration" and its key set at ".../jwks.json".
// Paths are matched by suffix, so the handler works whether it is mounted
// with or without http.StripPrefix; the admin server mounts it below the
// issuer URL's path.
func (d *DevIssuer) Handler() http.Handler {
	discovery, _ := json.Marshal(map[string]any{
		"issuer":                                d.cfg.Issuer,
		"jwks_uri":                              d.cfg.Issuer + "/jwks.json",
		"id_token_signing_alg_values_supported": []string{string(d.alg)},
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var body []byte
		switch {
		case strings.HasSuffix(r.URL.Path, discoveryPath):
			body = discovery
		case strings.HasSuffix(r.URL.Path, "/jwks.json") || r.URL.Path == "jwks.json":
			body = d.jwks
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(body)
	})
}

// loadOrCreateKey reads dir/key.pem, creating it when missing.
func loadOrCreateKey(dir, alg string, log *slog.Logger) (crypto.Signer, error) {
	path := filepath.Join(dir, DevKeyFile)
	key, err := readKeyFile(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: create key directory: %w", ErrDevIssuer, err)
	}
	var priv crypto.Signer
	switch alg {
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: generate key: %w", ErrDevIssuer, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: encode key: %w", ErrDevIssuer, err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*.pem")
	if err != nil {
		return nil, fmt.Errorf("%w: write key: %w", ErrDevIssuer, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("%w: write key: %w", ErrDevIssuer, err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("%w: write key: %w", ErrDevIssuer, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("%w: write key: %w", ErrDevIssuer, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("%w: write key: %w", ErrDevIssuer, err)
	}
	// Link never replaces an existing file: if another process published a
	// key first, use that one.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("%w: publish key: %w", ErrDevIssuer, err)
	}
	log.Info("Development issuer key created.", "path", path, "algorithm", alg)
	return priv, nil
}

func readKeyFile(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: open key: %w", ErrDevIssuer, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: stat key: %w", ErrDevIssuer, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: key %s is not a regular file", ErrDevIssuer, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: key %s has mode %s, want 0600", ErrDevIssuer, path, st.Mode().Perm())
	}
	data, err := readBounded(f, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: read key %s: %w", ErrDevIssuer, path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: key %s: no PKCS#8 PRIVATE KEY block", ErrDevIssuer, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: parse key %s: %w", ErrDevIssuer, path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key %s: unsupported key type %T", ErrDevIssuer, path, k)
	}
	return s, nil
}

// PolicyIssuers returns the distinct non-empty Match issuers of the policy's
// identities, sorted, for configuring a development Verifier that trusts the
// dev key for them.
func PolicyIssuers(p *bundle.Policy) []string {
	if p == nil {
		return nil
	}
	set := make(map[string]bool)
	for _, id := range p.Identities {
		if id.Match.Issuer != "" {
			set[id.Match.Issuer] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
