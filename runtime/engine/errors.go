package engine

import "errors"

// Sentinel errors returned (wrapped) by New. Callers branch with errors.Is.
var (
	// ErrNilBundle: New was given no bundle.
	ErrNilBundle = errors.New("no bundle")
	// ErrInvalidRule: a rule cannot be evaluated (unknown effect, more than
	// one protocol match, bad expiry, bad time window, bad pattern, mask rule
	// without a mask, approve rule without an approval).
	ErrInvalidRule = errors.New("invalid rule")
)
