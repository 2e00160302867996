package identity

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Verifier verifies bearer tokens against the configured issuers. It is
// safe for concurrent use. Create it with New.
type Verifier struct {
	leeway  time.Duration
	clock   func() time.Time
	log     *slog.Logger
	issuers map[string]*issuer
	// allowed is the union of all issuers' allow-lists, checked before the
	// issuer is known.
	allowed map[string]bool
}

type issuer struct {
	cfg  IssuerConfig
	algs []jose.SignatureAlgorithm
	keys *keySet
}

// New validates cfg (filling defaults) and returns a Verifier. It performs
// no I/O: key sets are fetched on first use.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "identity")
	v := &Verifier{
		leeway:  cfg.Leeway,
		clock:   cfg.Clock,
		log:     log,
		issuers: make(map[string]*issuer, len(cfg.Issuers)),
		allowed: make(map[string]bool),
	}
	for _, ic := range cfg.Issuers {
		var src keySource
		switch {
		case len(ic.JWKS) > 0:
			src = bytesSource{data: bytes.Clone(ic.JWKS)}
		case ic.JWKSFile != "":
			src = fileSource{path: ic.JWKSFile}
		case ic.JWKSURL != "":
			src = urlSource{url: ic.JWKSURL, client: cfg.HTTPClient}
		default:
			src = discoverySource{issuer: ic.Issuer, url: ic.DiscoveryURL, client: cfg.HTTPClient, allow: cfg.AllowInsecureHTTP}
		}
		is := &issuer{
			cfg: ic,
			keys: &keySet{
				issuer:          ic.Issuer,
				src:             src,
				clock:           cfg.Clock,
				refreshInterval: cfg.KeyRefreshInterval,
				ttl:             cfg.KeyCacheTTL,
				fetchTimeout:    DefaultHTTPTimeout,
				log:             log,
			},
		}
		for _, a := range ic.Algorithms {
			is.algs = append(is.algs, jose.SignatureAlgorithm(a))
			v.allowed[a] = true
		}
		v.issuers[ic.Issuer] = is
	}
	return v, nil
}

// header is the part of the JOSE header Gatehouse looks at.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// Verify checks rawToken and returns its claims. It fetches the issuer's key
// set when needed; such a fetch is shared by concurrent callers, keeps ctx's
// values but not its cancellation, and is bounded by DefaultHTTPTimeout (and
// the HTTPClient's own timeout). Every failure wraps one of the sentinel
// errors of this package; the error text never contains the token.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Claims, error) {
	if len(rawToken) > MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(rawToken), MaxTokenSize)
	}
	hdr, payload, err := splitToken(rawToken)
	if err != nil {
		return nil, err
	}
	if !v.allowed[hdr.Alg] {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, truncate(hdr.Alg, 32))
	}
	// The unverified iss only selects which issuer's keys to use; the claims
	// are checked again once the signature is verified.
	unverified, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	is, ok := v.issuers[unverified.Issuer]
	if !ok {
		return nil, fmt.Errorf("%w: issuer %q is not configured", ErrIssuer, truncate(unverified.Issuer, 200))
	}
	if !containsAlg(is.algs, hdr.Alg) {
		return nil, fmt.Errorf("%w: %q for issuer %q", ErrAlgorithm, hdr.Alg, is.cfg.Issuer)
	}
	jws, err := jose.ParseSignedCompact(rawToken, is.algs)
	if err != nil {
		return nil, fmt.Errorf("%w: parse jws: %w", ErrMalformed, scrub(err))
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: expected one signature", ErrMalformed)
	}
	keys, err := is.keys.lookup(ctx, hdr.Kid)
	if err != nil {
		return nil, err
	}
	verified, err := verifyWithKeys(jws, hdr.Alg, keys)
	if err != nil {
		return nil, err
	}
	// The claims parsed before verification came from the same bytes; parse
	// again only if the library returned anything else.
	c := unverified
	if !bytes.Equal(verified, payload) {
		if c, err = parseClaims(verified); err != nil {
			return nil, err
		}
	}
	if c.Issuer != is.cfg.Issuer {
		return nil, fmt.Errorf("%w: issuer changed during verification", ErrIssuer)
	}
	if err := v.checkClaims(c, is.cfg.Audience); err != nil {
		return nil, err
	}
	return c, nil
}

// maxVerifyTries bounds the signature checks spent on one token (a token
// without kid is tried against every fitting key).
const maxVerifyTries = 8

// verifyWithKeys tries the candidate keys whose type fits alg and returns
// the verified payload.
func verifyWithKeys(jws *jose.JSONWebSignature, alg string, keys []jose.JSONWebKey) ([]byte, error) {
	tried := 0
	for i := range keys {
		k := &keys[i]
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if !keyFitsAlg(k, alg) {
			continue
		}
		if tried == maxVerifyTries {
			break
		}
		tried++
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	if tried == 0 {
		return nil, fmt.Errorf("%w: no key of the issuer fits algorithm %s", ErrSignature, alg)
	}
	return nil, fmt.Errorf("%w: checked against %d key(s)", ErrSignature, tried)
}

func (v *Verifier) checkClaims(c *Claims, audience string) error {
	now := v.clock()
	if c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: required claim exp missing", ErrMalformed)
	}
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return fmt.Errorf("%w: at %s", ErrExpired, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Add(v.leeway).Before(c.NotBefore) {
		return fmt.Errorf("%w: nbf %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !c.IssuedAt.IsZero() && now.Add(v.leeway).Before(c.IssuedAt) {
		return fmt.Errorf("%w: iat %s is in the future", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if c.Subject == "" {
		return fmt.Errorf("%w: required claim sub missing", ErrMalformed)
	}
	for _, a := range c.Audience {
		if a == audience {
			return nil
		}
	}
	return fmt.Errorf("%w: want %q", ErrAudience, audience)
}

// splitToken checks the compact serialisation and decodes header and
// payload without verifying anything.
func splitToken(raw string) (header, []byte, error) {
	var h header
	if raw == "" {
		return h, nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	parts := strings.SplitN(raw, ".", 4)
	if len(parts) != 3 {
		return h, nil, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return h, nil, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if h.Alg == "" {
		return h, nil, fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	if len(h.Crit) > 0 || len(h.B64) > 0 {
		return h, nil, fmt.Errorf("%w: critical header extensions are not supported", ErrMalformed)
	}
	pb, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return h, nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(parts[2]); err != nil {
		return h, nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	return h, pb, nil
}

func containsAlg(algs []jose.SignatureAlgorithm, alg string) bool {
	for _, a := range algs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// scrub drops the text of library errors that might echo input; only its
// kind survives.
func scrub(err error) error {
	var algErr *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &algErr) {
		return errors.New("unexpected signature algorithm")
	}
	return errors.New("invalid compact serialization")
}
