package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/identity"
)

// FuzzVerify feeds arbitrary strings to Verify. Property: it never panics,
// and anything that is not a token signed by the configured key is an error
// wrapping one of the package's sentinels.
func FuzzVerify(f *testing.F) {
	clock := newTestClock()
	k := newECKey(f, "k1")
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: "https://idp.example", Audience: testAudience, JWKS: jwks(f, k)}},
		Clock:   clock.Now,
	})
	if err != nil {
		f.Fatal(err)
	}
	valid := k.sign(f, stdClaims("https://idp.example", testAudience, clock.Now()))
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjF9.AAAA")
	f.Add(valid[:len(valid)-4] + "AAAA")
	sentinels := []error{
		identity.ErrMalformed, identity.ErrAlgorithm, identity.ErrSignature, identity.ErrUnknownKey,
		identity.ErrExpired, identity.ErrNotYetValid, identity.ErrAudience, identity.ErrIssuer,
		identity.ErrTooLarge, identity.ErrKeySet,
	}
	f.Fuzz(func(t *testing.T, tok string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := v.Verify(ctx, tok)
		if tok == valid {
			if err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			return
		}
		if err == nil {
			// Only a correctly signed token may pass; the fuzzer cannot
			// forge ES256, so any other accepted input must carry the same
			// claims as the seed (e.g. equivalent encodings).
			if c == nil || c.Subject != "app-123" {
				t.Fatalf("accepted forged token %q: %+v", tok, c)
			}
			return
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v wraps no sentinel", err)
	})
}
