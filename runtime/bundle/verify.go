package bundle

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
)

// ErrNoKeys is returned by NewVerifier when no keys are given and
// AllowUnsigned is not set.
var ErrNoKeys = errors.New("no verification keys configured (unsigned bundles need the explicit AllowUnsigned option)")

// VerifierOption configures NewVerifier.
type VerifierOption func(*Verifier)

// AllowUnsigned lets NewVerifier create a Verifier without keys, which then
// accepts bundles without checking any signature (insecure mode). It has no
// effect when keys are given: signatures are then always required.
func AllowUnsigned() VerifierOption {
	return func(v *Verifier) { v.allowUnsigned = true }
}

// Verifier checks signed bundle files against a fixed set of public keys
// with a k-of-n threshold. It is immutable and safe for concurrent use.
type Verifier struct {
	keys          map[string]signature.Verifier // by key id
	ids           []string                      // sorted key ids
	threshold     int
	allowUnsigned bool
}

// NewVerifier returns a Verifier that requires valid signatures by at least
// threshold distinct keys among keys (ECDSA P-256 or Ed25519). The same key
// given twice counts once; threshold must be between 1 and the number of
// distinct keys. With no keys, NewVerifier fails with ErrNoKeys unless
// AllowUnsigned is given.
func NewVerifier(keys []crypto.PublicKey, threshold int, opts ...VerifierOption) (*Verifier, error) {
	v := &Verifier{keys: make(map[string]signature.Verifier, len(keys))}
	for _, o := range opts {
		o(v)
	}
	for i, k := range keys {
		id, err := KeyID(k)
		if err != nil {
			return nil, fmt.Errorf("verification key %d: %w", i, err)
		}
		if _, dup := v.keys[id]; dup {
			continue
		}
		sv, err := signature.LoadVerifier(k, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("verification key %d: %w", i, err)
		}
		v.keys[id] = sv
		v.ids = append(v.ids, id)
	}
	slices.Sort(v.ids)
	if len(v.keys) == 0 {
		if !v.allowUnsigned {
			return nil, ErrNoKeys
		}
		return v, nil
	}
	v.allowUnsigned = false
	if threshold < 1 || threshold > len(v.keys) {
		return nil, fmt.Errorf("threshold %d: must be between 1 and the number of distinct keys (%d)", threshold, len(v.keys))
	}
	v.threshold = threshold
	return v, nil
}

// KeyIDs returns the ids of the configured keys, sorted.
func (v *Verifier) KeyIDs() []string { return slices.Clone(v.ids) }

// Threshold returns the number of distinct keys that must sign.
func (v *Verifier) Threshold() int { return v.threshold }

// Insecure reports whether the Verifier accepts unsigned bundles (no keys,
// AllowUnsigned).
func (v *Verifier) Insecure() bool { return len(v.keys) == 0 }

// Verified is the result of a successful verification.
type Verified struct {
	Bundle *Bundle
	// KeyIDs are the configured keys whose signatures verified, sorted;
	// empty in insecure mode.
	KeyIDs []string
	// Digest is "sha256:HEX" of the payload (the canonical bundle bytes).
	Digest string
}

// Verify checks a bundle file and returns the bundle it carries. See
// VerifyDetailed.
func (v *Verifier) Verify(data []byte) (*Bundle, error) {
	r, err := v.VerifyDetailed(data)
	if err != nil {
		return nil, err
	}
	return r.Bundle, nil
}

