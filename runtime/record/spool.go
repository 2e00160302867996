package record

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Spool file format: a sequence of records, each
//
//	magic "GHS1" | uint32 BE payload length | uint32 BE CRC-32C of payload | payload
//
// where the payload is the JSON encoding of one batch ([]spoolItem). The
// file is only appended to (and fsynced after every record) while the store
// is failing, and truncated once every record has been replayed into the
// store. A torn final record (crash during append) fails its length or
// checksum test and is discarded.
const (
	spoolMagic     = "GHS1"
	spoolHeaderLen = 12
	// MaxSpoolRecord bounds one spooled batch.
	MaxSpoolRecord = 64 << 20
	spoolFileName  = "recorder.spool"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errSpoolCorrupt marks a record that fails its framing or checksum.
var errSpoolCorrupt = errors.New("spool record corrupt")

// spoolItem is the serialised form of a queue item.
type spoolItem struct {
	Op      string        `json:"op"`
	Session *spoolSession `json:"session,omitempty"`
	// Event has the same JSON form as in the admin API.
	Event *Event `json:"event,omitempty"`
	// Seal goes with an "event_end" when the recorder signs.
	Seal *Seal `json:"seal,omitempty"`
}

type spoolSession struct {
	ID             string          `json:"id"`
	Identity       string          `json:"identity,omitempty"`
	IdentityKind   string          `json:"identity_kind,omitempty"`
	Groups         []string        `json:"groups,omitempty"`
	Claims         json.RawMessage `json:"claims,omitempty"`
	Resource       string          `json:"resource,omitempty"`
	ResourceType   string          `json:"resource_type,omitempty"`
	ClientAddr     string          `json:"client_addr,omitempty"`
	GatewayID      string          `json:"gateway_id,omitempty"`
	BundleRevision string          `json:"bundle_revision,omitempty"`
	StartedAt      time.Time       `json:"started_at"`
}

func toSpool(batch []item) ([]byte, error) {
	out := make([]spoolItem, len(batch))
	for i := range batch {
		it := &batch[i]
		switch it.op {
		case opCreate:
			s := it.session
			claims, err := ClaimsJSON(s.Claims)
			if err != nil {
				return nil, err
			}
			out[i] = spoolItem{Op: "create", Session: &spoolSession{
				ID: s.ID, Identity: s.Identity, IdentityKind: s.IdentityKind, Groups: s.Groups,
				Claims: claims, Resource: s.Resource, ResourceType: s.ResourceType,
				ClientAddr: s.ClientAddr, GatewayID: s.GatewayID, BundleRevision: s.BundleRevision,
				StartedAt: s.StartedAt,
			}}
		case opEvent, opEventEnd:
			e := it.event
			op := "event"
			if it.op == opEventEnd {
				op = "event_end"
			}
			out[i] = spoolItem{Op: op, Event: &e, Seal: it.seal}
		}
	}
	return json.Marshal(out)
}

func fromSpool(payload []byte) ([]item, error) {
	var in []spoolItem
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, fmt.Errorf("%w: %w", errSpoolCorrupt, err)
	}
	out := make([]item, 0, len(in))
	for _, si := range in {
		switch si.Op {
		case "create":
			if si.Session == nil {
				return nil, fmt.Errorf("%w: create without session", errSpoolCorrupt)
			}
			ss := si.Session
			claims, err := DecodeClaims(ss.Claims)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errSpoolCorrupt, err)
			}
			out = append(out, item{op: opCreate, session: &Session{
				ID: ss.ID, Identity: ss.Identity, IdentityKind: ss.IdentityKind, Groups: ss.Groups,
				Claims: claims, Resource: ss.Resource, ResourceType: ss.ResourceType,
				ClientAddr: ss.ClientAddr, GatewayID: ss.GatewayID, BundleRevision: ss.BundleRevision,
				StartedAt: Timestamp(ss.StartedAt),
			}})
		case "event", "event_end":
			if si.Event == nil {
				return nil, fmt.Errorf("%w: event missing", errSpoolCorrupt)
			}
			e := *si.Event
			e.Time = Timestamp(e.Time)
			it := item{op: opEvent, event: e}
			if si.Op == "event_end" {
				it.op = opEventEnd
				if si.Seal != nil {
					seal := *si.Seal
					seal.EndedAt = Timestamp(seal.EndedAt)
					it.seal = &seal
				}
			}
			out = append(out, it)
		default:
			return nil, fmt.Errorf("%w: unknown op %q", errSpoolCorrupt, si.Op)
		}
	}
	return out, nil
}

