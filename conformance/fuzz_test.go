package conformance

import (
	"errors"
	"strings"
	"testing"
)

// FuzzReadSessions: any input is either a valid corpus or a *FormatError;
// ReadSessions never panics.
func FuzzReadSessions(f *testing.F) {
	f.Add(hdr + "\n" + sess + "\n" + evt + "\n")
	f.Add(`{"format":"gatehouse.sessions/v1","sessions":0,"events":0}`)
	f.Add(hdr + "\n" + `{"event":{"seq":1}}`)
	f.Add("\x00\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ReadSessions(strings.NewReader(in), "fuzz.jsonl")
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		if c.Header.Events != c.Statements() {
			t.Fatalf("accepted a corpus whose header disagrees: %+v", c.Header)
		}
	})
}
