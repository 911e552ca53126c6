package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// localCaller is the c.Locals key of the authenticated *caller.
const localCaller = "mqim.caller"

// Credential headers (docs/maxim.md §2.2, §2.4).
const (
	headerAppID     = "X-ML-AppId"
	headerSign      = "X-ML-Request-Sign"
	headerAPIKey    = "X-ML-APIKey"
	headerMasterKey = "X-ML-MasterKey"
	headerAuth      = "Authorization"
)

// caller is who made a request: an app key (role), or the holder of a
// token (token true, subject its identity).
type caller struct {
	role    chat.Role
	token   bool
	subject chat.Identity
}

// master reports whether the caller used the master key.
func (c *caller) master() bool { return !c.token && c.role == chat.RoleMaster }

// callerOf returns the request's caller (nil before authenticate).
func callerOf(c *fiber.Ctx) *caller {
	cl, _ := c.Locals(localCaller).(*caller)
	return cl
}

// authenticate requires credentials: a bearer token (docs/maxim.md §2.4),
// or the app id and at least one valid key credential (§2.2):
// X-ML-Request-Sign (signed, or a raw key), X-ML-APIKey (raw key, what
// SDK-JS4 sends) or X-ML-MasterKey (raw master key). The best role any of
// them grants is kept. Preflights, /healthz and the attachment downloads
// (fetched by plain <img> tags, which send no headers) are not
// authenticated. A failed attempt counts against the client's address in
// the login throttle.
func (s *Server) authenticate(c *fiber.Ctx) error {
	path := c.Path()
	if c.Method() == fiber.MethodOptions || isPublic(path) {
		return c.Next()
	}
	if !s.knownPath(path) {
		// No route serves it: 404/5004 for every caller, before the
		// credentials are looked at (a client with a typo in its base URL
		// is told so, not that its signature is wrong).
		return fiber.ErrNotFound
	}
	ip := c.IP()
	if s.opts.Throttle != nil && !s.opts.Throttle.Allow(ip) {
		return errThrottled()
	}
	cl, err := s.credentials(c)
	if err != nil {
		if s.opts.Throttle != nil && !chat.IsBanned(err) && chat.ErrorCode(err) == chat.CodeUnauthorized {
			s.opts.Throttle.Fail(ip)
		}
		if chat.IsBanned(err) {
			return &statusError{status: fiber.StatusForbidden, err: chat.Errorf(chat.CodeUnauthorized, "%s", chat.ErrorMessage(err))}
		}
		return err
	}
	c.Locals(localCaller, cl)
	if err := s.authorize(c, cl); err != nil {
		return err
	}
	return c.Next()
}

// publicPrefixes are the paths served without credentials: liveness and
// readiness, the API document, the static pages (the console asks for the
// master key in the browser and sends it with every REST call), and
// attachment downloads (docs/attachments.md: their names are unguessable).
var publicPrefixes = []string{"/healthz", "/readyz", "/openapi.json", "/admin", "/demo", "/attachments/"}

// isPublic reports whether path is served without credentials.
func isPublic(path string) bool {
	for _, p := range publicPrefixes {
		if path == p || strings.HasPrefix(path, p) && (strings.HasSuffix(p, "/") || path[len(p)] == '/') {
			return true
		}
	}
	return false
}

// knownPath reports whether some route serves path, with any method: a
// rule of the policy, or a route registered outside it (a test's extra
// routes). A known path with a method it lacks gets 405 once
// authenticated.
func (s *Server) knownPath(path string) bool {
	for _, m := range []string{fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete} {
		if r, _ := matchRule(m, path); r != nil {
			return true
		}
	}
	// Rare: only paths outside the policy get here.
	for _, r := range s.app.GetRoutes(true) {
		if routeMatches(r.Path, path) {
			return true
		}
	}
	return false
}

// routeMatches reports whether a Fiber route pattern matches path, for the
// patterns mqim registers: literal segments, ":param" segments and a final
// "*"; a trailing slash is ignored (StrictRouting off).
func routeMatches(pattern, path string) bool {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	pat, segs := strings.Split(pattern, "/"), strings.Split(path, "/")
	for i, ps := range pat {
		if ps == "*" {
			return true
		}
		if i >= len(segs) {
			return false
		}
		if !strings.HasPrefix(ps, ":") && ps != segs[i] {
			return false
		}
	}
	return len(pat) == len(segs)
}

func (s *Server) credentials(c *fiber.Ctx) (*caller, error) {
	auth := s.opts.Auth
	app := c.Get(headerAppID)
	if v := c.Get(headerAuth); v != "" {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			return nil, chat.Errorf(chat.CodeUnauthorized, "Authorization must be Bearer <token>")
		}
		if cl, ok := s.metricsBearer(c, tok); ok {
			return cl, nil
		}
		if app != "" && !auth.CheckApp(app) {
			return nil, chat.Errorf(chat.CodeUnauthorized, "unknown app")
		}
		claims, err := s.svc.VerifyToken(reqCtx(c), strings.TrimSpace(tok), nil)
		if err != nil {
			return nil, err
		}
		return &caller{token: true, subject: claims.Subject}, nil
	}
	if app == "" {
		return nil, chat.Errorf(chat.CodeUnauthorized, "missing X-ML-AppId")
	}
	if !auth.CheckApp(app) {
		return nil, chat.Errorf(chat.CodeUnauthorized, "unknown app")
	}
	role := chat.RoleNone
	var firstErr error
	try := func(r chat.Role, err error) {
		if err == nil && r == chat.RoleClient && s.opts.NoClientKey {
			err = chat.Errorf(chat.CodeUnauthorized, "the client key is not accepted: use a token or the master key")
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		role = max(role, r)
	}
	if v := c.Get(headerSign); v != "" {
		try(auth.VerifySign(v))
	}
	if v := c.Get(headerAPIKey); v != "" {
		try(auth.VerifyKey(v))
	}
	if v := c.Get(headerMasterKey); v != "" {
		r, err := auth.VerifyKey(v)
		if err == nil && r != chat.RoleMaster {
			err = chat.Errorf(chat.CodeUnauthorized, "X-ML-MasterKey is not the master key")
		}
		try(r, err)
	}
	if role != chat.RoleNone {
		return &caller{role: role}, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, chat.Errorf(chat.CodeUnauthorized, "missing credentials: send Authorization: Bearer <token>, X-ML-Request-Sign, X-ML-APIKey or X-ML-MasterKey")
}

// errThrottled refuses an address past the failed-login limit.
func errThrottled() error {
	return chat.Errorf(chat.CodeRateLimited, "too many failed logins from this address: try again in a minute")
}
