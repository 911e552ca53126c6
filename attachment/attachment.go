// Package attachment keeps uploaded files on disk: server-generated names,
// sniffed content types, thumbnails for images, and a retention sweeper
// (docs/maxim.md §6).
//
// # Layout
//
// Every file lives under the store directory as <a>/<b>.<ext>, where <a>
// and <b> are 8 random hex digits and <ext> is chosen by [Save] from the
// sniffed bytes (never a path from the client). The thumbnail of an image
// sits beside it as <a>/<b>.sm.<ext>. Uploads are written to .tmp/ first and
// linked into place only once complete, so a reader never sees a partial
// file. The store is the only writer of its directory: the sweeper deletes
// only names of that shape, and leftovers in .tmp/.
//
// # Age
//
// A file's age is its modification time, which Save sets from
// [Options.Now]. Names stay fully random (64 bits) because download URLs are
// unauthenticated: embedding a timestamp would make them easier to guess.
// Copying a store elsewhere must therefore keep mtimes (cp -p, rsync -t).
//
// The package imports only the standard library, golang.org/x/image and
// chat (for the MaxIM error codes); the HTTP side lives in rest.
package attachment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqim/mqim/chat"
)

// Defaults of [Options] (docs/maxim.md §1.6, §10).
const (
	DefaultMaxSize       = 20 << 20 // 20 MiB
	DefaultRetention     = 7 * 24 * time.Hour
	DefaultSweepInterval = time.Hour
	// DefaultMaxPixels bounds the images that get a thumbnail: decoding
	// allocates width×height×(1..8) bytes whatever the file size, so a tiny
	// PNG can claim a huge canvas (decompression bomb).
	DefaultMaxPixels = 40_000_000
	// ThumbSize is the largest width and height of a thumbnail.
	ThumbSize = 128

	tmpDir = ".tmp"
	// tmpMaxAge is how old an in-progress upload may get before the sweeper
	// treats it as the leftover of a crash.
	tmpMaxAge = time.Hour
)

// Options configures a [Store]. Zero values take the defaults.
type Options struct {
	// Dir is the store directory, created (0700) if missing. Required.
	Dir string
	// MaxSize is the largest accepted file in bytes (default 20 MiB).
	MaxSize int64
	// Retention is how long a file is kept (default 7 days). A negative
	// value keeps files for ever.
	Retention time.Duration
	// SweepInterval is how often the background sweeper runs (default 1h).
	SweepInterval time.Duration
	// MaxPixels is the largest image (width×height) that gets a thumbnail
	// (default 40 Mpx). Larger images are stored without one.
	MaxPixels int64
	// PublicURL is the base of attachment URLs (scheme://host[:port][/prefix],
	// no trailing slash). Empty: the HTTP layer derives it per request.
	PublicURL string
	// Now is the clock; nil means time.Now. Save stamps files with it and
	// the sweeper ages them by it.
	Now func() time.Time
	// Logger receives thumbnail failures and sweeper results; nil discards.
	Logger *slog.Logger
}

