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
// by all connections of a Handler.
type registry struct {
	mu sync.Mutex
	m  map[uint32]*cancelTarget
}

// add registers t under a fresh random key and returns it.
func (r *registry) add(t *cancelTarget) (uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[uint32]*cancelTarget)
	}
	var b [8]byte
	for range 64 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("generate cancel key: %w", err)
		}
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 || r.m[pid] != nil {
			continue
		}
		copy(t.secret[:], b[4:])
		r.m[pid] = t
		return pid, nil
	}
	return 0, fmt.Errorf("generate cancel key: no free key")
}

func (r *registry) remove(pid uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, pid)
}

// lookup returns the target only for an exact (pid, secret) match.
func (r *registry) lookup(pid uint32, secret []byte) *cancelTarget {
	r.mu.Lock()
	t := r.m[pid]
	r.mu.Unlock()
	if t == nil || len(secret) != len(t.secret) || subtle.ConstantTimeCompare(secret, t.secret[:]) != 1 {
		return nil
	}
	return t
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
