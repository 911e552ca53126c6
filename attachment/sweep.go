package attachment

import (
	"errors"
	"io/fs"
	"path"
	"time"
)

// Start runs the sweeper in the background: one sweep now (to catch up
// after downtime), then one every SweepInterval, until Close. It does
// nothing if Retention is negative (keep for ever).
func (s *Store) Start() {
	if s.opts.Retention < 0 || !s.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.opts.SweepInterval)
		defer t.Stop()
		for {
			removed, err := s.Sweep(s.opts.Now())
			if err != nil {
				s.log.Error("attachment sweep failed", "error", err, "removed", removed)
			} else if removed > 0 {
				s.log.Info("attachments expired", "removed", removed)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the sweeper (waiting for a sweep in progress) and releases
// the directory.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.stop) })
	if s.started.Load() {
		<-s.done
	}
	return s.root.Close()
}

// Sweep deletes the stored files (originals and thumbnails alike) whose
// modification time is at or before now-Retention, the directories left
// empty, and uploads in .tmp older than an hour. It returns how many stored
// files it removed. Files of any other shape are left alone. Errors do not
// stop the sweep; the first is returned.
func (s *Store) Sweep(now time.Time) (int, error) {
	if s.opts.Retention < 0 {
		return 0, nil
	}
	cutoff := now.Add(-s.opts.Retention)
	fsys := s.root.FS()
	dirs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return 0, storageError("sweep", err)
	}
	var errs []error
	removed := 0
	for _, d := range dirs {
		name := d.Name()
		if name == tmpDir {
			errs = append(errs, s.sweepTmp(now.Add(-tmpMaxAge)))
			continue
		}
		if !d.IsDir() || !isHex8(name) {
			continue
		}
		files, err := fs.ReadDir(fsys, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		left := len(files)
		for _, f := range files {
			rel := name + "/" + f.Name()
			if !ValidName(rel) {
				continue
			}
			fi, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				left--
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if fi.ModTime().After(cutoff) {
				continue
			}
			if err := s.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			removed++
			left--
		}
		if left == 0 {
			// Exclusive against Save, which may be about to link a new file
			// into this directory. Best effort: a directory that gained an
			// entry meanwhile fails to go, and the next sweep retries.
			s.dirs.Lock()
			_ = s.root.Remove(name)
			s.dirs.Unlock()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, storageError("sweep", err)
	}
	return removed, nil
}

// sweepTmp removes uploads in .tmp last modified at or before cutoff: an
// upload that old was abandoned by a crash, not still running.
func (s *Store) sweepTmp(cutoff time.Time) error {
	files, err := fs.ReadDir(s.root.FS(), tmpDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		fi, err := f.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		if err := s.root.Remove(path.Join(tmpDir, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isHex8(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
