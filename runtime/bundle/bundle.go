package bundle

import "time"

// FormatVersion is the bundle format this package reads and writes. A bundle
// with any other format version is rejected.
const FormatVersion = 1

// PayloadType is the DSSE payload type of a signed bundle.
const PayloadType = "application/vnd.gatehouse.bundle.v1+json"

// Bundle is a compiled, self-contained decision bundle.
type Bundle struct {
	Manifest Manifest `json:"manifest"`
	Policy   Policy   `json:"policy"`
}

// Manifest identifies a bundle and bounds its validity.
type Manifest struct {
	FormatVersion int `json:"format_version"`
	// Revision is the policy revision: the Git commit id the bundle was built
	// from, or "dir:" + SourceDigest for a build from a plain directory.
	Revision string `json:"revision"`
	// SourceDigest is "sha256:HEX" over the policy sources (file names and
	// contents, sorted by name).
	SourceDigest string `json:"source_digest"`
	// Serial increases with every published bundle; the runtime refuses a
	// bundle whose serial is not greater than the active one (rollback).
	Serial uint64 `json:"serial"`
	// NotBefore and Expires bound when the runtime accepts the bundle
	// (expiry protects against freeze attacks). UTC, second precision.
	NotBefore time.Time `json:"not_before"`
	Expires   time.Time `json:"expires"`
	// CompilerVersion is the version of the compiler that built the bundle.
	CompilerVersion string `json:"compiler_version"`
	// PolicyDigest is "sha256:HEX" over the canonical encoding of Policy;
	// verification recomputes it.
	PolicyDigest string `json:"policy_digest"`
}
