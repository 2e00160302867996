package compiler

import "github.com/gatehouse/gatehouse/runtime/bundle"

// builtinClassifiers are the content classifiers shipped with Gatehouse.
// Policies reference them by name without declaring them; the compiler
// emits the referenced ones into the bundle with Builtin set, so the
// runtime needs no table of its own. Patterns are RE2.
var builtinClassifiers = map[string]bundle.Classifier{
	"email": {
		Pattern: `[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`,
	},
	"credit_card": {
		// 13 to 19 digits, optionally grouped by spaces or dashes; the Luhn
		// check removes most false positives.
		Pattern:   `\b(?:\d[ \-]?){12,18}\d\b`,
		Validator: "luhn",
	},
	"us_ssn": {
		Pattern: `\b(?:00[1-9]|0[1-9]\d|[1-578]\d{2}|6[0-57-9]\d|66[0-57-9])-(?:0[1-9]|[1-9]\d)-(?:000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})\b`,
	},
	"iban": {
		Pattern:   `\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b`,
		Validator: "iban",
	},
	"phone": {
		// International (+CC ...) or North American formats.
		Pattern: `(?:\+\d{1,3}[ \-.]?)?(?:\(\d{2,4}\)|\d{2,4})[ \-.]\d{3,4}[ \-.]\d{3,4}\b`,
	},
	"secret": {
		// Bearer tokens, JWTs, common API key formats and PEM private keys.
		Pattern: `(?i:bearer\s+[A-Za-z0-9\-._~+/]{16,}=*)` +
			`|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}` +
			`|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b` +
			`|\bgh[pousr]_[A-Za-z0-9]{36,}\b` +
			`|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b` +
			`|\bxox[abprs]-[A-Za-z0-9\-]{10,}\b` +
			`|-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----`,
	},
}

// BuiltinClassifierNames returns the names of the built-in classifiers,
// sorted.
func BuiltinClassifierNames() []string {
	return []string{"credit_card", "email", "iban", "phone", "secret", "us_ssn"}
}
