package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Masking styles.
const (
	StyleRedact  = "redact"
	StyleHash    = "hash"
	StylePartial = "partial"
)

// RedactText is the replacement of the redact style.
const RedactText = "***"

var (
	// ErrUnknownClassifier is returned for a classifier name the policy
	// does not define.
	ErrUnknownClassifier = errors.New("unknown classifier")
	// ErrDeny is wrapped by NewPlan errors that mean the statement must be
	// denied because its result cannot be masked safely.
	ErrDeny = errors.New("result cannot be masked safely")
	// ErrConfig is wrapped by configuration errors.
	ErrConfig = errors.New("invalid masking configuration")
)

// Config configures a Masker.
type Config struct {
	// Classifiers are the policy's classifier definitions.
	Classifiers []bundle.Classifier
	// HashKey keys the hash style. Required (at least 16 bytes) for plans
	// that use the hash style.
	HashKey []byte
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.HashKey) > 0 && len(c.HashKey) < 16 {
		return fmt.Errorf("mask: hash key of %d bytes, want at least 16: %w", len(c.HashKey), ErrConfig)
	}
	seen := map[string]bool{}
	for _, cl := range c.Classifiers {
		if cl.Name == "" {
			return fmt.Errorf("mask: classifier without name: %w", ErrConfig)
		}
		if seen[cl.Name] {
			return fmt.Errorf("mask: classifier %q defined twice: %w", cl.Name, ErrConfig)
		}
		seen[cl.Name] = true
		switch cl.Validator {
		case "", "luhn", "iban":
		default:
			return fmt.Errorf("mask: classifier %q: unknown validator %q: %w", cl.Name, cl.Validator, ErrConfig)
		}
	}
	return nil
}

// Masker holds the compiled classifiers of one bundle. It is immutable and
// safe for concurrent use.
type Masker struct {
	classifiers map[string]*classifier
	key         []byte
}

// New compiles the classifiers.
func New(cfg Config) (*Masker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Masker{classifiers: map[string]*classifier{}, key: append([]byte(nil), cfg.HashKey...)}
	for _, def := range cfg.Classifiers {
		re, err := regexp.Compile(def.Pattern)
		if err != nil {
			return nil, fmt.Errorf("mask: classifier %q: %w: %w", def.Name, ErrConfig, err)
		}
		c := &classifier{name: def.Name, re: re, validator: def.Validator, replacement: def.Replacement}
		c.minDigits, c.needAt = prefilter(def)
		m.classifiers[def.Name] = c
	}
	return m, nil
}

type classifier struct {
	name        string
	re          *regexp.Regexp
	validator   string
	replacement string
	// Prefilter: a value with fewer digits, or without '@' when needAt,
	// cannot match.
	minDigits int
	needAt    bool
}

// prefilter derives the cheap pre-checks of the built-in classifiers.
// Custom classifiers get none: their regex always runs.
func prefilter(def bundle.Classifier) (minDigits int, needAt bool) {
	switch {
	case def.Validator == "luhn":
		return 12, false
	case def.Validator == "iban":
		return 2, false
	}
	if !def.Builtin {
		return 0, false
	}
	switch def.Name {
	case "email":
		return 0, true
	case "credit_card":
		return 12, false
	case "us_ssn":
		return 9, false
	case "phone":
		return 7, false
	case "iban":
		return 2, false
	}
	return 0, false
}

// Classifiers is a set of compiled classifiers with a masking style,
// ready to redact values. It is immutable and safe for concurrent use.
type Classifiers struct {
	list  []*classifier
	style string
	key   []byte
}

// Classifiers selects the named classifiers with a style ("" = redact).
func (m *Masker) Classifiers(names []string, style string) (*Classifiers, error) {
	style, err := m.checkStyle(style)
	if err != nil {
		return nil, err
	}
	cs := &Classifiers{style: style, key: m.key}
	seen := map[string]bool{}
	for _, n := range names {
		c, ok := m.classifiers[n]
		if !ok {
			return nil, fmt.Errorf("mask: classifier %q: %w", n, ErrUnknownClassifier)
		}
		if !seen[n] {
			seen[n] = true
			cs.list = append(cs.list, c)
		}
	}
	return cs, nil
}

