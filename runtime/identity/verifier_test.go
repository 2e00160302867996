package identity_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/runtime/identity"
)

const testAudience = "gatehouse"

// hs256WithPublicKey forges the classic key-confusion token: HS256 with the
// issuer's RSA public key (PEM) as the HMAC secret.
func hs256WithPublicKey(t *testing.T, k testKey, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hdr, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT", "kid": k.kid})
	body, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func unsignedToken(hdr string, claims map[string]any) string {
	body, _ := json.Marshal(claims)
	return b64(hdr) + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	now := clock.Now()
	rsaKey := newRSAKey(t, "rsa-1")
	ecKey := newECKey(t, "ec-1")
	impostor := newECKey(t, "ec-1") // same kid, different key
	idp := newFakeIdP(t, rsaKey, ecKey)

	// A second issuer whose discovery document names a different issuer.
	lying := newFakeIdP(t, ecKey)
	lying.issuer = "https://evil.example"

	// An issuer that allows ES256 only, with an RSA key in its set so that
	// the refusal is about the algorithm, not a missing key.
	const esOnly = "https://es-only.example"

	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{
			{Issuer: idp.URL(), Audience: testAudience},
			{Issuer: lying.URL(), Audience: testAudience},
			{Issuer: esOnly, Audience: testAudience, JWKS: jwks(t, rsaKey, ecKey), Algorithms: []string{"ES256"}},
		},
		Clock: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	good := stdClaims(idp.URL(), testAudience, now)
	validEC := ecKey.sign(t, good)

	cases := []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"valid ES256", validEC, nil},
		{"valid RS256", rsaKey.sign(t, good), nil},
		{"audience array containing ours", ecKey.sign(t, with(good, "aud", []string{"other", testAudience})), nil},
		{"alg none", unsignedToken(`{"alg":"none","typ":"JWT"}`, good), identity.ErrAlgorithm},
		{"alg none with kid", unsignedToken(`{"alg":"none","kid":"ec-1"}`, good), identity.ErrAlgorithm},
		{"HS256 with RSA public key as secret", hs256WithPublicKey(t, rsaKey, good), identity.ErrAlgorithm},
		{"expired", ecKey.sign(t, with(good, "exp", now.Add(-time.Hour).Unix(), "iat", now.Add(-2*time.Hour).Unix(), "nbf", now.Add(-2*time.Hour).Unix())), identity.ErrExpired},
		{"expired within leeway", ecKey.sign(t, with(good, "exp", now.Add(-10*time.Second).Unix())), nil},
		{"expired exactly at leeway", ecKey.sign(t, with(good, "exp", now.Add(-identity.DefaultLeeway).Unix())), identity.ErrExpired},
		{"not yet valid nbf", ecKey.sign(t, with(good, "nbf", now.Add(time.Hour).Unix(), "exp", now.Add(2*time.Hour).Unix())), identity.ErrNotYetValid},
		{"nbf within leeway", ecKey.sign(t, with(good, "nbf", now.Add(10*time.Second).Unix())), nil},
		{"iat in the future", ecKey.sign(t, with(good, "iat", now.Add(time.Hour).Unix())), identity.ErrNotYetValid},
		{"wrong audience", ecKey.sign(t, with(good, "aud", "someone-else")), identity.ErrAudience},
		{"missing audience", ecKey.sign(t, with(good, "aud", nil)), identity.ErrAudience},
		{"wrong issuer", ecKey.sign(t, with(good, "iss", "https://login.attacker.example")), identity.ErrIssuer},
		{"issuer differs from discovery", ecKey.sign(t, with(good, "iss", lying.URL())), identity.ErrIssuer},
		{"unknown kid", ecKey.signAs(t, jose.ES256, "no-such-key", good), identity.ErrUnknownKey},
		{"another key with the same kid", impostor.sign(t, good), identity.ErrSignature},
		{"RS256 when only ES256 allowed", rsaKey.sign(t, with(good, "iss", esOnly)), identity.ErrAlgorithm},
		{"ES256 accepted by ES256-only issuer", ecKey.sign(t, with(good, "iss", esOnly)), nil},
		{"tampered payload", replacePart(validEC, 1, base64.RawURLEncoding.EncodeToString(mustJSON(with(good, "sub", "admin")))), identity.ErrSignature},
		{"empty signature", replacePart(validEC, 2, ""), identity.ErrSignature},
		{"missing exp", ecKey.sign(t, with(good, "exp", nil)), identity.ErrMalformed},
		{"missing sub", ecKey.sign(t, with(good, "sub", nil)), identity.ErrMalformed},
		{"exp not a number", ecKey.sign(t, with(good, "exp", "tomorrow")), identity.ErrMalformed},
		{"exp absurdly large", ecKey.sign(t, with(good, "exp", 1e300)), identity.ErrMalformed},
		{"malformed: two parts", "abc.def", identity.ErrMalformed},
		{"malformed: four parts", validEC + ".x", identity.ErrMalformed},
		{"malformed: empty", "", identity.ErrMalformed},
		{"malformed: bad base64 header", replacePart(validEC, 0, "!!!"), identity.ErrMalformed},
		{"malformed: bad base64 payload", replacePart(validEC, 1, "a$b"), identity.ErrMalformed},
		{"malformed: bad base64 signature", replacePart(validEC, 2, "@@"), identity.ErrMalformed},
		{"malformed: header not JSON", replacePart(validEC, 0, b64("{alg:ES256")), identity.ErrMalformed},
		{"malformed: payload not JSON", replacePart(validEC, 1, b64("not json")), identity.ErrMalformed},
		{"malformed: payload JSON array", replacePart(validEC, 1, b64("[1,2]")), identity.ErrMalformed},
		{"malformed: crit header", unsignedToken(`{"alg":"ES256","crit":["b64"],"b64":false}`, good) + "c2ln", identity.ErrMalformed},
		{"oversized", strings.Repeat("a", identity.MaxTokenSize+1), identity.ErrTooLarge},
		// Claims JSON that decoders disagree on, signed by the real key: a
		// duplicate member or a differently cased name must not let a
		// second value stand in for the one the issuer meant.
		{"duplicate sub member", ecKey.signPayload(t, jose.ES256, kidOpts(ecKey.kid), []byte(strings.TrimSuffix(string(mustJSON(good)), "}")+`,"sub":"admin"}`)), identity.ErrMalformed},
		{"SUB does not stand in for sub", ecKey.sign(t, with(good, "sub", nil, "SUB", "app-123")), identity.ErrMalformed},
		// The header embeds the attacker's own key (CVE-2018-0114 style): it
		// is never used; only the issuer's key set is.
		{"embedded jwk header", impostor.signPayload(t, jose.ES256, (&jose.SignerOptions{EmbedJWK: true}).WithType("JWT"), mustJSON(good)), identity.ErrSignature},
		{"oversized but well-formed", ecKey.sign(t, with(good, "pad", strings.Repeat("x", identity.MaxTokenSize))), identity.ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := v.Verify(context.Background(), tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: unexpected error %v", err)
				}
				if c.Subject != "app-123" || c.Email != "coder@example.com" {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
			t.Logf("error: %v", err)
			if c != nil {
				t.Fatalf("claims returned with error")
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
				t.Fatalf("error text contains token material: %v", err)
			}
		})
	}
}