// Store keeps attachments under a directory. It is safe for concurrent use.
type Store struct {
	opts Options
	root *os.Root
	log  *slog.Logger

	// dirs orders directory creation (Save, shared) against removal of
	// empty directories (Sweep, exclusive), so the sweeper cannot delete a
	// directory between Save's MkdirAll and its Link.
	dirs sync.RWMutex
	// thumbs bounds concurrent image decodes: one decode can allocate
	// MaxPixels×8 bytes, so they run one at a time.
	thumbs chan struct{}

	defaultURL atomic.Pointer[string]

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// Open opens (creating if needed) the store in opts.Dir and removes the
// leftovers of interrupted uploads. Start begins the sweeper.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("attachment: Dir is required")
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	root, err := os.OpenRoot(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	// Nothing can be uploading yet: whatever is in .tmp is a leftover.
	if err := root.RemoveAll(tmpDir); err != nil {
		_ = root.Close() // the open failed; its error is the one to report
		return nil, fmt.Errorf("attachment: clean %s: %w", tmpDir, err)
	}
	if err := root.Mkdir(tmpDir, 0o700); err != nil {
		_ = root.Close() // as above
		return nil, fmt.Errorf("attachment: %w", err)
	}
	return &Store{
		opts:   opts,
		root:   root,
		log:    log,
		thumbs: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}, nil
}

// Options returns the effective options (defaults filled in).
func (s *Store) Options() Options { return s.opts }

// MaxSize returns the largest accepted file in bytes.
func (s *Store) MaxSize() int64 { return s.opts.MaxSize }

// PublicURL returns the configured base of attachment URLs, or "".
func (s *Store) PublicURL() string { return s.opts.PublicURL }

// SetDefaultURL sets the base URL used when none is configured and the
// request gives no usable Host (cmd/mqim derives it from the listener).
func (s *Store) SetDefaultURL(u string) {
	u = strings.TrimRight(u, "/")
	s.defaultURL.Store(&u)
}

// DefaultURL returns the base set by SetDefaultURL, or "".
func (s *Store) DefaultURL() string {
	if p := s.defaultURL.Load(); p != nil {
		return *p
	}
	return ""
}

// URL returns the absolute URL of the stored file rel under base:
// base/attachments/rel (docs/maxim.md §6).
func URL(base, rel string) string {
	return strings.TrimRight(base, "/") + "/attachments/" + rel
}

// Errors returned by the store, as MaxIM codes (docs/maxim.md §3.0). The
// messages are safe to show to clients.
var (
	errNotFound = chat.Errorf(chat.CodeNotFound, "attachment not found")
	errEmpty    = chat.Errorf(chat.CodeUpload, "empty file")
)

// errTooLarge returns the 5011 error for the limit max.
func errTooLarge(max int64) error {
	return chat.Errorf(chat.CodeFileTooLarge, "file larger than %d bytes", max)
}

// storageError is a 5006 that keeps its cause for the logs: errors.As finds
// the *chat.Error (client message "file storage error"), Error() shows both.
func storageError(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", chat.Errorf(chat.CodeFileStorage, "file storage error"), op, err)
}

// uploadError is a 5012 for a failed read of the upload, keeping the cause.
func uploadError(err error) error {
	return fmt.Errorf("%w: %w", chat.Errorf(chat.CodeUpload, "upload interrupted"), err)
}

// namePattern is the shape of every stored file: <a>/<b>[.sm].<ext>.
var namePattern = regexp.MustCompile(`^[0-9a-f]{8}/[0-9a-f]{8}(\.sm)?\.[a-z0-9]{1,8}$`)

// ValidName reports whether rel has the shape of a stored file. It is the
// first check on any name from a request, so a path that does not match
// never reaches the file system.
func ValidName(rel string) bool { return namePattern.MatchString(rel) }

// Save stores the content of r, uploaded under filename (used only for a
// fallback extension), and returns the relative names of the file and, for
// an image, of its thumbnail. It reads at most MaxSize+1 bytes of r.
//
// Errors: 5011 if r holds more than MaxSize bytes, 5012 if it is empty or
// reading it fails, 5006 if the disk fails. A failed thumbnail is logged and
// only the file's name is returned.
func (s *Store) Save(ctx context.Context, filename string, r io.Reader) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, uploadError(err)
	}
	tmpName := path.Join(tmpDir, randomHex(8))
	tmp, err := s.root.OpenFile(tmpName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, storageError("create", err)
	}
	keep := false
	defer func() {
		if !keep {
			// Abandoning a failed upload: its temporary file goes, and a
			// leftover is cleared by the next Open or sweep.
			_ = tmp.Close()
			_ = s.root.Remove(tmpName)
		}
	}()

	// Copy through a writer that remembers its own failure, so a disk error
	// (5006) is told apart from a client that went away (5012).
	w := &trackedWriter{w: tmp}
	n, err := io.Copy(w, io.LimitReader(r, s.opts.MaxSize+1))
	switch {
	case w.err != nil:
		return nil, storageError("write", w.err)
	case err != nil:
		return nil, uploadError(err)
	case n > s.opts.MaxSize:
		return nil, errTooLarge(s.opts.MaxSize)
	case n == 0:
		return nil, errEmpty
	}
	if err := tmp.Sync(); err != nil {
		return nil, storageError("sync", err)
	}

	head := make([]byte, sniffLen)
	m, err := tmp.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, storageError("read", err)
	}
	kind := sniff(head[:m], tmp)
	ext := chooseExt(kind, filename)
	if err := tmp.Close(); err != nil {
		return nil, storageError("close", err)
	}

	now := s.opts.Now()
	if err := s.root.Chtimes(tmpName, now, now); err != nil {
		return nil, storageError("chtimes", err)
	}
	rel, err := s.place(tmpName, ext)
	if err != nil {
		return nil, err
	}
	keep = true
	// place linked the file under its final name; the temporary name is
	// only a second link, and a leftover is cleared by the next sweep.
	_ = s.root.Remove(tmpName)

	names := []string{rel}
	if kind.image {
		if thumb, err := s.thumbnail(ctx, rel, kind, now); err != nil {
			s.log.Warn("thumbnail failed", "name", rel, "format", kind.format, "error", err)
		} else {
			names = append(names, thumb)
		}
	}
	return names, nil
}