func (m *Masker) checkStyle(style string) (string, error) {
	switch style {
	case "":
		return StyleRedact, nil
	case StyleRedact, StylePartial:
		return style, nil
	case StyleHash:
		if len(m.key) == 0 {
			return "", fmt.Errorf("mask: hash style needs a hash key: %w", ErrConfig)
		}
		return style, nil
	}
	return "", fmt.Errorf("mask: unknown style %q: %w", style, ErrConfig)
}

// Len returns the number of classifiers in the set.
func (c *Classifiers) Len() int {
	if c == nil {
		return 0
	}
	return len(c.list)
}

// Redact replaces every validated match of every classifier in value. It
// returns value itself and false when nothing matched (no allocation), or
// a new slice and true.
func (c *Classifiers) Redact(value []byte) ([]byte, bool) {
	if c == nil || len(c.list) == 0 || len(value) == 0 {
		return value, false
	}
	digits, at := 0, false
	for _, b := range value {
		if b >= '0' && b <= '9' {
			digits++
		} else if b == '@' {
			at = true
		}
	}
	changed := false
	for _, cl := range c.list {
		if digits < cl.minDigits || (cl.needAt && !at) {
			continue
		}
		locs := cl.re.FindAllIndex(value, -1)
		if len(locs) == 0 {
			continue
		}
		var out []byte
		last := 0
		for _, loc := range locs {
			match := value[loc[0]:loc[1]]
			if !validate(cl.validator, match) {
				continue
			}
			if out == nil {
				out = make([]byte, 0, len(value))
			}
			out = append(out, value[last:loc[0]]...)
			if cl.replacement != "" {
				out = append(out, cl.replacement...)
			} else {
				out = appendMasked(out, c.style, c.key, match)
			}
			last = loc[1]
		}
		if out == nil {
			continue
		}
		value = append(out, value[last:]...)
		changed = true
	}
	return value, changed
}

// appendMasked appends the masked form of v in the given style.
func appendMasked(dst []byte, style string, key, v []byte) []byte {
	switch style {
	case StyleHash:
		mac := hmac.New(sha256.New, key)
		mac.Write(v)
		var sum [sha256.Size]byte
		d := mac.Sum(sum[:0])
		dst = append(dst, "h:"...)
		return hex.AppendEncode(dst, d[:8])
	case StylePartial:
		n := utf8.RuneCount(v)
		if n < 8 {
			return append(dst, RedactText...)
		}
		// Keep the last 4 characters.
		cut := len(v)
		for i := 0; i < 4; i++ {
			_, size := utf8.DecodeLastRune(v[:cut])
			cut -= size
		}
		for i := 0; i < n-4; i++ {
			dst = append(dst, '*')
		}
		return append(dst, v[cut:]...)
	}
	return append(dst, RedactText...)
}

func validate(kind string, match []byte) bool {
	switch kind {
	case "luhn":
		return luhn(match)
	case "iban":
		return iban(match)
	}
	return true
}

// luhn checks the Luhn checksum over the digits of s (spaces and dashes are
// ignored; anything else fails). 12 to 19 digits.
func luhn(s []byte) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		b := s[i]
		switch {
		case b >= '0' && b <= '9':
			d := int(b - '0')
			if n%2 == 1 {
				d *= 2
				if d > 9 {
					d -= 9
				}
			}
			sum += d
			n++
		case b == ' ' || b == '-':
		default:
			return false
		}
	}
	return n >= 12 && n <= 19 && sum%10 == 0
}

// iban checks an IBAN (ISO 13616): country code, check digits, BBAN, mod 97
// of the rearranged number equals 1. Spaces are ignored.
func iban(s []byte) bool {
	var buf [34]byte
	n := 0
	for _, b := range s {
		if b == ' ' {
			continue
		}
		if n == len(buf) {
			return false
		}
		if b >= 'a' && b <= 'z' {
			b -= 'a' - 'A'
		}
		buf[n] = b
		n++
	}
	if n < 15 {
		return false
	}
	v := buf[:n]
	if v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z' || v[2] < '0' || v[2] > '9' || v[3] < '0' || v[3] > '9' {
		return false
	}
	rem := 0
	for i := 0; i < n; i++ {
		b := v[(i+4)%n]
		switch {
		case b >= '0' && b <= '9':
			rem = (rem*10 + int(b-'0')) % 97
		case b >= 'A' && b <= 'Z':
			rem = (rem*100 + int(b-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}
