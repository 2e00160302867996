package pg

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	cancelRequestCode = 80877102
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
)

// cancelTarget is a backend query that a client may cancel.
type cancelTarget struct {
	secret     [4]byte
	backend    BackendConfig
	backendPID uint32
	backendKey []byte
}

// registry maps the gateway's BackendKeyData to backend keys. It is shared
// by all connections of a Handler. The process ID the client sees is the
// backend's own (clients compare it with pg_backend_pid() and notification
// senders, which the backend reveals anyway); the secret is the gateway's,
// so a client never learns the key that cancels the backend directly. One
// Handler may front several servers whose process IDs collide, so a key is
// found by process ID and secret together.
type registry struct {
	mu sync.Mutex
	m  map[uint32][]*cancelTarget
}

// add registers t under its backend process ID with a fresh random secret
// and returns the process ID.
func (r *registry) add(t *cancelTarget) (uint32, error) {
	if _, err := rand.Read(t.secret[:]); err != nil {
		return 0, fmt.Errorf("generate cancel key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[uint32][]*cancelTarget)
	}
	r.m[t.backendPID] = append(r.m[t.backendPID], t)
	return t.backendPID, nil
}

// remove unregisters t.
func (r *registry) remove(t *cancelTarget) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.m[t.backendPID]
	for i, x := range list {
		if x == t {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.m, t.backendPID)
	} else {
		r.m[t.backendPID] = list
	}
}

// lookup returns the target only for an exact (pid, secret) match.
func (r *registry) lookup(pid uint32, secret []byte) *cancelTarget {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.m[pid] {
		if len(secret) == len(t.secret) && subtle.ConstantTimeCompare(secret, t.secret[:]) == 1 {
			return t
		}
	}
	return nil
}

// forwardCancel sends a CancelRequest with the backend's own key.
func forwardCancel(ctx context.Context, t *cancelTarget) error {
	timeout := t.backend.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := t.backend.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", t.backend.Address)
	if err != nil {
		return fmt.Errorf("cancel: dial backend %s: %w", t.backend.Address, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if t.backend.TLS != nil {
		var req [8]byte
		binary.BigEndian.PutUint32(req[:4], 8)
		binary.BigEndian.PutUint32(req[4:], sslRequestCode)
		if _, err := conn.Write(req[:]); err != nil {
			return fmt.Errorf("cancel: backend %s: %w", t.backend.Address, err)
		}
		var resp [1]byte
		if _, err := io.ReadFull(conn, resp[:]); err != nil {
			return fmt.Errorf("cancel: backend %s: %w", t.backend.Address, err)
		}
		if resp[0] == 'S' {
			tc := tls.Client(conn, t.backend.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				return fmt.Errorf("cancel: backend %s tls: %w", t.backend.Address, err)
			}
			conn = tc
		}
	}
	msg, err := (&pgproto3.CancelRequest{ProcessID: t.backendPID, SecretKey: t.backendKey}).Encode(nil)
	if err != nil {
		return fmt.Errorf("cancel: encode: %w", err)
	}
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("cancel: backend %s: %w", t.backend.Address, err)
	}
	// The server closes the connection once it has processed the request.
	var sink [1]byte
	_, _ = conn.Read(sink[:])
	return nil
}
