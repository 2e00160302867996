package diff

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/compiler/scope"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Access is one unit of access on one resource.
type Access struct {
	// Protocol is "any" (any command), "sql", "ssh", "http" or "kubernetes".
	Protocol string `json:"protocol"`
	// Action is the SQL statement kind, HTTP method, Kubernetes verb, or
	// "exec" for SSH; "*" for any.
	Action string `json:"action"`
	// Object is the table pattern, SSH command glob, HTTP path glob or
	// Kubernetes resource; "*" for any.
	Object string `json:"object"`
	// Scope is the HTTP host glob or the Kubernetes namespace glob; "*" for
	// any, empty where it does not apply.
	Scope string `json:"scope,omitempty"`
	// Limits are further restrictions that narrow the access (columns,
	// functions, without_where, exec commands, time windows, max rows), in
	// a canonical text form; empty means none.
	Limits string `json:"limits,omitempty"`
}

// String renders a short human description, e.g. "select on orders".
func (a Access) String() string {
	var s string
	anyOr := func(v, anyText string) string {
		if v == scope.Wildcard || v == "" {
			return anyText
		}
		return v
	}
	switch scope.Protocol(a.Protocol) {
	case scope.ProtocolAny:
		s = "any command"
	case scope.ProtocolSQL:
		s = fmt.Sprintf("%s on %s", anyOr(a.Action, "any statement"), anyOr(a.Object, "any table"))
	case scope.ProtocolSSH:
		switch a.Object {
		case "shell":
			s = "interactive shell"
		case scope.Wildcard, "":
			s = "any command"
		default:
			s = "command " + a.Object
		}
	case scope.ProtocolHTTP:
		s = fmt.Sprintf("%s %s", anyOr(a.Action, "any method"), anyOr(a.Object, "any path"))
		if a.Scope != "" && a.Scope != scope.Wildcard {
			s += " on host " + a.Scope
		}
	case scope.ProtocolKubernetes:
		s = fmt.Sprintf("%s %s", anyOr(a.Action, "any verb"), anyOr(a.Object, "any resource"))
		s += " in " + anyOr(a.Scope, "any namespace")
	default:
		s = a.Protocol + " " + a.Action + " " + a.Object
	}
	if a.Limits != "" {
		s += " (" + a.Limits + ")"
	}
	return s
}

// covers reports whether access a includes everything access b allows.
func covers(a, b Access) bool {
	if a.Limits != "" && a.Limits != b.Limits {
		return false
	}
	if a.Protocol == string(scope.ProtocolAny) {
		return true
	}
	if a.Protocol != b.Protocol || !scope.WordCovers(a.Action, b.Action) {
		return false
	}
	var obj scope.CoverFunc
	switch scope.Protocol(a.Protocol) {
	case scope.ProtocolSQL:
		obj = scope.TableCovers
	case scope.ProtocolSSH:
		obj = scope.CommandCovers
	default:
		obj = scope.GlobCovers
	}
	if !obj(a.Object, b.Object) {
		return false
	}
	return a.Scope == "" || scope.GlobCovers(a.Scope, b.Scope)
}

func orAny(s []string) []string {
	if len(s) == 0 {
		return []string{scope.Wildcard}
	}
	return s
}

// appliesTo reports whether a rule's protocol match can match commands on
// a resource of type t.
func appliesTo(p scope.Protocol, t bundle.ResourceType) bool {
	switch p {
	case scope.ProtocolSQL:
		return t == bundle.ResourcePostgres || t == bundle.ResourceMySQL
	case scope.ProtocolSSH:
		return t == bundle.ResourceSSH
	case scope.ProtocolHTTP:
		return t == bundle.ResourceHTTP || t == bundle.ResourceKubernetes
	case scope.ProtocolKubernetes:
		return t == bundle.ResourceKubernetes
	}
	return true
}

// conditionLimits renders rule conditions as limits.
func conditionLimits(c *bundle.Conditions) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, w := range c.TimeWindows {
		days := "every day"
		if len(w.Days) > 0 {
			days = strings.Join(w.Days, ",")
		}
		tw := fmt.Sprintf("window %s %s-%s", days, w.Start, w.End)
		if w.Timezone != "" {
			tw += " " + w.Timezone
		}
		out = append(out, tw)
	}
	if c.MaxRows > 0 {
		out = append(out, fmt.Sprintf("max_rows=%d", c.MaxRows))
	}
	return out
}

func joinLimits(parts ...[]string) string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	return strings.Join(slices.Compact(all), "; ")
}

func listLimit(name string, vals []string) []string {
	if len(vals) == 0 {
		return nil
	}
	v := slices.Clone(vals)
	slices.Sort(v)
	return []string{name + "=" + strings.Join(v, ",")}
}

// ruleAccess breaks rule r into access entries for a resource of type t.
// It returns nil when the rule's protocol match cannot apply to t.
func ruleAccess(r *bundle.Rule, t bundle.ResourceType) []Access {
	p := scope.RuleProtocol(r)
	if !appliesTo(p, t) {
		return nil
	}
	cond := conditionLimits(r.Conditions)
	var out []Access
	switch p {
	case scope.ProtocolAny:
		out = append(out, Access{Protocol: string(p), Action: scope.Wildcard, Object: scope.Wildcard, Limits: joinLimits(cond)})
	case scope.ProtocolSQL:
		var ww []string
		if r.SQL.WithoutWhere {
			ww = []string{"without_where"}
		}
		lim := joinLimits(cond, listLimit("columns", r.SQL.Columns), listLimit("functions", r.SQL.Functions), ww)
		for _, st := range orAny(r.SQL.Statements) {
			for _, tb := range orAny(r.SQL.Tables) {
				out = append(out, Access{Protocol: string(p), Action: strings.ToLower(st), Object: tb, Limits: lim})
			}
		}
	case scope.ProtocolSSH:
		lim := joinLimits(cond)
		for _, c := range orAny(r.SSH.Commands) {
			out = append(out, Access{Protocol: string(p), Action: "exec", Object: c, Limits: lim})
		}
	case scope.ProtocolHTTP:
		lim := joinLimits(cond)
		for _, m := range orAny(r.HTTP.Methods) {
			for _, h := range orAny(r.HTTP.Hosts) {
				for _, path := range orAny(r.HTTP.Paths) {
					out = append(out, Access{Protocol: string(p), Action: strings.ToUpper(m), Object: path, Scope: h, Limits: lim})
				}
			}
		}
	case scope.ProtocolKubernetes:
		lim := joinLimits(cond, listLimit("exec_commands", r.Kubernetes.ExecCommands))
		for _, v := range orAny(r.Kubernetes.Verbs) {
			for _, res := range orAny(r.Kubernetes.Resources) {
				for _, ns := range orAny(r.Kubernetes.Namespaces) {
					out = append(out, Access{Protocol: string(p), Action: strings.ToLower(v), Object: res, Scope: ns, Limits: lim})
				}
			}
		}
	}
	return out
}
