package bundle

// This file defines the compiled policy: the data model that the compiler
// produces and the runtime evaluates. Every field has a JSON name because the
// bundle is canonical JSON; slices are kept in a defined order (documented per
// field) so that the same policy always encodes to the same bytes.

// Effect is what a rule does when it matches.
type Effect string

const (
	// EffectAllow grants the command.
	EffectAllow Effect = "allow"
	// EffectDeny refuses the command. Deny beats approve beats allow.
	EffectDeny Effect = "deny"
	// EffectApprove lets the command run only after human approval.
	EffectApprove Effect = "approve"
	// EffectMask does not grant anything; it adds masking to commands that
	// another rule allows (or approves).
	EffectMask Effect = "mask"
)

// ResourceType names the protocol a resource speaks.
type ResourceType string

const (
	ResourcePostgres   ResourceType = "postgres"
	ResourceMySQL      ResourceType = "mysql"
	ResourceSSH        ResourceType = "ssh"
	ResourceHTTP       ResourceType = "http"
	ResourceKubernetes ResourceType = "kubernetes"
)

// Policy is the compiled form of a policy repository.
type Policy struct {
	// Identities sorted by Name.
	Identities []Identity `json:"identities"`
	// Groups sorted by Name.
	Groups []Group `json:"groups"`
	// Resources sorted by Name.
	Resources []Resource `json:"resources"`
	// Classifiers sorted by Name; contains the built-in classifiers that the
	// policy references as well as custom ones.
	Classifiers []Classifier `json:"classifiers"`
	// Rules in declaration order (the order of the `rules` list; files are
	// concatenated in lexical file-name order). Rule.Index equals the
	// position in this slice.
	Rules []Rule `json:"rules"`
	// Settings are policy-wide options.
	Settings Settings `json:"settings"`
}

// Settings are policy-wide options.
type Settings struct {
	// Audience is the token audience the gateway accepts ("gatehouse" by default).
	Audience string `json:"audience,omitempty"`
	// DefaultApprovalTimeout applies to approve rules that give none (Go
	// duration syntax, e.g. "15m").
	DefaultApprovalTimeout string `json:"default_approval_timeout,omitempty"`
}

// Identity is a human or non-human principal the gateway can recognise from
// a verified token.
type Identity struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // "agent" | "human" | "service"
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
	// Match says which verified tokens are this identity. All set fields must
	// match.
	Match IdentityMatch `json:"match"`
	// Groups the identity belongs to, sorted; computed by the compiler from
	// Group.Members.
	Groups []string `json:"groups,omitempty"`
	// Roles on the gateway itself, sorted: "admin", "auditor".
	Roles []string `json:"roles,omitempty"`
	// Pos is the source position "file:line:col" of the declaration.
	Pos string `json:"pos,omitempty"`
}

// IdentityMatch is matched against verified OIDC token claims.
type IdentityMatch struct {
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
	Email   string `json:"email,omitempty"`
	// Claims: other claims that must equal the given value (for array
	// claims: contain it). Encoded with sorted keys.
	Claims map[string]string `json:"claims,omitempty"`
}

// Group is a named set of identities.
type Group struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Members are identity names, sorted.
	Members []string `json:"members"`
	Pos     string   `json:"pos,omitempty"`
}

// Resource is a backend that the gateway fronts.
type Resource struct {
	Name        string       `json:"name"`
	Type        ResourceType `json:"type"`
	Address     string       `json:"address"`
	Database    string       `json:"database,omitempty"`
	User        string       `json:"user,omitempty"`
	Description string       `json:"description,omitempty"`
	Owner       string       `json:"owner,omitempty"`
	// Tags sorted.
	Tags []string `json:"tags,omitempty"`
	// Credential is a reference, never a secret: "env:NAME" or "file:PATH"
	// (or empty for backends that need none, such as trust auth).
	Credential string `json:"credential,omitempty"`
	TLS        TLS    `json:"tls"`
	Pos        string `json:"pos,omitempty"`
}