// VerifyDetailed checks a bundle file, in this order: size at most
// MaxEnvelopeSize (ErrTooLarge); a DSSE envelope parsed strictly
// (ErrMalformed), or a bare bundle, which is accepted only in insecure mode
// (ErrUnsigned); at least one signature (ErrUnsigned); valid signatures by
// at least Threshold distinct configured keys over PAE(PayloadType,
// payload), where a second signature by the same key counts once and
// invalid or foreign signatures are ignored if the threshold is met anyway
// (otherwise ErrThreshold, together with ErrBadSignature if a signature
// claiming a configured key, or naming none, failed, and with ErrUnknownKey
// if a signature named a key that is not configured); then the payload is
// decoded like Decode (ErrTooLarge, ErrMalformed, ErrFormatVersion,
// ErrDigestMismatch) and must be in canonical encoding (ErrMalformed).
//
// Signatures are checked before the payload is parsed. In insecure mode the
// signature steps are skipped. Every error is a *VerificationError. Verify
// does not apply the activation rules: call Check next.
func (v *Verifier) VerifyDetailed(data []byte) (*Verified, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, reject(ErrTooLarge, "%d bytes exceeds the limit of %d", len(data), MaxEnvelopeSize)
	}
	isEnv, err := isEnvelope(data)
	if err != nil {
		return nil, err
	}
	var payload []byte
	var keyIDs []string
	if !isEnv {
		if !v.Insecure() {
			return nil, reject(ErrUnsigned, "a bare bundle carries no signature")
		}
		payload = data
	} else {
		env, err := ParseEnvelope(data)
		if err != nil {
			return nil, err
		}
		payload, err = env.DecodePayload()
		if err != nil {
			return nil, err
		}
		if !v.Insecure() {
			keyIDs, err = v.checkSignatures(env, payload)
			if err != nil {
				return nil, err
			}
		}
	}
	// Decode and Validate, sharing one encoding between the digest check
	// and the canonical-form check.
	b, err := decodeUnchecked(payload)
	if err != nil {
		return nil, err
	}
	if err := b.validateStructure(); err != nil {
		return nil, err
	}
	canon, err := encodeChecked(b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, payload) {
		return nil, reject(ErrMalformed, "payload is not in canonical encoding")
	}
	return &Verified{Bundle: b, KeyIDs: keyIDs, Digest: digestOf(payload)}, nil
}

// checkSignatures returns the sorted ids of the configured keys whose
// signatures verify, or an error if they are fewer than the threshold.
func (v *Verifier) checkSignatures(env *Envelope, payload []byte) ([]string, error) {
	if len(env.Signatures) == 0 {
		return nil, reject(ErrUnsigned, "the envelope has no signatures")
	}
	msg := pae(env.PayloadType, payload)
	verified := make(map[string]bool, len(v.keys))
	var bad, unknown []string
	try := func(id string, sig []byte) bool {
		return v.keys[id].VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil
	}
	for i, s := range env.Signatures {
		sig, err := decodeBase64(s.Sig)
		if err != nil {
			return nil, reject(ErrMalformed, "signature %d is not base64", i)
		}
		if s.KeyID == "" {
			ok := false
			for _, id := range v.ids {
				if !verified[id] && try(id, sig) {
					verified[id], ok = true, true
					break
				}
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("#%d (no key id)", i))
			}
			continue
		}
		if _, known := v.keys[s.KeyID]; !known {
			unknown = append(unknown, fmt.Sprintf("%q", short(s.KeyID)))
			continue
		}
		if verified[s.KeyID] {
			continue // a key counts once
		}
		if try(s.KeyID, sig) {
			verified[s.KeyID] = true
		} else {
			bad = append(bad, short(s.KeyID))
		}
	}
	ids := make([]string, 0, len(verified))
	for id := range verified {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) >= v.threshold {
		return ids, nil
	}
	detail := fmt.Sprintf("%d of %d required signatures verified", len(ids), v.threshold)
	if len(bad) > 0 {
		detail += "; invalid: " + strings.Join(bad, ", ")
	}
	if len(unknown) > 0 {
		detail += "; unknown keys: " + strings.Join(unknown, ", ")
	}
	switch {
	case len(bad) > 0:
		return nil, &VerificationError{Err: wrap2(ErrBadSignature, ErrThreshold, "%s", detail)}
	case len(unknown) > 0:
		return nil, &VerificationError{Err: wrap2(ErrUnknownKey, ErrThreshold, "%s", detail)}
	default:
		return nil, reject(ErrThreshold, "%s", detail)
	}
}

// short abbreviates a key id for messages.
func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
