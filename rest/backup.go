package rest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routeBackup registers GET /backup (master key only): an online backup of
// the store, streamed as it is written (docs/operations.md). The body is
// whatever Options.Backup writes; a backup that fails part way ends the
// body early, which the backup file's own end marker reveals (the status
// line is long gone by then).
func (s *Server) routeBackup(r fiber.Router) {
	r.Get("/backup", s.backup)
}

func (s *Server) backup(c *fiber.Ctx) error {
	if s.opts.Backup == nil {
		return chat.Errorf(chat.CodeNotFound, "backups are not available on this server")
	}
	log := s.opts.Log
	conn := c.Context().Conn()
	timeout := s.opts.WriteTimeout
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="mqim.backup"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		start := time.Now()
		dw := &deadlineWriter{w: w, conn: conn, timeout: timeout}
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return s.opts.Backup(context.Background(), dw)
		}()
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			log.Error().Err(err).Int64("bytes", dw.n).Msg("backup failed; the client got a truncated file")
			return
		}
		log.Info().Int64("bytes", dw.n).Dur("took", time.Since(start)).Msg("backup sent")
	})
	return nil
}

// deadlineWriter pushes the connection's write deadline forward before
// each write: the server's write timeout bounds one stalled write, not the
// whole backup, which may take longer than any request.
type deadlineWriter struct {
	w       *bufio.Writer
	conn    net.Conn
	timeout time.Duration
	n       int64
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.timeout > 0 && d.conn != nil {
		_ = d.conn.SetWriteDeadline(time.Now().Add(d.timeout)) // a failed write reports the problem
	}
	n, err := d.w.Write(p)
	d.n += int64(n)
	return n, err
}
