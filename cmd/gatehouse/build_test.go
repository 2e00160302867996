package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestBuildCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out1 := filepath.Join(dir, "b1.json")
	out2 := filepath.Join(dir, "b2.json")
	args := []string{"build", "--dir", "../../policies", "--source-time", "2026-11-20T09:30:00Z", "--serial", "7", "--valid-for", "48h"}
	stdout, stderr, code, err := run(t, append(args, "-o", out1)...)
	if code != exitOK {
		t.Fatalf("exit %d: %v\n%s", code, err, stderr)
	}
	if !strings.Contains(stdout, "serial 7") || !strings.Contains(stdout, "11 rules") {
		t.Errorf("summary: %q", stdout)
	}
	if _, _, code, err := run(t, append(args, "-o", out2)...); code != exitOK {
		t.Fatalf("second build: exit %d: %v", code, err)
	}
	b1, err := os.ReadFile(out1)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(out2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatal("two builds of the same directory differ")
	}
	b, err := bundle.Decode(b1)
	if err != nil {
		t.Fatalf("built bundle does not decode: %v", err)
	}
	if b.Manifest.Serial != 7 || b.Manifest.Expires.Sub(b.Manifest.NotBefore).Hours() != 48 {
		t.Errorf("manifest %+v", b.Manifest)
	}
}

func TestBuildCommandErrors(t *testing.T) {
	t.Parallel()
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "p.cue"), []byte("package p\n\nrules: [{id: \"r\", effect: \"permit\"}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.json")
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"invalid policy", []string{"build", "--dir", bad, "-o", out}, exitInvalidPolicy, "p.cue:3:27: schema: rules.0.effect"},
		{"missing dir", []string{"build", "--dir", filepath.Join(bad, "nope"), "-o", out}, exitInvalidPolicy, ""},
		{"bad validity", []string{"build", "--dir", bad, "--valid-for", "-1h", "-o", out}, exitUsage, ""},
		{"bad source time", []string{"build", "--dir", "../../policies", "--source-time", "yesterday", "-o", out}, exitUsage, ""},
		{"extra argument", []string{"build", "x"}, exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code, err := run(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %v", code, tc.code, err)
			}
			if !strings.Contains(stderr, tc.inStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.inStderr)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed build wrote %s", out)
	}
}
