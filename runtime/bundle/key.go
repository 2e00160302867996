package bundle

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key types accepted by GenerateKey.
const (
	KeyTypeECDSAP256 = "ecdsa-p256"
	KeyTypeEd25519   = "ed25519"
)

// maxPEMSize bounds a PEM key file.
const maxPEMSize = 64 << 10

// ErrUnsupportedKey reports a key that is neither ECDSA P-256 nor Ed25519.
var ErrUnsupportedKey = errors.New("unsupported key type: want ECDSA P-256 or Ed25519")

// GenerateKey creates a key pair of the given kind ("ecdsa-p256" or
// "ed25519"). privPEM is the PKCS #8 private key encrypted with password
// (scrypt and NaCl secretbox, as cosign does) in a PEM block of type
// "ENCRYPTED SIGSTORE PRIVATE KEY"; pubPEM is the PKIX public key in a
// "PUBLIC KEY" block. An empty (or nil) password is allowed: the key is then
// encrypted with the empty password.
func GenerateKey(kind string, password []byte) (privPEM, pubPEM []byte, err error) {
	var priv crypto.PrivateKey
	var pub crypto.PublicKey
	switch kind {
	case KeyTypeECDSAP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generate ecdsa key: %w", err)
		}
		priv, pub = k, k.Public()
	case KeyTypeEd25519:
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
		}
		priv, pub = k, p
	default:
		return nil, nil, fmt.Errorf("key type %q: %w", kind, ErrUnsupportedKey)
	}
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(nonNil(password)))
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der), pubPEM, nil
}

// PrivateKey is a signing key loaded for Sign. It is safe for concurrent
// use. It never prints or logs its secret.
type PrivateKey struct {
	sv    signature.SignerVerifier
	pub   crypto.PublicKey
	keyID string
}

// LoadPrivateKey decodes a PEM private key: an encrypted sigstore or cosign
// key ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"),
// decrypted with password, or an unencrypted PKCS #8 "PRIVATE KEY". The key
// must be ECDSA P-256 or Ed25519.
func LoadPrivateKey(pemBytes, password []byte) (*PrivateKey, error) {
	if len(pemBytes) > maxPEMSize {
		return nil, fmt.Errorf("private key file larger than %d bytes", maxPEMSize)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("private key: no PEM block")
	}
	switch block.Type {
	case string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), "ENCRYPTED COSIGN PRIVATE KEY",
		string(cryptoutils.PrivateKeyPEMType):
	default:
		return nil, fmt.Errorf("private key: PEM type %q not supported", block.Type)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, cryptoutils.StaticPasswordFunc(nonNil(password)))
	if err != nil {
		return nil, fmt.Errorf("private key: decrypt or parse (wrong password?): %w", err)
	}
	return NewPrivateKey(priv)
}

// NewPrivateKey wraps an *ecdsa.PrivateKey (P-256) or ed25519.PrivateKey.
func NewPrivateKey(priv crypto.PrivateKey) (*PrivateKey, error) {
	var pub crypto.PublicKey
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		pub = k.Public()
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, ErrUnsupportedKey
		}
		pub = k.Public()
	default:
		return nil, ErrUnsupportedKey
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{sv: sv, pub: pub, keyID: id}, nil
}

// Public returns the public key.
func (k *PrivateKey) Public() crypto.PublicKey { return k.pub }

// KeyID returns the key id of the public key (see KeyID).
func (k *PrivateKey) KeyID() string { return k.keyID }

// String names the key by its id only.
func (k *PrivateKey) String() string { return "PrivateKey(" + k.keyID + ")" }

// LogValue keeps the key out of logs.
func (k *PrivateKey) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// SignMessage signs msg with the key: pure Ed25519 over msg, or ECDSA
// (ASN.1 DER) over its SHA-256. It is for other signed formats of the
// gateway (recording evidence); bundles are signed with Sign.
func (k *PrivateKey) SignMessage(msg []byte) ([]byte, error) {
	sig, err := k.sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// LoadPublicKey decodes a PEM "PUBLIC KEY" (PKIX) block holding an ECDSA
// P-256 or Ed25519 key.
func LoadPublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	if len(pemBytes) > maxPEMSize {
		return nil, fmt.Errorf("public key file larger than %d bytes", maxPEMSize)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("public key: no PEM block")
	}
	if block.Type != string(cryptoutils.PublicKeyPEMType) {
		return nil, fmt.Errorf("public key: PEM type %q, want %q", block.Type, cryptoutils.PublicKeyPEMType)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// KeyID returns the lower-case hex SHA-256 of pub in PKIX DER form: the key
// id written into and matched against envelope signatures.
func KeyID(pub crypto.PublicKey) (string, error) {
	if err := checkPublicKey(pub); err != nil {
		return "", err
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return ErrUnsupportedKey
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return ErrUnsupportedKey
		}
	default:
		return ErrUnsupportedKey
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
