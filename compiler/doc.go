// Package compiler turns a policy repository written in CUE into a
// deterministic, unsigned decision bundle (runtime/bundle). It is the only
// package of Gatehouse that imports cuelang.org.
//
// The pipeline:
//
//	LoadDir(dir) | LoadGit(repo, rev, dir)  ->  *Source (files in memory)
//	Compile(src, opts)                      ->  *Result{Bundle, Tests} | *InvalidPolicyError{Diagnostics}
//	bundle.Encode(result.Bundle)            ->  canonical JSON bytes
//
// A Source holds the policy package's .cue files and the repository's
// cue.mod, keyed by path relative to the module root; LoadGit reads them
// from a commit's tree without checking anything out. Compile loads the
// files through a CUE overlay under a virtual root, so nothing else on disk
// and nothing on the network is ever consulted. The compiler supplies its
// embedded schema (package compiler/schema) at the schema's import path,
// and a module file when the repository has none, then unifies the policy
// with the schema's #Policy definition and validates it for concreteness,
// so every repository is checked against the compiler's own schema
// whether or not it imports it. The validated values are then exported to
// JSON once and decoded with encoding/json (much faster than
// cue.Value.Decode on large policies); positions come from an index of the
// source syntax, built while loading.
//
// Invariants:
//
//   - Determinism: the output depends only on the Source and Options; no
//     wall clock, no map iteration order. Times come from the commit (or,
//     for a directory, the newest file modification time).
//   - Order: identities, groups, resources and classifiers are sorted by
//     name, rules keep declaration order with Index set, and every list
//     inside them is sorted and de-duplicated, as runtime/bundle requires.
//   - Unknown subjects, resource names and tags are kept as written in
//     Rule.Subjects and Rule.Resources and match nothing (compiler/lint
//     reports them); ResolvedResources holds only declared resources.
//     References the runtime dereferences (mask classifiers, approval
//     groups) must exist: an unknown one is a compile error.
//   - Diagnostics carry positions relative to the repository root and are
//     sorted by file, line and column.
//
// The canonical encoding and the policy digest are runtime/bundle's
// (bundle.Encode, bundle.PolicyDigest); Compile validates the bundle it
// returns with bundle.Validate.
package compiler
