package compiler

import "github.com/gatehouse/gatehouse/runtime/bundle"

// PolicyTest is one policy unit test from the `tests` map: a request and
// the decision the compiled policy must give for it.
type PolicyTest struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Request     TestRequest `json:"request"`
	Expect      TestExpect  `json:"expect"`
	// Pos is the source position "file:line:col" of the test.
	Pos string `json:"pos,omitempty"`
}

// TestRequest describes the request a test evaluates. At most one of SQL,
// Facts, SSH, HTTP and Kubernetes is set.
type TestRequest struct {
	Identity string `json:"identity"`
	Resource string `json:"resource"`
	// SQL is statement text, classified by the runtime's classifier.
	SQL string `json:"sql,omitempty"`
	// Facts describe a classified statement directly.
	Facts      *SQLFacts          `json:"facts,omitempty"`
	SSH        *SSHRequest        `json:"ssh,omitempty"`
	HTTP       *HTTPRequest       `json:"http,omitempty"`
	Kubernetes *KubernetesRequest `json:"kubernetes,omitempty"`
	// Time is the RFC 3339 instant of the request ("" = the test runner's
	// fixed default).
	Time string `json:"time,omitempty"`
}

// SQLFacts are the classification of one SQL statement.
type SQLFacts struct {
	Kind      string   `json:"kind,omitempty"`
	Tables    []string `json:"tables,omitempty"`
	Columns   []string `json:"columns,omitempty"`
	Functions []string `json:"functions,omitempty"`
	HasWhere  bool     `json:"has_where,omitempty"`
}

// SSHRequest is an SSH command ("shell" for an interactive shell).
type SSHRequest struct {
	Command string `json:"command"`
}

// HTTPRequest is an HTTP request line.
type HTTPRequest struct {
	Method string `json:"method"`
	Host   string `json:"host,omitempty"`
	Path   string `json:"path"`
}

// KubernetesRequest is a Kubernetes API request.
type KubernetesRequest struct {
	Verb      string `json:"verb"`
	Resource  string `json:"resource,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Command   string `json:"command,omitempty"`
}

// TestExpect is the expected decision.
type TestExpect struct {
	Effect bundle.Effect `json:"effect"`
	// Rules are the rule ids the decision must name, sorted (empty: not
	// checked).
	Rules []string `json:"rules,omitempty"`
	// MaskedColumns are the columns that must be masked, sorted (empty: not
	// checked).
	MaskedColumns []string `json:"masked_columns,omitempty"`
}
