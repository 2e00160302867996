package bundle_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestEncodeDeterministic(t *testing.T) {
	t.Parallel()
	first := encode(t, testBundle(t, 50, 3))
	second := encode(t, testBundle(t, 50, 3))
	if !bytes.Equal(first, second) {
		t.Fatal("two encodings of the same bundle differ")
	}
	b, err := bundle.Decode(first)
	if err != nil {
		t.Fatal(err)
	}
	if again := encode(t, b); !bytes.Equal(first, again) {
		t.Fatal("Encode(Decode(x)) != x")
	}
	if !bytes.HasSuffix(first, []byte("}\n")) || bytes.Count(first, []byte("\n")) != 1 {
		t.Fatal("encoding is not compact JSON with exactly one trailing newline")
	}
	if !bytes.Contains(first, []byte(`"<tables> & \"columns\""`)) {
		t.Fatal("HTML characters were escaped")
	}
	if !bytes.Contains(first, []byte(`"claims":{"azp":"coder","team":"platform","zone":"eu"}`)) {
		t.Fatal("map keys are not sorted")
	}
}

func TestEncodeNormalisesTime(t *testing.T) {
	t.Parallel()
	b := testBundle(t, 1, 1)
	want := encode(t, b)
	zone := time.FixedZone("CET", 3600)
	b.Manifest.NotBefore = b.Manifest.NotBefore.In(zone)
	b.Manifest.Expires = b.Manifest.Expires.In(zone)
	if got := encode(t, b); !bytes.Equal(got, want) {
		t.Fatalf("same instants in another zone encode differently:\n%s\n%s", got, want)
	}
	if b.Manifest.NotBefore.Location() != zone {
		t.Fatal("Encode modified its input")
	}
	b.Manifest.Expires = b.Manifest.Expires.Add(time.Millisecond)
	if _, err := bundle.Encode(b); !errors.Is(err, bundle.ErrMalformed) {
		t.Fatalf("sub-second expiry: err = %v, want ErrMalformed", err)
	}
}

