// Package engine evaluates requests against a compiled policy bundle.
//
// New compiles a *bundle.Bundle into an *Engine: it parses expiries and time
// windows, compiles globs and table patterns, and indexes the rules by
// resource and subject so that a decision only looks at the rules that can
// apply to the caller and resource. Engine.Decide is a pure function of the
// Request and the bundle (no I/O, clock, globals or logging); it fills a
// caller-owned Decision and, once that Decision's slices have grown, does
// not allocate. An Engine is immutable and safe for concurrent use. A nil
// *Engine (no valid bundle active) denies every request with the reason
// "no valid policy bundle is active".
//
// # Semantics
//
// Default deny. A request is allowed only if a rule grants it.
//
// A rule matches a request when all of the following hold:
//
//   - Subject: one of its subjects names the request's identity, or is
//     "group:NAME" for a NAME in Request.Groups, or is "*" (an empty list is
//     "*"). "*" matches any non-empty identity. A request with an empty
//     identity matches nothing and is denied.
//   - Resource: the request's resource is among the rule's
//     ResolvedResources (the compiler expands "*" and "tag:T" there). A
//     request for a resource the bundle does not know is denied.
//   - Expiry: the rule has no expiry, or Request.Time is strictly before it.
//     A date "2027-03-01" expires at 2027-03-01T00:00:00Z: the rule matches
//     until 2027-02-28T23:59:59.999999999Z and not from midnight on. An RFC
//     3339 time expires at that instant.
//   - Time windows: the rule has none, or Request.Time lies inside one.
//     Start is inclusive, end exclusive, both "HH:MM" in the window's
//     timezone (IANA name; UTC when empty); "24:00" is the end of the day.
//     Days "mon".."sun" (empty = every day) name the day a window starts:
//     an overnight window {days: ["fri"], start: "22:00", end: "06:00"}
//     contains Friday 23:00 and Saturday 05:00 but not Saturday 23:00. A
//     window whose start equals its end is the whole day. A zero
//     Request.Time matches no rule with an expiry or a time window.
//   - Protocol: a rule without a protocol match (sql, ssh, http,
//     kubernetes) matches any command on its resources; a rule with one
//     matches only requests carrying facts of that protocol, as below.
//
// Among the matching rules, deny beats approve beats allow. Mask rules never
// grant: they add their masks to an allow or approve decision, and a request
// that only mask rules match is denied by default. Decision.RuleIDs name the
// rules that produced the decision in rule order: every matching deny rule
// for a deny; otherwise every matching approve rule for approve; otherwise
// every matching allow rule for allow; followed, on allow and approve, by
// every matching mask rule. A default deny names no rules.
// Decision.Approval is the approval of the first matching approve rule (its
// timeout defaulted from settings.default_approval_timeout); MaxRows is the
// smallest non-zero max_rows among the deciding allow or approve rules;
// Record is the record spec of the first rule in RuleIDs that has one.
//
// # Grants cover, denials touch
//
// List matching is asymmetric. An allow or approve rule (a grant) must cover
// every table, column and flagged function of the statement; a deny or mask
// rule matches when the statement touches any one it lists. An empty list
// means "any", with one exception: a grant's function list names the
// dangerous functions it permits, so an empty list permits none and "*"
// permits all. A deny or mask rule with no functions ignores them.
//
// # SQL
//
// Statements: the fact's kind is one of the rule's statements (case is
// ignored) or the rule lists "*" or none. Tables: patterns "schema.table",
// "table" (any schema), "schema.*" and "*"; a bare table name in the facts
// is in schema "public"; a three-part name drops the database. Columns:
// patterns "table.column", "*.column", "schema.table.column", "column",
// "table.*" and "*"; a fact column the classifier could not attribute to a
// table matches a table-qualified pattern only for deny and mask rules.
// Functions: "name" matches the function in any schema, "schema.name" only
// in that schema (an unqualified fact matches it only for deny and mask
// rules). Names are compared exactly, except statement kinds and function
// names, which ignore case. without_where matches only UPDATE and DELETE
// statements without a WHERE clause.
//
// # SSH
//
// Commands are globs over the whole command line in which '*' matches any
// text (spaces and slashes included) and '?' one byte. "shell" matches the
// interactive shell (an empty command) and nothing else; "*" and an empty
// list match every command and the shell.
//
// # HTTP
//
// Methods are compared ignoring case; "*" or none matches any. Hosts and
// paths are globs in which '*' and '?' stay within one segment (between
// dots in hosts, slashes in paths) and '**' matches across segments; a path
// pattern ending in "/**" also matches the path without that suffix
// ("/api/**" matches "/api", "/api/" and "/api/v1/x"). Hosts ignore case and
// the port unless the pattern names one. A query string or fragment in the
// path is ignored. A path that is not canonical (relative, or with an empty,
// "." or ".." segment, a backslash, or a percent-encoded '.', '/' or '\')
// never matches a grant's path patterns and always matches a deny's or a
// mask's.
//
// # Kubernetes
//
// Verbs are compared ignoring case ("*" or none matches any). Resources
// include subresources ("pods/exec"); "*" matches every resource and
// subresource, "pods" only the pods resource, and '*' within a segment
// works as a glob ("*/exec"). Namespaces are globs ('*' matches any text,
// including the empty namespace of cluster-scoped requests). exec_commands,
// when set, match only requests with an exec command line matching one of
// the globs.
//
// # Index
//
// New builds, per resource, the list of rules for any subject, per identity
// and per group, and for each identity of the policy the merged list of its
// identity and group rules. On top of that it precomputes, for every
// (resource, policy identity, request class), the candidate rules that can
// apply, split by effect. The request class is the SQL statement kind (one
// class per kind some rule names, one for every other kind), SSH, HTTP,
// Kubernetes or no protocol facts; a class's list holds only the rules
// whose protocol and statement list accept it, so a SELECT never evaluates
// UPDATE rules. Lists with equal contents share storage.
//
// Decide looks up the resource, identity and class, then evaluates the deny
// rules, then, if none matched, the approve rules, then the allow rules,
// stopping at the first effect with a match, and evaluates mask rules only
// for a grant. This gives the same decision as evaluating every candidate
// (deny beats approve beats allow) with fewer rules looked at: the cost
// depends on the rules that could apply, not on the size of the policy.
// The default-deny reason of an SQL request of a known kind is cached per
// (resource, identity, kind) without locking.
//
// Requests the precomputed lists do not cover (an identity unknown to the
// policy, groups that differ from the identity's policy groups, facts of
// more than one protocol, or a statement kind equal to a rule's kind only
// when case is ignored), and policies whose lists would exceed a fixed
// bound, take the general path: it merges the identity's and groups' lists
// at decision time and evaluates every candidate in rule order.
package engine
