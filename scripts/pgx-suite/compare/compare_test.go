package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "github.com/jackc/pgx/v5"

// stream builds a go test -json stream from "action package test [output]"
// lines ("-" for no test); for pass, fail and skip the last field is the
// elapsed time in seconds.
func stream(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		f := strings.SplitN(l, " ", 4)
		pkg := mod
		if f[1] != "." {
			pkg += "/" + f[1]
		}
		test := ""
		if f[2] != "-" {
			test = f[2]
		}
		out, elapsed := "", "0"
		if len(f) == 4 {
			if f[0] == "output" {
				out = f[3] + "\n"
			} else {
				elapsed = f[3]
			}
		}
		b.WriteString(`{"Action":"` + f[0] + `","Package":"` + pkg + `","Test":"` + test + `","Output":` + quote(out) + `,"Elapsed":` + elapsed + "}\n")
	}
	return b.String()
}

func quote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}

func mustRun(t *testing.T, s string) *Run {
	t.Helper()
	r, err := ParseRun(strings.NewReader(s), mod)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseRun(t *testing.T) {
	t.Parallel()
	r := mustRun(t, stream(
		"run . TestA",
		"output . TestA === RUN   TestA",
		"pass . TestA",
		"run pgconn TestB",
		"run pgconn TestB/sub",
		"output pgconn TestB/sub     x_test.go:10: boom",
		"fail pgconn TestB/sub",
		"fail pgconn TestB",
		"run pgconn TestC",
		"skip pgconn TestC",
		"run pgconn TestD",
		"output pgconn - panic: test timed out after 5m0s",
		"fail pgconn -",
		"run pgconn TestE/dir1580243407/001",
		"pass pgconn TestE/dir1580243407/001",
	)+"FAIL\tgithub.com/jackc/pgx/v5/pgconn 1.0s\n")
	want := map[Key]Outcome{
		{".", "TestA"}:               Pass,
		{"pgconn", "TestB"}:          Fail,
		{"pgconn", "TestB/sub"}:      Fail,
		{"pgconn", "TestC"}:          Skip,
		{"pgconn", "TestD"}:          NoResult,
		{"pgconn", "TestE/dirN/001"}: Pass,
	}
	if len(r.Tests) != len(want) {
		t.Fatalf("got %d tests, want %d: %v", len(r.Tests), len(want), r.Tests)
	}
	for k, o := range want {
		if got := r.outcome(k); got != o {
			t.Errorf("%s: got %s, want %s", k, got, o)
		}
	}
	if r.Stray != 1 {
		t.Errorf("stray lines: got %d, want 1", r.Stray)
	}
	if got := r.Packages["pgconn"].Outcome; got != Fail {
		t.Errorf("package pgconn: got %s, want fail", got)
	}
	if got, want := r.Count(false), (Counts{Pass: 2, Fail: 2, Skip: 1, NoResult: 1}); got != want {
		t.Errorf("Count(false) = %+v, want %+v", got, want)
	}
	if got, want := r.Count(true), (Counts{Pass: 1, Fail: 1, Skip: 1, NoResult: 1}); got != want {
		t.Errorf("Count(true) = %+v, want %+v", got, want)
	}
	if got := Excerpt(r.Tests[Key{"pgconn", "TestB/sub"}].Output, 5); len(got) != 1 || got[0] != "x_test.go:10: boom" {
		t.Errorf("excerpt: %q", got)
	}
}

func TestParseAllowList(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{name: "empty", in: "# nothing\n\n", want: 0},
		{name: "entries", in: "pgconn TestA  reason one\n. TestB reason # comment\n", want: 2},
		{name: "no reason", in: "pgconn TestA\n", wantErr: true},
		{name: "example", in: ". ExampleCollectRows reason\n", want: 1},
		{name: "not a test", in: "pgconn Benchmark reason\n", wantErr: true},
		{name: "duplicate", in: "pgconn TestA r\npgconn TestA r\n", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAllowList(strings.NewReader(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrAllowList) {
					t.Fatalf("got %v, want ErrAllowList", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("got %d entries, want %d", len(got), tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	direct := mustRun(t, stream(
		"pass . TestSame",
		"pass . TestFixed",
		"pass . TestSlow",
		"pass . TestBroken",
		"pass . TestAllowed",
		"pass . TestAllowed/sub",
		"pass . TestSkipped",
		"fail . TestFlakyDirect",
		"pass . TestMissing",
	))
	gateway := mustRun(t, stream(
		"pass . TestSame",
		"pass . TestFixed",
		"pass . TestSlow 120",
		"fail . TestBroken",
		"fail . TestAllowed",
		"fail . TestAllowed/sub",
		"skip . TestSkipped",
		"pass . TestFlakyDirect",
	))
	allow, err := ParseAllowList(strings.NewReader(". TestAllowed deliberate\n. TestFixed fixed since\npgconn TestNotRun not in this run\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep := Compare(direct, gateway, allow, 10)
	got := map[string]string{}
	for _, d := range rep.Differences {
		s := string(d.Direct) + "->" + string(d.Gateway)
		if d.Regression {
			s += " regression"
		}
		if d.Allowed != nil {
			s += " allowed"
		}
		got[d.Key.Test] = s
	}
	want := map[string]string{
		"TestBroken":      "pass->fail regression",
		"TestAllowed":     "pass->fail regression allowed",
		"TestAllowed/sub": "pass->fail regression allowed",
		"TestSkipped":     "pass->skip regression",
		"TestFlakyDirect": "fail->pass",
		"TestMissing":     "pass->absent regression",
	}
	if len(got) != len(want) {
		t.Fatalf("differences: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if rep.Failing != 3 {
		t.Errorf("Failing = %d, want 3", rep.Failing)
	}
	if len(rep.Slow) != 1 || rep.Slow[0].Key.Test != "TestSlow" || rep.Slow[0].Gateway != 120 {
		t.Errorf("slow: %+v", rep.Slow)
	}
	if len(rep.Stale) != 1 || rep.Stale[0].Key.Test != "TestFixed" {
		t.Errorf("stale: %+v", rep.Stale)
	}
}

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	direct := write("direct.json", stream("pass . TestA", "pass . TestB"))
	same := write("same.json", stream("pass . TestA", "pass . TestB"))
	worse := write("worse.json", stream("pass . TestA", "fail . TestB", "output . TestB x_test.go:3: gateway said no"))
	allNone := write("none.json", stream("fail . TestA", "fail . TestB"))
	allow := write("allow.txt", ". TestB the gateway refuses it on purpose\n")
	bad := write("bad.txt", ". TestB\n")
	cases := []struct {
		name    string
		o       options
		want    int
		wantOut string
	}{
		{name: "same", o: options{direct: direct, gateway: same}, want: exitOK},
		{name: "regression", o: options{direct: direct, gateway: worse}, want: exitRegression, wantOut: "gateway said no"},
		{name: "allowed", o: options{direct: direct, gateway: worse, allow: allow}, want: exitOK, wantOut: "refuses it on purpose"},
		{name: "bad allow-list", o: options{direct: direct, gateway: worse, allow: bad}, want: exitInput},
		{name: "direct broken", o: options{direct: allNone, gateway: same}, want: exitInput},
		{name: "missing file", o: options{direct: filepath.Join(dir, "nope"), gateway: same}, want: exitInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.o.module, tc.o.lines, tc.o.subtests = mod, 6, 3
			var out bytes.Buffer
			got, _ := run(tc.o, &out)
			if got != tc.want {
				t.Fatalf("exit %d, want %d; output:\n%s", got, tc.want, out.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
		})
	}
}

func TestSignature(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		lines []string
		want  string
	}{
		{
			name:  "sqlstate",
			lines: []string{"    helper_test.go:30: Unable to establish connection: failed to connect to 127.0.0.1:41234: server error: FATAL: recording is unavailable (SQLSTATE 28P01)"},
			want:  "FATAL: recording is unavailable (SQLSTATE 28P01)",
		},
		{
			name:  "testify",
			lines: []string{"    pgconn_test.go:3695: ", "        \tError Trace:\t/x/pgconn_test.go:3695", "        \tError:      \tAn error is expected but got nil."},
			want:  "Error: An error is expected but got nil.",
		},
		{
			name:  "testify continued",
			lines: []string{"    pgconn_test.go:2331: ", "        \tError:      \tNot equal: ", "        \t            \texpected: \"23505\"", "        \t            \tactual  : \"08P01\""},
			want:  `Error: Not equal: expected: "N" actual : "NPN"`,
		},
		{
			name:  "numbers",
			lines: []string{"    conn_test.go:12: got 3 connections, want 1"},
			want:  "got N connections, want N",
		},
		{name: "none", lines: nil, want: "(no output)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Signature(tc.lines); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