// TLS configures how the gateway connects to the backend.
type TLS struct {
	// Mode: "disable" | "prefer" | "require" | "verify-full".
	Mode       string `json:"mode,omitempty"`
	CA         string `json:"ca,omitempty"` // reference "file:PATH"
	ServerName string `json:"server_name,omitempty"`
}

// Classifier recognises sensitive values by content.
type Classifier struct {
	Name string `json:"name"`
	// Builtin is true for the classifiers shipped with Gatehouse (email,
	// credit_card, us_ssn, iban, phone, secret); their Pattern is the one the
	// compiler ships so the runtime needs no table of its own.
	Builtin bool `json:"builtin,omitempty"`
	// Pattern is an RE2 regular expression.
	Pattern string `json:"pattern"`
	// Validator further checks a regex match: "" | "luhn" | "iban".
	Validator string `json:"validator,omitempty"`
	// Replacement is the text a match is replaced with ("" = default mask).
	Replacement string `json:"replacement,omitempty"`
	Pos         string `json:"pos,omitempty"`
}

// Rule is one compiled policy rule.
type Rule struct {
	ID          string `json:"id"`
	Index       int    `json:"index"`
	Description string `json:"description,omitempty"`
	// Subjects as written: identity names, "group:NAME", or "*" (any known
	// identity). Sorted. Empty means "*".
	Subjects []string `json:"subjects,omitempty"`
	// Resources as written: resource names, "tag:TAG", or "*". Sorted.
	// Empty means "*".
	Resources []string `json:"resources,omitempty"`
	// ResolvedResources are the resource names Resources expand to, sorted.
	ResolvedResources []string `json:"resolved_resources"`
	Effect            Effect   `json:"effect"`

	// At most one protocol match is set; none means "any command on the
	// matched resources".
	SQL        *SQLMatch        `json:"sql,omitempty"`
	SSH        *SSHMatch        `json:"ssh,omitempty"`
	HTTP       *HTTPMatch       `json:"http,omitempty"`
	Kubernetes *KubernetesMatch `json:"kubernetes,omitempty"`

	Mask       *MaskSpec     `json:"mask,omitempty"`
	Approval   *ApprovalSpec `json:"approval,omitempty"`
	Conditions *Conditions   `json:"conditions,omitempty"`

	// Expires is an RFC 3339 date or time ("2027-03-01" or
	// "2027-03-01T00:00:00Z"); empty means no expiry. An expired rule never
	// matches.
	Expires string      `json:"expires,omitempty"`
	Review  *Review     `json:"review,omitempty"`
	Record  *RecordSpec `json:"record,omitempty"`
	Pos     string      `json:"pos,omitempty"`
}

// SQLMatch matches SQL statements (PostgreSQL and MySQL resources).
//
// Matching is asymmetric on purpose. For allow and approve rules every table,
// column and flagged function of the statement must be covered by the rule
// (a grant never extends beyond what it names). For deny rules, touching any
// one listed table, column or function is enough. Empty lists mean "any".
type SQLMatch struct {
	// Statements are statement kinds in lower case ("select", "insert",
	// "update", "delete", "create", "alter", "drop", "truncate", "copy",
	// "grant", "set", "call", "do", "explain", "transaction", "utility", ...)
	// or "*"; sorted.
	Statements []string `json:"statements,omitempty"`
	// Tables are patterns "schema.table", "table" (any schema), "schema.*"
	// or "*"; sorted.
	Tables []string `json:"tables,omitempty"`
	// Columns are patterns "table.column", "*.column"; sorted.
	Columns []string `json:"columns,omitempty"`
	// Functions are function names, optionally schema-qualified; sorted.
	Functions []string `json:"functions,omitempty"`
	// WithoutWhere matches only UPDATE/DELETE statements that have no WHERE
	// clause.
	WithoutWhere bool `json:"without_where,omitempty"`
}

