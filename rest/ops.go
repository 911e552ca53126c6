package rest

import (
	"context"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/mqim/mqim/chat"
)

// Operations endpoints (docs/metrics.md): GET /metrics (Prometheus, master
// key), GET /stats (the console's dashboard, master key) and GET /readyz
// (readiness, public; /healthz stays the liveness probe).

// routeOps registers /metrics, /stats and /readyz.
func (s *Server) routeOps(r fiber.Router) {
	r.Get("/readyz", s.readyz)
	r.Get("/stats", s.stats)
	if s.opts.Metrics != nil {
		r.Get("/metrics", adaptor.HTTPHandler(s.opts.Metrics.Handler()))
	}
}

// shuttingDown is set by Shutdown: /readyz answers 503 from then on.
type shuttingDown struct{ atomic.Bool }

// readyz answers 200 {"status":"ready",...} when every check of
// Options.Ready passes, else 503 with the MaxIM error 5002 naming the
// failing checks.
func (s *Server) readyz(c *fiber.Ctx) error {
	checks := map[string]string{}
	var failed []string
	if s.closing.Load() {
		checks["http"] = "shutting down"
		failed = append(failed, "http: shutting down")
	}
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(reqCtx(c), 5*time.Second)
		res := s.opts.Ready(ctx)
		cancel()
		for name, err := range res {
			if _, done := checks[name]; done {
				continue
			}
			if err != nil {
				checks[name] = err.Error()
				failed = append(failed, name+": "+err.Error())
			} else {
				checks[name] = "ok"
			}
		}
	}
	body := fiber.Map{"version": s.opts.Version, "uptime_s": time.Since(s.started()).Seconds(), "checks": checks}
	if len(failed) > 0 {
		sort.Strings(failed)
		body["status"] = "unavailable"
		body["errorCode"] = chat.CodeInternal
		body["errorMessage"] = "not ready: " + strings.Join(failed, "; ")
		return c.Status(fiber.StatusServiceUnavailable).JSON(body)
	}
	body["status"] = "ready"
	return c.JSON(body)
}

// started is when the server counts its uptime from: the metrics' start
// when there are metrics, else when New ran.
func (s *Server) started() time.Time {
	if t := s.opts.Metrics.Started(); !t.IsZero() {
		return t
	}
	return s.created
}

// stats serves the dashboard summary (metrics.Stats), read from the same
// collectors as /metrics.
func (s *Server) stats(c *fiber.Ctx) error {
	if s.opts.Metrics == nil {
		return chat.Errorf(chat.CodeUnsupported, "metrics are off")
	}
	st, err := s.opts.Metrics.Stats()
	if err != nil {
		return err
	}
	return c.JSON(st)
}

// observe counts the request in the HTTP metrics. The route is Fiber's
// pattern of the handler that answered (/ctx/:uid/friends), never the raw
// path; a request answered by a middleware (a refused credential, no such
// route) is named by its policy rule, by the page prefix that served it,
// or "unmatched".
func (s *Server) observe(c *fiber.Ctx, start time.Time) {
	if s.opts.Metrics == nil {
		return
	}
	s.opts.Metrics.HTTP(c.Method(), routeLabel(c), c.Response().StatusCode(), time.Since(start))
}

func routeLabel(c *fiber.Ctx) string {
	// The middleware (logRequests, authenticate, ...) is mounted on "/";
	// no endpoint is. A page prefix (/admin) is its own label.
	if p := c.Route().Path; p != "/" && p != "" {
		return p
	}
	if rule, _ := matchRule(c.Method(), c.Path()); rule != nil {
		return rule.path
	}
	return "unmatched"
}

// metricsBearer lets Prometheus authenticate on /metrics with its standard
// authorization option: the master key as a bearer credential, no app id.
// Anywhere else a bearer credential is a login token.
func (s *Server) metricsBearer(c *fiber.Ctx, tok string) (*caller, bool) {
	if c.Path() != "/metrics" {
		return nil, false
	}
	if r, err := s.opts.Auth.VerifyKey(strings.TrimSpace(tok)); err == nil && r == chat.RoleMaster {
		return &caller{role: chat.RoleMaster}, true
	}
	return nil, false
}
