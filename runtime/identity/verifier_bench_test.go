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
