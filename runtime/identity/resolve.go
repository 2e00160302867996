package identity

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Principal is a verified token mapped to a policy identity.
type Principal struct {
	// Name, Kind, Groups and Roles come from the policy identity.
	Name   string
	Kind   string
	Groups []string
	Roles  []string
	// Subject and Issuer come from the verified token.
	Subject string
	Issuer  string
	// Claims is a small allow-listed subset of the token's claims for
	// recording: iss, sub, aud, email, azp, client_id, name, exp, iat, jti.
	Claims map[string]any
}

// recordedClaims are the claims copied into Principal.Claims.
var recordedClaims = []string{"iss", "sub", "aud", "email", "azp", "client_id", "name", "exp", "iat", "jti"}

// LogValue renders the principal for logs without any token material.
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("name", p.Name),
		slog.String("kind", p.Kind),
		slog.String("sub", p.Subject),
		slog.String("iss", p.Issuer),
	)
}

var _ slog.LogValuer = (*Principal)(nil)

// Resolve maps verified claims to the single policy identity whose Match
// fits them. Every set field of a Match must fit: Issuer, Subject and Email
// compare exactly (Email never matches a token whose email_verified claim is
// false), and each entry of Claims must equal the claim's value or, for an
// array claim, be one of its elements. An identity with an empty Match never
// matches. No match is ErrUnknownIdentity; more than one is
// ErrAmbiguousIdentity.
func Resolve(p *bundle.Policy, c *Claims) (*Principal, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: no policy loaded", ErrUnknownIdentity)
	}
	if c == nil {
		return nil, fmt.Errorf("%w: no claims", ErrUnknownIdentity)
	}
	var found []int
	for i := range p.Identities {
		if matches(&p.Identities[i].Match, c) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: iss %q sub %q", ErrUnknownIdentity, truncate(c.Issuer, 200), truncate(c.Subject, 200))
	case 1:
	default:
		names := make([]string, len(found))
		for i, idx := range found {
			names[i] = p.Identities[idx].Name
		}
		return nil, fmt.Errorf("%w: iss %q sub %q matches %s", ErrAmbiguousIdentity, truncate(c.Issuer, 200), truncate(c.Subject, 200), strings.Join(names, ", "))
	}
	id := &p.Identities[found[0]]
	pr := &Principal{
		Name:    id.Name,
		Kind:    id.Kind,
		Groups:  slices.Clone(id.Groups),
		Roles:   slices.Clone(id.Roles),
		Subject: c.Subject,
		Issuer:  c.Issuer,
		Claims:  make(map[string]any),
	}
	for _, name := range recordedClaims {
		if v, ok := c.Raw[name]; ok {
			pr.Claims[name] = v
		}
	}
	return pr, nil
}

func matches(m *bundle.IdentityMatch, c *Claims) bool {
	if m.Issuer == "" && m.Subject == "" && m.Email == "" && len(m.Claims) == 0 {
		return false
	}
	if m.Issuer != "" && m.Issuer != c.Issuer {
		return false
	}
	if m.Subject != "" && m.Subject != c.Subject {
		return false
	}
	if m.Email != "" {
		if m.Email != c.Email {
			return false
		}
		if v, ok := c.Raw["email_verified"]; ok && v != true && v != "true" {
			return false
		}
	}
	for name, want := range m.Claims {
		if !claimHas(c.Raw[name], want) {
			return false
		}
	}
	return true
}

// claimHas reports whether a claim value equals want or, for arrays,
// contains an element equal to want. Strings compare as is, numbers by their
// JSON text and booleans as "true"/"false".
func claimHas(v any, want string) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if scalarEquals(e, want) {
				return true
			}
		}
		return false
	default:
		return scalarEquals(v, want)
	}
}

func scalarEquals(v any, want string) bool {
	switch x := v.(type) {
	case string:
		return x == want
	case json.Number:
		return x.String() == want
	case bool:
		if x {
			return want == "true"
		}
		return want == "false"
	default:
		return false
	}
}
