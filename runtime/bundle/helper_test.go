package bundle_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

var (
	testNotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	testExpires   = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
)

// testPolicy returns a valid policy with n rules cycling through effects.
func testPolicy(n int) bundle.Policy {
	p := bundle.Policy{
		Identities: []bundle.Identity{
			{Name: "alice@example.com", Kind: "human", Match: bundle.IdentityMatch{Email: "alice@example.com"}, Groups: []string{"dba"}},
			{Name: "claude-coder", Kind: "agent", Owner: "platform", Groups: []string{"coding-agents"},
				Match: bundle.IdentityMatch{Issuer: "https://login.example/t", Subject: "app-123",
					Claims: map[string]string{"zone": "eu", "azp": "coder", "team": "platform"}}},
		},
		Groups: []bundle.Group{
			{Name: "coding-agents", Members: []string{"claude-coder"}},
			{Name: "dba", Members: []string{"alice@example.com"}},
		},
		Resources: []bundle.Resource{
			{Name: "orders-db", Type: bundle.ResourcePostgres, Address: "orders.internal:5432", Database: "orders",
				Tags: []string{"pii", "prod"}, Credential: "env:ORDERS_DB_PASSWORD", TLS: bundle.TLS{Mode: "require"}},
			{Name: "web", Type: bundle.ResourceHTTP, Address: "https://web.internal"},
		},
		Classifiers: []bundle.Classifier{
			{Name: "email", Builtin: true, Pattern: `[^@\s]+@[^@\s]+\.[a-z]{2,}`},
		},
		Settings: bundle.Settings{Audience: "gatehouse", DefaultApprovalTimeout: "15m"},
	}
	effects := []bundle.Effect{bundle.EffectAllow, bundle.EffectDeny, bundle.EffectMask, bundle.EffectApprove}
	for i := 0; i < n; i++ {
		r := bundle.Rule{
			ID:                fmt.Sprintf("rule-%04d", i),
			Index:             i,
			Description:       "<tables> & \"columns\"",
			Subjects:          []string{"group:coding-agents"},
			Resources:         []string{"orders-db"},
			ResolvedResources: []string{"orders-db"},
			Effect:            effects[i%len(effects)],
			Expires:           "2027-03-01",
			Review:            &bundle.Review{Owner: "platform", Every: "90d"},
			Pos:               fmt.Sprintf("policies/rules.cue:%d:3", 10+i),
		}
		switch r.Effect {
		case bundle.EffectAllow:
			r.SQL = &bundle.SQLMatch{Statements: []string{"select"}, Tables: []string{"public.orders"}}
		case bundle.EffectDeny:
			r.SQL = &bundle.SQLMatch{Statements: []string{"delete", "update"}, WithoutWhere: true}
		case bundle.EffectMask:
			r.Mask = &bundle.MaskSpec{Columns: []string{"*.ssn", "customers.email"}, Classifiers: []string{"email"}}
		case bundle.EffectApprove:
			r.SQL = &bundle.SQLMatch{Statements: []string{"alter", "create", "drop"}}
			r.Approval = &bundle.ApprovalSpec{Group: "dba", Count: 1, Timeout: "30m"}
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// testBundle returns a valid bundle with n rules and the given serial.
func testBundle(tb testing.TB, n int, serial uint64) *bundle.Bundle {
	tb.Helper()
	b := &bundle.Bundle{
		Manifest: bundle.Manifest{
			FormatVersion:   bundle.FormatVersion,
			Revision:        "9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
			SourceDigest:    "sha256:" + fmt.Sprintf("%064x", 42),
			Serial:          serial,
			NotBefore:       testNotBefore,
			Expires:         testExpires,
			CompilerVersion: "0.1.0-test",
		},
		Policy: testPolicy(n),
	}
	d, err := bundle.PolicyDigest(&b.Policy)
	if err != nil {
		tb.Fatal(err)
	}
	b.Manifest.PolicyDigest = d
	return b
}

func encode(tb testing.TB, b *bundle.Bundle) []byte {
	tb.Helper()
	out, err := bundle.Encode(b)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// rawJSON marshals v without validation (to build invalid bundles).
func rawJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// testKey is a key pair usable both through the package API and directly
// through sigstore (to build envelopes the package would refuse to make).
type testKey struct {
	priv crypto.PrivateKey
	key  *bundle.PrivateKey
	pub  crypto.PublicKey
	id   string
	sv   signature.SignerVerifier
}

func newTestKey(tb testing.TB, kind string) *testKey {
	tb.Helper()
	var priv crypto.PrivateKey
	var err error
	switch kind {
	case bundle.KeyTypeECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case bundle.KeyTypeEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		tb.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		tb.Fatal(err)
	}
	k, err := bundle.NewPrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return &testKey{priv: priv, key: k, pub: k.Public(), id: k.KeyID(), sv: sv}
}

// signRaw signs arbitrary payload bytes with sigstore's DSSE signer and
// returns the signature under keyID, without any validation of payload.
func (k *testKey) signRaw(tb testing.TB, payload []byte, keyID string) bundle.Signature {
	tb.Helper()
	out, err := dsse.WrapSigner(k.sv, bundle.PayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		tb.Fatal(err)
	}
	var env bundle.Envelope
	if err := json.Unmarshal(out, &env); err != nil {
		tb.Fatal(err)
	}
	return bundle.Signature{KeyID: keyID, Sig: env.Signatures[0].Sig}
}

// envelopeJSON builds an envelope over payload with the given signatures.
func envelopeJSON(tb testing.TB, payload []byte, sigs ...bundle.Signature) []byte {
	tb.Helper()
	env := bundle.Envelope{PayloadType: bundle.PayloadType, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: sigs}
	out, err := env.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func sign(tb testing.TB, file []byte, keys ...*testKey) []byte {
	tb.Helper()
	for _, k := range keys {
		var err error
		file, err = bundle.Sign(file, k.key)
		if err != nil {
			tb.Fatal(err)
		}
	}
	return file
}

func newVerifier(tb testing.TB, threshold int, keys ...*testKey) *bundle.Verifier {
	tb.Helper()
	pubs := make([]crypto.PublicKey, 0, len(keys))
	for _, k := range keys {
		pubs = append(pubs, k.pub)
	}
	v, err := bundle.NewVerifier(pubs, threshold)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
