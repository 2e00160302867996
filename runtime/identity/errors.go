package identity

import "errors"

// Verification failures. Callers branch on them with errors.Is; every error
// returned by Verifier.Verify wraps exactly one of these or ErrKeySet.
var (
	// ErrMalformed: the token is not a well-formed compact JWS carrying a
	// JSON claims object with the required claims.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: the token's signature algorithm is not on the allow-list.
	ErrAlgorithm = errors.New("token signature algorithm not allowed")
	// ErrSignature: no key of the issuer verifies the signature.
	ErrSignature = errors.New("token signature invalid")
	// ErrUnknownKey: the issuer's key set has no key with the token's key id,
	// even after a refresh.
	ErrUnknownKey = errors.New("token signed with unknown key")
	// ErrExpired: the token's exp is in the past (beyond the leeway).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: the token's nbf or iat is in the future (beyond the
	// leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrAudience: the token's aud does not contain the configured audience.
	ErrAudience = errors.New("token audience not accepted")
	// ErrIssuer: the token's iss is not a configured issuer, or the issuer's
	// discovery document names a different issuer.
	ErrIssuer = errors.New("token issuer not accepted")
	// ErrTooLarge: the token exceeds MaxTokenSize.
	ErrTooLarge = errors.New("token too large")
)

// ErrKeySet reports that an issuer's key set could not be obtained or parsed
// (network, HTTP status, file, JSON). It is an availability failure, not a
// verdict on the token.
var ErrKeySet = errors.New("issuer key set unavailable")

// ErrInvalidConfig reports a configuration that Validate refuses.
var ErrInvalidConfig = errors.New("invalid identity configuration")

// Mapping failures returned by Resolve.
var (
	// ErrUnknownIdentity: no policy identity matches the verified claims.
	ErrUnknownIdentity = errors.New("no policy identity matches the token")
	// ErrAmbiguousIdentity: more than one policy identity matches the
	// verified claims; the policy must be fixed.
	ErrAmbiguousIdentity = errors.New("several policy identities match the token")
)
