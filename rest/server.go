// Package rest serves the MaxIM REST API (docs/maxim.md §3) with Fiber over
// chat.Service.
//
// The package is only HTTP: routes, parameter and body parsing, the JSON
// shapes of the spec, and the error table (error.go). Every rule lives in
// chat.Service.
package rest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/attachment"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Defaults of Options.
const (
	DefaultBodyLimit      = 1 << 20
	DefaultRequestTimeout = 30 * time.Second
)

// Options configures the REST server. Zero values take defaults.
type Options struct {
	Service *chat.Service
	Auth    *chat.Authenticator
	// StrictAdmin makes admin endpoints require the master key (403/5003
	// otherwise), docs/maxim.md §2.3.
	StrictAdmin bool
	// NoClientKey refuses the client key (signature or raw): token callers
	// and the master key only (app.client_key_login false).
	NoClientKey bool
	// Throttle counts failed logins per address; nil: no throttling.
	Throttle *chat.LoginThrottle
	// Attachments stores uploaded files; nil disables /attachment.
	Attachments *attachment.Store
	// BodyLimit is the largest JSON request body in bytes (default 1 MiB);
	// larger bodies get 413/5010.
	BodyLimit int
	// UploadLimit is the largest request body of any kind, uploads
	// included; it is raised to BodyLimit when smaller. Fiber refuses
	// bodies past it before any handler runs.
	UploadLimit  int
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// RequestTimeout bounds the context of each request (store calls);
	// default 30 s.
	RequestTimeout time.Duration
	Log            zerolog.Logger
	// SocketIO, when set, serves /socket.io/ (the socket.io endpoint of
	// package socketio): the polling requests that a browser sends over a
	// connection it first used for REST reach it through Fiber. The
	// listener front of cmd/mqim hands connections that start with
	// /socket.io/ (every WebSocket upgrade) to net/http directly.
	SocketIO http.Handler
	// Pages maps a path prefix ("/admin") to the static files served
	// under it (index.html at the prefix itself); public, see
	// publicPrefixes.
	Pages map[string]pageFS
	// Backup writes an online backup of the store to w (GET /backup,
	// master key only); nil: GET /backup answers 404.
	Backup func(ctx context.Context, w io.Writer) error
	// Metrics, when set, counts every request and serves GET /metrics and
	// GET /stats (master key; docs/metrics.md); nil: neither.
	Metrics *metrics.Metrics
	// Ready, when set, runs the readiness checks of GET /readyz: each
	// named check (store, mqtt, http) with its error, nil when it passes.
	Ready func(context.Context) map[string]error
	// Version is reported by /readyz.
	Version string
}

// Server is the Fiber application of mqim.
type Server struct {
	app  *fiber.App
	svc  *chat.Service
	opts Options
	ln   net.Listener

	created time.Time
	closing shuttingDown
}

// New builds the server and its routes. Service and Auth are required.
func New(opts Options) *Server {
	if opts.Service == nil || opts.Auth == nil {
		panic("rest: Options.Service and Options.Auth are required")
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.UploadLimit < opts.BodyLimit {
		opts.UploadLimit = opts.BodyLimit
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	s := &Server{svc: opts.Service, opts: opts, created: time.Now()}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             opts.UploadLimit,
		ReadTimeout:           opts.ReadTimeout,
		WriteTimeout:          opts.WriteTimeout,
		IdleTimeout:           opts.IdleTimeout,
		// Params, headers and bodies are handed to the store and to other
		// goroutines; Immutable copies them out of fasthttp's reused buffers.
		Immutable: true,
		// Uploads (up to UploadLimit) are read from the connection by the
		// attachment handler instead of being buffered whole; JSON handlers
		// read at most BodyLimit (body in params.go) and finishBody drains
		// whatever a handler left.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// SDK-JS0 calls DELETE /ctx/{id}/attributes/ and POST /passengers/.
		StrictRouting: false,
		CaseSensitive: true,
		ErrorHandler:  s.writeError,
	})
	if opts.SocketIO != nil {
		// Before the middleware: socket.io authenticates in its login.
		h := adaptor.HTTPHandler(opts.SocketIO)
		s.app.All("/socket.io", h)
		s.app.All("/socket.io/*", h)
	}
	s.app.Use(s.logRequests)
	s.app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: s.logPanic}))
	s.app.Use(s.cors)
	s.app.Use(s.limitBody)
	s.app.Use(s.authenticate)
	s.routes()
	return s
}

// routes registers every endpoint. Each group of endpoints lives in its own
// file: users.go, groups.go, rooms.go, passengers.go (REST), system.go
// (system messages), attachment.go (uploads and downloads), messages.go
// (recall, edit history).
func (s *Server) routes() {
	s.app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	s.routeUsers(s.app)
	s.routeGroups(s.app)
	s.routeRooms(s.app)
	s.routePassengers(s.app)
	s.routeSystem(s.app)
	s.routeAttachments(s.app)
	s.routeMessages(s.app)
	s.routeConversations(s.app)
	s.routeAccounts(s.app)
	s.routeOpenAPI(s.app)
	s.routePages(s.app)
	s.routeBackup(s.app)
	s.routeOps(s.app)
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

// Serve serves on ln in the background (instead of Listen).
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	go func() {
		if err := s.app.Listener(ln); err != nil {
			s.opts.Log.Error().Err(err).Msg("http server stopped")
		}
	}()
}

// HTTPHandler is the Fiber app as a net/http handler, for REST requests
// that arrive on a connection served by net/http (see Options.SocketIO).
func (s *Server) HTTPHandler() http.Handler { return adaptor.FiberApp(s.app) }

// Addr returns the bound address after Listen.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	return s.app.ShutdownWithContext(ctx)
}