// readSpoolRecord reads one record. It returns io.EOF at a clean end and
// errSpoolCorrupt for a torn or damaged record. n is the number of bytes the
// record occupies.
func readSpoolRecord(r io.Reader) (payload []byte, n int64, err error) {
	var hdr [spoolHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("%w: short header", errSpoolCorrupt)
	}
	if string(hdr[:4]) != spoolMagic {
		return nil, 0, fmt.Errorf("%w: bad magic", errSpoolCorrupt)
	}
	size := binary.BigEndian.Uint32(hdr[4:8])
	if size > MaxSpoolRecord {
		return nil, 0, fmt.Errorf("%w: record of %d bytes exceeds limit", errSpoolCorrupt, size)
	}
	payload = make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, 0, fmt.Errorf("%w: short payload", errSpoolCorrupt)
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[8:12]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", errSpoolCorrupt)
	}
	return payload, spoolHeaderLen + int64(size), nil
}

func encodeSpoolRecord(payload []byte) []byte {
	buf := make([]byte, spoolHeaderLen, spoolHeaderLen+len(payload))
	copy(buf, spoolMagic)
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[8:12], crc32.Checksum(payload, crcTable))
	return append(buf, payload...)
}

// spool is the append-only overflow file. It is used only by the writer
// goroutine.
type spool struct {
	path     string
	f        *os.File
	size     int64 // bytes in the file
	replayed int64 // bytes already replayed into the store
	max      int64
}

func openSpool(dir string, max int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	path := filepath.Join(dir, spoolFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{path: path, f: f, size: st.Size(), max: max}, nil
}

// pending reports whether the spool holds records not yet replayed.
func (s *spool) pending() bool { return s.size > s.replayed }

func (s *spool) append(batch []item) error {
	payload, err := toSpool(batch)
	if err != nil {
		return fmt.Errorf("spool encode: %w", err)
	}
	if len(payload) > MaxSpoolRecord {
		return fmt.Errorf("spool: batch of %d bytes exceeds record limit", len(payload))
	}
	rec := encodeSpoolRecord(payload)
	if s.size+int64(len(rec)) > s.max {
		return fmt.Errorf("spool: file would exceed %d bytes", s.max)
	}
	n, err := s.f.Write(rec)
	if err != nil {
		// Cut a partial write so that the next record starts clean.
		_ = s.f.Truncate(s.size)
		return fmt.Errorf("spool write: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		_ = s.f.Truncate(s.size)
		return fmt.Errorf("spool sync: %w", err)
	}
	s.size += int64(n)
	return nil
}

// replay applies every record from the replay offset in order. It stops at
// the first apply error (keeping the offset of the records already
// applied). A corrupt record ends the spool: it and anything after it are
// reported through onCorrupt and discarded.
func (s *spool) replay(apply func([]item) error, onCorrupt func(error, int64)) error {
	if !s.pending() {
		return nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, s.replayed, s.size-s.replayed), 1<<20)
	for s.replayed < s.size {
		payload, n, err := readSpoolRecord(r)
		if err == nil {
			var batch []item
			batch, err = fromSpool(payload)
			if err == nil {
				if aerr := apply(batch); aerr != nil {
					return aerr
				}
				s.replayed += n
				continue
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		onCorrupt(err, s.size-s.replayed)
		break
	}
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("spool truncate: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spool sync: %w", err)
	}
	s.size, s.replayed = 0, 0
	return nil
}

func (s *spool) close() error { return s.f.Close() }

// decodeSpool parses a whole spool image; used by tests and fuzzing.
func decodeSpool(b []byte) ([][]item, error) {
	r := bytes.NewReader(b)
	var out [][]item
	for {
		payload, _, err := readSpoolRecord(r)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		batch, err := fromSpool(payload)
		if err != nil {
			return out, err
		}
		out = append(out, batch)
	}
}
