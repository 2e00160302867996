// Package bundle defines the compiled decision bundle, the contract between
// the policy compiler and the runtime, and owns every rule by which the
// runtime accepts or rejects a candidate bundle.
//
// # Data model
//
// A Bundle is a Manifest (format version, revision, source digest, serial,
// validity window, compiler version, policy digest) plus a Policy
// (identities, groups, resources, classifiers, rules, settings); see
// bundle.go and policy.go for the field semantics.
//
// # Encoding
//
// Encode produces the canonical encoding: compact JSON, fields in struct
// order, sorted map keys, no HTML escaping, UTC times with second precision,
// one trailing newline. The same bundle always gives the same bytes.
// PolicyDigest is "sha256:HEX" over the canonical encoding of the Policy
// alone. Decode is strict (size bound, no unknown fields, no trailing data)
// and validates the bundle (Bundle.Validate).
//
// # Signing
//
// A signed bundle file is a DSSE envelope (Envelope) whose payload is the
// canonical bundle and whose payload type is PayloadType. Sign appends one
// signature per key, with the key id KeyID (hex SHA-256 of the PKIX DER
// public key). Keys are ECDSA P-256 or Ed25519, stored as cosign-compatible
// encrypted PEM (GenerateKey, LoadPrivateKey, LoadPublicKey).
//
// # Acceptance
//
// The runtime accepts a candidate in two steps, both pure functions of their
// inputs: Verifier.Verify (size, envelope, k-of-n signatures over distinct
// configured keys, strict decoding, digest, canonical form) and then Check
// (format version, serial against the active bundle, not-before and expiry
// with clock skew). Every rejection is a *VerificationError wrapping one of
// the exported sentinels (ErrUnsigned, ErrUnknownKey, ErrBadSignature,
// ErrThreshold, ErrDigestMismatch, ErrFormatVersion, ErrRollback,
// ErrNotNewer, ErrExpired, ErrNotYetValid, ErrTooLarge, ErrMalformed);
// callers use errors.Is. No function panics on any input.
//
// The package is a leaf: it imports only the standard library and sigstore,
// does no I/O beyond ReadAll on a caller's reader, keeps no global state and
// does not log. Verifier is immutable and safe for concurrent use.
package bundle
