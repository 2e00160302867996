package diff

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// FuzzCompare checks that comparing any two decodable policies never panics,
// that a policy compared with itself has no changes, and that both
// renderers accept the report.
func FuzzCompare(f *testing.F) {
	seed, err := json.Marshal(basePolicy())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, []byte(`{"identities":[{"name":"a","kind":"agent"}],"resources":[{"name":"r","type":"ssh"}],"rules":[{"id":"x","effect":"allow","ssh":{}}]}`))
	f.Add(seed, seed)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var pa, pb bundle.Policy
		if json.Unmarshal(a, &pa) != nil || json.Unmarshal(b, &pb) != nil {
			return
		}
		rep := Compare(&pa, &pb)
		if err := rep.WriteMarkdown(&bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJSON(&bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if self := Compare(&pa, &pa); !self.Empty() {
			t.Fatalf("policy differs from itself: %+v", self.Changes)
		}
	})
}
