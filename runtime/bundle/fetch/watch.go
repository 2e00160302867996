package fetch

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

var _ Watcher = (*FileSource)(nil)

// Changes implements Watcher. It watches the file's directory rather than the
// file, because publishers replace bundles by rename, which a watch on the
// old inode would miss.
func (s *FileSource) Changes(ctx context.Context) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch bundle %s: %w", s.Path, err)
	}
	dir := filepath.Dir(s.Path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch bundle directory %s: %w", dir, err)
	}
	base := filepath.Base(s.Path)
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Base(ev.Name) != base {
					continue
				}
				select { // coalesce bursts of events into one signal
				case out <- struct{}{}:
				default:
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return out, nil
}
