package scope

import (
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Wildcard is the subject or resource reference that means "every known one".
const Wildcard = "*"

// GroupPrefix and TagPrefix introduce group subjects and tag resources.
const (
	GroupPrefix = "group:"
	TagPrefix   = "tag:"
)

// RefKind names what an unresolved reference was meant to name.
type RefKind string

// Reference kinds reported by [Index.Subjects] and [Index.Resources].
const (
	RefIdentity RefKind = "identity"
	RefGroup    RefKind = "group"
	RefResource RefKind = "resource"
	RefTag      RefKind = "tag"
)

// Unknown is a reference that names nothing in the policy.
type Unknown struct {
	Kind RefKind
	Name string
}

// Index gives fast lookups over one policy. It keeps a pointer to the policy
// and must not outlive changes to it.
type Index struct {
	p          *bundle.Policy
	identities map[string]*bundle.Identity
	groups     map[string][]string // group -> identity names (sorted, unique)
	groupDecl  map[string]bool
	resources  map[string]*bundle.Resource
	tags       map[string][]string // tag -> resource names (sorted)
	classifier map[string]bool
	allIDs     []string
	allRes     []string
}

// NewIndex builds an index over p. A nil p is treated as an empty policy.
func NewIndex(p *bundle.Policy) *Index {
	if p == nil {
		p = &bundle.Policy{}
	}
	ix := &Index{
		p:          p,
		identities: make(map[string]*bundle.Identity, len(p.Identities)),
		groups:     make(map[string][]string, len(p.Groups)),
		groupDecl:  make(map[string]bool, len(p.Groups)),
		resources:  make(map[string]*bundle.Resource, len(p.Resources)),
		tags:       make(map[string][]string),
		classifier: make(map[string]bool, len(p.Classifiers)),
	}
	for i := range p.Identities {
		id := &p.Identities[i]
		ix.identities[id.Name] = id
		ix.allIDs = append(ix.allIDs, id.Name)
	}
	for i := range p.Groups {
		g := &p.Groups[i]
		ix.groupDecl[g.Name] = true
		for _, m := range g.Members {
			if _, ok := ix.identities[m]; ok {
				ix.groups[g.Name] = append(ix.groups[g.Name], m)
			}
		}
	}
	// Identity.Groups is computed from Group.Members by the compiler; honour
	// it too so that hand-built policies that set only one side agree.
	for i := range p.Identities {
		id := &p.Identities[i]
		for _, g := range id.Groups {
			if ix.groupDecl[g] {
				ix.groups[g] = append(ix.groups[g], id.Name)
			}
		}
	}
	for g, ms := range ix.groups {
		ix.groups[g] = sortUnique(ms)
	}
	for i := range p.Resources {
		r := &p.Resources[i]
		ix.resources[r.Name] = r
		ix.allRes = append(ix.allRes, r.Name)
		for _, t := range r.Tags {
			ix.tags[t] = append(ix.tags[t], r.Name)
		}
	}
	for t, rs := range ix.tags {
		ix.tags[t] = sortUnique(rs)
	}
	for _, c := range p.Classifiers {
		ix.classifier[c.Name] = true
	}
	ix.allIDs = sortUnique(ix.allIDs)
	ix.allRes = sortUnique(ix.allRes)
	return ix
}

// Policy returns the indexed policy.
func (ix *Index) Policy() *bundle.Policy { return ix.p }

// Identity returns the named identity or nil.
func (ix *Index) Identity(name string) *bundle.Identity { return ix.identities[name] }

// Resource returns the named resource or nil.
func (ix *Index) Resource(name string) *bundle.Resource { return ix.resources[name] }

// HasGroup reports whether a group of that name is declared.
func (ix *Index) HasGroup(name string) bool { return ix.groupDecl[name] }

// HasClassifier reports whether a classifier of that name is declared.
func (ix *Index) HasClassifier(name string) bool { return ix.classifier[name] }

// GroupMembers returns the known identities in the group, sorted.
func (ix *Index) GroupMembers(name string) []string { return ix.groups[name] }

// IdentityNames returns every identity name, sorted.
func (ix *Index) IdentityNames() []string { return ix.allIDs }

// ResourceNames returns every resource name, sorted.
func (ix *Index) ResourceNames() []string { return ix.allRes }

// Subjects expands subject references (identity names, "group:NAME", "*";
// empty means "*") to identity names, sorted and unique, and returns the
// references that name nothing.
func (ix *Index) Subjects(refs []string) (names []string, unknown []Unknown) {
	if len(refs) == 0 {
		return slices.Clone(ix.allIDs), nil
	}
	for _, ref := range refs {
		switch {
		case ref == Wildcard:
			names = append(names, ix.allIDs...)
		case strings.HasPrefix(ref, GroupPrefix):
			g := strings.TrimPrefix(ref, GroupPrefix)
			if !ix.groupDecl[g] {
				unknown = append(unknown, Unknown{Kind: RefGroup, Name: g})
				continue
			}
			names = append(names, ix.groups[g]...)
		default:
			if _, ok := ix.identities[ref]; !ok {
				unknown = append(unknown, Unknown{Kind: RefIdentity, Name: ref})
				continue
			}
			names = append(names, ref)
		}
	}
	return sortUnique(names), unknown
}

// Resources expands resource references (names, "tag:TAG", "*"; empty means
// "*") to resource names, sorted and unique, and returns the references that
// name nothing.
func (ix *Index) Resources(refs []string) (names []string, unknown []Unknown) {
	if len(refs) == 0 {
		return slices.Clone(ix.allRes), nil
	}
	for _, ref := range refs {
		switch {
		case ref == Wildcard:
			names = append(names, ix.allRes...)
		case strings.HasPrefix(ref, TagPrefix):
			t := strings.TrimPrefix(ref, TagPrefix)
			rs, ok := ix.tags[t]
			if !ok {
				unknown = append(unknown, Unknown{Kind: RefTag, Name: t})
				continue
			}
			names = append(names, rs...)
		default:
			if _, ok := ix.resources[ref]; !ok {
				unknown = append(unknown, Unknown{Kind: RefResource, Name: ref})
				continue
			}
			names = append(names, ref)
		}
	}
	return sortUnique(names), unknown
}

// RuleSubjects returns the identities a rule applies to.
func (ix *Index) RuleSubjects(r *bundle.Rule) []string {
	names, _ := ix.Subjects(r.Subjects)
	return names
}

// RuleResources returns the resources a rule applies to. The compiler's
// ResolvedResources is used when set; otherwise Resources is expanded here.
// Names that are not declared resources are dropped.
func (ix *Index) RuleResources(r *bundle.Rule) []string {
	if len(r.ResolvedResources) > 0 {
		out := make([]string, 0, len(r.ResolvedResources))
		for _, n := range r.ResolvedResources {
			if _, ok := ix.resources[n]; ok {
				out = append(out, n)
			}
		}
		return sortUnique(out)
	}
	names, _ := ix.Resources(r.Resources)
	return names
}

// sortUnique sorts s in place and removes duplicates.
func sortUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	sort.Strings(s)
	return slices.Compact(s)
}

// SubsetOf reports whether every element of a (sorted) is in b (sorted).
func SubsetOf(a, b []string) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

// Intersects reports whether sorted a and b share an element.
func Intersects(a, b []string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}
