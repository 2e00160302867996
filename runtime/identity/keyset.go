package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// keySource fetches the raw JWKS document of one issuer.
type keySource struct {
	describe string
	fetch    func(ctx context.Context) ([]byte, error)
}

// keySet caches the keys of one issuer. It exists because go-oidc's
// RemoteKeySet has no expiry (a key the issuer withdrew stays trusted), no
// rate limit (every token that fails verification triggers a fetch), no
// injected clock and no typed errors. Fetches are shared by concurrent
// callers and rate-limited: at most one per refreshInterval, counted from
// the previous attempt whether it succeeded or not.
type keySet struct {
	issuer          string
	src             keySource
	clock           func() time.Time
	refreshInterval time.Duration
	ttl             time.Duration
	fetchTimeout    time.Duration
	log             *slog.Logger
	flight          singleflight.Group

	mu          sync.Mutex // guards the fields below
	keys        *jose.JSONWebKeySet
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time
	lastErr     error // error of the last attempt, nil on success
}

// lookup returns the keys usable for a token with key id kid (all keys when
// kid is empty). It loads the set on first use, refreshes it after its TTL,
// and refreshes it once when kid is unknown, all subject to the rate limit.
// A failed refresh keeps the previous keys.
func (s *keySet) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	keys, fetchedAt, err := s.current()
	if keys == nil || !s.clock().Before(fetchedAt.Add(s.ttl)) {
		keys, _, err = s.refresh(ctx)
	}
	if keys == nil {
		return nil, err
	}
	if kid == "" {
		return keys.Keys, nil
	}
	if found := keys.Key(kid); len(found) > 0 {
		return found, nil
	}
	// Unknown key id: the issuer may have rotated its keys.
	if keys, _, _ = s.refresh(ctx); keys != nil {
		if found := keys.Key(kid); len(found) > 0 {
			return found, nil
		}
	}
	return nil, fmt.Errorf("%w: issuer %q has no key %q", ErrUnknownKey, s.issuer, truncate(kid, 64))
}

func (s *keySet) current() (*jose.JSONWebKeySet, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil && s.lastErr == nil {
		return nil, time.Time{}, fmt.Errorf("%w: issuer %q: key set not loaded", ErrKeySet, s.issuer)
	}
	return s.keys, s.fetchedAt, s.lastErr
}

// refresh fetches the key set unless the rate limit forbids it, and returns
// the current state. Concurrent callers share one fetch, which is detached
// from the caller's cancellation (a client that disconnects mid-fetch must
// not become a recorded failure that blocks every other caller for a
// refresh interval) and bounded by fetchTimeout.
func (s *keySet) refresh(ctx context.Context) (*jose.JSONWebKeySet, time.Time, error) {
	_, _, _ = s.flight.Do("", func() (any, error) {
		s.mu.Lock()
		last := s.lastAttempt
		s.mu.Unlock()
		if !last.IsZero() && s.clock().Before(last.Add(s.refreshInterval)) {
			return nil, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.fetchTimeout)
		keys, err := s.load(fctx)
		cancel()
		now := s.clock()
		s.mu.Lock()
		s.lastAttempt, s.lastErr = now, err
		if err == nil {
			s.keys, s.fetchedAt = keys, now
		}
		s.mu.Unlock()
		if err != nil {
			s.log.WarnContext(ctx, "Key set fetch failed.", "issuer", s.issuer, "source", s.src.describe, "error", err)
		} else {
			s.log.InfoContext(ctx, "Key set loaded.", "issuer", s.issuer, "source", s.src.describe, "keys", len(keys.Keys))
		}
		return nil, nil
	})
	return s.current()
}

