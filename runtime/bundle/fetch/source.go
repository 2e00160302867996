package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// DefaultMaxSize bounds a fetched bundle (64 MiB).
const DefaultMaxSize = 64 << 20

// ErrNotModified is returned by Fetch when the bundle is unchanged since the
// given ETag.
var ErrNotModified = errors.New("bundle not modified")

// ErrTooLarge is returned when a bundle exceeds the size limit.
var ErrTooLarge = errors.New("bundle exceeds size limit")

// HTTPError is a non-success HTTP status from a bundle server.
type HTTPError struct {
	URL        string
	StatusCode int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("fetch bundle %s: HTTP status %d", e.URL, e.StatusCode)
}

// Fetched is one retrieved candidate.
type Fetched struct {
	Data []byte
	// ETag identifies this content; pass it to the next Fetch.
	ETag string
}

// Source retrieves a bundle. Implementations are safe for use by one
// goroutine at a time (the Poller).
type Source interface {
	// Fetch returns the current bundle, or ErrNotModified if its ETag equals
	// etag. An empty etag always fetches.
	Fetch(ctx context.Context, etag string) (Fetched, error)
}

// Watcher is implemented by sources that can signal a change before the next
// poll is due (the file source).
type Watcher interface {
	// Changes returns a channel that receives a value when the source may
	// have changed. It is closed when ctx is done.
	Changes(ctx context.Context) (<-chan struct{}, error)
}

// NewSource picks a Source by URL scheme: http(s) URLs use HTTPSource,
// file:// URLs and plain paths use FileSource. client may be nil.
func NewSource(location string, client *http.Client) (Source, error) {
	if location == "" {
		return nil, errors.New("bundle source: empty location")
	}
	u, err := url.Parse(location)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if client == nil {
			client = http.DefaultClient
		}
		return &HTTPSource{URL: location, Client: client}, nil
	}
	if err == nil && u.Scheme == "file" {
		return &FileSource{Path: u.Path}, nil
	}
	if strings.Contains(location, "://") {
		return nil, fmt.Errorf("bundle source %q: unsupported scheme", location)
	}
	return &FileSource{Path: location}, nil
}

// HTTPSource polls a URL with conditional requests.
type HTTPSource struct {
	URL     string
	Client  *http.Client
	MaxSize int64 // 0 means DefaultMaxSize
}

var _ Source = (*HTTPSource)(nil)

// Fetch implements Source.
func (s *HTTPSource) Fetch(ctx context.Context, etag string) (Fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch bundle %s: %w", s.URL, err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch bundle %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return Fetched{}, ErrNotModified
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return Fetched{}, &HTTPError{URL: s.URL, StatusCode: resp.StatusCode}
	}
	data, err := readLimited(resp.Body, s.maxSize())
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch bundle %s: %w", s.URL, err)
	}
	tag := resp.Header.Get("ETag")
	if tag == "" {
		tag = contentTag(data)
	}
	if etag != "" && tag == etag {
		return Fetched{}, ErrNotModified
	}
	return Fetched{Data: data, ETag: tag}, nil
}

func (s *HTTPSource) maxSize() int64 {
	if s.MaxSize > 0 {
		return s.MaxSize
	}
	return DefaultMaxSize
}

// FileSource reads a bundle from the local file system. Its ETag is the
// SHA-256 of the content, so rewriting a file with the same bytes is not a
// change.
type FileSource struct {
	Path    string
	MaxSize int64 // 0 means DefaultMaxSize
}

var _ Source = (*FileSource)(nil)

// Fetch implements Source.
func (s *FileSource) Fetch(_ context.Context, etag string) (Fetched, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch bundle %s: %w", s.Path, err)
	}
	defer f.Close()
	max := s.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	data, err := readLimited(f, max)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch bundle %s: %w", s.Path, err)
	}
	tag := contentTag(data)
	if etag != "" && tag == etag {
		return Fetched{}, ErrNotModified
	}
	return Fetched{Data: data, ETag: tag}, nil
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, max)
	}
	return data, nil
}

func contentTag(data []byte) string {
	sum := sha256.Sum256(data)
	return `"sha256-` + hex.EncodeToString(sum[:]) + `"`
}
