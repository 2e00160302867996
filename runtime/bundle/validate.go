package bundle

import (
	"regexp"
	"time"
)

// Validate checks the invariants every accepted bundle satisfies; Encode and
// Decode call it. It returns a *VerificationError wrapping ErrFormatVersion,
// ErrDigestMismatch or ErrMalformed.
//
// Checked: the format version; a non-empty revision; digests of the form
// "sha256:" + 64 lower-case hex digits; not_before and expires set, in UTC,
// with second precision, expires after not_before; the policy digest; names
// of identities, groups, resources and classifiers non-empty and strictly
// sorted (so unique); known resource types; classifier patterns that compile
// as RE2 and known validators; rule ids non-empty and unique, Index equal to
// the position, a known effect, at most one protocol match, a parseable
// expiry; and references the runtime dereferences: identity groups, resolved
// resources, mask classifiers and approval groups must exist. Subjects and
// written resource patterns that name nothing are allowed: they match
// nothing.
func (b *Bundle) Validate() error {
	if err := b.validateStructure(); err != nil {
		return err
	}
	got, err := PolicyDigest(&b.Policy)
	if err != nil {
		return err
	}
	return checkDigest(b.Manifest.PolicyDigest, got)
}

func checkDigest(manifest, computed string) error {
	if manifest != computed {
		return reject(ErrDigestMismatch, "manifest says %s, policy hashes to %s", manifest, computed)
	}
	return nil
}

// validateStructure is Validate without the policy digest comparison.
func (b *Bundle) validateStructure() error {
	if b == nil {
		return reject(ErrMalformed, "nil bundle")
	}
	m := &b.Manifest
	if m.FormatVersion != FormatVersion {
		return reject(ErrFormatVersion, "format version %d, want %d", m.FormatVersion, FormatVersion)
	}
	if m.Revision == "" {
		return reject(ErrMalformed, "manifest: empty revision")
	}
	if !validDigest(m.SourceDigest) {
		return reject(ErrMalformed, "manifest: source_digest %q is not sha256:HEX", m.SourceDigest)
	}
	if !validDigest(m.PolicyDigest) {
		return reject(ErrMalformed, "manifest: policy_digest %q is not sha256:HEX", m.PolicyDigest)
	}
	if err := validTime("not_before", m.NotBefore); err != nil {
		return err
	}
	if err := validTime("expires", m.Expires); err != nil {
		return err
	}
	if !m.Expires.After(m.NotBefore) {
		return reject(ErrMalformed, "manifest: expires %s is not after not_before %s",
			m.Expires.Format(time.RFC3339), m.NotBefore.Format(time.RFC3339))
	}
	return validatePolicy(&b.Policy)
}

