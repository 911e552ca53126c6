package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/storage"
)

// A backup (docs/operations.md) is the whole store, a consistent snapshot
// taken while the server runs, plus the app credentials the server uses
// (app id, key, master key, token secret): restored on a new machine, the
// same clients and tokens keep working. Attachments are files, not store
// records, and are copied separately.

// backupMeta is the meta of a backup file (storage.Backup keeps it
// opaque).
type backupMeta struct {
	Format      string       `json:"format"` // always "mqim"
	Version     string       `json:"mqim_version"`
	Created     time.Time    `json:"created"`
	Credentials *credentials `json:"credentials,omitempty"`
}

func newBackupMeta(c credentials) []byte {
	m := backupMeta{Format: "mqim", Version: version, Created: time.Now().UTC()}
	if c.AppID != "" || c.Key != "" || c.MasterKey != "" || c.TokenSecret != "" {
		m.Credentials = &c
	}
	b, _ := json.Marshal(m)
	return b
}

// backup is rest.Options.Backup: the running server's store and
// credentials.
func (m *Main) backup(ctx context.Context, w io.Writer) error {
	c := m.Config
	meta := newBackupMeta(credentials{AppID: c.App.ID, Key: c.App.Key, MasterKey: c.App.MasterKey, TokenSecret: c.Auth.TokenSecret})
	m.Log.Info().Msg("backup started")
	return m.DB.Backup(ctx, w, meta)
}

// backup is `mqim backup --out FILE`: from the data directory when no
// server holds it, else from the server (GET /backup with the master
// key). The file is written next to FILE, verified whole, and only then
// renamed to FILE (mode 0600: it holds the master key).
func (c *cli) backup(ctx context.Context, args []string) int {
	var out, base string
	path, err := c.parse("backup", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "the backup file to write")
		fs.StringVar(&base, "url", "", "take the backup from the server at this REST base URL")
	})
	if err == nil && out == "" {
		err = errors.New("mqim backup: --out FILE is required")
	}
	if err != nil {
		return c.usageError(err.Error())
	}
	cfg, err := LoadConfig(path, c.getenv)
	if err == nil && cfg.Storage.Driver == "postgres" {
		err = errPostgresBackup
	}
	if err != nil {
		return c.fail("backup", err)
	}
	creds, err := savedCredentials(cfg)
	if err != nil {
		return c.fail("backup", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return c.fail("backup", err)
	}
	// Gone after the rename; this removes a failed attempt.
	defer func() { _ = os.Remove(tmp.Name()) }()
	from, err := c.writeBackup(ctx, cfg, creds, base, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = verifyBackupFile(tmp.Name())
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		return c.fail("backup", err)
	}
	fi, _ := os.Stat(out)
	_, _ = fmt.Fprintf(c.stdout, "backup of %s written to %s (%d bytes)\n", from, out, fi.Size())
	return 0
}

// writeBackup writes the backup to f and says where it came from.
func (c *cli) writeBackup(ctx context.Context, cfg Config, creds credentials, base string, f *os.File) (string, error) {
	if base == "" {
		dir := storeDir(cfg.DataDir)
		if _, err := os.Stat(dir); err == nil {
			db, err := storage.Open(storage.Options{Dir: dir, Logger: storageLogger(zerolog.New(c.stderr).With().Timestamp().Logger(), cfg.Storage.LogLevel)})
			switch {
			case err == nil:
				err = db.Backup(ctx, f, newBackupMeta(creds))
				return "data directory " + cfg.DataDir, errors.Join(err, db.Close())
			case !errors.Is(err, storage.ErrLocked):
				return "", err
			}
			// A server holds the store: ask it.
		}
		base = localURL(cfg.HTTP.Addr)
	}
	if creds.AppID == "" || creds.MasterKey == "" {
		return "", errors.New("no app id and master key (app.id, app.master_key or <data_dir>/credentials.json) to ask the server with")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/backup", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-ML-AppId", creds.AppID)
	req.Header.Set("X-ML-MasterKey", creds.MasterKey)
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 30 * time.Second}}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("no server to take the backup (the data directory is not free, or not here; --url names the server): %w", err)
	}
	defer func() { _ = res.Body.Close() }() // read to the end or abandoned
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return "", fmt.Errorf("%s: %s %s", req.URL, res.Status, b)
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		return "", fmt.Errorf("%s: %w", req.URL, err)
	}
	return "the server at " + base, nil
}

// verifyBackupFile reads a backup file whole and checks it.
func verifyBackupFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only
	if _, err := storage.VerifyBackup(f); err != nil {
		return fmt.Errorf("the backup written does not verify: %w", err)
	}
	return nil
}

// restore is `mqim restore --in FILE`: a new store in an empty (or
// missing) data directory, and the backup's credentials in its
// credentials.json. Anything else in the directory is refused rather than
// merged or overwritten.
func (c *cli) restore(ctx context.Context, args []string) int {
	var in string
	path, err := c.parse("restore", args, func(fs *flag.FlagSet) {
		fs.StringVar(&in, "in", "", "the backup file to restore")
	})
	if err == nil && in == "" {
		err = errors.New("mqim restore: --in FILE is required")
	}
	if err != nil {
		return c.usageError(err.Error())
	}
	cfg, err := LoadConfig(path, c.getenv)
	if err == nil && cfg.Storage.Driver == "postgres" {
		err = errPostgresBackup
	}
	if err != nil {
		return c.fail("restore", err)
	}
	created, err := prepareRestoreDir(cfg.DataDir)
	if err != nil {
		return c.fail("restore", err)
	}
	if err := c.restoreInto(ctx, cfg, in); err != nil {
		// Leave the directory as it was: empty, or missing.
		entries, _ := os.ReadDir(cfg.DataDir)
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(cfg.DataDir, e.Name())) // best effort; the restore error is reported
		}
		if created {
			_ = os.Remove(cfg.DataDir) // best effort, as above
		}
		return c.fail("restore", err)
	}
	return 0
}

// prepareRestoreDir makes sure dir exists and is empty; created says it
// did not exist.
func prepareRestoreDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true, os.MkdirAll(dir, 0o700)
	case err != nil:
		return false, err
	case len(entries) > 0:
		return false, fmt.Errorf("data_dir %s is not empty: a restore goes into an empty data directory (move the old one aside first)", dir)
	}
	return false, nil
}

func (c *cli) restoreInto(ctx context.Context, cfg Config, in string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only
	raw, err := storage.Restore(ctx, storage.Options{
		Dir:    storeDir(cfg.DataDir),
		Logger: storageLogger(zerolog.New(c.stderr).With().Timestamp().Logger(), cfg.Storage.LogLevel),
	}, f)
	if err != nil {
		return err
	}
	var meta backupMeta
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Format != "mqim" {
		return fmt.Errorf("%s: not an mqim backup (meta %q)", in, raw)
	}
	what := "the store"
	if cr := meta.Credentials; cr != nil && cr.AppID != "" && cr.Key != "" && cr.MasterKey != "" {
		if err := writeCredentials(credentialsPath(cfg.DataDir), *cr); err != nil {
			return err
		}
		what += " and the app credentials (credentials.json)"
	}
	_, _ = fmt.Fprintf(c.stdout, "restored %s from %s (taken %s by mqim %s) into %s\n",
		what, in, meta.Created.Format(time.RFC3339), meta.Version, cfg.DataDir)
	return nil
}
