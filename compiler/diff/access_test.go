package diff

import (
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestRuleAccessAndCoverage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		wide      bundle.Rule
		narrow    bundle.Rule
		typ       bundle.ResourceType
		wantWide  string // String of the first access of wide
		wantCover bool
	}{
		{name: "http paths", typ: bundle.ResourceHTTP,
			wide:     bundle.Rule{HTTP: &bundle.HTTPMatch{Methods: []string{"get"}, Paths: []string{"/v1/*"}}},
			narrow:   bundle.Rule{HTTP: &bundle.HTTPMatch{Methods: []string{"GET"}, Paths: []string{"/v1/users"}, Hosts: []string{"api.internal"}}},
			wantWide: "GET /v1/*", wantCover: true},
		{name: "http method not covered", typ: bundle.ResourceHTTP,
			wide:     bundle.Rule{HTTP: &bundle.HTTPMatch{Methods: []string{"GET"}}},
			narrow:   bundle.Rule{HTTP: &bundle.HTTPMatch{Methods: []string{"POST"}}},
			wantWide: "GET any path", wantCover: false},
		{name: "kubernetes namespaces", typ: bundle.ResourceKubernetes,
			wide:     bundle.Rule{Kubernetes: &bundle.KubernetesMatch{Verbs: []string{"get"}, Resources: []string{"pods"}, Namespaces: []string{"dev-*"}}},
			narrow:   bundle.Rule{Kubernetes: &bundle.KubernetesMatch{Verbs: []string{"get"}, Resources: []string{"pods"}, Namespaces: []string{"prod"}}},
			wantWide: "get pods in dev-*", wantCover: false},
		{name: "time window narrows", typ: bundle.ResourcePostgres,
			wide:     bundle.Rule{Conditions: &bundle.Conditions{TimeWindows: []bundle.TimeWindow{{Start: "09:00", End: "17:00"}}}},
			narrow:   bundle.Rule{SQL: &bundle.SQLMatch{Statements: []string{"select"}}},
			wantWide: "any command (window every day 09:00-17:00)", wantCover: false},
		{name: "any command covers ssh", typ: bundle.ResourceSSH,
			wide:     bundle.Rule{},
			narrow:   bundle.Rule{SSH: &bundle.SSHMatch{Commands: []string{"shell"}}},
			wantWide: "any command", wantCover: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, n := ruleAccess(&tc.wide, tc.typ), ruleAccess(&tc.narrow, tc.typ)
			if len(w) == 0 || len(n) == 0 {
				t.Fatalf("no access: %v %v", w, n)
			}
			if got := w[0].String(); got != tc.wantWide {
				t.Errorf("String() = %q, want %q", got, tc.wantWide)
			}
			if got := covers(w[0], n[0]); got != tc.wantCover {
				t.Errorf("covers = %v, want %v", got, tc.wantCover)
			}
		})
	}
	if a := ruleAccess(&bundle.Rule{SQL: &bundle.SQLMatch{}}, bundle.ResourceSSH); a != nil {
		t.Errorf("an SQL rule applies to an SSH resource: %v", a)
	}
}
