package bundle_test

import (
	"bytes"
	"crypto"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// FuzzDecode: Decode never panics; an error is a rejection wrapping a
// sentinel; anything accepted re-encodes and decodes again.
func FuzzDecode(f *testing.F) {
	good := encode(f, testBundle(f, 3, 1))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(append(bytes.Clone(good), "{}"...))
	f.Add(bytes.Replace(good, []byte(`"format_version":1`), []byte(`"format_version":2`), 1))
	f.Add([]byte(`{"manifest":{"format_version":1},"policy":{}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"manifest":{"format_version":1e999}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundle.Decode(data)
		if err != nil {
			if !bundle.IsVerificationError(err) {
				t.Fatalf("error is not a VerificationError: %v", err)
			}
			return
		}
		enc, err := bundle.Encode(b)
		if err != nil {
			t.Fatalf("accepted bundle does not encode: %v", err)
		}
		if _, err := bundle.Decode(enc); err != nil {
			t.Fatalf("re-encoded bundle does not decode: %v", err)
		}
	})
}

// FuzzVerify: Verifier.Verify never panics; an error is a rejection; an
// accepted file carries a bundle whose canonical encoding is stable.
func FuzzVerify(f *testing.F) {
	k := newTestKey(f, bundle.KeyTypeEd25519)
	bare := encode(f, testBundle(f, 3, 1))
	signed := sign(f, bare, k)
	f.Add(signed)
	f.Add(bare)
	f.Add(envelopeJSON(f, bare))
	f.Add(envelopeJSON(f, bare, k.signRaw(f, bare, "")))
	f.Add(signed[:len(signed)-20])
	f.Add([]byte(`{"payloadType":"application/vnd.gatehouse.bundle.v1+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`))
	v, err := bundle.NewVerifier([]crypto.PublicKey{k.pub}, 1)
	if err != nil {
		f.Fatal(err)
	}
	insecure, err := bundle.NewVerifier(nil, 0, bundle.AllowUnsigned())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ver := range []*bundle.Verifier{v, insecure} {
			b, err := ver.Verify(data)
			if err != nil {
				if !bundle.IsVerificationError(err) {
					t.Fatalf("error is not a VerificationError: %v", err)
				}
				if errors.Is(err, bundle.ErrNotNewer) {
					t.Fatalf("Verify returned an activation error: %v", err)
				}
				continue
			}
			if b == nil {
				t.Fatal("Verify returned neither bundle nor error")
			}
			if _, err := bundle.Encode(b); err != nil {
				t.Fatalf("verified bundle does not encode: %v", err)
			}
		}
	})
}
