package scope

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Protocol names the kind of protocol match a rule carries.
type Protocol string

// Protocol match kinds. ProtocolAny is a rule without a protocol match: it
// matches any command on its resources.
const (
	ProtocolAny        Protocol = "any"
	ProtocolSQL        Protocol = "sql"
	ProtocolSSH        Protocol = "ssh"
	ProtocolHTTP       Protocol = "http"
	ProtocolKubernetes Protocol = "kubernetes"
)

// RuleProtocol returns which protocol match r carries.
func RuleProtocol(r *bundle.Rule) Protocol {
	switch {
	case r.SQL != nil:
		return ProtocolSQL
	case r.SSH != nil:
		return ProtocolSSH
	case r.HTTP != nil:
		return ProtocolHTTP
	case r.Kubernetes != nil:
		return ProtocolKubernetes
	default:
		return ProtocolAny
	}
}

// MatchCovers reports whether every command that b's protocol match matches
// is also matched by a's. Rule effects, subjects, resources, conditions and
// expiry are not compared. Both allow semantics (all named objects must be
// covered) and deny semantics (touching one is enough) are monotone in each
// list, so the same list-by-list check serves both.
func MatchCovers(a, b *bundle.Rule) bool {
	pa, pb := RuleProtocol(a), RuleProtocol(b)
	if pa == ProtocolAny {
		return true
	}
	if pa != pb {
		return false
	}
	switch pa {
	case ProtocolSQL:
		return SQLCovers(a.SQL, b.SQL)
	case ProtocolSSH:
		return ListCovers(a.SSH.Commands, b.SSH.Commands, CommandCovers)
	case ProtocolHTTP:
		return ListCovers(a.HTTP.Methods, b.HTTP.Methods, WordCovers) &&
			ListCovers(a.HTTP.Hosts, b.HTTP.Hosts, GlobCovers) &&
			ListCovers(a.HTTP.Paths, b.HTTP.Paths, GlobCovers)
	case ProtocolKubernetes:
		return ListCovers(a.Kubernetes.Verbs, b.Kubernetes.Verbs, WordCovers) &&
			ListCovers(a.Kubernetes.Resources, b.Kubernetes.Resources, GlobCovers) &&
			ListCovers(a.Kubernetes.Namespaces, b.Kubernetes.Namespaces, GlobCovers) &&
			ListCovers(a.Kubernetes.ExecCommands, b.Kubernetes.ExecCommands, GlobCovers)
	}
	return false
}

// SQLCovers reports whether SQL match a covers SQL match b.
func SQLCovers(a, b *bundle.SQLMatch) bool {
	if a.WithoutWhere && !b.WithoutWhere {
		return false
	}
	return ListCovers(a.Statements, b.Statements, WordCovers) &&
		ListCovers(a.Tables, b.Tables, TableCovers) &&
		ListCovers(a.Columns, b.Columns, ColumnCovers) &&
		ListCovers(a.Functions, b.Functions, FunctionCovers)
}

// MatchEqual reports whether a and b carry the same protocol match.
func MatchEqual(a, b *bundle.Rule) bool {
	return MatchCovers(a, b) && MatchCovers(b, a)
}

// ConditionsCover reports whether a's conditions restrict no more than b's:
// a has none, or both are the same.
func ConditionsCover(a, b *bundle.Conditions) bool {
	if a == nil || (len(a.TimeWindows) == 0 && a.MaxRows == 0) {
		return true
	}
	if b == nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// ParseTime parses an RFC 3339 date ("2027-03-01", start of the day in UTC)
// or date-time.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time %q: want YYYY-MM-DD or RFC 3339", s)
	}
	return t, nil
}

// ExpiresCovers reports whether expiry a is no earlier than expiry b; ""
// means never.
func ExpiresCovers(a, b string) bool {
	if a == "" {
		return true
	}
	if b == "" {
		return false
	}
	ta, err1 := ParseTime(a)
	tb, err2 := ParseTime(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return !ta.Before(tb)
}

// maxEvery bounds review intervals (about 100 years).
const maxEvery = 100 * 366 * 24 * time.Hour

// ParseEvery parses a review interval: "90d", "12w" or Go duration syntax.
// The interval must be positive.
func ParseEvery(s string) (time.Duration, error) {
	var d time.Duration
	switch {
	case strings.HasSuffix(s, "d") || strings.HasSuffix(s, "w"):
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil || n <= 0 || n > 36600 {
			return 0, fmt.Errorf("parse interval %q: want a positive number of days (\"90d\") or weeks (\"12w\")", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if strings.HasSuffix(s, "w") {
			d *= 7
		}
	default:
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("parse interval %q: %w", s, err)
		}
	}
	if d <= 0 || d > maxEvery {
		return 0, fmt.Errorf("parse interval %q: must be positive and at most 100 years", s)
	}
	return d, nil
}
