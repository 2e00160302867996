package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySource fetches the current key set of one issuer. It returns the raw
// JWKS document; parsing is shared.
type keySource interface {
	fetch(ctx context.Context) ([]byte, error)
	describe() string
}

// keySet caches the keys of one issuer. Fetches are serialised and
// rate-limited: at most one fetch per refreshInterval, counted from the
// previous attempt whether it succeeded or not.
type keySet struct {
	issuer          string
	src             keySource
	clock           func() time.Time
	refreshInterval time.Duration
	ttl             time.Duration
	fetchTimeout    time.Duration
	log             *slog.Logger

	fetchMu sync.Mutex // held for the duration of one fetch

	mu          sync.Mutex // guards the fields below
	keys        []jose.JSONWebKey
	loaded      bool
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time // last fetch attempt
	lastErr     error     // error of the last attempt, nil on success
	generation  uint64    // incremented by every attempt
	fetches     uint64    // attempts, for tests and metrics
}

type keySnapshot struct {
	keys        []jose.JSONWebKey
	loaded      bool
	fetchedAt   time.Time
	lastAttempt time.Time
	lastErr     error
	generation  uint64
}

func (s *keySet) snapshot() keySnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return keySnapshot{s.keys, s.loaded, s.fetchedAt, s.lastAttempt, s.lastErr, s.generation}
}

// mayFetch reports whether the rate limit allows a fetch now.
func (s *keySet) mayFetch(snap keySnapshot, now time.Time) bool {
	return snap.lastAttempt.IsZero() || !now.Before(snap.lastAttempt.Add(s.refreshInterval))
}

// lookup returns the keys usable for a token with key id kid (all keys when
// kid is empty). It loads the set on first use, refreshes it after its TTL,
// and refreshes it once when kid is unknown, all subject to the rate limit.
func (s *keySet) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	now := s.clock()
	snap := s.snapshot()
	stale := !snap.loaded || !now.Before(snap.fetchedAt.Add(s.ttl))
	if stale && s.mayFetch(snap, now) {
		snap = s.refresh(ctx, snap.generation)
	}
	if !snap.loaded {
		if snap.lastErr != nil {
			return nil, snap.lastErr
		}
		return nil, fmt.Errorf("%w: issuer %q: key set not loaded", ErrKeySet, s.issuer)
	}
	if found := filterKeys(snap.keys, kid); len(found) > 0 || kid == "" {
		return found, nil
	}
	// Unknown key id: the issuer may have rotated its keys.
	if s.mayFetch(snap, s.clock()) {
		snap = s.refresh(ctx, snap.generation)
		if found := filterKeys(snap.keys, kid); len(found) > 0 {
			return found, nil
		}
	}
	return nil, fmt.Errorf("%w: issuer %q has no key %q", ErrUnknownKey, s.issuer, truncate(kid, 64))
}

// refresh fetches the key set unless another caller completed a fetch after
// the snapshot with generation seen was taken; it returns the new snapshot.
// A failed fetch keeps the previous keys.
func (s *keySet) refresh(ctx context.Context, seen uint64) keySnapshot {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if snap := s.snapshot(); snap.generation != seen {
		return snap // someone else fetched while we waited
	}
	// The fetch is detached from the caller's cancellation: a client that
	// disconnects mid-fetch must not turn into a recorded failure that
	// blocks every other caller for a refresh interval. It stays bounded by
	// fetchTimeout.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.fetchTimeout)
	keys, err := s.load(fctx)
	cancel()
	now := s.clock()
	s.mu.Lock()
	s.generation++
	s.fetches++
	s.lastAttempt = now
	s.lastErr = err
	if err == nil {
		s.keys = keys
		s.loaded = true
		s.fetchedAt = now
	}
	s.mu.Unlock()
	if err != nil {
		s.log.WarnContext(ctx, "Key set fetch failed.", "issuer", s.issuer, "source", s.src.describe(), "error", err)
	} else {
		s.log.InfoContext(ctx, "Key set loaded.", "issuer", s.issuer, "source", s.src.describe(), "keys", len(keys))
	}
	return s.snapshot()
}

