package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Encode returns the canonical encoding of b: compact JSON with fields in
// struct declaration order, map keys sorted, no HTML escaping, times in UTC
// (RFC 3339, second precision), followed by exactly one newline. The same
// bundle always encodes to the same bytes; these bytes are the payload that
// is signed.
//
// Encode validates b first (see Validate), including that
// b.Manifest.PolicyDigest equals PolicyDigest(&b.Policy), so it never
// produces bytes that Decode would reject. It does not modify b.
func Encode(b *Bundle) ([]byte, error) {
	if b == nil {
		return nil, reject(ErrMalformed, "nil bundle")
	}
	c := *b
	c.Manifest.NotBefore = c.Manifest.NotBefore.UTC()
	c.Manifest.Expires = c.Manifest.Expires.UTC()
	if err := c.validateStructure(); err != nil {
		return nil, err
	}
	return encodeChecked(&c)
}

// encodeChecked encodes a structurally valid bundle and checks its policy
// digest, hashing the policy's bytes inside the bundle encoding rather than
// encoding the policy a second time.
func encodeChecked(b *Bundle) ([]byte, error) {
	out, err := canonical(b)
	if err != nil {
		return nil, err
	}
	m, err := canonical(&b.Manifest)
	if err != nil {
		return nil, err
	}
	var digest string
	prefix := len(`{"manifest":`) + len(m) + len(`,"policy":`)
	if len(out) > prefix && bytes.HasPrefix(out, []byte(`{"manifest":`)) &&
		bytes.Equal(out[len(`{"manifest":`):prefix], append(m, `,"policy":`...)) {
		digest = digestOf(out[prefix : len(out)-1])
	} else if digest, err = PolicyDigest(&b.Policy); err != nil {
		return nil, err
	}
	if err := checkDigest(b.Manifest.PolicyDigest, digest); err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// PolicyDigest returns "sha256:HEX", the SHA-256 of the canonical encoding
// of p (as in Encode, but without the trailing newline).
func PolicyDigest(p *Policy) (string, error) {
	if p == nil {
		return "", reject(ErrMalformed, "nil policy")
	}
	enc, err := canonical(p)
	if err != nil {
		return "", err
	}
	return digestOf(enc), nil
}

// digestOf returns "sha256:HEX" of data.
func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// canonical encodes v as compact JSON without HTML escaping and without a
// trailing newline.
func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, reject(ErrMalformed, "encode: %v", err)
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // json.Encoder always appends '\n'
}
