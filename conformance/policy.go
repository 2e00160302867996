package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
)

// Policy is one side of a replay: a bundle, its engine and the lookups
// replay needs. It is immutable and safe for concurrent use.
type Policy struct {
	// Ref is how the policy was named (a revision, directory or file).
	Ref    string
	Bundle *bundle.Bundle
	Engine *engine.Engine
	// Tests are the policy unit tests when the policy was compiled from
	// source (nil for a bundle file).
	Tests []compiler.PolicyTest
	// Diagnostics are compiler warnings when compiled from source.
	Diagnostics compiler.Diagnostics

	identities map[string]*bundle.Identity
	ruleEffect map[string]bundle.Effect
	maskKey    map[string]string // mask rule id -> canonical JSON of its MaskSpec
}

// ErrPolicyRef: a policy reference names neither a bundle file, a policy
// directory nor a Git revision.
var ErrPolicyRef = errors.New("cannot load policy")

// NewPolicy wraps a compiled bundle.
func NewPolicy(ref string, b *bundle.Bundle) (*Policy, error) {
	eng, err := engine.New(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", ref, err)
	}
	p := &Policy{Ref: ref, Bundle: b, Engine: eng,
		identities: map[string]*bundle.Identity{}, ruleEffect: map[string]bundle.Effect{}, maskKey: map[string]string{}}
	for i := range b.Policy.Identities {
		id := &b.Policy.Identities[i]
		p.identities[id.Name] = id
	}
	for i := range b.Policy.Rules {
		r := &b.Policy.Rules[i]
		p.ruleEffect[r.ID] = r.Effect
		if r.Effect == bundle.EffectMask && r.Mask != nil {
			k, _ := json.Marshal(r.Mask)
			p.maskKey[r.ID] = string(k)
		}
	}
	return p, nil
}

// Revision is the bundle's revision.
func (p *Policy) Revision() string { return p.Bundle.Manifest.Revision }

// Compiled wraps a compiler result.
func Compiled(ref string, res *compiler.Result) (*Policy, error) {
	p, err := NewPolicy(ref, res.Bundle)
	if err != nil {
		return nil, err
	}
	p.Tests = res.Tests
	p.Diagnostics = res.Diagnostics
	return p, nil
}

// LoadPolicy loads the policy named by ref: a bundle file (bare or in a
// DSSE envelope; signatures are not verified, the bundle is only
// evaluated), a policy directory, a checkout directory containing dir, or
// a Git revision of the repository at repo (dir inside it). Compile errors
// are returned as the compiler's *InvalidPolicyError.
func LoadPolicy(ref, repo, dir string) (*Policy, error) {
	if st, err := os.Stat(ref); err == nil {
		if !st.IsDir() {
			data, err := os.ReadFile(ref)
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", ref, err)
			}
			b, _, err := bundle.DecodeFile(data)
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", ref, err)
			}
			return NewPolicy(ref, b)
		}
		pdir := ref
		if sub := filepath.Join(ref, dir); !hasCUE(ref) && isDir(sub) {
			pdir = sub
		}
		src, err := compiler.LoadDir(pdir)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", ref, err)
		}
		return compileSource(ref, src)
	}
	src, err := compiler.LoadGit(repo, ref, dir)
	if err != nil {
		return nil, fmt.Errorf("%w %q: not a file or directory, and as a Git revision: %w", ErrPolicyRef, ref, err)
	}
	return compileSource(ref, src)
}

func compileSource(ref string, src *compiler.Source) (*Policy, error) {
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", ref, err)
	}
	return Compiled(ref, res)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func hasCUE(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
	return len(m) > 0
}
