package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Verifier verifies bearer tokens against the configured issuers. It is
// safe for concurrent use. Create it with New.
type Verifier struct {
	leeway  time.Duration
	clock   func() time.Time
	issuers map[string]*issuer
	// algs is the union of all issuers' allow-lists, given to the parser
	// before the issuer is known.
	algs []jose.SignatureAlgorithm
}

type issuer struct {
	name     string
	audience jwt.Audience
	algs     []jose.SignatureAlgorithm
	keys     *keySet
}

// New validates cfg (filling defaults) and returns a Verifier. It performs
// no I/O: key sets are fetched on first use.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "identity")
	v := &Verifier{leeway: cfg.Leeway, clock: cfg.Clock, issuers: make(map[string]*issuer, len(cfg.Issuers))}
	for _, ic := range cfg.Issuers {
		var src keySource
		switch {
		case len(ic.JWKS) > 0:
			src = bytesSource(slices.Clone(ic.JWKS))
		case ic.JWKSFile != "":
			src = fileSource(ic.JWKSFile)
		case ic.JWKSURL != "":
			src = urlSource(cfg.HTTPClient, ic.JWKSURL)
		default:
			src = discoverySource(cfg.HTTPClient, ic.Issuer, ic.DiscoveryURL, cfg.AllowInsecureHTTP)
		}
		is := &issuer{name: ic.Issuer, audience: jwt.Audience{ic.Audience}, keys: &keySet{
			issuer: ic.Issuer, src: src, clock: cfg.Clock, log: log,
			refreshInterval: cfg.KeyRefreshInterval, ttl: cfg.KeyCacheTTL, fetchTimeout: DefaultHTTPTimeout,
		}}
		for _, a := range ic.Algorithms {
			alg := jose.SignatureAlgorithm(a)
			is.algs = append(is.algs, alg)
			if !slices.Contains(v.algs, alg) {
				v.algs = append(v.algs, alg)
			}
		}
		v.issuers[ic.Issuer] = is
	}
	return v, nil
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
	jws, tc, err := parse(rawToken, v.algs)
	if err != nil {
		return nil, err
	}
	// The unverified iss only selects whose keys to try. The claims are the
	// ones go-jose verifies below: Verify checks the very payload bytes
	// they were decoded from.
	is, ok := v.issuers[tc.Issuer]
	if !ok {
		return nil, fmt.Errorf("%w: issuer %q is not configured", ErrIssuer, truncate(tc.Issuer, 200))
	}
	hdr := jws.Signatures[0].Header
	if !slices.Contains(is.algs, jose.SignatureAlgorithm(hdr.Algorithm)) {
		return nil, fmt.Errorf("%w: %q for issuer %q", ErrAlgorithm, hdr.Algorithm, is.name)
	}
	keys, err := is.keys.lookup(ctx, hdr.KeyID)
	if err != nil {
		return nil, err
	}
	if err := verifySignature(jws, hdr.Algorithm, keys); err != nil {
		return nil, err
	}
	if err := v.checkClaims(&tc.Claims, is); err != nil {
		return nil, err
	}
	return tc.claims(jws.UnsafePayloadWithoutVerification())
}

// maxVerifyTries bounds the signature checks spent on one token (a token
// without kid is tried against every key).
const maxVerifyTries = 8

// verifySignature checks the signature against the candidate keys, skipping
// keys bound to another algorithm: go-jose does not compare a JWK's "alg"
// with the token's.
func verifySignature(jws *jose.JSONWebSignature, alg string, keys []jose.JSONWebKey) error {
	tried := 0
	for i := range keys {
		if keys[i].Algorithm != "" && keys[i].Algorithm != alg {
			continue
		}
		if tried == maxVerifyTries {
			break
		}
		tried++
		if _, err := jws.Verify(&keys[i]); err == nil {
			return nil
		}
	}
	if tried == 0 {
		return fmt.Errorf("%w: no key of the issuer is bound to algorithm %s", ErrSignature, alg)
	}
	return fmt.Errorf("%w: checked against %d key(s)", ErrSignature, tried)
}

// checkClaims requires exp and sub, then lets go-jose check iss, aud, nbf
// and iat with the leeway. exp is compared here first: go-jose still
// accepts a token at exactly exp+leeway, while RFC 7519 section 4.1.4 wants
// the current time strictly before it.
func (v *Verifier) checkClaims(c *jwt.Claims, is *issuer) error {
	now := v.clock()
	if c.Expiry == nil {
		return fmt.Errorf("%w: required claim exp missing", ErrMalformed)
	}
	if c.Subject == "" {
		return fmt.Errorf("%w: required claim sub missing", ErrMalformed)
	}
	if exp := c.Expiry.Time(); !now.Before(exp.Add(v.leeway)) {
		return fmt.Errorf("%w: at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	err := c.ValidateWithLeeway(jwt.Expected{Issuer: is.name, AnyAudience: is.audience, Time: now}, v.leeway)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Errorf("%w: want %q", ErrAudience, is.audience[0])
	case errors.Is(err, jwt.ErrNotValidYet):
		return fmt.Errorf("%w: nbf %s", ErrNotYetValid, c.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return fmt.Errorf("%w: iat %s is in the future", ErrNotYetValid, c.IssuedAt.Time().UTC().Format(time.RFC3339))
	default: // jwt.ErrInvalidIssuer: not expected, the issuer was chosen by iss
		return fmt.Errorf("%w: iss %q", ErrIssuer, truncate(c.Issuer, 200))
	}
}
