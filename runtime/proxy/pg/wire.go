package pg

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Buffer sizes per connection. They bound the memory of an idle connection.
const (
	clientReadBuf  = 4 << 10
	clientWriteBuf = 8 << 10
	backendReadBuf = 8 << 10
	backendWrite   = 4 << 10
	bigKeep        = 64 << 10 // larger one-off message buffers are released
)

// msgReader frames protocol messages from a buffered stream without copying
// messages that fit the buffer.
type msgReader struct {
	r    *bufio.Reader
	big  []byte
	max  int
	skip int // bytes of the previous message still in r
}

// ready reports whether a complete message is already buffered, so reading
// it will not block.
func (m *msgReader) ready() bool {
	m.release()
	b := m.r.Buffered()
	if b < 5 {
		return false
	}
	hdr, _ := m.r.Peek(5)
	return b >= int(binary.BigEndian.Uint32(hdr[1:]))+1
}

func (m *msgReader) release() {
	if m.skip > 0 {
		_, _ = m.r.Discard(m.skip)
		m.skip = 0
	}
	if cap(m.big) > bigKeep {
		m.big = nil
	}
}

// next returns the next message, header included. The slice is valid until
// the next call of next or ready.
func (m *msgReader) next() ([]byte, error) {
	m.release()
	hdr, err := m.r.Peek(5)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 {
		return nil, fmt.Errorf("%w: message type %q with invalid length %d", ErrProtocolViolation, hdr[0], n)
	}
	if n-4 > m.max {
		return nil, fmt.Errorf("%w: message type %q of %d bytes exceeds %d", ErrMessageTooLarge, hdr[0], n-4, m.max)
	}
	total := n + 1
	if total <= m.r.Size() {
		msg, err := m.r.Peek(total)
		if err != nil {
			return nil, err
		}
		m.skip = total
		return msg, nil
	}
	if cap(m.big) < total {
		m.big = make([]byte, total)
	}
	msg := m.big[:total]
	if _, err := io.ReadFull(m.r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// cstring splits a NUL-terminated string off b.
func cstring(b []byte) (string, []byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, fmt.Errorf("%w: unterminated string", ErrProtocolViolation)
	}
	return string(b[:i]), b[i+1:], nil
}

// cbytes is cstring without allocating.
func cbytes(b []byte) ([]byte, []byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: unterminated string", ErrProtocolViolation)
	}
	return b[:i], b[i+1:], nil
}

// lockedWriter serialises writes to the client: the backend reader relays,
// the client reader sends notices.
type lockedWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

// deadlines sets deadlines on the connections of one session unless the
// session was cancelled, so a cancellation is never undone.
type deadlines struct {
	mu       sync.Mutex
	canceled bool
	conns    []net.Conn
}

func (d *deadlines) add(c net.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns = append(d.conns, c)
	if d.canceled {
		_ = c.SetDeadline(time.Unix(1, 0))
	}
}

func (d *deadlines) set(c net.Conn, read bool, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canceled {
		return
	}
	if read {
		_ = c.SetReadDeadline(t)
	} else {
		_ = c.SetDeadline(t)
	}
}

// cancel unblocks all I/O of the session for good.
func (d *deadlines) cancel() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.canceled = true
	for _, c := range d.conns {
		_ = c.SetDeadline(time.Unix(1, 0))
	}
}