func kidOpts(kid string) *jose.SignerOptions {
	return (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestVerifyClaims(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k := newECKey(t, "k1")
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: "https://idp.example", Audience: testAudience, JWKS: jwks(t, k)}},
		Clock:   clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	claims := with(stdClaims("https://idp.example", testAudience, now), "groups", []string{"a", "b"}, "azp", "cli")
	c, err := v.Verify(context.Background(), k.sign(t, claims))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://idp.example" || c.Subject != "app-123" || c.ID != "id-1" || c.Email != "coder@example.com" {
		t.Errorf("registered claims = %+v", c)
	}
	if len(c.Audience) != 1 || c.Audience[0] != testAudience {
		t.Errorf("aud = %v", c.Audience)
	}
	if !c.ExpiresAt.Equal(now.Add(10*time.Minute)) || !c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) {
		t.Errorf("times exp=%v iat=%v nbf=%v", c.ExpiresAt, c.IssuedAt, c.NotBefore)
	}
	if g, ok := c.Raw["groups"].([]any); !ok || len(g) != 2 {
		t.Errorf("raw groups = %#v", c.Raw["groups"])
	}
	// The clock moves: the same token expires.
	clock.Advance(11 * time.Minute)
	if _, err := v.Verify(context.Background(), k.sign(t, claims)); !errors.Is(err, identity.ErrExpired) {
		t.Errorf("after expiry: %v, want ErrExpired", err)
	}
}

