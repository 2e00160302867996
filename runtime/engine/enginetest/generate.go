package enginetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
)

// Config sizes a generated policy. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	Seed       uint64
	Identities int
	Groups     int
	Resources  int
	Tables     int // tables per resource, all in schema public
	Rules      int
}

// DefaultConfig is the benchmark policy: 100 identities, 50 resources,
// 1,000 rules.
var DefaultConfig = Config{Seed: 1, Identities: 100, Groups: 20, Resources: 50, Tables: 20, Rules: 1000}

// Time is the evaluation time of generated requests (rules expire later).
var Time = time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)

// Statements are the statement kinds generated rules and requests use.
var Statements = []string{"select", "insert", "update", "delete", "alter", "drop"}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.Seed != 0 {
		d.Seed = c.Seed
	}
	if c.Identities > 0 {
		d.Identities = c.Identities
	}
	if c.Groups > 0 {
		d.Groups = c.Groups
	}
	if c.Resources > 0 {
		d.Resources = c.Resources
	}
	if c.Tables > 0 {
		d.Tables = c.Tables
	}
	if c.Rules > 0 {
		d.Rules = c.Rules
	}
	return d
}

// IdentityName, GroupName, ResourceName and TableName name generated objects.
func IdentityName(i int) string { return fmt.Sprintf("agent-%03d", i) }
func GroupName(i int) string    { return fmt.Sprintf("team-%02d", i) }
func ResourceName(i int) string { return fmt.Sprintf("db-%02d", i) }
func TableName(i int) string    { return fmt.Sprintf("public.t%02d", i) }

