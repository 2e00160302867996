package bundle_test

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	ecA := newTestKey(t, bundle.KeyTypeECDSAP256)
	ecB := newTestKey(t, bundle.KeyTypeECDSAP256)
	edC := newTestKey(t, bundle.KeyTypeEd25519)
	stranger := newTestKey(t, bundle.KeyTypeECDSAP256)

	b := testBundle(t, 8, 7)
	bare := encode(t, b)
	signedA := sign(t, bare, ecA)
	signedC := sign(t, bare, edC)

	oneOfA := newVerifier(t, 1, ecA)
	oneOfC := newVerifier(t, 1, edC)
	twoOfThree := newVerifier(t, 2, ecA, ecB, edC)

	// Another bundle's payload under A's signature over the first one.
	other := testBundle(t, 8, 8)
	var envA bundle.Envelope
	if err := json.Unmarshal(signedA, &envA); err != nil {
		t.Fatal(err)
	}
	tamperedPayload := envelopeJSON(t, encode(t, other), envA.Signatures...)

	sigBytes, _ := base64.StdEncoding.DecodeString(envA.Signatures[0].Sig)
	sigBytes[len(sigBytes)/2] ^= 0x01
	tamperedSig := envelopeJSON(t, bare, bundle.Signature{KeyID: ecA.id, Sig: base64.StdEncoding.EncodeToString(sigBytes)})

	// Signed by B, but claiming to be A.
	wrongKey := envelopeJSON(t, bare, ecB.signRaw(t, bare, ecA.id))
	// No key id: tried against every configured key.
	noKeyID := envelopeJSON(t, bare, ecA.signRaw(t, bare, ""))
	noKeyIDWrong := envelopeJSON(t, bare, stranger.signRaw(t, bare, ""))

	sameKeyTwice := envelopeJSON(t, bare, ecA.signRaw(t, bare, ecA.id), ecA.signRaw(t, bare, ecA.id))
	sameKeyTwiceNoID := envelopeJSON(t, bare, ecA.signRaw(t, bare, ecA.id), ecA.signRaw(t, bare, ""))
	oneValidOneUnknown := envelopeJSON(t, bare, ecA.signRaw(t, bare, ecA.id), stranger.signRaw(t, bare, stranger.id))
	twoValidOneBad := envelopeJSON(t, bare, ecA.signRaw(t, bare, ecA.id), ecB.signRaw(t, bare, edC.id), edC.signRaw(t, bare, edC.id))

	unsignedEnv := envelopeJSON(t, bare)

	// Signed payloads that are bad in themselves.
	signedPayload := func(payload []byte) []byte { return envelopeJSON(t, payload, ecA.signRaw(t, payload, ecA.id)) }
	v2 := *b
	v2.Manifest.FormatVersion = 2
	badDigest := *b
	badDigest.Manifest.PolicyDigest = "sha256:" + strings.Repeat("0", 64)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, bare, "", "  "); err != nil {
		t.Fatal(err)
	}
	withUnknown := bytes.Replace(bare, []byte(`{"manifest":{`), []byte(`{"manifest":{"extra":1,`), 1)

	tests := []struct {
		name     string
		v        *bundle.Verifier
		data     []byte
		want     []error // all must match; nil means success
		wantKeys []string
	}{
		{name: "ecdsa round trip", v: oneOfA, data: signedA, wantKeys: []string{ecA.id}},
		{name: "ed25519 round trip", v: oneOfC, data: signedC, wantKeys: []string{edC.id}},
		{name: "signature without key id", v: oneOfA, data: noKeyID, wantKeys: []string{ecA.id}},
		{name: "tampered payload", v: oneOfA, data: tamperedPayload, want: []error{bundle.ErrBadSignature, bundle.ErrThreshold}},
		{name: "tampered signature", v: oneOfA, data: tamperedSig, want: []error{bundle.ErrBadSignature}},
		{name: "wrong key claims configured id", v: oneOfA, data: wrongKey, want: []error{bundle.ErrBadSignature}},
		{name: "no key id, no configured key verifies", v: oneOfA, data: noKeyIDWrong, want: []error{bundle.ErrBadSignature}},
		{name: "unknown key", v: oneOfA, data: sign(t, bare, stranger), want: []error{bundle.ErrUnknownKey, bundle.ErrThreshold}},
		{name: "ed25519 signature, ecdsa key configured", v: oneOfA, data: signedC, want: []error{bundle.ErrUnknownKey}},
		{name: "2 of 3 met", v: twoOfThree, data: sign(t, bare, ecA, edC), wantKeys: sortedIDs(ecA, edC)},
		{name: "3 of 3 signed, 2 needed", v: twoOfThree, data: sign(t, bare, ecB, edC, ecA), wantKeys: sortedIDs(ecA, ecB, edC)},
		{name: "2 of 3 below threshold", v: twoOfThree, data: signedA, want: []error{bundle.ErrThreshold}},
		{name: "same key twice counts once", v: twoOfThree, data: sameKeyTwice, want: []error{bundle.ErrThreshold}},
		{name: "same key twice, second without id", v: twoOfThree, data: sameKeyTwiceNoID, want: []error{bundle.ErrThreshold}},
		{name: "one valid one unknown below threshold", v: twoOfThree, data: oneValidOneUnknown, want: []error{bundle.ErrThreshold, bundle.ErrUnknownKey}},
		{name: "unknown extra signature ignored when threshold met", v: oneOfA, data: oneValidOneUnknown, wantKeys: []string{ecA.id}},
		{name: "bad extra signature ignored when threshold met", v: twoOfThree, data: twoValidOneBad, wantKeys: sortedIDs(ecA, edC)},
		{name: "unsigned envelope", v: oneOfA, data: unsignedEnv, want: []error{bundle.ErrUnsigned}},
		{name: "bare bundle", v: oneOfA, data: bare, want: []error{bundle.ErrUnsigned}},
		{name: "oversized", v: oneOfA, data: bytes.Repeat([]byte(" "), bundle.MaxEnvelopeSize+1), want: []error{bundle.ErrTooLarge}},
		{name: "malformed JSON", v: oneOfA, data: signedA[:len(signedA)/2], want: []error{bundle.ErrMalformed}},
		{name: "not an object", v: oneOfA, data: []byte(`["payloadType"]`), want: []error{bundle.ErrMalformed}},
		{name: "empty input", v: oneOfA, data: nil, want: []error{bundle.ErrMalformed}},
		{name: "unknown envelope field", v: oneOfA, data: bytes.Replace(signedA, []byte(`{"payloadType"`), []byte(`{"x":1,"payloadType"`), 1), want: []error{bundle.ErrMalformed}},
		{name: "trailing garbage", v: oneOfA, data: append(bytes.Clone(signedA), "{}"...), want: []error{bundle.ErrMalformed}},
		{name: "trailing whitespace allowed", v: oneOfA, data: append(bytes.Clone(signedA), " \n\t"...), wantKeys: []string{ecA.id}},
		{name: "wrong payload type", v: oneOfA, data: bytes.Replace(signedA, []byte(bundle.PayloadType), []byte("application/json"), 1), want: []error{bundle.ErrMalformed}},
		{name: "payload not base64", v: oneOfA, data: envelopeJSON(t, nil, bundle.Signature{}), want: []error{bundle.ErrMalformed}},
		{name: "signed wrong format version", v: oneOfA, data: signedPayload(rawJSON(t, &v2)), want: []error{bundle.ErrFormatVersion}},
		{name: "signed digest mismatch", v: oneOfA, data: signedPayload(rawJSON(t, &badDigest)), want: []error{bundle.ErrDigestMismatch}},
		{name: "signed unknown field", v: oneOfA, data: signedPayload(withUnknown), want: []error{bundle.ErrMalformed}},
		{name: "signed trailing garbage", v: oneOfA, data: signedPayload(append(bytes.Clone(bare), "x"...)), want: []error{bundle.ErrMalformed}},
		{name: "signed non-canonical payload", v: oneOfA, data: signedPayload(pretty.Bytes()), want: []error{bundle.ErrMalformed}},
		{name: "signed payload not a bundle", v: oneOfA, data: signedPayload([]byte("hello")), want: []error{bundle.ErrMalformed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.v.VerifyDetailed(tc.data)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Bundle.Manifest.Serial != b.Manifest.Serial || len(got.Bundle.Policy.Rules) != len(b.Policy.Rules) {
					t.Fatalf("Verify returned a different bundle: %+v", got.Bundle.Manifest)
				}
				if strings.Join(got.KeyIDs, ",") != strings.Join(tc.wantKeys, ",") {
					t.Fatalf("KeyIDs = %v, want %v", got.KeyIDs, tc.wantKeys)
				}
				if !strings.HasPrefix(got.Digest, "sha256:") || len(got.Digest) != 71 {
					t.Fatalf("Digest = %q", got.Digest)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the input, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q is not %v", err, w)
				}
			}
			if !bundle.IsVerificationError(err) {
				t.Errorf("error %q is not a *VerificationError", err)
			}
		})
	}
}

