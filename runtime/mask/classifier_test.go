package mask

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	m := newMasker(t)
	cases := []struct {
		name, classifier, style, in, want string
	}{
		{"email", "email", "", "mail bob@example.com now", "mail *** now"},
		{"two emails", "email", "", "a@b.io,c@d.org", "***,***"},
		{"email lookalike", "email", "", "user at example dot com @home", ""},
		{"card luhn ok", "credit_card", "", "card 4111 1111 1111 1111 end", "card *** end"},
		{"card dashes", "credit_card", "", "5500-0000-0000-0004", "***"},
		{"card fails luhn", "credit_card", "", "4111 1111 1111 1112", ""},
		{"16 digits not luhn", "credit_card", "", "1234567812345678", ""},
		{"too few digits", "credit_card", "", "123456789012", ""},
		{"ssn", "us_ssn", "", "ssn 123-45-6789.", "ssn ***."},
		{"ssn invalid area", "us_ssn", "", "000-12-3456 and 666-12-3456", ""},
		{"iban ok", "iban", "", "IBAN DE89 3704 0044 0532 0130 00 paid", "IBAN *** paid"},
		{"iban compact", "iban", "", "GB82WEST12345698765432", "***"},
		{"iban bad checksum", "iban", "", "DE89 3704 0044 0532 0130 01", ""},
		{"phone", "phone", "", "call +1 415-555-2671", "call ***"},
		{"phone plain number", "phone", "", "order 12345", ""},
		{"custom replacement", "order_ref", "", "see ORD-123456", "see ORD-######"},
		{"hash style", "email", "hash", "bob@example.com", "h:"},
		{"partial style", "credit_card", "partial", "4111111111111111", "************1111"},
		{"partial short", "email", "partial", "a@b.io", "***"},
		{"no digits fast path", "us_ssn", "", "no numbers here at all", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cs, err := m.Classifiers([]string{c.classifier}, c.style)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := cs.Redact([]byte(c.in))
			if c.want == "" {
				if ok || string(got) != c.in {
					t.Fatalf("Redact(%q) = %q, %v; want unchanged", c.in, got, ok)
				}
				return
			}
			if !ok {
				t.Fatalf("Redact(%q) did not match", c.in)
			}
			if c.style == "hash" {
				if !strings.HasPrefix(string(got), "h:") || len(got) != 18 {
					t.Fatalf("hash = %q", got)
				}
				again, _ := cs.Redact([]byte(c.in))
				if string(again) != string(got) {
					t.Fatalf("hash not stable: %q vs %q", again, got)
				}
				return
			}
			if string(got) != c.want {
				t.Fatalf("Redact(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestHashKeyed(t *testing.T) {
	t.Parallel()
	m1 := newMasker(t)
	m2, err := New(Config{Classifiers: builtins, HashKey: []byte("another key of sixteen+ bytes")})
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := m1.Classifiers([]string{"email"}, "hash")
	c2, _ := m2.Classifiers([]string{"email"}, "hash")
	a, _ := c1.Redact([]byte("bob@example.com"))
	b, _ := c2.Redact([]byte("bob@example.com"))
	if string(a) == string(b) {
		t.Fatal("hash does not depend on the key")
	}
}

func TestRedactNoAllocWithoutMatch(t *testing.T) {
	m := newMasker(t)
	cs, _ := m.Classifiers([]string{"email", "credit_card", "us_ssn"}, "")
	v := []byte("just an ordinary value")
	if n := testing.AllocsPerRun(100, func() { cs.Redact(v) }); n != 0 {
		t.Fatalf("%v allocations for a value without matches", n)
	}
}

func TestMaskerErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"bad regex", Config{Classifiers: []bundle.Classifier{{Name: "x", Pattern: "("}}}, ErrConfig},
		{"duplicate", Config{Classifiers: []bundle.Classifier{{Name: "x", Pattern: "a"}, {Name: "x", Pattern: "b"}}}, ErrConfig},
		{"bad validator", Config{Classifiers: []bundle.Classifier{{Name: "x", Pattern: "a", Validator: "crc"}}}, ErrConfig},
		{"short key", Config{HashKey: []byte("short")}, ErrConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(c.cfg); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	m, err := New(Config{Classifiers: builtins})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Classifiers([]string{"nope"}, ""); !errors.Is(err, ErrUnknownClassifier) {
		t.Fatalf("err = %v, want ErrUnknownClassifier", err)
	}
	if _, err := m.Classifiers([]string{"email"}, "hash"); !errors.Is(err, ErrConfig) {
		t.Fatalf("hash without key: err = %v, want ErrConfig", err)
	}
	if _, err := m.Classifiers(nil, "sparkle"); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad style: err = %v, want ErrConfig", err)
	}
}