// localLog is the c.Locals key of the request logger.
const localLog = "mqim.log"

// logRequests writes one line per request (never bodies or credentials),
// gives the request an id and a bounded context, and turns the handler
// chain's error into the MaxIM error response before logging its status.
func (s *Server) logRequests(c *fiber.Ctx) error {
	start := time.Now()
	reqID := chat.RandomHex(8)
	c.Set("X-Request-Id", reqID)
	log := s.opts.Log.With().Str("req_id", reqID).Logger()
	c.Locals(localLog, &log)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	c.SetUserContext(log.WithContext(ctx))

	if err := c.Next(); err != nil {
		if werr := s.writeError(c, err); werr != nil {
			log.Error().Err(werr).Msg("write error response")
			c.Status(fiber.StatusInternalServerError)
		}
	}
	s.finishBody(c)
	s.observe(c, start)
	log.Info().
		Str("method", c.Method()).
		Str("path", c.Path()).
		Int("status", c.Response().StatusCode()).
		Dur("latency", time.Since(start)).
		Int("bytes", responseBytes(c)).
		Msg("request")
	return nil
}

// limitBody refuses a declared Content-Length past BodyLimit before any
// handler runs (413/5010); uploads to /attachment have their own limit.
// Handlers read bodies with s.body, which also bounds chunked ones.
func (s *Server) limitBody(c *fiber.Ctx) error {
	if n := c.Request().Header.ContentLength(); n > s.opts.BodyLimit && !strings.HasPrefix(c.Path(), "/attachment") {
		// The body will not be read. Up to drainBound, finishBody discards
		// it so the connection stays usable and the client, still sending,
		// sees the 413 rather than a reset; past it, answer and close at
		// once rather than wait for megabytes that will be thrown away.
		if n > s.drainBound() {
			c.Context().SetConnectionClose()
		}
		return errBodyTooLarge(s.opts.BodyLimit)
	}
	return c.Next()
}

// localBodyRead is the c.Locals key set once the request body was read
// to its end.
const localBodyRead = "mqim.bodyread"

// finishBody reads what the handler left of a streamed request body, so
// that the next request on a keep-alive connection starts at its request
// line. A rest longer than BodyLimit is not worth reading: the connection
// is closed after the response instead.
func (s *Server) finishBody(c *fiber.Ctx) {
	rs := c.Context().RequestBodyStream()
	if rs == nil || c.Response().ConnectionClose() || c.Locals(localBodyRead) != nil {
		return
	}
	if c.Request().Header.ContentLength() < 0 && strings.HasPrefix(c.Path(), "/attachment") {
		// A fasthttp chunked stream read again after its end waits for a
		// next chunk that never comes, and the upload handler drains its
		// own body: whether it reached the end is unknown here. Closing
		// costs the client one reconnect.
		c.Context().SetConnectionClose()
		return
	}
	// Read what is left, up to a bound: closing with unread bytes makes the
	// kernel reset the connection, and a client still sending its body
	// would see the reset instead of our answer. CopyN ends with io.EOF
	// only when the body ended within the bound.
	if _, err := io.CopyN(io.Discard, rs, int64(s.drainBound())+1); !errors.Is(err, io.EOF) {
		c.Context().SetConnectionClose()
	}
}

// drainBound is how much of a body no handler read (or one refused as too
// large) is discarded to keep the connection: 4 × BodyLimit, at least
// 4 MiB. Past it the connection is closed.
func (s *Server) drainBound() int { return max(4*s.opts.BodyLimit, 4<<20) }

// logPanic records a recovered handler panic; the client gets 500/5002.
func (s *Server) logPanic(c *fiber.Ctx, e any) {
	requestLog(c, s.opts.Log).Error().Interface("panic", e).Str("path", c.Path()).Str("stack", string(debug.Stack())).Msg("handler panic")
}

// requestLog returns the request's logger, or base outside a request
// (errors fasthttp reports before the middleware runs).
func requestLog(c *fiber.Ctx, base zerolog.Logger) *zerolog.Logger {
	if l, ok := c.Locals(localLog).(*zerolog.Logger); ok {
		return l
	}
	return &base
}

// CORS (docs/maxim.md §3.0): browser SDKs call from any origin with the
// MaxIM headers.
const (
	corsMethods = "GET, POST, PUT, DELETE, OPTIONS"
	corsHeaders = "content-type, x-ml-appid, x-ml-apikey, x-ml-request-sign, x-ml-masterkey, authorization, x-parrot-version, x-ml-session-token"
)

// cors answers preflights and marks every response as readable from any
// origin.
func (s *Server) cors(c *fiber.Ctx) error {
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	if c.Method() != fiber.MethodOptions {
		return c.Next()
	}
	c.Set(fiber.HeaderAccessControlAllowMethods, corsMethods)
	c.Set(fiber.HeaderAccessControlAllowHeaders, corsHeaders)
	c.Set(fiber.HeaderAccessControlMaxAge, "86400")
	c.Status(fiber.StatusNoContent)
	return nil
}

// reqCtx returns the request's context (set by logRequests).
func reqCtx(c *fiber.Ctx) context.Context { return c.UserContext() }

// responseBytes is the size of the response body logged by logRequests: a
// streamed body (attachment downloads) counts its declared length, which
// fasthttp sends as Content-Length; any other (JSON) body its length, for
// which no Content-Length is set until the response is written. HEAD
// responses send no body.
func responseBytes(c *fiber.Ctx) int {
	r := c.Response()
	switch {
	case c.Method() == fiber.MethodHead:
		return 0
	case r.IsBodyStream():
		return max(r.Header.ContentLength(), 0)
	default:
		return len(r.Body())
	}
}
