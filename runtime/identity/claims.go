package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
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

// maxNumericDate bounds NumericDate claims (year 9999) so conversion to
// time.Time cannot overflow.
const maxNumericDate = 253402300799

// parseClaims decodes a claims object and its registered claims.
func parseClaims(payload []byte) (*Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after claims", ErrMalformed)
	}
	c := &Claims{Raw: raw}
	var err error
	if c.Issuer, err = stringClaim(raw, "iss"); err != nil {
		return nil, err
	}
	if c.Subject, err = stringClaim(raw, "sub"); err != nil {
		return nil, err
	}
	if c.Email, err = stringClaim(raw, "email"); err != nil {
		return nil, err
	}
	if c.ID, err = stringClaim(raw, "jti"); err != nil {
		return nil, err
	}
	if c.Audience, err = audienceClaim(raw); err != nil {
		return nil, err
	}
	if c.ExpiresAt, err = dateClaim(raw, "exp"); err != nil {
		return nil, err
	}
	if c.IssuedAt, err = dateClaim(raw, "iat"); err != nil {
		return nil, err
	}
	if c.NotBefore, err = dateClaim(raw, "nbf"); err != nil {
		return nil, err
	}
	return c, nil
}

func stringClaim(raw map[string]any, name string) (string, error) {
	v, ok := raw[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: claim %s is not a string", ErrMalformed, name)
	}
	return s, nil
}

func audienceClaim(raw map[string]any) ([]string, error) {
	switch v := raw["aud"].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: claim aud has a non-string element", ErrMalformed)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: claim aud is neither a string nor an array", ErrMalformed)
	}
}

func dateClaim(raw map[string]any, name string) (time.Time, error) {
	v, ok := raw[name]
	if !ok || v == nil {
		return time.Time{}, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: claim %s is not a number", ErrMalformed, name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%w: claim %s is out of range", ErrMalformed, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// keyFitsAlg reports whether key k can verify signatures made with alg.
func keyFitsAlg(k *jose.JSONWebKey, alg string) bool {
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pk.Curve == elliptic.P256()
		case "ES384":
			return pk.Curve == elliptic.P384()
		case "ES512":
			return pk.Curve == elliptic.P521()
		}
		return false
	case ed25519.PublicKey:
		return alg == "EdDSA"
	default:
		return false
	}
}

// ParseUnverified decodes a token's header fields and claims without
// verifying anything. The result must never be used for an access decision;
// it exists for inspection tools.
func ParseUnverified(rawToken string) (alg, kid string, c *Claims, err error) {
	if len(rawToken) > MaxTokenSize {
		return "", "", nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(rawToken), MaxTokenSize)
	}
	h, payload, err := splitToken(rawToken)
	if err != nil {
		return "", "", nil, err
	}
	c, err = parseClaims(payload)
	if err != nil {
		return "", "", nil, err
	}
	return h.Alg, h.Kid, c, nil
}
