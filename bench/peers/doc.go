// Package peers benchmarks the Gatehouse decision engine against two other
// policy engines, OPA (Rego) and cedar-go, on the same generated policy and
// the same requests. It lives in its own module so that the Gatehouse
// binary never links either engine.
//
// The generated policy (runtime/engine/enginetest) is translated rule by
// rule: Rego gets one rule body per (subject, resource) pair, so OPA's rule
// index can select on input.identity and input.resource; Cedar gets one
// policy per rule, with scope constraints where the rule names a single
// subject or resource. Effects map as follows: Gatehouse deny is Rego
// "deny" and a Cedar forbid; allow, approve and mask are Rego sets of the
// same names and Cedar permits whose policy id starts with "allow:",
// "approve:" or "mask:". Gatehouse's precedence (deny, then approve, then
// allow; masks never grant) is written in Rego and applied to Cedar's
// determining policies.
package peers