// Generate returns a deterministic bundle for cfg. Rule mix: about 64%
// allow, 12% deny, 10% approve, 6% mask and 8% allow for every identity
// ("*"). Subjects are identities or groups, resources 1-3 per rule, table
// lists are exact "public.tNN" names or empty (any table).
func Generate(cfg Config) *bundle.Bundle {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	p := bundle.Policy{Settings: bundle.Settings{DefaultApprovalTimeout: "15m"}}
	for g := 0; g < cfg.Groups; g++ {
		p.Groups = append(p.Groups, bundle.Group{Name: GroupName(g)})
	}
	for i := 0; i < cfg.Identities; i++ {
		id := bundle.Identity{Name: IdentityName(i), Kind: "agent"}
		for _, g := range pick(rng, cfg.Groups, 1+rng.IntN(3)) {
			id.Groups = append(id.Groups, GroupName(g))
			p.Groups[g].Members = append(p.Groups[g].Members, id.Name)
		}
		slices.Sort(id.Groups)
		p.Identities = append(p.Identities, id)
	}
	for r := 0; r < cfg.Resources; r++ {
		p.Resources = append(p.Resources, bundle.Resource{Name: ResourceName(r), Type: bundle.ResourcePostgres, Address: fmt.Sprintf("db%d.internal:5432", r)})
	}
	subjects := func(n int) []string {
		var s []string
		for k := 0; k < n; k++ {
			if rng.IntN(10) < 7 {
				s = append(s, IdentityName(rng.IntN(cfg.Identities)))
			} else {
				s = append(s, "group:"+GroupName(rng.IntN(cfg.Groups)))
			}
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	resources := func(n int) []string {
		var s []string
		for _, r := range pick(rng, cfg.Resources, n) {
			s = append(s, ResourceName(r))
		}
		slices.Sort(s)
		return s
	}
	tables := func(n int) []string {
		var s []string
		for _, t := range pick(rng, cfg.Tables, n) {
			s = append(s, TableName(t))
		}
		slices.Sort(s)
		return s
	}
	for i := 0; i < cfg.Rules; i++ {
		r := bundle.Rule{ID: fmt.Sprintf("r%04d", i), Index: i}
		x := rng.IntN(100)
		switch {
		case x < 64:
			r.Effect = bundle.EffectAllow
			r.Subjects = subjects(1 + rng.IntN(2))
			r.Resources = resources(1 + rng.IntN(3))
			st := pickStrings(rng, Statements[:4], 1+rng.IntN(3))
			m := &bundle.SQLMatch{Statements: st}
			if rng.IntN(2) == 0 {
				m.Tables = tables(2 + rng.IntN(6))
			}
			r.SQL = m
			if rng.IntN(4) == 0 {
				r.Expires = "2099-01-01"
			}
		case x < 76:
			r.Effect = bundle.EffectDeny
			if rng.IntN(2) == 0 {
				r.Subjects = subjects(1 + rng.IntN(2))
			}
			r.Resources = resources(1 + rng.IntN(3))
			if rng.IntN(2) == 0 {
				r.SQL = &bundle.SQLMatch{Statements: []string{"delete", "update"}, WithoutWhere: true}
			} else {
				r.SQL = &bundle.SQLMatch{Tables: tables(1 + rng.IntN(2))}
			}
		case x < 86:
			r.Effect = bundle.EffectApprove
			r.Subjects = subjects(1 + rng.IntN(2))
			r.Resources = resources(1 + rng.IntN(2))
			r.SQL = &bundle.SQLMatch{Statements: pickStrings(rng, []string{"alter", "delete", "drop", "update"}, 1+rng.IntN(2))}
			r.Approval = &bundle.ApprovalSpec{Group: GroupName(rng.IntN(cfg.Groups)), Count: 1, Timeout: "30m"}
		case x < 92:
			r.Effect = bundle.EffectMask
			r.Resources = resources(1 + rng.IntN(3))
			r.Mask = &bundle.MaskSpec{Columns: []string{fmt.Sprintf("t%02d.email", rng.IntN(cfg.Tables))}}
		default:
			r.Effect = bundle.EffectAllow
			r.Subjects = []string{"*"}
			r.Resources = resources(1)
			r.SQL = &bundle.SQLMatch{Statements: []string{"select"}, Tables: tables(1 + rng.IntN(3))}
		}
		r.ResolvedResources = r.Resources
		p.Rules = append(p.Rules, r)
	}
	return &bundle.Bundle{
		Manifest: bundle.Manifest{FormatVersion: bundle.FormatVersion, Revision: "generated", Serial: 1},
		Policy:   p,
	}
}

// pick returns n distinct integers in [0, max), sorted.
func pick(rng *rand.Rand, max, n int) []int {
	if n > max {
		n = max
	}
	perm := rng.Perm(max)[:n]
	slices.Sort(perm)
	return perm
}

func pickStrings(rng *rand.Rand, from []string, n int) []string {
	var s []string
	for _, i := range pick(rng, len(from), n) {
		s = append(s, from[i])
	}
	slices.Sort(s)
	return s
}

// Requests returns n deterministic SQL requests against b (a bundle from
// Generate): a known identity with its groups, a resource, a statement
// kind, one to three tables, and a WHERE clause most of the time.
func Requests(b *bundle.Bundle, seed uint64, n int) []*engine.Request {
	rng := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	p := &b.Policy
	tables := 0
	for _, r := range p.Rules {
		if r.SQL != nil {
			for _, t := range r.SQL.Tables {
				var k int
				if _, err := fmt.Sscanf(t, "public.t%d", &k); err == nil && k+1 > tables {
					tables = k + 1
				}
			}
		}
	}
	if tables == 0 {
		tables = 1
	}
	reqs := make([]*engine.Request, 0, n)
	for i := 0; i < n; i++ {
		id := &p.Identities[rng.IntN(len(p.Identities))]
		res := p.Resources[rng.IntN(len(p.Resources))].Name
		var ts []string
		for _, t := range pick(rng, tables, 1+rng.IntN(3)) {
			ts = append(ts, TableName(t))
		}
		reqs = append(reqs, &engine.Request{
			Identity: id.Name,
			Groups:   id.Groups,
			Resource: res,
			Time:     Time,
			SQL: &engine.SQLFacts{
				Kind:     Statements[rng.IntN(len(Statements))],
				Tables:   ts,
				HasWhere: rng.IntN(5) != 0,
			},
		})
	}
	return reqs
}
