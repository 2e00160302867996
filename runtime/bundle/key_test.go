package bundle_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind     string
		password []byte
	}{
		{kind: bundle.KeyTypeECDSAP256, password: []byte("correct horse")},
		{kind: bundle.KeyTypeEd25519, password: []byte("battery staple")},
		{kind: bundle.KeyTypeEd25519, password: nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/password=%t", tc.kind, tc.password != nil), func(t *testing.T) {
			t.Parallel()
			privPEM, pubPEM, err := bundle.GenerateKey(tc.kind, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(privPEM, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) {
				t.Fatalf("private key PEM header: %q", strings.SplitN(string(privPEM), "\n", 2)[0])
			}
			if !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----")) {
				t.Fatalf("public key PEM header: %q", strings.SplitN(string(pubPEM), "\n", 2)[0])
			}
			key, err := bundle.LoadPrivateKey(privPEM, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := bundle.LoadPublicKey(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			id, err := bundle.KeyID(pub)
			if err != nil {
				t.Fatal(err)
			}
			if id != key.KeyID() || len(id) != 64 {
				t.Fatalf("key ids differ or are malformed: %q vs %q", id, key.KeyID())
			}
			// Cosign-compatible: sigstore's own loader reads the key.
			if _, err := cryptoutils.UnmarshalPEMToPrivateKey(privPEM, cryptoutils.StaticPasswordFunc(append([]byte{}, tc.password...))); err != nil {
				t.Fatalf("sigstore cannot read the private key: %v", err)
			}
			if _, err := bundle.LoadPrivateKey(privPEM, []byte("wrong")); err == nil {
				t.Fatal("LoadPrivateKey accepted a wrong password")
			}
			// The loaded key signs bundles the public key verifies.
			v, err := bundle.NewVerifier([]crypto.PublicKey{pub}, 1)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := bundle.Sign(encode(t, testBundle(t, 1, 1)), key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(signed); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	t.Parallel()
	if _, _, err := bundle.GenerateKey("rsa-2048", nil); !errors.Is(err, bundle.ErrUnsupportedKey) {
		t.Fatalf("GenerateKey rsa: err = %v", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.NewPrivateKey(p384); !errors.Is(err, bundle.ErrUnsupportedKey) {
		t.Fatalf("NewPrivateKey P-384: err = %v", err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(p384.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.LoadPublicKey(pubPEM); !errors.Is(err, bundle.ErrUnsupportedKey) {
		t.Fatalf("LoadPublicKey P-384: err = %v", err)
	}
	for name, in := range map[string][]byte{
		"empty":       nil,
		"not PEM":     []byte("hello"),
		"private PEM": cryptoutils.PEMEncode(cryptoutils.PrivateKeyPEMType, []byte{1, 2, 3}),
		"garbage DER": cryptoutils.PEMEncode(cryptoutils.PublicKeyPEMType, []byte{1, 2, 3}),
		"huge":        bytes.Repeat([]byte("A"), 1<<20),
	} {
		if _, err := bundle.LoadPublicKey(in); err == nil {
			t.Errorf("LoadPublicKey(%s) succeeded", name)
		}
		if _, err := bundle.LoadPrivateKey(in, nil); err == nil {
			t.Errorf("LoadPrivateKey(%s) succeeded", name)
		}
	}
}

func TestPrivateKeyRedacted(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, bundle.KeyTypeEd25519)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("Loaded.", "key", k.key)
	if !strings.Contains(buf.String(), "key=REDACTED") {
		t.Fatalf("log line: %s", buf.String())
	}
	if s := fmt.Sprint(k.key); s != "PrivateKey("+k.id+")" {
		t.Fatalf("String() = %q", s)
	}
}
