package compiler

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Limits on what a policy source may contain. Reads beyond them fail with
// ErrSourceTooLarge.
const (
	// MaxFileSize bounds a single source file.
	MaxFileSize = 8 << 20
	// MaxTotalSize bounds the sum of all source files.
	MaxTotalSize = 64 << 20
	// MaxFiles bounds the number of source files.
	MaxFiles = 10000
)

var (
	// ErrSourceTooLarge is returned when a source exceeds MaxFileSize,
	// MaxTotalSize or MaxFiles.
	ErrSourceTooLarge = errors.New("policy source too large")
	// ErrNoPolicyFiles is returned when the policy directory holds no .cue
	// files.
	ErrNoPolicyFiles = errors.New("no .cue files in policy directory")
)

// Source is a policy repository snapshot held in memory: the files of the
// policy directory and of the CUE module (cue.mod), keyed by their
// slash-separated path relative to the repository (module) root.
type Source struct {
	// Root is where the files came from: the module root directory for a
	// directory build, the repository path for a Git build. Informational
	// only; compilation never reads from it.
	Root string
	// Dir is the policy package directory relative to Root ("." for the
	// root itself).
	Dir string
	// Files maps a path relative to Root to its content.
	Files map[string][]byte
	// Revision is the Git commit id, or "" for a plain directory build.
	Revision string
	// Time is the commit time (Git) or the newest modification time of the
	// files (directory); it is the bundle's not-before time and default
	// serial.
	Time time.Time
}

// Digest returns "sha256:HEX" over the files sorted by name. Each file
// contributes its name length (8 bytes, big endian), name, content length
// and content, so no two different file sets share an encoding.
func (s *Source) Digest() string {
	names := make([]string, 0, len(s.Files))
	for n := range s.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		io.WriteString(h, name)
		c := s.Files[name]
		binary.BigEndian.PutUint64(n[:], uint64(len(c)))
		h.Write(n[:])
		h.Write(c)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// wanted reports whether a path relative to the policy dir or to cue.mod
// belongs to the source: CUE files the CUE loader would read (it ignores
// names starting with "." or "_" and CUE test files).
func wanted(name string) bool {
	base := path.Base(name)
	return strings.HasSuffix(base, ".cue") && !strings.HasSuffix(base, "_test.cue") &&
		!strings.HasPrefix(base, ".") && !strings.HasPrefix(base, "_")
}

// skipDir reports whether a directory below the policy dir is ignored.
func skipDir(base string) bool {
	return strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata" || base == "cue.mod"
}

type budget struct{ files, total int }

func (b *budget) add(name string, size int64) error {
	if size > MaxFileSize {
		return fmt.Errorf("%s: %d bytes exceeds %d: %w", name, size, MaxFileSize, ErrSourceTooLarge)
	}
	b.files++
	b.total += int(size)
	if b.files > MaxFiles {
		return fmt.Errorf("more than %d files: %w", MaxFiles, ErrSourceTooLarge)
	}
	if b.total > MaxTotalSize {
		return fmt.Errorf("more than %d bytes: %w", MaxTotalSize, ErrSourceTooLarge)
	}
	return nil
}

// LoadDir reads the policy package in dir: every .cue file under dir (and
// its subdirectories, which may hold imported packages) plus the cue.mod
// directory of the enclosing CUE module, found by walking up from dir. When
// there is no cue.mod, dir itself is the root and the compiler supplies a
// module file. Revision is left empty (the bundle revision becomes
// "dir:"+digest); Time is the newest modification time of the files read.
func LoadDir(dir string) (*Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load policy dir %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("load policy dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("load policy dir %s: not a directory", dir)
	}
	root := abs
	for d := abs; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "cue.mod", "module.cue")); err == nil && fi.Mode().IsRegular() {
			root = d
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, fmt.Errorf("load policy dir: %w", err)
	}
	src := &Source{Root: root, Dir: filepath.ToSlash(rel), Files: map[string][]byte{}}
	var b budget
	var newest time.Time
	read := func(base string, recurse bool) error {
		return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != base && (!recurse || skipDir(d.Name())) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || !wanted(p) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if err := b.add(p, fi.Size()); err != nil {
				return err
			}
			data, err := readBounded(p)
			if err != nil {
				return err
			}
			r, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			src.Files[filepath.ToSlash(r)] = data
			if fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
			return nil
		})
	}
	if err := read(abs, true); err != nil {
		return nil, fmt.Errorf("load policy dir %s: %w", dir, err)
	}
	if !hasPackageFile(src.Files, src.Dir) {
		return nil, fmt.Errorf("load policy dir %s: %w", dir, ErrNoPolicyFiles)
	}
	if cm := filepath.Join(root, "cue.mod"); isDir(cm) {
		if err := read(cm, true); err != nil {
			return nil, fmt.Errorf("load cue.mod %s: %w", cm, err)
		}
	}
	src.Time = newest.UTC().Truncate(time.Second)
	return src, nil
}

