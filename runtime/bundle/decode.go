package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

const (
	// MaxBundleSize bounds the canonical bundle (the envelope payload, or a
	// bare bundle file). Larger input is rejected with ErrTooLarge.
	MaxBundleSize = 64 << 20
	// MaxEnvelopeSize bounds a bundle file: room for the base64 payload of
	// a MaxBundleSize bundle plus signatures.
	MaxEnvelopeSize = (MaxBundleSize+2)/3*4 + 1<<20
)

// Decode parses a bare bundle strictly and validates it: input at most
// MaxBundleSize bytes, exactly one JSON object (only whitespace may follow),
// no unknown fields, format_version equal to FormatVersion, and everything
// Validate checks, including the policy digest. It does not require the
// input to be in canonical form (Verifier.Verify does).
//
// Every error is a *VerificationError. Decode never panics.
func Decode(data []byte) (*Bundle, error) {
	b, err := decodeUnchecked(data)
	if err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeUnchecked is Decode without Validate.
func decodeUnchecked(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, reject(ErrTooLarge, "%d bytes exceeds the limit of %d", len(data), MaxBundleSize)
	}
	var b Bundle
	if err := decodeStrict(data, &b); err != nil {
		// A bundle of another format version may well have other fields:
		// report the version rather than the field.
		if v, ok := probeFormatVersion(data); ok && v != FormatVersion {
			return nil, reject(ErrFormatVersion, "format version %d, want %d", v, FormatVersion)
		}
		return nil, err
	}
	return &b, nil
}

// ReadAll reads r to the end, at most MaxEnvelopeSize bytes. Longer input is
// a *VerificationError wrapping ErrTooLarge; read failures are returned as
// they are (wrapped, not as a VerificationError).
func ReadAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxEnvelopeSize+1))
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	if len(data) > MaxEnvelopeSize {
		return nil, reject(ErrTooLarge, "more than %d bytes", MaxEnvelopeSize)
	}
	return data, nil
}

// DecodeFile reads a bundle file that is either a bare bundle or a DSSE
// envelope (signed or not) and returns the decoded bundle and, for an
// envelope, the envelope. It does NOT verify signatures: use it to inspect
// or sign a file, never to accept one (use Verifier.Verify).
func DecodeFile(data []byte) (*Bundle, *Envelope, error) {
	isEnv, err := isEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	if !isEnv {
		b, err := Decode(data)
		return b, nil, err
	}
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	payload, err := env.DecodePayload()
	if err != nil {
		return nil, nil, err
	}
	b, err := Decode(payload)
	if err != nil {
		return nil, nil, err
	}
	return b, env, nil
}

// decodeStrict decodes exactly one JSON object from data into v, rejecting
// unknown fields and anything but whitespace after the object.
func decodeStrict(data []byte, v any) error {
	rest := trimJSONSpace(data)
	if len(rest) == 0 || rest[0] != '{' {
		return reject(ErrMalformed, "not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return reject(ErrMalformed, "%v", describeJSONError(err))
	}
	if off := dec.InputOffset(); off < 0 || off > int64(len(data)) || len(trimJSONSpace(data[off:])) != 0 {
		return reject(ErrMalformed, "trailing data after the JSON object")
	}
	return nil
}

// describeJSONError turns a decoder error into a message without Go type
// names where that helps.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: wrong JSON type %s at byte %d", te.Field, te.Value, te.Offset)
	}
	return err.Error()
}

// probeFormatVersion leniently reads manifest.format_version.
func probeFormatVersion(data []byte) (int, bool) {
	var probe struct {
		Manifest struct {
			FormatVersion *int `json:"format_version"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal(data, &probe); err != nil || probe.Manifest.FormatVersion == nil {
		return 0, false
	}
	return *probe.Manifest.FormatVersion, true
}

// isEnvelope reports whether data is a JSON object whose top-level keys
// include "payloadType" (a DSSE envelope) rather than "manifest" or "policy"
// (a bare bundle).
func isEnvelope(data []byte) (bool, error) {
	if len(data) > MaxEnvelopeSize {
		return false, reject(ErrTooLarge, "%d bytes exceeds the limit of %d", len(data), MaxEnvelopeSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return false, reject(ErrMalformed, "not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false, reject(ErrMalformed, "%v", describeJSONError(err))
		}
		key, _ := tok.(string)
		switch key {
		case "payloadType", "payload", "signatures":
			return true, nil
		case "manifest", "policy":
			return false, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false, reject(ErrMalformed, "%v", describeJSONError(err))
		}
	}
	return false, reject(ErrMalformed, "neither a bundle nor a signed envelope")
}

// trimJSONSpace removes leading and trailing JSON whitespace.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
