package identity_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/identity"
)

func BenchmarkVerify(b *testing.B) {
	clock := newTestClock()
	k := newECKey(b, "k1")
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: "https://idp.example", Audience: testAudience, JWKS: jwks(b, k)}},
		Clock:   clock.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	tok := k.sign(b, stdClaims("https://idp.example", testAudience, clock.Now()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAlgorithms verifies a valid token per default algorithm.
func BenchmarkVerifyAlgorithms(b *testing.B) {
	clock := newTestClock()
	for _, k := range []testKey{newRSAKey(b, "r1"), newECKey(b, "e1"), newEdKey(b, "d1")} {
		b.Run(string(k.alg), func(b *testing.B) {
			v, err := identity.New(identity.Config{
				Issuers: []identity.IssuerConfig{{Issuer: "https://idp.example", Audience: testAudience, JWKS: jwks(b, k)}},
				Clock:   clock.Now,
			})
			if err != nil {
				b.Fatal(err)
			}
			tok := k.sign(b, stdClaims("https://idp.example", testAudience, clock.Now()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyRejected measures the cost of refusing tokens an attacker
// can produce for free.
func BenchmarkVerifyRejected(b *testing.B) {
	clock := newTestClock()
	k := newECKey(b, "k1")
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: "https://idp.example", Audience: testAudience, JWKS: jwks(b, k)}},
		Clock:   clock.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	good := stdClaims("https://idp.example", testAudience, clock.Now())
	valid := k.sign(b, good)
	cases := []struct{ name, token string }{
		{"malformed", "not-a-token"},
		{"alg none", unsignedToken(`{"alg":"none"}`, good)},
		{"unknown issuer", k.sign(b, with(good, "iss", "https://other.example"))},
		{"bad signature", replacePart(valid, 1, b64(`{"iss":"https://idp.example","sub":"admin"}`))},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tc.token); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}

func BenchmarkResolve(b *testing.B) {
	p := testPolicy()
	for i := 0; i < 200; i++ {
		p.Identities = append(p.Identities, bundle.Identity{Name: "filler", Match: bundle.IdentityMatch{Issuer: tenant, Subject: "filler-" + string(rune('a'+i%26))}})
	}
	c := claimsOf(map[string]any{"iss": tenant, "sub": "app-123"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := identity.Resolve(p, c); err != nil {
			b.Fatal(err)
		}
	}
}