func TestKeyRotationRefreshOnce(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k1 := newECKey(t, "k1")
	k2 := newECKey(t, "k2")
	idp := newFakeIdP(t, k1)
	v, err := identity.New(identity.Config{
		Issuers:            []identity.IssuerConfig{{Issuer: idp.URL(), Audience: testAudience}},
		Clock:              clock.Now,
		KeyRefreshInterval: time.Minute,
		KeyCacheTTL:        time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	verify := func(k testKey, kid string) error {
		_, err := v.Verify(ctx, k.signAs(t, k.alg, kid, stdClaims(idp.URL(), testAudience, clock.Now())))
		return err
	}
	if err := verify(k1, "k1"); err != nil {
		t.Fatalf("initial: %v", err)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Fatalf("jwks fetches after first verify = %d, want 1", got)
	}
	// Cached: no further fetch.
	if err := verify(k1, "k1"); err != nil || idp.jwksHits.Load() != 1 {
		t.Fatalf("cached verify: err=%v fetches=%d", err, idp.jwksHits.Load())
	}

	// The IdP rotates in k2. Right after the initial load the rate limit
	// holds: k2 is unknown and nothing is fetched.
	idp.setKeys(t, k1, k2)
	if err := verify(k2, "k2"); !errors.Is(err, identity.ErrUnknownKey) {
		t.Fatalf("k2 within interval: %v, want ErrUnknownKey", err)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Fatalf("fetches within interval = %d, want 1", got)
	}
	// After the interval, the unknown kid triggers one refresh and k2 works.
	clock.Advance(time.Minute)
	if err := verify(k2, "k2"); err != nil {
		t.Fatalf("k2 after refresh: %v", err)
	}
	if got := idp.jwksHits.Load(); got != 2 {
		t.Fatalf("fetches after rotation = %d, want 2", got)
	}

	// A flood of unknown kids triggers no more than one refresh per interval.
	for i := 0; i < 20; i++ {
		if err := verify(k1, "forged-"+string(rune('a'+i))); !errors.Is(err, identity.ErrUnknownKey) {
			t.Fatalf("forged kid: %v, want ErrUnknownKey", err)
		}
	}
	if got := idp.jwksHits.Load(); got != 2 {
		t.Fatalf("fetches during flood = %d, want 2", got)
	}
	clock.Advance(time.Minute)
	for i := 0; i < 20; i++ {
		if err := verify(k1, "forged-again"); !errors.Is(err, identity.ErrUnknownKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if got := idp.jwksHits.Load(); got != 3 {
		t.Fatalf("fetches after next interval = %d, want 3", got)
	}
	// Known keys still verify throughout.
	if err := verify(k1, "k1"); err != nil {
		t.Fatalf("k1 after flood: %v", err)
	}
}

func TestConcurrentUnknownKidFetchesOnce(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k1 := newECKey(t, "k1")
	idp := newFakeIdP(t, k1)
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: idp.URL(), Audience: testAudience}},
		Clock:   clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := k1.signAs(t, jose.ES256, "forged", stdClaims(idp.URL(), testAudience, clock.Now()))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, identity.ErrUnknownKey) {
			t.Fatalf("Verify: %v, want ErrUnknownKey", err)
		}
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Fatalf("jwks fetches = %d, want 1", got)
	}
}