// SSHMatch matches SSH session commands.
type SSHMatch struct {
	// Commands are glob patterns over the command line ("git *", "ls *");
	// "shell" matches an interactive shell; sorted.
	Commands []string `json:"commands,omitempty"`
}

// HTTPMatch matches HTTP requests.
type HTTPMatch struct {
	Methods []string `json:"methods,omitempty"` // upper case, sorted
	Hosts   []string `json:"hosts,omitempty"`   // glob, sorted
	Paths   []string `json:"paths,omitempty"`   // glob ("/api/v1/*"), sorted
}

// KubernetesMatch matches Kubernetes API requests.
type KubernetesMatch struct {
	Verbs        []string `json:"verbs,omitempty"`         // get, list, watch, create, update, patch, delete, exec, ...
	Resources    []string `json:"resources,omitempty"`     // "pods", "deployments", "pods/log", "*"
	Namespaces   []string `json:"namespaces,omitempty"`    // glob
	ExecCommands []string `json:"exec_commands,omitempty"` // glob over the exec command line
}

// MaskSpec says what a mask rule hides.
type MaskSpec struct {
	// Columns are patterns "table.column" or "*.column", also
	// "schema.table.column"; sorted.
	Columns []string `json:"columns,omitempty"`
	// Classifiers are classifier names applied to every text value of the
	// result; sorted.
	Classifiers []string `json:"classifiers,omitempty"`
	// JSONPaths mask fields inside JSON values ("$.email", "$.card.number");
	// sorted.
	JSONPaths []string `json:"json_paths,omitempty"`
	// Binary says what happens to binary-format values of masked columns:
	// "null" (default) or "deny".
	Binary string `json:"binary,omitempty"`
	// Style: "redact" (default, fixed text), "hash" (stable keyed digest, so
	// joins still work), "partial" (keep the last 4 characters).
	Style string `json:"style,omitempty"`
	// Predicates: "allow" (default) lets statements filter, group and sort
	// on the masked columns (which reveals something of their values to a
	// patient caller); "deny" refuses every statement that does.
	Predicates string `json:"predicates,omitempty"`
}

// ApprovalSpec says who must approve and how long a command may wait.
type ApprovalSpec struct {
	Group   string `json:"group"`
	Count   int    `json:"count"`
	Timeout string `json:"timeout"` // Go duration syntax
}

// Conditions further restrict when a rule applies.
type Conditions struct {
	// TimeWindows: the rule matches only inside one of them. Empty: always.
	TimeWindows []TimeWindow `json:"time_windows,omitempty"`
	// MaxRows caps the rows a matched command may return (0 = no cap);
	// beyond it the result is cut and the command is reported as failed.
	MaxRows int `json:"max_rows,omitempty"`
}

// TimeWindow is a weekly recurring window.
type TimeWindow struct {
	Days     []string `json:"days,omitempty"` // "mon".."sun"; empty = every day
	Start    string   `json:"start"`          // "09:00"
	End      string   `json:"end"`            // "18:00"; may be before Start (overnight)
	Timezone string   `json:"timezone,omitempty"`
}

// Review makes access review part of the grant.
type Review struct {
	Owner string `json:"owner"`
	Every string `json:"every"` // "90d", "30d", or Go duration
	// LastReviewed is the date of the last recertification ("2026-11-01").
	LastReviewed string `json:"last_reviewed,omitempty"`
	Reviewer     string `json:"reviewer,omitempty"`
}

// RecordSpec says what the recorder keeps for matched commands.
type RecordSpec struct {
	// Results: "none" (default) or "masked" (keep result rows after masking).
	Results string `json:"results,omitempty"`
	// MaxResultRows bounds how many result rows are kept per command.
	MaxResultRows int `json:"max_result_rows,omitempty"`
}