// hasPackageFile reports whether files holds a .cue file directly in dir
// (not only in subdirectories).
func hasPackageFile(files map[string][]byte, dir string) bool {
	for name := range files {
		if path.Dir(name) == dir {
			return true
		}
	}
	return false
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w", p, ErrSourceTooLarge)
	}
	return data, nil
}

// LoadGit reads the policy package in dir (relative to the repository root)
// from revision rev of the Git repository at repoPath, without checking it
// out: the work tree and index are not touched. cue.mod is taken from the
// nearest ancestor of dir (within the tree) that has cue.mod/module.cue.
// Revision is the commit hash and Time the committer time.
func LoadGit(repoPath, rev, dir string) (*Source, error) {
	repo, err := git.PlainOpenWithOptions(repoPath, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("open git repository %s: %w", repoPath, err)
	}
	if rev == "" {
		rev = "HEAD"
	}
	hash, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	commit, err := repo.CommitObject(*hash)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", hash, err)
	}
	dir = path.Clean(filepath.ToSlash(dir))
	if dir == "" || dir == "/" {
		dir = "."
	}
	if strings.HasPrefix(dir, "../") || dir == ".." || path.IsAbs(dir) {
		return nil, fmt.Errorf("policy dir %q must be relative to the repository root", dir)
	}
	// The module root is the nearest ancestor of dir holding cue.mod/module.cue.
	root := "."
	for d := dir; ; d = path.Dir(d) {
		if _, err := tree.File(path.Join(d, "cue.mod/module.cue")); err == nil {
			root = d
			break
		}
		if d == "." {
			break
		}
	}
	relDir := dir
	if root != "." {
		relDir = strings.TrimPrefix(dir, root+"/")
		if dir == root {
			relDir = "."
		}
	}
	src := &Source{
		Root:     repoPath,
		Dir:      relDir,
		Files:    map[string][]byte{},
		Revision: hash.String(),
		Time:     commit.Committer.When.UTC().Truncate(time.Second),
	}
	var b budget
	read := func(sub string, recurse bool) error {
		t := tree
		if sub != "." {
			t, err = tree.Tree(sub)
			if err != nil {
				return fmt.Errorf("%s at %s: %w", sub, hash, err)
			}
		}
		return t.Files().ForEach(func(f *object.File) error {
			name := f.Name
			if !wanted(name) || !f.Mode.IsFile() {
				return nil
			}
			parts := strings.Split(path.Dir(name), "/")
			for _, p := range parts {
				if p != "." && skipDir(p) && !(sub != "." && strings.HasSuffix(sub, "cue.mod")) {
					return nil
				}
			}
			if !recurse && path.Dir(name) != "." {
				return nil
			}
			if err := b.add(name, f.Size); err != nil {
				return err
			}
			r, err := f.Reader()
			if err != nil {
				return err
			}
			defer r.Close()
			data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
			if err != nil {
				return err
			}
			if len(data) > MaxFileSize {
				return fmt.Errorf("%s: %w", name, ErrSourceTooLarge)
			}
			full := path.Join(sub, name)
			rel := full
			if root != "." {
				rel = strings.TrimPrefix(full, root+"/")
			}
			src.Files[rel] = data
			return nil
		})
	}
	if err := read(dir, true); err != nil {
		return nil, fmt.Errorf("load policy dir %s at %s: %w", dir, hash, err)
	}
	if !hasPackageFile(src.Files, relDir) {
		return nil, fmt.Errorf("load policy dir %s at %s: %w", dir, hash, ErrNoPolicyFiles)
	}
	if _, err := tree.Tree(path.Join(root, "cue.mod")); err == nil {
		if err := read(path.Join(root, "cue.mod"), true); err != nil {
			return nil, fmt.Errorf("load cue.mod at %s: %w", hash, err)
		}
	}
	return src, nil
}