func (s *keySet) load(ctx context.Context) ([]jose.JSONWebKey, error) {
	data, err := s.src.fetch(ctx)
	if err != nil {
		return nil, err
	}
	keys, skipped, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%w: issuer %q: %w", ErrKeySet, s.issuer, err)
	}
	for _, reason := range skipped {
		s.log.DebugContext(ctx, "Key set entry skipped.", "issuer", s.issuer, "reason", reason)
	}
	return keys, nil
}

func filterKeys(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// parseJWKS parses a JWKS document. Entries that are not usable public
// signature keys (private or symmetric keys, encryption keys, unsupported
// key types) are skipped and reported; the document itself must be valid.
func parseJWKS(data []byte) ([]jose.JSONWebKey, []string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New("parse jwks: no \"keys\" member")
	}
	var keys []jose.JSONWebKey
	var skipped []string
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		switch {
		case !k.IsPublic():
			skipped = append(skipped, fmt.Sprintf("key %d (%q): not a public key", i, k.KeyID))
			continue
		case k.Use != "" && k.Use != "sig":
			skipped = append(skipped, fmt.Sprintf("key %d (%q): use %q", i, k.KeyID, k.Use))
			continue
		case !k.Valid():
			skipped = append(skipped, fmt.Sprintf("key %d (%q): invalid", i, k.KeyID))
			continue
		}
		if len(keys) == maxKeys {
			skipped = append(skipped, fmt.Sprintf("keys beyond %d ignored", maxKeys))
			break
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// bytesSource serves an in-process key set.
type bytesSource struct{ data []byte }

func (b bytesSource) fetch(context.Context) ([]byte, error) { return b.data, nil }
func (b bytesSource) describe() string                      { return "in-process" }

// fileSource reads a static JWKS file.
type fileSource struct{ path string }

func (f fileSource) describe() string { return "file:" + f.path }

func (f fileSource) fetch(context.Context) ([]byte, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySet, err)
	}
	defer fh.Close()
	data, err := readBounded(fh, maxJWKSBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrKeySet, f.path, err)
	}
	return data, nil
}

// urlSource fetches a JWKS URL.
type urlSource struct {
	url    string
	client *http.Client
}

func (u urlSource) describe() string { return u.url }

func (u urlSource) fetch(ctx context.Context) ([]byte, error) {
	return httpGet(ctx, u.client, u.url, maxJWKSBytes)
}

// discoverySource fetches the discovery document, checks its issuer and
// then fetches the key set it names. The discovery document is re-read on
// every (rate-limited) refresh so a moved jwks_uri is followed.
type discoverySource struct {
	issuer string
	url    string
	client *http.Client
	allow  bool // plain http allowed on non-loopback hosts
}

func (d discoverySource) describe() string { return d.url }

func (d discoverySource) fetch(ctx context.Context) ([]byte, error) {
	data, err := httpGet(ctx, d.client, d.url, maxDiscoveryBytes)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: parse discovery document %s: %w", ErrKeySet, d.url, err)
	}
	if doc.Issuer != d.issuer {
		return nil, fmt.Errorf("%w: discovery document %s names issuer %q, want %q", ErrIssuer, d.url, truncate(doc.Issuer, 200), d.issuer)
	}
	if doc.JWKSURI == "" {
		return nil, fmt.Errorf("%w: discovery document %s has no jwks_uri", ErrKeySet, d.url)
	}
	if err := checkFetchURL(doc.JWKSURI, d.allow); err != nil {
		return nil, fmt.Errorf("%w: discovery document %s: jwks_uri: %w", ErrKeySet, d.url, err)
	}
	return httpGet(ctx, d.client, doc.JWKSURI, maxJWKSBytes)
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
