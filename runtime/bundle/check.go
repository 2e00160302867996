package bundle

import "time"

// DefaultClockSkew is the clock difference Check tolerates by default
// between the gateway and the machine that set the validity window.
const DefaultClockSkew = time.Minute

// CheckOption configures Check.
type CheckOption func(*checkOptions)

type checkOptions struct {
	skew time.Duration
}

// WithClockSkew sets the tolerated clock skew (negative counts as zero).
func WithClockSkew(d time.Duration) CheckOption {
	return func(o *checkOptions) { o.skew = max(d, 0) }
}

// Check applies the activation rules to a verified candidate: the format
// version; rollback protection against active (nil when no bundle is
// active): the candidate's serial must be greater than active.Serial
// (ErrRollback), and a candidate with the same serial and the same policy
// digest is the active bundle again (ErrNotNewer, which also wraps
// ErrRollback); the validity window with skew s (DefaultClockSkew unless
// set): now+s >= NotBefore (else ErrNotYetValid) and now-s < Expires (else
// ErrExpired, freeze protection).
//
// Every error is a *VerificationError. Check is a pure function.
func Check(candidate *Bundle, active *Manifest, now time.Time, opts ...CheckOption) error {
	o := checkOptions{skew: DefaultClockSkew}
	for _, opt := range opts {
		opt(&o)
	}
	if candidate == nil {
		return reject(ErrMalformed, "nil bundle")
	}
	m := &candidate.Manifest
	if m.FormatVersion != FormatVersion {
		return reject(ErrFormatVersion, "format version %d, want %d", m.FormatVersion, FormatVersion)
	}
	if active != nil {
		switch {
		case m.Serial == active.Serial && m.PolicyDigest == active.PolicyDigest:
			return &VerificationError{Err: wrap2(ErrNotNewer, ErrRollback,
				"serial %d (revision %s) is already active", m.Serial, m.Revision)}
		case m.Serial <= active.Serial:
			return reject(ErrRollback, "serial %d (revision %s) is not greater than the active serial %d (revision %s)",
				m.Serial, m.Revision, active.Serial, active.Revision)
		}
	}
	if now.Add(o.skew).Before(m.NotBefore) {
		return reject(ErrNotYetValid, "not before %s, now %s", m.NotBefore.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !now.Add(-o.skew).Before(m.Expires) {
		return reject(ErrExpired, "expired at %s, now %s", m.Expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}