func sortedIDs(keys ...*testKey) []string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.id)
	}
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if ids[j] < ids[i] {
				ids[i], ids[j] = ids[j], ids[i]
			}
		}
	}
	return ids
}

func TestVerifyInsecure(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, bundle.KeyTypeEd25519)
	b := testBundle(t, 3, 1)
	bare := encode(t, b)

	if _, err := bundle.NewVerifier(nil, 1); !errors.Is(err, bundle.ErrNoKeys) {
		t.Fatalf("NewVerifier without keys: err = %v, want ErrNoKeys", err)
	}
	v, err := bundle.NewVerifier(nil, 0, bundle.AllowUnsigned())
	if err != nil {
		t.Fatal(err)
	}
	if !v.Insecure() {
		t.Fatal("Insecure() = false")
	}
	for name, data := range map[string][]byte{
		"bare bundle":      bare,
		"unsigned":         envelopeJSON(t, bare),
		"signed (ignored)": sign(t, bare, k),
	} {
		got, err := v.Verify(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Manifest.Serial != 1 {
			t.Fatalf("%s: serial %d", name, got.Manifest.Serial)
		}
	}
	// Insecure mode still decodes strictly.
	if _, err := v.Verify(append(bytes.Clone(bare), "x"...)); !errors.Is(err, bundle.ErrMalformed) {
		t.Fatalf("insecure, trailing garbage: err = %v, want ErrMalformed", err)
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, bare, "", " ")
	if _, err := v.Verify(pretty.Bytes()); !errors.Is(err, bundle.ErrMalformed) {
		t.Fatalf("insecure, non-canonical: err = %v, want ErrMalformed", err)
	}

	// AllowUnsigned with keys: signatures still required.
	v, err = bundle.NewVerifier([]crypto.PublicKey{k.pub}, 1, bundle.AllowUnsigned())
	if err != nil {
		t.Fatal(err)
	}
	if v.Insecure() {
		t.Fatal("Insecure() = true with a key")
	}
	if _, err := v.Verify(bare); !errors.Is(err, bundle.ErrUnsigned) {
		t.Fatalf("AllowUnsigned with keys, bare bundle: err = %v, want ErrUnsigned", err)
	}
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	a := newTestKey(t, bundle.KeyTypeECDSAP256)
	c := newTestKey(t, bundle.KeyTypeEd25519)
	tests := []struct {
		name      string
		keys      []crypto.PublicKey
		threshold int
		wantErr   bool
		wantKeys  int
	}{
		{name: "one key", keys: []crypto.PublicKey{a.pub}, threshold: 1, wantKeys: 1},
		{name: "duplicate key counts once", keys: []crypto.PublicKey{a.pub, a.pub, c.pub}, threshold: 2, wantKeys: 2},
		{name: "threshold above distinct keys", keys: []crypto.PublicKey{a.pub, a.pub}, threshold: 2, wantErr: true},
		{name: "zero threshold", keys: []crypto.PublicKey{a.pub}, threshold: 0, wantErr: true},
		{name: "nil key", keys: []crypto.PublicKey{nil}, threshold: 1, wantErr: true},
		{name: "unsupported key type", keys: []crypto.PublicKey{"not a key"}, threshold: 1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := bundle.NewVerifier(tc.keys, tc.threshold)
			if tc.wantErr {
				if err == nil {
					t.Fatal("NewVerifier succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(v.KeyIDs()); got != tc.wantKeys {
				t.Fatalf("KeyIDs: %d, want %d", got, tc.wantKeys)
			}
			if v.Threshold() != tc.threshold {
				t.Fatalf("Threshold() = %d", v.Threshold())
			}
		})
	}
}

// TestSigstoreInterop checks the envelope against sigstore's own DSSE
// verifiers: the signatures are standard DSSE over PAE.
func TestSigstoreInterop(t *testing.T) {
	t.Parallel()
	a := newTestKey(t, bundle.KeyTypeECDSAP256)
	c := newTestKey(t, bundle.KeyTypeEd25519)
	signed := sign(t, encode(t, testBundle(t, 2, 1)), a, c)

	// sigstore's verifiers match key ids in their own (SSH fingerprint)
	// form, so hand them the signatures without ids.
	var env bundle.Envelope
	if err := json.Unmarshal(signed, &env); err != nil {
		t.Fatal(err)
	}
	for i := range env.Signatures {
		env.Signatures[i].KeyID = ""
	}
	stripped, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var decoded []byte
	mv := dsse.WrapMultiVerifierWithOpts(bundle.PayloadType, 2, []signature.Verifier{a.sv, c.sv}, dsse.WithDecodedPayload(&decoded))
	if err := mv.VerifySignature(bytes.NewReader(stripped), nil); err != nil {
		t.Fatalf("sigstore multi verifier: %v", err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	if !bytes.Equal(decoded, payload) {
		t.Fatal("sigstore decoded a different payload")
	}
	// And an envelope produced by sigstore's signer verifies here.
	byLib, err := dsse.WrapSignerVerifier(a.sv, bundle.PayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newVerifier(t, 1, a).Verify(byLib); err != nil {
		t.Fatalf("envelope from sigstore signer: %v", err)
	}
}
