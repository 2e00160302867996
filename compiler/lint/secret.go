package lint

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// secretPatterns recognise the shapes of common credentials. Messages name
// the shape, never the matched text.
var secretPatterns = []struct {
	name string
	re   *regexp.Regexp
}{
	{"bearer token", regexp.MustCompile(`(?i)\bbearer\s+[a-z0-9\-._~+/]{16,}=*`)},
	{"AWS access key id", regexp.MustCompile(`\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b`)},
	{"AWS secret access key", regexp.MustCompile(`(?i)aws.{0,24}secret.{0,24}[=:\s"']+[A-Za-z0-9/+]{40}\b`)},
	{"GitHub token", regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`)},
	{"Slack token", regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`)},
	{"Slack webhook", regexp.MustCompile(`hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+`)},
	{"private key", regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----`)},
	{"password in URL", regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@`)},
	{"JSON web token", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
}

// maxScanLen bounds how much of one string the secret scan looks at.
const maxScanLen = 64 << 10

// secretShape returns the name of the first secret shape s matches.
func secretShape(s string) (string, bool) {
	if len(s) > maxScanLen {
		s = s[:maxScanLen]
	}
	for _, sp := range secretPatterns {
		if sp.re.MatchString(s) {
			return sp.name, true
		}
	}
	return "", false
}

// isReference reports whether a credential is an "env:NAME" or "file:PATH"
// reference.
func isReference(s string) bool {
	return (strings.HasPrefix(s, "env:") && len(s) > len("env:")) ||
		(strings.HasPrefix(s, "file:") && len(s) > len("file:"))
}

func (l *linter) checkSecrets() {
	for _, r := range l.p.Resources {
		if r.Credential != "" && !isReference(r.Credential) {
			l.addDefault(r.Pos, CodeLiteralSecret, "", "resource %q: credential is not an env: or file: reference; it must never hold the secret itself", r.Name)
		}
	}
	w := secretWalker{l: l}
	w.walk(reflect.ValueOf(l.p).Elem(), "", "", "")
}

type secretWalker struct{ l *linter }

var (
	typeRule       = reflect.TypeFor[bundle.Rule]()
	typeClassifier = reflect.TypeFor[bundle.Classifier]()
	typeResource   = reflect.TypeFor[bundle.Resource]()
)

// walk visits every string in v. path is a JSON-like field path, pos the
// position of the nearest enclosing declaration, rule the enclosing rule id.
func (w secretWalker) walk(v reflect.Value, path, pos, rule string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			w.walk(v.Elem(), path, pos, rule)
		}
	case reflect.Struct:
		t := v.Type()
		if f := v.FieldByName("Pos"); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
			pos = f.String()
		}
		if t == typeRule {
			rule = v.FieldByName("ID").String()
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() || sf.Name == "Pos" {
				continue
			}
			// Classifier patterns are regular expressions describing
			// secrets, not secrets; credentials are checked separately.
			if (t == typeClassifier && sf.Name == "Pattern") || (t == typeResource && sf.Name == "Credential") {
				continue
			}
			w.walk(v.Field(i), path+"."+jsonName(sf), pos, rule)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			w.walk(v.Index(i), fmt.Sprintf("%s[%s]", path, elemKey(v.Index(i), i)), pos, rule)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			if name, ok := secretShape(k); ok {
				w.report(path, pos, rule, name)
			}
			w.walk(iter.Value(), fmt.Sprintf("%s[%q]", path, k), pos, rule)
		}
	case reflect.String:
		if name, ok := secretShape(v.String()); ok {
			w.report(path, pos, rule, name)
		}
	}
}

func (w secretWalker) report(path, pos, rule, shape string) {
	w.l.addDefault(pos, CodeLiteralSecret, rule, "%s looks like a literal secret (%s); reference it with env: or file: instead", strings.TrimPrefix(path, "."), shape)
}

func jsonName(sf reflect.StructField) string {
	tag := sf.Tag.Get("json")
	if name, _, _ := strings.Cut(tag, ","); name != "" && name != "-" {
		return name
	}
	return strings.ToLower(sf.Name)
}

// elemKey names a slice element by its Name or ID field when it has one.
func elemKey(v reflect.Value, i int) string {
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		for _, f := range []string{"ID", "Name"} {
			if fv := v.FieldByName(f); fv.IsValid() && fv.Kind() == reflect.String && fv.String() != "" {
				return fmt.Sprintf("%q", fv.String())
			}
		}
	}
	return fmt.Sprint(i)
}
