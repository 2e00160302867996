package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestHTTPSourceETag(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	body, tag := "v1", `"a"`
	var sawIfNoneMatch []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		sawIfNoneMatch = append(sawIfNoneMatch, r.Header.Get("If-None-Match"))
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", tag)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()

	src, err := NewSource(srv.URL+"/bundle.json", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	f, err := src.Fetch(context.Background(), "")
	if err != nil || string(f.Data) != "v1" || f.ETag != `"a"` {
		t.Fatalf("first fetch = %q %q %v", f.Data, f.ETag, err)
	}
	if _, err := src.Fetch(context.Background(), f.ETag); !errors.Is(err, ErrNotModified) {
		t.Fatalf("second fetch err = %v, want ErrNotModified", err)
	}
	mu.Lock()
	body, tag = "v2", `"b"`
	mu.Unlock()
	f, err = src.Fetch(context.Background(), f.ETag)
	if err != nil || string(f.Data) != "v2" {
		t.Fatalf("third fetch = %q %v", f.Data, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if sawIfNoneMatch[1] != `"a"` {
		t.Fatalf("If-None-Match not sent: %q", sawIfNoneMatch)
	}
}

func TestHTTPSourceErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/big":
			_, _ = w.Write(make([]byte, 2048))
		}
	}))
	defer srv.Close()
	src := &HTTPSource{URL: srv.URL + "/missing", Client: srv.Client()}
	_, err := src.Fetch(context.Background(), "")
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Fatalf("err = %v, want HTTPError 404", err)
	}
	big := &HTTPSource{URL: srv.URL + "/big", Client: srv.Client(), MaxSize: 1024}
	if _, err := big.Fetch(context.Background(), ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestFileSourceAndWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource("file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := src.Fetch(context.Background(), "")
	if err != nil || string(f.Data) != "one" {
		t.Fatalf("fetch = %q %v", f.Data, err)
	}
	if _, err := src.Fetch(context.Background(), f.ETag); !errors.Is(err, ErrNotModified) {
		t.Fatalf("unchanged file: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, err := src.(Watcher).Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Publish by rename, as a deployment would.
	tmp := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(tmp, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no change signalled after rename")
	}
	f2, err := src.Fetch(context.Background(), f.ETag)
	if err != nil || string(f2.Data) != "two" {
		t.Fatalf("fetch after change = %q %v", f2.Data, err)
	}
	if _, err := NewSource("ftp://x/y", nil); err == nil {
		t.Fatal("unsupported scheme accepted")
	}
}

// scriptedSource returns results in order.
type scriptedSource struct {
	mu      sync.Mutex
	results []func(etag string) (Fetched, error)
	etags   []string
}

func (s *scriptedSource) Fetch(_ context.Context, etag string) (Fetched, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etags = append(s.etags, etag)
	if len(s.results) == 0 {
		return Fetched{}, ErrNotModified
	}
	r := s.results[0]
	s.results = s.results[1:]
	return r(etag)
}

func TestPollerRejectKeepsETagAndBacksOff(t *testing.T) {
	t.Parallel()
	src := &scriptedSource{results: []func(string) (Fetched, error){
		func(string) (Fetched, error) { return Fetched{Data: []byte("good"), ETag: "e1"}, nil },
		func(string) (Fetched, error) { return Fetched{Data: []byte("bad"), ETag: "e2"}, nil },
		func(string) (Fetched, error) { return Fetched{}, errors.New("connection refused") },
		func(string) (Fetched, error) { return Fetched{Data: []byte("good2"), ETag: "e3"}, nil },
	}}
	var handled []string
	delays := make(chan time.Duration, 16)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := NewPoller(PollerConfig{
		Source:     src,
		Interval:   time.Minute,
		MinBackoff: time.Second,
		MaxBackoff: 8 * time.Second,
		Handle: func(_ context.Context, f Fetched) error {
			handled = append(handled, string(f.Data))
			if string(f.Data) == "bad" {
				return errors.New("signature invalid")
			}
			return nil
		},
		After: func(d time.Duration) <-chan time.Time {
			delays <- d
			if len(delays) >= 5 {
				cancel()
			}
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(handled); got != 3 || handled[2] != "good2" {
		t.Fatalf("handled = %q", handled)
	}
	src.mu.Lock()
	etags := append([]string(nil), src.etags...)
	src.mu.Unlock()
	// After the rejected e2, the poller must still present e1.
	if etags[2] != "e1" || etags[3] != "e1" || etags[4] != "e3" {
		t.Fatalf("etags presented = %q", etags)
	}
	close(delays)
	var ds []time.Duration
	for d := range delays {
		ds = append(ds, d)
	}
	// First delay is a normal interval; after the rejection and the
	// transport error the delays are backoffs bounded by MaxBackoff.
	if ds[0] < time.Minute {
		t.Fatalf("first delay %v shorter than interval", ds[0])
	}
	if ds[1] > time.Second || ds[2] > 2*time.Second || ds[2] < time.Second {
		t.Fatalf("backoff delays %v", ds[1:3])
	}
}
