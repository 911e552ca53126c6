// Package rest serves the MaxIM REST API (maxim-spec.md §3) with Fiber over
// chat.Service.
package rest

import (
	"context"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/attachment"
	"github.com/mqim/mqim/chat"
)

// Options configures the REST server. Zero values take defaults.
type Options struct {
	Service *chat.Service
	Auth    *chat.Authenticator
	// StrictAdmin makes admin endpoints require the master key (403/5003
	// otherwise), maxim-spec.md §2.3.
	StrictAdmin bool
	// Attachments stores uploaded files; nil disables /attachment.
	Attachments *attachment.Store
	// BodyLimit is the largest request body in bytes (JSON endpoints).
	BodyLimit    int
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	Log          zerolog.Logger
}

// Server is the Fiber application of mqim.
type Server struct {
	app  *fiber.App
	opts Options
	ln   net.Listener
}

// New builds the server and its routes.
func New(opts Options) *Server {
	s := &Server{opts: opts}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             opts.BodyLimit,
		ReadTimeout:           opts.ReadTimeout,
		WriteTimeout:          opts.WriteTimeout,
		IdleTimeout:           opts.IdleTimeout,
	})
	s.routes()
	return s
}

// routes registers every endpoint. Each group of endpoints lives in its own
// file: users.go, groups.go, rooms.go, passengers.go (REST), system.go
// (system messages), attachment.go (uploads and downloads).
func (s *Server) routes() {
	s.routeSystem(s.app)
	s.routeAttachments(s.app)
}

// App returns the Fiber app (tests use app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Listen binds addr and serves in the background. A port clash fails here,
// not in a goroutine.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	go func() {
		if err := s.app.Listener(ln); err != nil {
			s.opts.Log.Error().Err(err).Msg("http server stopped")
		}
	}()
	return nil
}

// Addr returns the bound address after Listen.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.app.ShutdownWithContext(ctx)
}