func (s *keySet) load(ctx context.Context) (*jose.JSONWebKeySet, error) {
	data, err := s.src.fetch(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := parseJWKS(data, func(i int, reason string) {
		s.log.DebugContext(ctx, "Key set entry skipped.", "issuer", s.issuer, "index", i, "reason", reason)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: issuer %q: %w", ErrKeySet, s.issuer, err)
	}
	return keys, nil
}

// parseJWKS decodes a JWKS document, keeping only public signature keys.
// go-jose's JSONWebKeySet decoder fails the whole set on one key type it
// does not know (RFC 7517 section 5 says to ignore such keys; go-oidc's
// tolerant decoder is unexported), so the keys are decoded one by one.
// Private, symmetric and encryption keys are skipped too: they never verify
// a token.
func parseJWKS(data []byte, skip func(i int, reason string)) (*jose.JSONWebKeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("parse jwks: no \"keys\" member")
	}
	set := &jose.JSONWebKeySet{}
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		switch err := k.UnmarshalJSON(raw); {
		case err != nil:
			skip(i, err.Error())
		case !k.IsPublic() || !k.Valid():
			skip(i, "not a valid public key")
		case k.Use != "" && k.Use != "sig":
			skip(i, "use "+k.Use)
		default:
			set.Keys = append(set.Keys, k)
		}
	}
	return set, nil
}

func bytesSource(data []byte) keySource {
	return keySource{describe: "in-process", fetch: func(context.Context) ([]byte, error) { return data, nil }}
}

func fileSource(path string) keySource {
	return keySource{describe: "file:" + path, fetch: func(context.Context) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeySet, err)
		}
		defer f.Close()
		data, err := readBounded(f, maxJWKSBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrKeySet, path, err)
		}
		return data, nil
	}}
}

func urlSource(client *http.Client, url string) keySource {
	return keySource{describe: url, fetch: func(ctx context.Context) ([]byte, error) {
		return httpGet(ctx, client, url, maxJWKSBytes)
	}}
}

// discoverySource reads the discovery document, checks its issuer and then
// fetches the key set it names. The document is re-read on every
// (rate-limited) refresh so a moved jwks_uri is followed. go-oidc's
// NewProvider is not used: it reads the document without a size bound, only
// from issuer + "/.well-known/openid-configuration", and reports HTTP
// failures as untyped errors carrying the response body.
func discoverySource(client *http.Client, issuer, url string, allowHTTP bool) keySource {
	return keySource{describe: url, fetch: func(ctx context.Context) ([]byte, error) {
		data, err := httpGet(ctx, client, url, maxDiscoveryBytes)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%w: parse discovery document %s: %w", ErrKeySet, url, err)
		}
		if doc.Issuer != issuer {
			return nil, fmt.Errorf("%w: discovery document %s names issuer %q, want %q", ErrIssuer, url, truncate(doc.Issuer, 200), issuer)
		}
		if doc.JWKSURI == "" {
			return nil, fmt.Errorf("%w: discovery document %s has no jwks_uri", ErrKeySet, url)
		}
		if err := checkFetchURL(doc.JWKSURI, allowHTTP); err != nil {
			return nil, fmt.Errorf("%w: discovery document %s: jwks_uri: %w", ErrKeySet, url, err)
		}
		return httpGet(ctx, client, doc.JWKSURI, maxJWKSBytes)
	}}
}

// HTTPError reports an unexpected HTTP status from an issuer endpoint. It
// wraps ErrKeySet.
type HTTPError struct {
	URL        string
	StatusCode int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s: GET %s: HTTP status %d", ErrKeySet, e.URL, e.StatusCode)
}

// Unwrap returns ErrKeySet.
func (e *HTTPError) Unwrap() error { return ErrKeySet }

func httpGet(ctx context.Context, client *http.Client, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySet, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySet, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &HTTPError{URL: url, StatusCode: resp.StatusCode}
	}
	data, err := readBounded(resp.Body, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrKeySet, url, err)
	}
	return data, nil
}

// readBounded reads all of r, failing if it holds more than limit bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("document larger than %d bytes", limit)
	}
	return data, nil
}

// truncate shortens attacker-controlled strings placed in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
