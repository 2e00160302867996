// Package testrepo builds policy repositories for tests: a copy of the
// example policies that a test may edit, and Git commits of it. It is only
// imported by tests.
package testrepo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// CopyExample copies the files of cue.mod and policies under the module
// root into dir, so a test can edit and commit them.
func CopyExample(t testing.TB, root, dir string) {
	t.Helper()
	for _, sub := range []string{"cue.mod", "policies"} {
		src := filepath.Join(root, sub)
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatalf("read %s: %v", src, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, sub, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// EditFile replaces the first old with new in a file, failing when old is
// absent: the example policy changed and the test must follow.
func EditFile(t testing.TB, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q; the example policy changed, update this test", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// CommitAll commits every file of repo's worktree at when and returns the
// commit hash.
func CommitAll(t testing.TB, repo *git.Repository, msg string, when time.Time) string {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Policy Author", Email: "author@example.com", When: when}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
