// Package review computes access reviews from recorded evidence.
//
// A review answers three questions for every identity of a policy, over a
// period that ends at an injected "now" (the package never reads the wall
// clock):
//
//   - Is it still needed? Last activity and sessions per week.
//   - Does it have only what it needs? Every grant (allow or approve rule)
//     that applies to the identity, with how often and when it was last
//     used according to the rule ids of the recorded events. Grants that
//     matched nothing in the period are removal candidates; expired grants
//     and grants whose review is due are flagged.
//   - Did it use what it has, and can we prove it? Resources touched,
//     statements by kind (from the recorded facts), approvals with their
//     approvers and reasons, denied attempts, masked reads, and the
//     verification of every session's hash chain in the period.
//
// [Build] reads a [record.Reader] (and, optionally, an [ApprovalReader] for
// votes and reasons) and a compiled [bundle.Policy]; it returns a [Report]
// that [Render] writes as Markdown, HTML, CSV or JSON. [Suggest] turns the
// recorded use of one identity into least-privilege rules in the policy
// language, with the evidence as comments.
//
// Recertification (writing keep, revoke and shorten decisions back into the
// policy source) is a policy change and lives with the compiler
// (compiler/certify); this package stays free of CUE.
package review
