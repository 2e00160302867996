package record

import (
	"testing"
)

// FuzzDecodeSpool: reading a damaged spool never panics; it either yields
// batches or a corruption error.
func FuzzDecodeSpool(f *testing.F) {
	s := &Session{ID: "s1", Claims: map[string]any{"a": 1}}
	payload, _ := toSpool([]item{{op: opCreate, session: s}, {op: opEvent, event: Event{SessionID: "s1", Seq: 1, Facts: []byte(`{}`)}}})
	f.Add(encodeSpoolRecord(payload))
	f.Add([]byte("GHS1\x00\x00\x00\x02\x00\x00\x00\x00[]"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeSpool(b)
	})
}
