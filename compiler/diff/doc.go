// Package diff computes the semantic access difference between two compiled
// policies: for every identity and every resource, which access it gains or
// loses when the policy changes from base to head.
//
// The comparison is made on effective access, not on text. Subjects are
// expanded through groups and "*", resources through tags and "*", and each
// allow or approve rule is broken into [Access] entries (SQL statement kind ×
// table, SSH command, HTTP method × host × path, Kubernetes verb × resource ×
// namespace, or "any command"), each carrying its effect (allow or approve),
// approvals, expiry and rule ids. Entries fully covered by a deny rule are
// dropped. Two versions are then compared by coverage: an entry of head that
// no entry of base covers is a gain; an entry of base that no entry of head
// covers is a loss. Renaming, reordering or splitting rules without changing
// what they grant reports nothing.
//
// Besides gains and losses, [Compare] reports masks removed or added, changes
// in approval (removed, added, approver count), deny rules removed or added,
// grant expiries moved, and identities and resources added or removed.
// [Report.Escalations] picks the changes that widen access, which is what a
// pull-request gate fails on.
//
// Coverage comes from package compiler/scope and is sound but not complete
// (see its documentation), so a change is never missed, but a grant split
// into several narrower ones may be reported as a gain of each part and a
// loss of the whole.
package diff
