package bundle

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every rejection returned by this package is a
// *VerificationError that wraps one (sometimes two) of these; callers branch
// with errors.Is.
var (
	// ErrUnsigned: keys are configured but the file carries no signature
	// (a bare bundle, or an envelope with an empty signature list).
	ErrUnsigned = errors.New("bundle is not signed")
	// ErrUnknownKey: no signature was made by a configured key, and at least
	// one signature names a key id that is not configured.
	ErrUnknownKey = errors.New("bundle signed by unknown key")
	// ErrBadSignature: a signature that claims a configured key (or names no
	// key) does not verify over the payload.
	ErrBadSignature = errors.New("bad bundle signature")
	// ErrThreshold: fewer distinct configured keys signed than the threshold
	// requires.
	ErrThreshold = errors.New("bundle signatures below threshold")
	// ErrDigestMismatch: the manifest's policy digest does not match the
	// policy it ships.
	ErrDigestMismatch = errors.New("bundle policy digest mismatch")
	// ErrFormatVersion: the bundle's format version is not FormatVersion.
	ErrFormatVersion = errors.New("unsupported bundle format version")
	// ErrRollback: the candidate's serial is lower than the active bundle's,
	// or equal to it with different content.
	ErrRollback = errors.New("bundle rollback")
	// ErrNotNewer: the candidate is the active bundle again (same serial,
	// same policy digest). Errors carrying ErrNotNewer also carry
	// ErrRollback, so a caller that ignores ErrNotNewer still refuses the
	// candidate; a reload loop should test ErrNotNewer first and treat it as
	// "nothing to do".
	ErrNotNewer = errors.New("bundle is not newer than the active bundle")
	// ErrExpired: the bundle's expiry has passed (freeze protection).
	ErrExpired = errors.New("bundle expired")
	// ErrNotYetValid: the bundle's not-before time has not been reached.
	ErrNotYetValid = errors.New("bundle not yet valid")
	// ErrTooLarge: the input exceeds MaxEnvelopeSize or MaxBundleSize.
	ErrTooLarge = errors.New("bundle too large")
	// ErrMalformed: the input is not a well-formed bundle or envelope
	// (syntax, unknown fields, trailing data, non-canonical payload,
	// invalid values, unresolved references).
	ErrMalformed = errors.New("malformed bundle")
)

// VerificationError reports that a candidate bundle was rejected: its
// content, signatures or validity do not meet the rules of this package. It
// is distinct from I/O and transport failures, which are returned unwrapped
// by the code that reads the bytes. Err wraps one or more sentinels.
type VerificationError struct {
	Err error
}

func (e *VerificationError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error, so errors.Is finds the sentinels.
func (e *VerificationError) Unwrap() error { return e.Err }

// reject builds a *VerificationError wrapping sentinel with a message.
func reject(sentinel error, format string, args ...any) error {
	return &VerificationError{Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

// IsVerificationError reports whether err is (or wraps) a
// *VerificationError, that is, a rejection of the input rather than an I/O
// failure.
func IsVerificationError(err error) bool {
	var ve *VerificationError
	return errors.As(err, &ve)
}

// wrap2 builds an error wrapping two sentinels with a message.
func wrap2(first, second error, format string, args ...any) error {
	return fmt.Errorf("%w (%w): %s", first, second, fmt.Sprintf(format, args...))
}
