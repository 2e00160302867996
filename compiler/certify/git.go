package certify

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrBranchExists: the branch to commit on already exists.
var ErrBranchExists = errors.New("certify: branch already exists")

// CommitOptions describe the commit of a recertification.
type CommitOptions struct {
	// Branch is created from HEAD and checked out ("review/2026-11").
	Branch string
	// Message is the commit message (see Summary).
	Message string
	// Author of the commit; When is required (no clock is read).
	AuthorName, AuthorEmail string
	When                    time.Time
}

// Commit creates and checks out a branch from HEAD in the Git work tree
// that contains root, writes the changed files there and commits them.
// Other changes in the work tree are kept and left out of the commit. It
// returns the new commit's id.
func Commit(root string, res *Result, opts CommitOptions) (string, error) {
	if opts.Branch == "" || opts.When.IsZero() || opts.AuthorName == "" {
		return "", errors.New("certify: commit needs a branch, an author and a time")
	}
	repo, err := git.PlainOpenWithOptions(root, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return "", fmt.Errorf("certify: open repository at %s: %w", root, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("certify: work tree: %w", err)
	}
	ref := plumbing.NewBranchReferenceName(opts.Branch)
	if _, err := repo.Reference(ref, false); err == nil {
		return "", fmt.Errorf("%w: %s", ErrBranchExists, opts.Branch)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: ref, Create: true, Keep: true}); err != nil {
		return "", fmt.Errorf("certify: create branch %s: %w", opts.Branch, err)
	}
	if err := Write(root, res); err != nil {
		return "", err
	}
	top := wt.Filesystem.Root()
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(absRoot); err == nil {
		absRoot = r
	}
	if r, err := filepath.EvalSymlinks(top); err == nil {
		top = r
	}
	for name := range res.Files {
		rel, err := filepath.Rel(top, filepath.Join(absRoot, filepath.FromSlash(name)))
		if err != nil {
			return "", fmt.Errorf("certify: %s: %w", name, err)
		}
		if _, err := wt.Add(filepath.ToSlash(rel)); err != nil {
			return "", fmt.Errorf("certify: git add %s: %w", rel, err)
		}
	}
	sig := &object.Signature{Name: opts.AuthorName, Email: opts.AuthorEmail, When: opts.When}
	h, err := wt.Commit(opts.Message, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return "", fmt.Errorf("certify: commit: %w", err)
	}
	return h.String(), nil
}
