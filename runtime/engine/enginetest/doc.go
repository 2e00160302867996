// Package enginetest generates synthetic policies and requests for testing
// and benchmarking the decision engine: a deterministic bundle of a given
// size (identities, groups, resources, mixed allow, deny, approve and mask
// SQL rules) and requests against it. The generated policies use only
// features that other policy engines can express too (subjects, resources,
// statement kinds, exact table lists, without_where, masks), so the same
// policy can be translated for comparison benchmarks.
package enginetest
