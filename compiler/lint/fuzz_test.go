package lint

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// FuzzRun checks that linting any decodable policy never panics and that
// every writer accepts the result.
func FuzzRun(f *testing.F) {
	seed, err := json.Marshal(basePolicy())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"rules":[{"id":"x","effect":"approve","approval":{"group":"g","count":-1}}]}`))
	f.Add([]byte(`{"groups":[{"name":"g","members":["a","a"]}],"rules":[{"effect":"mask","mask":{"columns":["a.b.c.d"]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p bundle.Policy
		if json.Unmarshal(data, &p) != nil {
			return
		}
		fs := Run(&p, Options{Now: testNow})
		for _, format := range Formats {
			if err := Write(&bytes.Buffer{}, format, fs, Tool{}); err != nil {
				t.Fatalf("write %s: %v", format, err)
			}
		}
	})
}

func FuzzParsePos(f *testing.F) {
	for _, s := range []string{"a.cue:1:2", "a:b:1", "::", "x:-1:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc := ParsePos(s)
		if loc.Line < 0 || loc.Col < 0 || len(loc.File) > len(s) {
			t.Fatalf("ParsePos(%q) = %+v", s, loc)
		}
	})
}
