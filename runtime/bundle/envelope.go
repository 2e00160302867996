package bundle

import (
	"encoding/base64"
	"strconv"
)

// MaxSignatures bounds the signatures an envelope may carry; more is
// rejected as malformed (it bounds verification work).
const MaxSignatures = 32

// maxKeyIDLen bounds a signature's key id.
const maxKeyIDLen = 256

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse)
// in its JSON wire form. A signed bundle file is an Envelope whose payload
// is the canonical bundle encoding and whose payload type is PayloadType.
type Envelope struct {
	PayloadType string `json:"payloadType"`
	// Payload is the base64 (standard alphabet, padded) of the payload
	// bytes. When reading, the URL-safe alphabet is accepted too.
	Payload    string      `json:"payload"`
	Signatures []Signature `json:"signatures"`
}

// Signature is one DSSE signature over PAE(payloadType, payload).
type Signature struct {
	// KeyID is the lower-case hex SHA-256 of the signer's public key in
	// PKIX DER form (see KeyID). Empty is accepted when reading: such a
	// signature is tried against every configured key.
	KeyID string `json:"keyid"`
	// Sig is the base64 signature: ASN.1 DER for ECDSA P-256 over SHA-256,
	// 64 raw bytes for Ed25519.
	Sig string `json:"sig"`
}

// NewEnvelope returns an unsigned envelope carrying the canonical encoding
// of b.
func NewEnvelope(b *Bundle) (*Envelope, error) {
	payload, err := Encode(b)
	if err != nil {
		return nil, err
	}
	return &Envelope{
		PayloadType: PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []Signature{},
	}, nil
}

// ParseEnvelope parses a DSSE envelope strictly: at most MaxEnvelopeSize
// bytes, one JSON object, no unknown fields, payload type PayloadType, a
// payload that decodes, at most MaxSignatures signatures, each with a
// base64 signature and a key id of at most 256 bytes. It checks no
// signature. Every error is a *VerificationError.
func ParseEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, reject(ErrTooLarge, "%d bytes exceeds the limit of %d", len(data), MaxEnvelopeSize)
	}
	var env Envelope
	if err := decodeStrict(data, &env); err != nil {
		return nil, err
	}
	if env.PayloadType != PayloadType {
		return nil, reject(ErrMalformed, "envelope payload type %q, want %q", env.PayloadType, PayloadType)
	}
	if env.Payload == "" {
		return nil, reject(ErrMalformed, "envelope has an empty payload")
	}
	if len(env.Signatures) > MaxSignatures {
		return nil, reject(ErrMalformed, "envelope has %d signatures, at most %d allowed", len(env.Signatures), MaxSignatures)
	}
	for i, s := range env.Signatures {
		if len(s.KeyID) > maxKeyIDLen {
			return nil, reject(ErrMalformed, "signature %d: key id longer than %d bytes", i, maxKeyIDLen)
		}
		if _, err := decodeBase64(s.Sig); err != nil || s.Sig == "" {
			return nil, reject(ErrMalformed, "signature %d: sig is not base64", i)
		}
	}
	if env.Signatures == nil {
		env.Signatures = []Signature{}
	}
	return &env, nil
}

// DecodePayload returns the payload bytes. A payload over MaxBundleSize is
// rejected with ErrTooLarge.
func (e *Envelope) DecodePayload() ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(e.Payload)) > MaxBundleSize+2 {
		return nil, reject(ErrTooLarge, "payload exceeds %d bytes", MaxBundleSize)
	}
	p, err := decodeBase64(e.Payload)
	if err != nil {
		return nil, reject(ErrMalformed, "envelope payload is not base64")
	}
	if len(p) > MaxBundleSize {
		return nil, reject(ErrTooLarge, "payload of %d bytes exceeds %d", len(p), MaxBundleSize)
	}
	return p, nil
}

// Marshal returns the envelope as compact JSON followed by a newline.
func (e *Envelope) Marshal() ([]byte, error) {
	c := *e
	if c.Signatures == nil {
		c.Signatures = []Signature{}
	}
	out, err := canonical(&c)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.URLEncoding.DecodeString(s)
	}
	return b, err
}

// pae is the DSSE v1 pre-authentication encoding:
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
func pae(payloadType string, payload []byte) []byte {
	out := make([]byte, 0, len(payload)+len(payloadType)+48)
	out = append(out, "DSSEv1 "...)
	out = strconv.AppendInt(out, int64(len(payloadType)), 10)
	out = append(out, ' ')
	out = append(out, payloadType...)
	out = append(out, ' ')
	out = strconv.AppendInt(out, int64(len(payload)), 10)
	out = append(out, ' ')
	return append(out, payload...)
}