func validDigest(s string) bool {
	const prefix = "sha256:"
	if len(s) != len(prefix)+64 || s[:len(prefix)] != prefix {
		return false
	}
	for _, c := range []byte(s[len(prefix):]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validTime(field string, t time.Time) error {
	if t.IsZero() {
		return reject(ErrMalformed, "manifest: %s is not set", field)
	}
	if _, off := t.Zone(); off != 0 {
		return reject(ErrMalformed, "manifest: %s is not in UTC", field)
	}
	if t.Nanosecond() != 0 {
		return reject(ErrMalformed, "manifest: %s has sub-second precision", field)
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return reject(ErrMalformed, "manifest: %s year %d out of range", field, y)
	}
	return nil
}

// sortedNames checks that names are non-empty and strictly increasing and
// returns them as a set.
func sortedNames(kind string, n int, name func(int) string) (map[string]bool, error) {
	set := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		s := name(i)
		if s == "" {
			return nil, reject(ErrMalformed, "%s %d: empty name", kind, i)
		}
		if i > 0 && s <= name(i-1) {
			if s == name(i-1) {
				return nil, reject(ErrMalformed, "%s %q: duplicate name", kind, s)
			}
			return nil, reject(ErrMalformed, "%s %q: not sorted by name", kind, s)
		}
		set[s] = true
	}
	return set, nil
}

var (
	knownResourceTypes = map[ResourceType]bool{
		ResourcePostgres: true, ResourceMySQL: true, ResourceSSH: true,
		ResourceHTTP: true, ResourceKubernetes: true,
	}
	knownEffects    = map[Effect]bool{EffectAllow: true, EffectDeny: true, EffectApprove: true, EffectMask: true}
	knownValidators = map[string]bool{"": true, "luhn": true, "iban": true}
)

func validatePolicy(p *Policy) error {
	groups, err := sortedNames("group", len(p.Groups), func(i int) string { return p.Groups[i].Name })
	if err != nil {
		return err
	}
	if _, err := sortedNames("identity", len(p.Identities), func(i int) string { return p.Identities[i].Name }); err != nil {
		return err
	}
	for _, id := range p.Identities {
		for _, g := range id.Groups {
			if !groups[g] {
				return reject(ErrMalformed, "identity %q: unknown group %q", id.Name, g)
			}
		}
	}
	resources, err := sortedNames("resource", len(p.Resources), func(i int) string { return p.Resources[i].Name })
	if err != nil {
		return err
	}
	for _, r := range p.Resources {
		if !knownResourceTypes[r.Type] {
			return reject(ErrMalformed, "resource %q: unknown type %q", r.Name, r.Type)
		}
	}
	classifiers, err := sortedNames("classifier", len(p.Classifiers), func(i int) string { return p.Classifiers[i].Name })
	if err != nil {
		return err
	}
	for _, c := range p.Classifiers {
		if _, err := regexp.Compile(c.Pattern); err != nil {
			return reject(ErrMalformed, "classifier %q: pattern: %v", c.Name, err)
		}
		if !knownValidators[c.Validator] {
			return reject(ErrMalformed, "classifier %q: unknown validator %q", c.Name, c.Validator)
		}
	}
	ids := make(map[string]bool, len(p.Rules))
	for i := range p.Rules {
		if err := validateRule(i, &p.Rules[i], ids, groups, resources, classifiers); err != nil {
			return err
		}
	}
	return nil
}

func validateRule(i int, r *Rule, ids, groups, resources, classifiers map[string]bool) error {
	if r.ID == "" {
		return reject(ErrMalformed, "rule %d: empty id", i)
	}
	if ids[r.ID] {
		return reject(ErrMalformed, "rule %q: duplicate id", r.ID)
	}
	ids[r.ID] = true
	if r.Index != i {
		return reject(ErrMalformed, "rule %q: index %d at position %d", r.ID, r.Index, i)
	}
	if !knownEffects[r.Effect] {
		return reject(ErrMalformed, "rule %q: unknown effect %q", r.ID, r.Effect)
	}
	matches := 0
	for _, set := range []bool{r.SQL != nil, r.SSH != nil, r.HTTP != nil, r.Kubernetes != nil} {
		if set {
			matches++
		}
	}
	if matches > 1 {
		return reject(ErrMalformed, "rule %q: more than one protocol match", r.ID)
	}
	for _, name := range r.ResolvedResources {
		if !resources[name] {
			return reject(ErrMalformed, "rule %q: resolved resource %q does not exist", r.ID, name)
		}
	}
	if r.Mask != nil {
		for _, c := range r.Mask.Classifiers {
			if !classifiers[c] {
				return reject(ErrMalformed, "rule %q: mask classifier %q does not exist", r.ID, c)
			}
		}
	}
	if r.Approval != nil {
		if !groups[r.Approval.Group] {
			return reject(ErrMalformed, "rule %q: approval group %q does not exist", r.ID, r.Approval.Group)
		}
		if r.Approval.Count < 1 {
			return reject(ErrMalformed, "rule %q: approval count %d < 1", r.ID, r.Approval.Count)
		}
		if r.Approval.Timeout != "" {
			if _, err := time.ParseDuration(r.Approval.Timeout); err != nil {
				return reject(ErrMalformed, "rule %q: approval timeout: %v", r.ID, err)
			}
		}
	}
	if r.Expires != "" {
		if _, err := time.Parse(time.DateOnly, r.Expires); err != nil {
			if _, err := time.Parse(time.RFC3339, r.Expires); err != nil {
				return reject(ErrMalformed, "rule %q: expires %q is neither a date nor an RFC 3339 time", r.ID, r.Expires)
			}
		}
	}
	return nil
}