// place links the finished upload tmpName at a fresh <a>/<b>.<ext> and
// returns that name. Link fails rather than overwrite, so a name collision
// (1 in 2^64) just draws again.
func (s *Store) place(tmpName, ext string) (string, error) {
	s.dirs.RLock()
	defer s.dirs.RUnlock()
	for range 4 {
		dir := randomHex(4)
		rel := dir + "/" + randomHex(4) + "." + ext
		if err := s.root.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", storageError("mkdir", err)
		}
		err := s.root.Link(tmpName, rel)
		if err == nil {
			return rel, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", storageError("link", err)
		}
	}
	return "", storageError("link", errors.New("no free name"))
}

// File is an open stored file, ready to serve. Close it when done.
type File struct {
	*os.File
	// Name is the relative name (<a>/<b>.<ext>).
	Name    string
	Size    int64
	ModTime time.Time
	// Expires is when the sweeper may delete the file (zero: never).
	Expires time.Time
	// ContentType is the type to serve: a sniffed media type, text/plain,
	// or application/octet-stream; never an active type such as text/html.
	ContentType string
	// Inline reports whether the type is safe to display in the browser;
	// other files are served as downloads.
	Inline bool
}

// Open opens the stored file rel for reading. Anything that is not a live
// stored file (bad shape, missing, expired, not a regular file) is 5004.
func (s *Store) Open(rel string) (*File, error) {
	if !ValidName(rel) {
		return nil, errNotFound
	}
	// Lstat first: a symlink planted in the store is refused rather than
	// followed (os.Root would keep it inside the store anyway).
	fi, err := s.root.Lstat(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNotFound
		}
		return nil, storageError("stat", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotFound
	}
	var expires time.Time
	if s.opts.Retention > 0 {
		expires = fi.ModTime().Add(s.opts.Retention)
		// Expired but not yet swept: gone as far as clients can tell.
		if !s.opts.Now().Before(expires) {
			return nil, errNotFound
		}
	}
	f, err := s.root.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNotFound
		}
		return nil, storageError("open", err)
	}
	ct, inline := serveType(path.Ext(rel)[1:])
	return &File{File: f, Name: rel, Size: fi.Size(), ModTime: fi.ModTime(), Expires: expires, ContentType: ct, Inline: inline}, nil
}

// trackedWriter passes writes through and keeps the first error, so that the
// caller of io.Copy can tell a write failure from a read failure.
type trackedWriter struct {
	w   io.Writer
	err error
}

func (t *trackedWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// randomHex returns 2n random lowercase hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails on supported platforms (crypto/rand doc)
	return hex.EncodeToString(b)
}
