package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// A backup file is Badger's backup stream (a consistent snapshot of the
// whole store at one read timestamp) wrapped so that a foreign, truncated
// or damaged file is refused before anything is restored:
//
//	magic "MQIMBKUP" | version uint32 | meta length uint32 | meta
//	frames: length uint32 (1..maxFrame) | that many bytes of Badger's stream
//	end:    length 0 | SHA-256 of every byte before the end frame
//
// Integers are little-endian. meta is opaque to storage (cmd/mqim keeps the
// app credentials there, docs/operations.md).
const (
	backupMagic   = "MQIMBKUP"
	backupVersion = 1
	maxFrame      = 1 << 20
	maxMeta       = 1 << 20
)

// ErrLocked is returned by Open when another process holds the directory.
var ErrLocked = errors.New("storage: the data directory is in use by another process")

// Backup writes a backup of the whole store to w, one snapshot at one read
// timestamp: every transaction committed before the call is in it, whole,
// and none is in it in part. The store stays open for reads and writes
// meanwhile. ctx (and Close) abort it.
func (db *DB) Backup(ctx context.Context, w io.Writer, meta []byte) (err error) {
	if len(meta) > maxMeta {
		return fmt.Errorf("storage: backup: meta of %d bytes", len(meta))
	}
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("storage: backup: badger panic: %v", r)
		}
	}()

	h := sha256.New()
	out := io.MultiWriter(w, h)
	head := make([]byte, 0, len(backupMagic)+8+len(meta))
	head = append(head, backupMagic...)
	head = binary.LittleEndian.AppendUint32(head, backupVersion)
	head = binary.LittleEndian.AppendUint32(head, uint32(len(meta)))
	head = append(head, meta...)
	if _, err := out.Write(head); err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	fw := &frameWriter{ctx: ctx, closing: db.closing, w: out}
	bw := bufio.NewWriterSize(fw, maxFrame)
	// One producer: Badger's Stream opens one read transaction per
	// producer goroutine, each at its own read timestamp, so with the
	// default two a transaction committed between their starts could be
	// half in the backup. With one, the backup is one snapshot.
	stream := db.bdb.NewStream()
	stream.NumGo = 1
	stream.LogPrefix = "mqim backup"
	if _, err := stream.Backup(bw, 0); err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	end := binary.LittleEndian.AppendUint32(nil, 0)
	end = h.Sum(end)
	if _, err := w.Write(end); err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	return nil
}

// frameWriter cuts what it is given into frames of at most maxFrame bytes.
type frameWriter struct {
	ctx     context.Context
	closing <-chan struct{}
	w       io.Writer
}