func TestKeySetTTLAndOutage(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k1 := newECKey(t, "k1")
	idp := newFakeIdP(t, k1)
	v, err := identity.New(identity.Config{
		Issuers:            []identity.IssuerConfig{{Issuer: idp.URL(), Audience: testAudience}},
		Clock:              clock.Now,
		KeyRefreshInterval: time.Minute,
		KeyCacheTTL:        10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	verify := func() error {
		_, err := v.Verify(ctx, k1.sign(t, stdClaims(idp.URL(), testAudience, clock.Now())))
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	// After the TTL the set is fetched again.
	clock.Advance(10 * time.Minute)
	if err := verify(); err != nil || idp.jwksHits.Load() != 2 {
		t.Fatalf("after ttl: err=%v fetches=%d, want 2", err, idp.jwksHits.Load())
	}
	// The IdP goes down: the cached keys keep working, and the failed
	// refresh is not retried before the interval.
	idp.setDown(true)
	clock.Advance(10 * time.Minute)
	if err := verify(); err != nil {
		t.Fatalf("during outage with cached keys: %v", err)
	}
	hits := idp.discoveryHits.Load()
	if err := verify(); err != nil || idp.discoveryHits.Load() != hits {
		t.Fatalf("retry within interval: err=%v discovery hits %d -> %d", err, hits, idp.discoveryHits.Load())
	}
}

func TestKeySetUnavailable(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k1 := newECKey(t, "k1")
	idp := newFakeIdP(t, k1)
	idp.setDown(true)
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: idp.URL(), Audience: testAudience}},
		Clock:   clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := k1.sign(t, stdClaims(idp.URL(), testAudience, clock.Now()))
	_, err = v.Verify(context.Background(), tok)
	var he *identity.HTTPError
	if !errors.Is(err, identity.ErrKeySet) || !errors.As(err, &he) || he.StatusCode != 503 {
		t.Fatalf("Verify with IdP down: %v, want ErrKeySet with HTTP 503", err)
	}
	// Not retried within the interval; retried after it.
	_, _ = v.Verify(context.Background(), tok)
	if got := idp.discoveryHits.Load(); got != 0 {
		t.Fatalf("discovery served while down: %d", got)
	}
	idp.setDown(false)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, identity.ErrKeySet) {
		t.Fatalf("within interval after recovery: %v, want cached ErrKeySet", err)
	}
	clock.Advance(identity.DefaultKeyRefreshInterval)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after interval: %v", err)
	}
}

