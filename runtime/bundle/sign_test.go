package bundle_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestSign(t *testing.T) {
	t.Parallel()
	a := newTestKey(t, bundle.KeyTypeECDSAP256)
	c := newTestKey(t, bundle.KeyTypeEd25519)
	bare := encode(t, testBundle(t, 3, 4))
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, bare, "", "  "); err != nil {
		t.Fatal(err)
	}
	signedA := sign(t, bare, a)

	tests := []struct {
		name    string
		in      []byte
		key     *testKey
		wantErr bool
		wantIDs []string
	}{
		{name: "bare bundle", in: bare, key: a, wantIDs: []string{a.id}},
		{name: "pretty bare bundle is canonicalised", in: pretty.Bytes(), key: a, wantIDs: []string{a.id}},
		{name: "unsigned envelope", in: envelopeJSON(t, bare), key: c, wantIDs: []string{c.id}},
		{name: "unsigned envelope, pretty payload", in: envelopeJSON(t, pretty.Bytes()), key: c, wantIDs: []string{c.id}},
		{name: "second signer appends", in: signedA, key: c, wantIDs: []string{a.id, c.id}},
		{name: "same key twice", in: signedA, key: a, wantErr: true},
		{name: "signed, non-canonical payload", in: envelopeJSON(t, pretty.Bytes(), a.signRaw(t, pretty.Bytes(), a.id)), key: c, wantErr: true},
		{name: "invalid bundle", in: []byte(`{"manifest":{}}`), key: a, wantErr: true},
		{name: "garbage", in: []byte("garbage"), key: a, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := bundle.Sign(tc.in, tc.key.key)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Sign succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			env, err := bundle.ParseEnvelope(out)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, s := range env.Signatures {
				ids = append(ids, s.KeyID)
			}
			if len(ids) != len(tc.wantIDs) {
				t.Fatalf("signature key ids %v, want %v", ids, tc.wantIDs)
			}
			for i := range ids {
				if ids[i] != tc.wantIDs[i] {
					t.Fatalf("signature key ids %v, want %v", ids, tc.wantIDs)
				}
			}
			payload, err := env.DecodePayload()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(payload, bare) {
				t.Fatal("payload is not the canonical bundle")
			}
			if _, err := newVerifier(t, len(ids), a, c).Verify(out); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
	if _, err := bundle.Sign(bare, nil); err == nil {
		t.Fatal("Sign with nil key succeeded")
	}
}