func TestEncodeGolden(t *testing.T) {
	t.Parallel()
	got := encode(t, testBundle(t, 4, 12))
	path := filepath.Join("testdata", "bundle.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("canonical encoding changed; if intended, run go test -update\ngot:  %s\nwant: %s", got, want)
	}
	d, _ := bundle.PolicyDigest(&testBundle(t, 4, 12).Policy)
	if !bytes.Contains(want, []byte(`"policy_digest":"`+d+`"`)) {
		t.Fatal("golden file does not carry the policy digest")
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	good := encode(t, testBundle(t, 6, 5))

	mutate := func(f func(b *bundle.Bundle)) []byte {
		b := testBundle(t, 6, 5)
		f(b)
		if d, err := bundle.PolicyDigest(&b.Policy); err == nil {
			b.Manifest.PolicyDigest = d
		}
		return rawJSON(t, b)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("test setup: %q not in bundle", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{name: "valid", data: good},
		{name: "valid, pretty printed", data: bytes.ReplaceAll(good, []byte(`,"`), []byte(",\n  \""))},
		{name: "trailing whitespace", data: append(bytes.Clone(good), "\n\n"...)},
		{name: "oversized", data: bytes.Repeat([]byte(" "), bundle.MaxBundleSize+1), want: bundle.ErrTooLarge},
		{name: "empty", data: []byte{}, want: bundle.ErrMalformed},
		{name: "null", data: []byte("null"), want: bundle.ErrMalformed},
		{name: "array", data: []byte("[]"), want: bundle.ErrMalformed},
		{name: "truncated", data: good[:len(good)/3], want: bundle.ErrMalformed},
		{name: "trailing garbage", data: append(bytes.Clone(good), "garbage"...), want: bundle.ErrMalformed},
		{name: "second object", data: append(bytes.Clone(good), good...), want: bundle.ErrMalformed},
		{name: "unknown top-level field", data: replace(`{"manifest"`, `{"signature":"x","manifest"`), want: bundle.ErrMalformed},
		{name: "unknown nested field", data: replace(`"id":"rule-0002"`, `"id":"rule-0002","priority":1`), want: bundle.ErrMalformed},
		{name: "wrong JSON type", data: replace(`"serial":5`, `"serial":"5"`), want: bundle.ErrMalformed},
		{name: "negative serial", data: replace(`"serial":5`, `"serial":-5`), want: bundle.ErrMalformed},
		{name: "format version 2", data: replace(`"format_version":1`, `"format_version":2`), want: bundle.ErrFormatVersion},
		{name: "format version 2 with new fields", data: replace(`"format_version":1`, `"format_version":2,"features":["x"]`), want: bundle.ErrFormatVersion},
		{name: "format version 0", data: replace(`"format_version":1`, `"format_version":0`), want: bundle.ErrFormatVersion},
		{name: "digest mismatch", data: replace(`"id":"rule-0001"`, `"id":"rule-0001x"`), want: bundle.ErrDigestMismatch},
		{name: "valid, re-marshalled", data: mutate(func(b *bundle.Bundle) {})},
		{name: "empty revision", data: mutate(func(b *bundle.Bundle) { b.Manifest.Revision = "" }), want: bundle.ErrMalformed},
		{name: "bad source digest", data: mutate(func(b *bundle.Bundle) { b.Manifest.SourceDigest = "md5:00" }), want: bundle.ErrMalformed},
		{name: "upper-case digest", data: mutate(func(b *bundle.Bundle) { b.Manifest.SourceDigest = "sha256:" + strings.Repeat("A", 64) }), want: bundle.ErrMalformed},
		{name: "no expiry", data: mutate(func(b *bundle.Bundle) { b.Manifest.Expires = time.Time{} }), want: bundle.ErrMalformed},
		{name: "expiry before not-before", data: mutate(func(b *bundle.Bundle) { b.Manifest.Expires = b.Manifest.NotBefore.Add(-time.Hour) }), want: bundle.ErrMalformed},
		{name: "time not in UTC", data: replace(`"not_before":"2026-01-01T00:00:00Z"`, `"not_before":"2026-01-01T01:00:00+01:00"`), want: bundle.ErrMalformed},
		{name: "rule index mismatch", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[3].Index = 4 }), want: bundle.ErrMalformed},
		{name: "duplicate rule id", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[3].ID = b.Policy.Rules[1].ID }), want: bundle.ErrMalformed},
		{name: "empty rule id", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[0].ID = "" }), want: bundle.ErrMalformed},
		{name: "unknown effect", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[0].Effect = "permit" }), want: bundle.ErrMalformed},
		{name: "two protocol matches", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[0].SSH = &bundle.SSHMatch{} }), want: bundle.ErrMalformed},
		{name: "duplicate identity", data: mutate(func(b *bundle.Bundle) { b.Policy.Identities[1].Name = b.Policy.Identities[0].Name }), want: bundle.ErrMalformed},
		{name: "identities not sorted", data: mutate(func(b *bundle.Bundle) {
			b.Policy.Identities[0], b.Policy.Identities[1] = b.Policy.Identities[1], b.Policy.Identities[0]
		}), want: bundle.ErrMalformed},
		{name: "duplicate resource", data: mutate(func(b *bundle.Bundle) { b.Policy.Resources[1].Name = b.Policy.Resources[0].Name }), want: bundle.ErrMalformed},
		{name: "unknown resource type", data: mutate(func(b *bundle.Bundle) { b.Policy.Resources[0].Type = "oracle" }), want: bundle.ErrMalformed},
		{name: "unresolved resource", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[0].ResolvedResources = []string{"nope"} }), want: bundle.ErrMalformed},
		{name: "unknown identity group", data: mutate(func(b *bundle.Bundle) { b.Policy.Identities[0].Groups = []string{"nope"} }), want: bundle.ErrMalformed},
		{name: "unknown approval group", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[3].Approval.Group = "nope" }), want: bundle.ErrMalformed},
		{name: "approval count zero", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[3].Approval.Count = 0 }), want: bundle.ErrMalformed},
		{name: "unknown mask classifier", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[2].Mask.Classifiers = []string{"nope"} }), want: bundle.ErrMalformed},
		{name: "bad classifier pattern", data: mutate(func(b *bundle.Bundle) { b.Policy.Classifiers[0].Pattern = "(" }), want: bundle.ErrMalformed},
		{name: "bad rule expiry", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[0].Expires = "next year" }), want: bundle.ErrMalformed},
		{name: "rule expiry as time", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[0].Expires = "2027-03-01T00:00:00Z" })},
		{name: "unknown subject allowed", data: mutate(func(b *bundle.Bundle) { b.Policy.Rules[0].Subjects = []string{"group:nobody", "ghost"} })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := bundle.Decode(tc.data)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if b == nil || b.Manifest.Serial != 5 {
					t.Fatalf("Decode returned %+v", b)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode error = %v, want %v", err, tc.want)
			}
			if !bundle.IsVerificationError(err) {
				t.Fatalf("error %q is not a *VerificationError", err)
			}
		})
	}
}

func TestDecodeFile(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, bundle.KeyTypeEd25519)
	bare := encode(t, testBundle(t, 2, 9))
	for name, data := range map[string][]byte{
		"bare":     bare,
		"unsigned": envelopeJSON(t, bare),
		"signed":   sign(t, bare, k),
	} {
		b, env, err := bundle.DecodeFile(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b.Manifest.Serial != 9 {
			t.Fatalf("%s: serial %d", name, b.Manifest.Serial)
		}
		if (env == nil) != (name == "bare") {
			t.Fatalf("%s: envelope = %v", name, env)
		}
	}
	if _, _, err := bundle.DecodeFile([]byte(`{"other":1}`)); !errors.Is(err, bundle.ErrMalformed) {
		t.Fatalf("neither bundle nor envelope: err = %v", err)
	}
}

func TestReadAll(t *testing.T) {
	t.Parallel()
	data, err := bundle.ReadAll(strings.NewReader("{}"))
	if err != nil || string(data) != "{}" {
		t.Fatalf("ReadAll = %q, %v", data, err)
	}
	_, err = bundle.ReadAll(bytes.NewReader(make([]byte, bundle.MaxEnvelopeSize+1)))
	if !errors.Is(err, bundle.ErrTooLarge) {
		t.Fatalf("ReadAll oversized: err = %v, want ErrTooLarge", err)
	}
	_, err = bundle.ReadAll(errReader{})
	if err == nil || bundle.IsVerificationError(err) {
		t.Fatalf("ReadAll I/O failure: err = %v, want a plain I/O error", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }
