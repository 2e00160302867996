package peers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
)

// checkSupported rejects rules using features the translations do not
// cover. Expiries must lie after now (the generator's are in 2099), so the
// translations can leave them out.
func checkSupported(b *bundle.Bundle, now time.Time) error {
	for _, r := range b.Policy.Rules {
		if r.SSH != nil || r.HTTP != nil || r.Kubernetes != nil || r.Conditions != nil {
			return fmt.Errorf("rule %q: only SQL rules without conditions are translated", r.ID)
		}
		if r.SQL != nil && (len(r.SQL.Columns) > 0 || len(r.SQL.Functions) > 0) {
			return fmt.Errorf("rule %q: column and function lists are not translated", r.ID)
		}
		if r.SQL != nil {
			for _, t := range r.SQL.Tables {
				if strings.Contains(t, "*") || !strings.Contains(t, ".") {
					return fmt.Errorf("rule %q: only exact schema.table patterns are translated", r.ID)
				}
			}
		}
		if r.Expires != "" {
			t, err := time.Parse(time.DateOnly, r.Expires)
			if err != nil || !now.Before(t) {
				return fmt.Errorf("rule %q: only dates after the request time are translated", r.ID)
			}
		}
	}
	return nil
}

func regoSet(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "{" + strings.Join(q, ", ") + "}"
}

// Rego translates b into one Rego module, package gatehouse, whose
// `decision` is {"effect": ..., "deny": ..., "approve": ..., "allow": ...,
// "mask": ...}.
func Rego(b *bundle.Bundle, now time.Time) (string, error) {
	if err := checkSupported(b, now); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("package gatehouse\n\n")
	for _, r := range b.Policy.Rules {
		subjects := r.Subjects
		if len(subjects) == 0 || slices.Contains(subjects, "*") {
			subjects = []string{"*"}
		}
		for _, res := range r.ResolvedResources {
			for _, s := range subjects {
				fmt.Fprintf(&sb, "%s contains %q if {\n", r.Effect, r.ID)
				fmt.Fprintf(&sb, "\tinput.resource == %q\n", res)
				switch g, ok := strings.CutPrefix(s, "group:"); {
				case s == "*":
					sb.WriteString("\tinput.identity != \"\"\n")
				case ok:
					fmt.Fprintf(&sb, "\t%q in input.groups\n", g)
				default:
					fmt.Fprintf(&sb, "\tinput.identity == %q\n", s)
				}
				if m := r.SQL; m != nil {
					if len(m.Statements) > 0 && !slices.Contains(m.Statements, "*") {
						fmt.Fprintf(&sb, "\tinput.kind in %s\n", regoSet(m.Statements))
					}
					if m.WithoutWhere {
						sb.WriteString("\tinput.kind in {\"delete\", \"update\"}\n\tnot input.has_where\n")
					}
					if len(m.Tables) > 0 {
						if r.Effect == bundle.EffectAllow || r.Effect == bundle.EffectApprove {
							fmt.Fprintf(&sb, "\tevery t in input.tables { t in %s }\n", regoSet(m.Tables))
						} else {
							fmt.Fprintf(&sb, "\tsome t in input.tables\n\tt in %s\n", regoSet(m.Tables))
						}
					}
				}
				sb.WriteString("}\n\n")
			}
		}
	}
	sb.WriteString(`effect := "deny" if {
	count(deny) > 0
} else := "approve" if {
	count(approve) > 0
} else := "allow" if {
	count(allow) > 0
} else := "deny"

decision := {"effect": effect, "deny": deny, "approve": approve, "allow": allow, "mask": mask}
`)
	return sb.String(), nil
}

// OPA is a prepared Rego query over the translated policy.
type OPA struct {
	q rego.PreparedEvalQuery
}

// NewOPA translates b and prepares the query data.gatehouse.decision.
func NewOPA(ctx context.Context, b *bundle.Bundle, now time.Time) (*OPA, error) {
	src, err := Rego(b, now)
	if err != nil {
		return nil, err
	}
	q, err := rego.New(rego.Query("data.gatehouse.decision"), rego.Module("gatehouse.rego", src)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare rego: %w", err)
	}
	return &OPA{q: q}, nil
}

// OPAInput converts a request to a parsed Rego input value (done once per
// request, outside the timed loop).
func OPAInput(req *engine.Request) (ast.Value, error) {
	tables := make([]any, len(req.SQL.Tables))
	for i, t := range req.SQL.Tables {
		tables[i] = t
	}
	groups := make([]any, len(req.Groups))
	for i, g := range req.Groups {
		groups[i] = g
	}
	return ast.InterfaceToValue(map[string]any{
		"identity":  req.Identity,
		"groups":    groups,
		"resource":  req.Resource,
		"kind":      req.SQL.Kind,
		"tables":    tables,
		"has_where": req.SQL.HasWhere,
	})
}

// Decide evaluates the prepared query and returns the effect.
func (o *OPA) Decide(ctx context.Context, input ast.Value) (bundle.Effect, error) {
	rs, err := o.q.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return "", err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return "", fmt.Errorf("rego: unexpected result %v", rs)
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return "", fmt.Errorf("rego: decision is %T", rs[0].Expressions[0].Value)
	}
	s, _ := m["effect"].(string)
	return bundle.Effect(s), nil
}

// Cedar is a cedar-go policy set and entity store for the translated
// policy.
type Cedar struct {
	ps       *cedar.PolicySet
	entities cedar.EntityMap
}

func uid(typ, id string) string { return typ + "::" + strconv.Quote(id) }

func cedarList(typ string, ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = uid(typ, id)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func cedarStrings(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// CedarPolicies translates b into one Cedar policy per rule, keyed by
// policy id "EFFECT:RULEID".
func CedarPolicies(b *bundle.Bundle, now time.Time) (ids, texts []string, err error) {
	if err := checkSupported(b, now); err != nil {
		return nil, nil, err
	}
	for _, r := range b.Policy.Rules {
		var when []string
		principal := "principal"
		subjects := r.Subjects
		if len(subjects) == 0 || slices.Contains(subjects, "*") {
			subjects = nil
		}
		var principals []string
		for _, s := range subjects {
			if g, ok := strings.CutPrefix(s, "group:"); ok {
				principals = append(principals, uid("Group", g))
			} else {
				principals = append(principals, uid("Identity", s))
			}
		}
		switch {
		case len(principals) == 1 && strings.HasPrefix(principals[0], "Group::"):
			principal = "principal in " + principals[0]
		case len(principals) == 1:
			principal = "principal == " + principals[0]
		case len(principals) > 1:
			when = append(when, "principal in ["+strings.Join(principals, ", ")+"]")
		}
		resource := "resource"
		switch len(r.ResolvedResources) {
		case 0:
			continue // matches nothing
		case 1:
			resource = "resource == " + uid("Resource", r.ResolvedResources[0])
		default:
			when = append(when, "resource in "+cedarList("Resource", r.ResolvedResources))
		}
		action := "action"
		if m := r.SQL; m != nil {
			kinds := m.Statements
			if slices.Contains(kinds, "*") {
				kinds = nil
			}
			if m.WithoutWhere {
				if kinds == nil {
					kinds = []string{"delete", "update"}
				} else {
					kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return k != "delete" && k != "update" })
				}
				when = append(when, "!context.has_where")
			}
			if kinds != nil {
				action = "action in " + cedarList("Action", kinds)
			}
			if len(m.Tables) > 0 {
				if r.Effect == bundle.EffectAllow || r.Effect == bundle.EffectApprove {
					when = append(when, cedarStrings(m.Tables)+".containsAll(context.tables)")
				} else {
					when = append(when, "context.tables.containsAny("+cedarStrings(m.Tables)+")")
				}
			}
		}
		verb := "permit"
		if r.Effect == bundle.EffectDeny {
			verb = "forbid"
		}
		text := fmt.Sprintf("%s (%s, %s, %s)", verb, principal, action, resource)
		if len(when) > 0 {
			text += " when { " + strings.Join(when, " && ") + " }"
		}
		ids = append(ids, string(r.Effect)+":"+r.ID)
		texts = append(texts, text+";")
	}
	return ids, texts, nil
}

// NewCedar translates b into a policy set and builds the entity store
// (identities with their groups as parents, resources).
func NewCedar(b *bundle.Bundle, now time.Time) (*Cedar, error) {
	ids, texts, err := CedarPolicies(b, now)
	if err != nil {
		return nil, err
	}
	ps := cedar.NewPolicySet()
	for i, text := range texts {
		var p cedar.Policy
		if err := p.UnmarshalCedar([]byte(text)); err != nil {
			return nil, fmt.Errorf("cedar policy %s: %w: %s", ids[i], err, text)
		}
		ps.Add(cedar.PolicyID(ids[i]), &p)
	}
	ents := cedar.EntityMap{}
	for _, id := range b.Policy.Identities {
		var parents []cedar.EntityUID
		for _, g := range id.Groups {
			parents = append(parents, cedar.NewEntityUID("Group", cedar.String(g)))
		}
		u := cedar.NewEntityUID("Identity", cedar.String(id.Name))
		ents[u] = cedar.Entity{UID: u, Parents: cedar.NewEntityUIDSet(parents...)}
	}
	for _, g := range b.Policy.Groups {
		u := cedar.NewEntityUID("Group", cedar.String(g.Name))
		ents[u] = cedar.Entity{UID: u}
	}
	for _, r := range b.Policy.Resources {
		u := cedar.NewEntityUID("Resource", cedar.String(r.Name))
		ents[u] = cedar.Entity{UID: u}
	}
	return &Cedar{ps: ps, entities: ents}, nil
}

// CedarRequest converts a request (once, outside the timed loop).
func CedarRequest(req *engine.Request) cedar.Request {
	tables := make([]cedar.Value, len(req.SQL.Tables))
	for i, t := range req.SQL.Tables {
		tables[i] = cedar.String(t)
	}
	return cedar.Request{
		Principal: cedar.NewEntityUID("Identity", cedar.String(req.Identity)),
		Action:    cedar.NewEntityUID("Action", cedar.String(req.SQL.Kind)),
		Resource:  cedar.NewEntityUID("Resource", cedar.String(req.Resource)),
		Context: cedar.NewRecord(cedar.RecordMap{
			"tables":    cedar.NewSet(tables...),
			"has_where": cedar.Boolean(req.SQL.HasWhere),
		}),
	}
}

// Decide authorizes req and applies Gatehouse's precedence to the
// determining policies.
func (c *Cedar) Decide(req cedar.Request) (bundle.Effect, error) {
	dec, diag := cedar.Authorize(c.ps, c.entities, req)
	if len(diag.Errors) > 0 {
		return "", fmt.Errorf("cedar: %v", diag.Errors[0])
	}
	if dec == cedar.Deny {
		return bundle.EffectDeny, nil
	}
	allow := false
	for _, r := range diag.Reasons {
		id := string(r.PolicyID)
		if strings.HasPrefix(id, "approve:") {
			return bundle.EffectApprove, nil
		}
		if strings.HasPrefix(id, "allow:") {
			allow = true
		}
	}
	if allow {
		return bundle.EffectAllow, nil
	}
	return bundle.EffectDeny, nil // only mask rules matched: masks never grant
}
