package lint

// Finding codes. They are stable: a code keeps its meaning forever and is
// never reused. docs/lint.md documents each with an example and a fix.
const (
	CodeUnknownIdentity      Code = "GH001"
	CodeUnknownGroup         Code = "GH002"
	CodeUnknownResource      Code = "GH003"
	CodeUnknownTag           Code = "GH004"
	CodeUnknownClassifier    Code = "GH005"
	CodeUnknownApproverGroup Code = "GH006"
	CodeEmptyScope           Code = "GH007"

	CodeShadowedRule     Code = "GH010"
	CodeUnreachableGrant Code = "GH011"
	CodeContradiction    Code = "GH012"

	CodeNoExpiry      Code = "GH020"
	CodeNoReviewOwner Code = "GH021"
	CodeExpiredGrant  Code = "GH022"
	CodeReviewOverdue Code = "GH023"
	CodeInvalidTime   Code = "GH024"
	CodeExpiringGrant Code = "GH025"

	CodeAgentWrite       Code = "GH030"
	CodeWildcardProd     Code = "GH031"
	CodeLiteralSecret    Code = "GH040"
	CodeMaskUnreadable   Code = "GH050"
	CodeMaskUnsupported  Code = "GH051"
	CodeMaskEmpty        Code = "GH052"
	CodeApprovalTooSmall Code = "GH060"
	CodeSelfApproval     Code = "GH061"
)

// CodeInfo describes a finding code.
type CodeInfo struct {
	Code Code
	// Name is a short kebab-case name ("unknown-identity").
	Name string
	// Severity is the severity findings with this code usually have; a few
	// checks lower it for milder variants (see docs/lint.md).
	Severity Severity
	// Summary is one line saying what the code means.
	Summary string
	// Help says how to fix it.
	Help string
}

