// Package certify writes the decisions of an access review back into the
// policy source, so that recertification is an ordinary, reviewable policy
// change.
//
// A [Decisions] file maps rule ids to one of three actions:
//
//   - keep: the grant stays; its expires moves to the later of its current
//     expiry and the review date plus the review interval (or to an
//     explicit date), and review.last_reviewed and review.reviewer record
//     the recertification.
//   - revoke: the rule is removed from the rules list.
//   - shorten: the grant's expires moves to the given, earlier date.
//
// [Apply] locates each rule through its compiled position (bundle.Rule.Pos,
// "file:line:col" of the rule's struct literal), edits the CUE syntax tree
// (cue/parser, cue/ast, cue/format) and returns the rewritten files; it
// never edits text with patterns, and it refuses a position that does not
// hold the rule it names. A review field that is a reference (such as a
// shared "_review" value) is replaced by a literal carrying the compiled
// owner and interval, since a reference cannot take a new last_reviewed
// without conflicting. [Write] stores the files and [Commit] records them
// on a Git branch with go-git.
//
// The package reads no clock: the review date comes from the caller.
package certify