func (f *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := f.ctx.Err(); err != nil {
			return n, err
		}
		select {
		case <-f.closing:
			return n, errClosed
		default:
		}
		c := min(len(p), maxFrame)
		if _, err := f.w.Write(binary.LittleEndian.AppendUint32(nil, uint32(c))); err != nil {
			return n, err
		}
		if _, err := f.w.Write(p[:c]); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// backupReader reads a backup file: the header at creation, then the
// Badger stream through Read, which ends with io.EOF only after the end
// frame's checksum matched and nothing follows it.
type backupReader struct {
	r    *bufio.Reader
	h    hash.Hash
	left int // bytes left in the current frame
	done bool
}

// readBackupHeader checks the magic and the version and returns the meta.
func readBackupHeader(r io.Reader) (*backupReader, []byte, error) {
	br := &backupReader{r: bufio.NewReaderSize(r, 64<<10), h: sha256.New()}
	head := make([]byte, len(backupMagic)+8)
	if _, err := io.ReadFull(br.r, head); err != nil {
		return nil, nil, fmt.Errorf("not an mqim backup (too short: %w)", err)
	}
	if string(head[:len(backupMagic)]) != backupMagic {
		return nil, nil, errors.New("not an mqim backup (no MQIMBKUP header)")
	}
	if v := binary.LittleEndian.Uint32(head[len(backupMagic):]); v != backupVersion {
		return nil, nil, fmt.Errorf("backup format version %d: this mqim reads version %d", v, backupVersion)
	}
	n := binary.LittleEndian.Uint32(head[len(backupMagic)+4:])
	if n > maxMeta {
		return nil, nil, fmt.Errorf("damaged backup: meta of %d bytes", n)
	}
	meta := make([]byte, n)
	if _, err := io.ReadFull(br.r, meta); err != nil {
		return nil, nil, fmt.Errorf("truncated backup: %w", err)
	}
	br.h.Write(head)
	br.h.Write(meta)
	return br, meta, nil
}

func (b *backupReader) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.left == 0 {
		var l [4]byte
		if _, err := io.ReadFull(b.r, l[:]); err != nil {
			return 0, fmt.Errorf("truncated backup: %w", noEOF(err))
		}
		n := binary.LittleEndian.Uint32(l[:])
		if n == 0 {
			return 0, b.end()
		}
		if n > maxFrame {
			return 0, fmt.Errorf("damaged backup: frame of %d bytes", n)
		}
		b.h.Write(l[:])
		b.left = int(n)
	}
	p = p[:min(len(p), b.left)]
	n, err := io.ReadFull(b.r, p)
	b.h.Write(p[:n])
	b.left -= n
	if err != nil {
		return n, fmt.Errorf("truncated backup: %w", noEOF(err))
	}
	return n, nil
}

// end checks the checksum after the end frame and that the file ends there.
func (b *backupReader) end() error {
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(b.r, sum); err != nil {
		return fmt.Errorf("truncated backup: %w", noEOF(err))
	}
	if !bytes.Equal(sum, b.h.Sum(nil)) {
		return errors.New("damaged backup: checksum mismatch")
	}
	if _, err := b.r.ReadByte(); err != io.EOF {
		return errors.New("damaged backup: data after the end")
	}
	b.done = true
	return io.EOF
}

// noEOF turns a clean end of file, where more was due, into
// io.ErrUnexpectedEOF: callers treat io.EOF as success.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// VerifyBackup reads a whole backup file and checks its header, framing and
// checksum without restoring it; it returns the meta.
func VerifyBackup(r io.Reader) ([]byte, error) {
	br, meta, err := readBackupHeader(r)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, err
	}
	return meta, nil
}

// Restore creates a store in dir from a backup file and returns the file's
// meta. dir must be missing or empty: a restore never merges into data.
// On any error (a foreign, truncated or damaged file included) nothing is
// left in dir.
func Restore(ctx context.Context, opts Options, r io.Reader) (meta []byte, err error) {
	if opts.InMemory || opts.Dir == "" {
		return nil, errors.New("storage: restore: no data directory")
	}
	if entries, err := os.ReadDir(opts.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("storage: restore: %s is not empty", opts.Dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("storage: restore: %w", err)
	}
	br, meta, err := readBackupHeader(r)
	if err != nil {
		return nil, fmt.Errorf("storage: restore: %w", err)
	}
	db, err := Open(opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("storage: restore: badger panic: %v", r)
		}
		if cerr := db.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			cleanDir(opts.Dir)
		}
	}()
	if err := db.bdb.Load(&ctxReader{ctx: ctx, r: br}, 256); err != nil {
		return nil, fmt.Errorf("storage: restore: loading the backup: %w", err)
	}
	return meta, nil
}

// cleanDir empties a directory Restore filled.
func cleanDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(dir + string(os.PathSeparator) + e.Name()) // best effort: the restore error is what matters
	}
}

// ctxReader fails once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// lockError maps Badger's directory-lock failure to ErrLocked (Badger
// formats the cause away, so only its message tells).
func lockError(err error) error {
	if err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return fmt.Errorf("%w: %v", ErrLocked, err)
	}
	return err
}