func TestVerifyJWKSFileAndURL(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k := newECKey(t, "k1")
	idp := newFakeIdP(t, k)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks(t, k), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ic   identity.IssuerConfig
	}{
		{"jwks file", identity.IssuerConfig{Issuer: "https://air-gapped.example", Audience: testAudience, JWKSFile: file}},
		{"jwks url", identity.IssuerConfig{Issuer: "https://direct.example", Audience: testAudience, JWKSURL: idp.URL() + "/keys"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := identity.New(identity.Config{Issuers: []identity.IssuerConfig{tc.ic}, Clock: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), k.sign(t, stdClaims(tc.ic.Issuer, testAudience, clock.Now()))); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k := newECKey(t, "k1")
	other := newECKey(t, "priv")
	privJWK, err := json.Marshal(jose.JSONWebKey{Key: other.priv, KeyID: "priv"})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(k.public())
	doc := `{"keys":[{"kty":"oct","kid":"sym","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},` + string(privJWK) +
		`,{"kty":"weird","kid":"x"},` + string(pub) + `]}`
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: "https://i.example", Audience: testAudience, JWKS: []byte(doc)}},
		Clock:   clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := stdClaims("https://i.example", testAudience, clock.Now())
	if _, err := v.Verify(context.Background(), k.sign(t, claims)); err != nil {
		t.Fatalf("usable key: %v", err)
	}
	// A private key published by mistake is never used for verification.
	if _, err := v.Verify(context.Background(), other.sign(t, claims)); !errors.Is(err, identity.ErrUnknownKey) {
		t.Fatalf("private jwk: %v, want ErrUnknownKey", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  identity.Config
	}{
		{"no issuers", identity.Config{}},
		{"no audience", identity.Config{Issuers: []identity.IssuerConfig{{Issuer: "https://a.example"}}}},
		{"empty issuer", identity.Config{Issuers: []identity.IssuerConfig{{Audience: "x"}}}},
		{"HS256 allowed", identity.Config{Issuers: []identity.IssuerConfig{{Issuer: "https://a.example", Audience: "x", Algorithms: []string{"HS256"}}}}},
		{"none allowed", identity.Config{Issuers: []identity.IssuerConfig{{Issuer: "https://a.example", Audience: "x", Algorithms: []string{"none"}}}}},
		{"two key sources", identity.Config{Issuers: []identity.IssuerConfig{{Issuer: "https://a.example", Audience: "x", JWKSFile: "f", JWKSURL: "https://a.example/k"}}}},
		{"plain http remote", identity.Config{Issuers: []identity.IssuerConfig{{Issuer: "http://idp.example.com", Audience: "x"}}}},
		{"duplicate issuer", identity.Config{Issuers: []identity.IssuerConfig{{Issuer: "https://a.example", Audience: "x"}, {Issuer: "https://a.example", Audience: "y"}}}},
		{"huge leeway", identity.Config{Leeway: time.Hour, Issuers: []identity.IssuerConfig{{Issuer: "https://a.example", Audience: "x"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); !errors.Is(err, identity.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
		})
	}
	good := identity.Config{Issuers: []identity.IssuerConfig{{Issuer: "https://a.example/", Audience: "x"}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	ic := good.Issuers[0]
	if ic.DiscoveryURL != "https://a.example/.well-known/openid-configuration" || len(ic.Algorithms) != 3 || good.Leeway != identity.DefaultLeeway {
		t.Fatalf("defaults not filled: %+v leeway=%v", ic, good.Leeway)
	}
}

func TestClaimsLogValueOmitsRaw(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	log := slog.New(slog.NewTextHandler(&sb, nil))
	c := &identity.Claims{Issuer: "iss", Subject: "sub", Raw: map[string]any{"secret_claim": "s3cr3t"}}
	log.Info("x", "claims", c)
	if strings.Contains(sb.String(), "s3cr3t") || !strings.Contains(sb.String(), "claims.sub=sub") {
		t.Fatalf("log = %q", sb.String())
	}
}

func TestCancelledCallerDoesNotPoisonKeySet(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k := newECKey(t, "k1")
	idp := newFakeIdP(t, k)
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: idp.URL(), Audience: testAudience}},
		Clock:   clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := k.sign(t, stdClaims(idp.URL(), testAudience, clock.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The first caller has already gone away; the key set is still loaded.
	_, _ = v.Verify(ctx, tok)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after cancelled first caller: %v", err)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Fatalf("jwks fetches = %d, want 1", got)
	}
}

func TestTokenWithoutKid(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	k1, k2 := newECKey(t, "k1"), newECKey(t, "k2")
	r := newRSAKey(t, "r1")
	v, err := identity.New(identity.Config{
		Issuers: []identity.IssuerConfig{{Issuer: "https://i.example", Audience: testAudience, JWKS: jwks(t, r, k1, k2)}},
		Clock:   clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := stdClaims("https://i.example", testAudience, clock.Now())
	if _, err := v.Verify(context.Background(), k2.signAs(t, jose.ES256, "", claims)); err != nil {
		t.Fatalf("no kid, second key: %v", err)
	}
	stranger := newECKey(t, "")
	if _, err := v.Verify(context.Background(), stranger.signAs(t, jose.ES256, "", claims)); !errors.Is(err, identity.ErrSignature) {
		t.Fatalf("no kid, unknown key: %v, want ErrSignature", err)
	}
}
