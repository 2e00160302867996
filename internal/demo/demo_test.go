package demo

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testclock"
	"github.com/gatehouse/gatehouse/internal/testdb"
)

// TestDemo runs the whole demo against a real throwaway PostgreSQL cluster
// and checks each scripted step's effect, the masking of PII, the approval
// path, the recording, and that the backend password appears nowhere: not
// in the output, not in the logs, not in any file of the state directory.
// The gateway runs at testclock.Example, before the example grants expire
// and inside business hours, whatever the date.
func TestDemo(t *testing.T) {
	testdb.RequireIntegration(t)
	if _, err := findBin(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, logs bytes.Buffer
	state := t.TempDir()
	res, err := Run(ctx, Options{
		PolicyDir: "../../policies", StateDir: state,
		PostgresListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		Out: &out, Logger: newTestLogger(&logs), Clock: testclock.Start(testclock.Example),
	})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != len(Script)+1 {
		t.Fatalf("ran %d steps, want %d", len(res.Steps), len(Script)+1)
	}
	if last := res.Steps[len(res.Steps)-1]; last.Identity != "ci-deployer" {
		t.Errorf("approval step as %s, want the business-hours migration by ci-deployer", last.Identity)
	}
	for _, r := range res.Steps {
		want := r.Expect
		if want == "mask" {
			want = "allow"
		}
		if r.Effect != want {
			t.Errorf("%s: %q: effect %s (error %q), want %s", r.Identity, r.SQL, r.Effect, r.Error, want)
		}
		if r.Expect == "approve" && !strings.Contains(strings.Join(r.Notices, " "), "approval") {
			t.Errorf("approve step got no approval notice: %q", r.Notices)
		}
	}
	// Masked values: no e-mail, SSN or card number of the sample data in
	// any result row.
	for _, r := range res.Steps {
		for _, row := range r.Rows {
			joined := strings.Join(row, " ")
			for _, secret := range []string{"ada@example.com", "123-45-6789", "4111111111111111", "ALAN@EXAMPLE.ORG", "alan@example.org"} {
				if strings.Contains(joined, secret) {
					t.Errorf("step %q leaked %q in row %q", r.SQL, secret, joined)
				}
			}
		}
	}
	if len(res.Steps[1].Rows) != 3 {
		t.Errorf("masked select returned %d rows, want 3", len(res.Steps[1].Rows))
	}
	// The gateway logs in as the least-privileged application role.
	for _, r := range res.Steps {
		if r.SQL == "SHOW is_superuser" && (len(r.Rows) != 1 || r.Rows[0][0] != "off") {
			t.Errorf("the gateway's backend role: is_superuser = %v, want off", r.Rows)
		}
	}
	// The recording has every scripted command with its decision.
	effects := map[string]int{}
	for _, e := range res.Events {
		if e.Kind == "command" {
			effects[e.Effect]++
		}
	}
	if effects["deny"] < 3 || effects["allow"] < 5 || effects["approve"] < 1 {
		t.Errorf("recorded effects %v, want >=3 deny, >=5 allow, >=1 approve", effects)
	}
	// The credential never leaks.
	pw := res.BackendPassword
	if pw == "" {
		t.Fatal("no backend password")
	}
	if strings.Contains(out.String(), pw) || strings.Contains(logs.String(), pw) {
		t.Error("backend password appears in the demo output or logs")
	}
	for _, e := range res.Events {
		if strings.Contains(e.Command+e.Reason+e.Error+string(e.Facts), pw) {
			t.Errorf("backend password appears in a recorded event: %+v", e)
		}
	}
	err = filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(pw)) {
			t.Errorf("backend password found in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestApprovalStepFollowsBusinessHours(t *testing.T) {
	for _, c := range []struct {
		at   string
		want string // approver
	}{
		{"2026-11-27T09:00:00Z", "alice"}, // Friday 10:00 Berlin
		{"2026-11-27T18:30:00Z", "carol"}, // Friday 19:30 Berlin
		{"2026-11-28T10:00:00Z", "carol"}, // Saturday
		{"2026-11-30T05:59:00Z", "carol"}, // Monday 06:59 Berlin
		{"2026-11-30T06:00:00Z", "alice"}, // Monday 07:00 Berlin
	} {
		now, _ := time.Parse(time.RFC3339, c.at)
		if _, who := approvalStep(now); who != c.want {
			t.Errorf("%s: approver %s, want %s", c.at, who, c.want)
		}
	}
}
