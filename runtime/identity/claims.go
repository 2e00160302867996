package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Claims are the claims of a token. Values returned by Verifier.Verify are
// verified; those returned by ParseUnverified are not.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	Email    string
	// ExpiresAt is exp; zero only in unverified claims that lack it.
	ExpiresAt time.Time
	// IssuedAt is iat; zero when absent.
	IssuedAt time.Time
	// NotBefore is nbf; zero when absent.
	NotBefore time.Time
	// ID is jti.
	ID string
	// Raw holds every claim as decoded JSON (numbers as json.Number). It is
	// owned by the caller.
	Raw map[string]any
}

// LogValue renders the claims for logs: registered claims only, never the
// raw claim set.
func (c *Claims) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	attrs := []slog.Attr{
		slog.String("iss", c.Issuer),
		slog.String("sub", c.Subject),
		slog.Any("aud", c.Audience),
	}
	if c.Email != "" {
		attrs = append(attrs, slog.String("email", c.Email))
	}
	if c.ID != "" {
		attrs = append(attrs, slog.String("jti", c.ID))
	}
	if !c.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("exp", c.ExpiresAt))
	}
	return slog.GroupValue(attrs...)
}

var _ slog.LogValuer = (*Claims)(nil)

// tokenClaims are the claims read before verification. They are decoded
// with go-jose's JSON decoder, which matches member names case-sensitively
// and refuses duplicate members, so "SUB" cannot stand in for "sub" and the
// registered claims cannot disagree with Raw.
type tokenClaims struct {
	jwt.Claims
	Email string `json:"email"`
}

// parse decodes a compact JWS whose alg is in algs, and its claims. It
// verifies nothing. Library error texts are passed on truncated: they name
// the part at fault and may quote a character or a member name of it, never
// more.
func parse(raw string, algs []jose.SignatureAlgorithm) (*jose.JSONWebSignature, *tokenClaims, error) {
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, nil, fmt.Errorf("%w: %q", ErrAlgorithm, truncate(string(algErr.Got), 32))
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrMalformed, truncate(err.Error(), 120))
	}
	// go-jose honours "crit": ["b64"] (RFC 7797 unencoded payloads), which
	// no JWT uses; any critical extension is refused.
	if _, ok := jws.Signatures[0].Header.ExtraHeaders["crit"]; ok {
		return nil, nil, fmt.Errorf("%w: critical header extensions are not supported", ErrMalformed)
	}
	tc := new(tokenClaims)
	if err := josejson.Unmarshal(jws.UnsafePayloadWithoutVerification(), tc); err != nil {
		return nil, nil, fmt.Errorf("%w: claims: %s", ErrMalformed, truncate(err.Error(), 120))
	}
	return jws, tc, nil
}

// claims returns the public form of tc, with Raw decoded from payload.
func (tc *tokenClaims) claims(payload []byte) (*Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	return &Claims{
		Issuer:    tc.Issuer,
		Subject:   tc.Subject,
		Audience:  tc.Audience,
		Email:     tc.Email,
		ExpiresAt: utc(tc.Expiry),
		IssuedAt:  utc(tc.IssuedAt),
		NotBefore: utc(tc.NotBefore),
		ID:        tc.ID,
		Raw:       raw,
	}, nil
}

func utc(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time().UTC()
}

// inspectAlgorithms lets ParseUnverified show any token, including the
// ones Verify always refuses.
var inspectAlgorithms = []jose.SignatureAlgorithm{
	"none", jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// ParseUnverified decodes a token's header fields and claims without
// verifying anything. The result must never be used for an access decision;
// it exists for inspection tools.
func ParseUnverified(rawToken string) (alg, kid string, c *Claims, err error) {
	if len(rawToken) > MaxTokenSize {
		return "", "", nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(rawToken), MaxTokenSize)
	}
	jws, tc, err := parse(rawToken, inspectAlgorithms)
	if err != nil {
		return "", "", nil, err
	}
	if c, err = tc.claims(jws.UnsafePayloadWithoutVerification()); err != nil {
		return "", "", nil, err
	}
	h := jws.Signatures[0].Header
	return h.Algorithm, h.KeyID, c, nil
}
