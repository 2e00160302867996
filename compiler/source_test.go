package compiler

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

const gitModule = "module: \"example.com/policy@v0\"\nlanguage: version: \"v0.17.0\"\n"

func policyWithRule(id string) string {
	return "package policy\n\nidentities: bot: {kind: \"agent\", match: subject: \"bot\"}\n" +
		"rules: [{id: \"" + id + "\", subjects: [\"bot\"], effect: \"allow\"}]\n"
}

// gitRepo creates a repository with two commits in a temporary directory
// and returns its path and the two commit hashes.
func gitRepo(t *testing.T) (string, [2]plumbing.Hash, [2]time.Time) {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	times := [2]time.Time{
		time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 2, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600)),
	}
	var hashes [2]plumbing.Hash
	commit := func(i int, msg string) {
		sig := &object.Signature{Name: "Policy Admin", Email: "admin@example.com", When: times[i]}
		h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
		if err != nil {
			t.Fatal(err)
		}
		hashes[i] = h
	}
	write("cue.mod/module.cue", gitModule)
	write("policies/policy.cue", policyWithRule("first-rule"))
	write("README.md", "not a policy file\n")
	write("docs/index.md", "not a policy file\n")
	commit(0, "first")
	write("policies/policy.cue", policyWithRule("second-rule"))
	write("policies/more.cue", "package policy\n\ngroups: bots: members: [\"bot\"]\n")
	commit(1, "second")
	return dir, hashes, times
}

func TestLoadGit(t *testing.T) {
	t.Parallel()
	dir, hashes, times := gitRepo(t)
	// Leave uncommitted changes in the work tree: a Git build must ignore
	// them and must not touch them.
	dirty := []byte(policyWithRule("uncommitted-rule"))
	wtFile := filepath.Join(dir, "policies", "policy.cue")
	if err := os.WriteFile(wtFile, dirty, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		rev      string
		wantRule string
		wantHash plumbing.Hash
		wantTime time.Time
		groups   int
	}{
		{"first commit by hash", hashes[0].String(), "first-rule", hashes[0], times[0], 0},
		{"first commit by relative rev", "HEAD~1", "first-rule", hashes[0], times[0], 0},
		{"second commit by HEAD", "HEAD", "second-rule", hashes[1], times[1], 1},
		{"second commit by branch", "master", "second-rule", hashes[1], times[1], 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var encoded []byte
			for i := 0; i < 2; i++ {
				src, err := LoadGit(dir, tc.rev, "policies")
				if err != nil {
					t.Fatal(err)
				}
				if src.Revision != tc.wantHash.String() || !src.Time.Equal(tc.wantTime) || src.Time.Location() != time.UTC {
					t.Fatalf("revision %s time %s, want %s %s", src.Revision, src.Time, tc.wantHash, tc.wantTime)
				}
				if _, ok := src.Files["cue.mod/module.cue"]; !ok || src.Dir != "policies" {
					t.Fatalf("dir %q files %v", src.Dir, keys(src.Files))
				}
				if _, ok := src.Files["README.md"]; ok {
					t.Fatal("non-CUE file loaded")
				}
				res, err := Compile(src, Options{})
				if err != nil {
					t.Fatal(err)
				}
				p := res.Bundle.Policy
				if len(p.Rules) != 1 || p.Rules[0].ID != tc.wantRule || len(p.Groups) != tc.groups {
					t.Fatalf("got rules %+v groups %d", p.Rules, len(p.Groups))
				}
				m := res.Bundle.Manifest
				if m.Revision != tc.wantHash.String() || m.Serial != uint64(tc.wantTime.Unix()) || !m.NotBefore.Equal(tc.wantTime) {
					t.Fatalf("manifest %+v", m)
				}
				data, err := bundle.Encode(res.Bundle)
				if err != nil {
					t.Fatal(err)
				}
				if i == 1 && !bytes.Equal(data, encoded) {
					t.Fatal("two builds of the same commit differ")
				}
				encoded = data
			}
		})
	}
	t.Cleanup(func() {
		got, err := os.ReadFile(wtFile)
		if err != nil || !bytes.Equal(got, dirty) {
			t.Errorf("work tree file changed by a Git build: %q %v", got, err)
		}
	})
}

func TestLoadGitErrors(t *testing.T) {
	t.Parallel()
	dir, _, _ := gitRepo(t)
	tests := []struct {
		name, repo, rev, dir string
		want                 error
	}{
		{"unknown revision", dir, "no-such-branch", "policies", plumbing.ErrReferenceNotFound},
		{"no policy files", dir, "HEAD", "docs", ErrNoPolicyFiles},
		{"missing dir", dir, "HEAD", "nope", object.ErrDirectoryNotFound},
		{"escaping dir", dir, "HEAD", "../x", nil},
		{"not a repository", t.TempDir(), "HEAD", "policies", git.ErrRepositoryNotExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadGit(tc.repo, tc.rev, tc.dir)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	files := map[string]string{
		"cue.mod/module.cue":         gitModule,
		"policies/policy.cue":        policyWithRule("r"),
		"policies/sub/lib.cue":       "package lib\n",
		"policies/_ignored.cue":      "not cue",
		"policies/.hidden.cue":       "not cue",
		"policies/policy_test.cue":   "not cue",
		"policies/notes.txt":         "text",
		"policies/testdata/x.cue":    "not cue",
		"elsewhere/unrelated.cue":    "package other\n",
		"policies/deeper/more.cue":   "package policy\n",
		"policies/deeper/.git/x.cue": "x",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "policies/policy.cue"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	src, err := LoadDir(filepath.Join(root, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(keys(src.Files), ",")
	want := "cue.mod/module.cue,policies/deeper/more.cue,policies/policy.cue,policies/sub/lib.cue"
	if got != want || src.Dir != "policies" || src.Root != root {
		t.Fatalf("files %s dir %s root %s", got, src.Dir, src.Root)
	}
	if _, err := LoadDir(filepath.Join(root, "policies", "missing")); err == nil {
		t.Error("missing dir: no error")
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(empty); !errors.Is(err, ErrNoPolicyFiles) {
		t.Errorf("empty dir: got %v", err)
	}
	big := filepath.Join(root, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(big, "big.cue"), bytes.Repeat([]byte(" "), MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(big); !errors.Is(err, ErrSourceTooLarge) {
		t.Errorf("big file: got %v", err)
	}
}

func keys(m map[string][]byte) []string {
	out := sortedKeys(m)
	return out
}
