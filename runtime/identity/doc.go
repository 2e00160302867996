// Package identity turns a bearer token presented by an agent into a policy
// identity.
//
// It has three parts:
//
//   - Verifier checks an OIDC/JWT token: an explicit allow-list of asymmetric
//     signature algorithms (never "none", never HMAC), the signature against
//     the issuer's JSON Web Key Set, the issuer, the audience and the
//     validity window (exp required; nbf and iat not in the future), all with
//     a bounded token size and an injected clock. go-jose does the JOSE
//     work: parsing against the allow-list, the signature, decoding the
//     claims (member names case-sensitive, duplicates refused) and checking
//     iss, aud, nbf and iat. This package picks the issuer, requires exp and
//     sub and checks exp itself (see docs/architecture.md for why). Key sets
//     come from OpenID discovery, a JWKS URL, a static JWKS file (air-gapped
//     setups) or in-process bytes (the development issuer). They are cached
//     by this package, with bounded reads; a token signed with an unknown
//     key id triggers at most one refresh per KeyRefreshInterval, so a flood
//     of forged key ids cannot make the gateway hammer the identity
//     provider.
//   - Resolve maps verified Claims to exactly one bundle.Identity of the
//     active policy. Zero matches is ErrUnknownIdentity; several matches is
//     ErrAmbiguousIdentity: the policy is ambiguous and Gatehouse refuses
//     rather than guesses.
//   - DevIssuer is a small built-in token issuer for development and the
//     embedded default setup. Its signing key (ES256 or EdDSA) is created on
//     first use and persisted with mode 0600; it serves OpenID discovery and
//     its JWKS over HTTP and can hand its key set to a Verifier in-process.
//
// Invariants: verification failures are reported with the exported sentinel
// errors (ErrMalformed, ErrAlgorithm, ErrSignature, ErrUnknownKey, ErrExpired,
// ErrNotYetValid, ErrAudience, ErrIssuer, ErrTooLarge) and stay distinct from
// failures to obtain key sets (ErrKeySet). Error strings, log records and the
// slog.LogValuer forms of Claims and Principal never contain the token.
// Verifier and DevIssuer are safe for concurrent use.
package identity
