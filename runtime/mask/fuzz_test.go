package mask

import (
	"bytes"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// FuzzRewriteCopyLine checks that COPY rewriting never panics, keeps the
// field count, and never lets a masked field through.
func FuzzRewriteCopyLine(f *testing.F) {
	for _, s := range []string{"1\tbob@example.com\tx\n", "\\N\t\\N\t\\N", "a\\tb\t\\x4\t\\777\n", "\t\t\t\t", "\\", "\r\n"} {
		f.Add([]byte(s))
	}
	p := copyPlan(f, bundle.MaskSpec{Columns: []string{"customers.email"}, Classifiers: []string{"email", "credit_card"}})
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.ContainsAny(line, "\n\r") && !bytes.HasSuffix(line, []byte("\n")) {
			return // one line at a time
		}
		out := p.RewriteCopyLine(line)
		body := bytes.TrimRight(line, "\r\n")
		fields := bytes.Split(body, []byte("\t"))
		got := bytes.Split(bytes.TrimRight(out, "\r\n"), []byte("\t"))
		if len(got) != len(fields) {
			t.Fatalf("%q -> %q: field count %d, want %d", line, out, len(got), len(fields))
		}
		if len(got) > 1 && !bytes.Equal(got[1], []byte(RedactText)) && !bytes.Equal(got[1], copyNull) {
			t.Fatalf("%q -> %q: masked field passed", line, out)
		}
	})
}

// FuzzRedact checks that redaction never panics and that a reported
// change really changed the value.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"bob@example.com", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "123-45-6789", "+1 415-555-2671", "ORD-123456", ""} {
		f.Add([]byte(s))
	}
	m := newMasker(f)
	names := make([]string, 0, len(builtins))
	for _, c := range builtins {
		names = append(names, c.Name)
	}
	redact, err := m.Classifiers(names, "redact")
	if err != nil {
		f.Fatal(err)
	}
	partial, err := m.Classifiers(names, "partial")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		for _, cs := range []*Classifiers{redact, partial} {
			orig := append([]byte(nil), v...)
			out, ok := cs.Redact(v)
			if !bytes.Equal(v, orig) {
				t.Fatal("input modified")
			}
			if !ok && !bytes.Equal(out, v) {
				t.Fatal("unchanged result differs from input")
			}
			if ok && bytes.Equal(out, v) && !bytes.Contains(v, []byte(RedactText)) && !bytes.Contains(v, []byte("ORD-######")) {
				t.Fatalf("reported change but %q is unchanged", v)
			}
		}
	})
}