var codes = []CodeInfo{
	{CodeUnknownIdentity, "unknown-identity", SeverityError,
		"A rule subject or group member names an identity that is not declared.",
		"Declare the identity under `identities`, or fix the name. Undeclared names match nobody."},
	{CodeUnknownGroup, "unknown-group", SeverityError,
		"A rule subject (\"group:NAME\") or an identity's groups name a group that is not declared.",
		"Declare the group under `groups`, or fix the name."},
	{CodeUnknownResource, "unknown-resource", SeverityError,
		"A rule names a resource that is not declared.",
		"Declare the resource under `resources`, or fix the name."},
	{CodeUnknownTag, "unknown-tag", SeverityError,
		"A rule names \"tag:TAG\" but no resource carries that tag.",
		"Tag the intended resources, or fix the tag name."},
	{CodeUnknownClassifier, "unknown-classifier", SeverityError,
		"A mask names a classifier that is not declared or built in.",
		"Declare the classifier under `classifiers`, use a built-in one (email, credit_card, us_ssn, iban, phone, secret), or fix the name."},
	{CodeUnknownApproverGroup, "unknown-approver-group", SeverityError,
		"An approval names an approver group that is not declared, so nobody can approve.",
		"Declare the group under `groups` with its approvers, or fix the name."},
	{CodeEmptyScope, "empty-scope", SeverityWarning,
		"A rule's subjects or resources expand to nothing, so the rule never applies.",
		"Add members to the group or tag the resources, or remove the rule."},
	{CodeShadowedRule, "shadowed-rule", SeverityWarning,
		"A rule is fully covered by an earlier rule with the same effect; removing it changes nothing.",
		"Remove the redundant rule, or narrow the earlier one if the later one was meant to be the only grant."},
	{CodeUnreachableGrant, "unreachable-grant", SeverityWarning,
		"An allow or approve rule is fully covered by a deny rule (deny beats approve beats allow), so it never takes effect.",
		"Remove the grant, or narrow the deny rule if the grant is intended."},
	{CodeContradiction, "contradictory-rules", SeverityError,
		"An allow or approve rule and a deny rule have exactly the same scope.",
		"Decide which is meant and remove the other."},
	{CodeNoExpiry, "grant-without-expiry", SeverityWarning,
		"An allow or approve rule has no `expires`, so the grant never lapses.",
		"Add `expires: \"YYYY-MM-DD\"` so the grant has to be renewed deliberately."},
	{CodeNoReviewOwner, "grant-without-review-owner", SeverityWarning,
		"An allow or approve rule has no `review.owner`, so nobody is accountable for recertifying it.",
		"Add `review: {owner: \"TEAM\", every: \"90d\"}`."},
	{CodeExpiredGrant, "expired-grant", SeverityWarning,
		"A grant's `expires` is in the past; it no longer matches anything.",
		"Remove the rule, or renew it with a new `expires` after review."},
	{CodeExpiringGrant, "expiring-grant", SeverityWarning,
		"A grant's `expires` falls within the next 30 days (ExpiringWithin); access lapses then unless the grant is renewed.",
		"Review the grant and renew it with a new `expires`, or let it lapse on purpose."},
	{CodeReviewOverdue, "review-overdue", SeverityWarning,
		"`review.last_reviewed` plus `review.every` is in the past.",
		"Recertify the grant and update `review.last_reviewed` (and `review.reviewer`), or remove it."},
	{CodeInvalidTime, "invalid-time", SeverityError,
		"An `expires`, `review.last_reviewed` or `review.every` value cannot be parsed.",
		"Use `YYYY-MM-DD` or RFC 3339 for dates and `90d`, `12w` or a Go duration for intervals."},
	{CodeAgentWrite, "agent-write-without-approval", SeverityError,
		"An allow rule grants write or DDL statements to an agent identity with no approve or deny rule in front of it.",
		"Turn the rule into `effect: \"approve\"` with approvers, narrow it to read statements, or remove the agent from its subjects."},
	{CodeWildcardProd, "wildcard-subject-on-prod", SeverityError,
		"A rule grants access to every identity (\"*\" or no subjects) on a resource tagged `prod`.",
		"List the identities or groups that need the access."},
	{CodeLiteralSecret, "literal-secret", SeverityError,
		"A policy string looks like a secret (token, key, password in a URL) or a credential is not an `env:`/`file:` reference.",
		"Remove the secret from the policy repository, rotate it, and reference it with `env:NAME` or `file:PATH`."},
	{CodeMaskUnreadable, "mask-unreadable-table", SeverityWarning,
		"A mask column names a table that no allow or approve rule lets the mask's subjects read on its resources.",
		"Fix the table name, or remove the column from the mask."},
	{CodeMaskUnsupported, "mask-unsupported-resource", SeverityWarning,
		"A mask rule applies to resources that cannot be masked that way (SSH sessions; columns on non-SQL resources).",
		"Restrict the mask rule to resources of a type that supports it."},
	{CodeMaskEmpty, "mask-empty", SeverityWarning,
		"A mask rule names no columns, classifiers or JSON paths, so it masks nothing.",
		"Add what to mask, or remove the rule."},
	{CodeApprovalTooSmall, "approval-group-too-small", SeverityError,
		"An approval needs more approvers than its group has members, so it can never be given.",
		"Add approvers to the group, or lower `count`."},
	{CodeSelfApproval, "self-approval-only", SeverityError,
		"For some subject of an approve rule, the only approvers available include the subject itself.",
		"Add approvers other than the requester, or move the requester out of the approver group."},
}

// Codes returns every finding code, in code order. The slice is a copy.
func Codes() []CodeInfo {
	out := make([]CodeInfo, len(codes))
	copy(out, codes)
	return out
}

// Info returns the description of code c.
func Info(c Code) (CodeInfo, bool) {
	for _, ci := range codes {
		if ci.Code == c {
			return ci, true
		}
	}
	return CodeInfo{}, false
}
