package bundle_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// BenchmarkVerify measures Verifier.Verify on a signed 1,000-rule bundle:
// envelope parsing, signature check, strict decoding, validation, digest and
// canonical re-encoding.
func BenchmarkVerify(b *testing.B) {
	for _, kind := range []string{bundle.KeyTypeECDSAP256, bundle.KeyTypeEd25519} {
		b.Run(kind, func(b *testing.B) {
			k := newTestKey(b, kind)
			signed := sign(b, encode(b, testBundle(b, 1000, 1)), k)
			v := newVerifier(b, 1, k)
			b.SetBytes(int64(len(signed)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Verify(signed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode measures the canonical encoding of a 1,000-rule bundle.
func BenchmarkEncode(b *testing.B) {
	bb := testBundle(b, 1000, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bundle.Encode(bb); err != nil {
			b.Fatal(err)
		}
	}
}
