package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// localRole is the c.Locals key of the authenticated chat.Role.
const localRole = "mqim.role"

// Credential headers (docs/maxim.md §2.2).
const (
	headerAppID     = "X-ML-AppId"
	headerSign      = "X-ML-Request-Sign"
	headerAPIKey    = "X-ML-APIKey"
	headerMasterKey = "X-ML-MasterKey"
)

// authenticate requires the app id and at least one valid credential
// (docs/maxim.md §2.2): X-ML-Request-Sign (signed, or a raw key),
// X-ML-APIKey (raw key, what SDK-JS4 sends) or X-ML-MasterKey (raw master
// key). The best role any of them grants is kept for requireMaster.
// Preflights, /healthz and the attachment downloads (fetched by plain
// <img> tags, which send no headers) are not authenticated.
func (s *Server) authenticate(c *fiber.Ctx) error {
	path := c.Path()
	if c.Method() == fiber.MethodOptions || strings.HasPrefix(path, "/healthz") || strings.HasPrefix(path, "/attachments/") {
		return c.Next()
	}
	role, err := s.credentials(c)
	if err != nil {
		return err
	}
	c.Locals(localRole, role)
	return c.Next()
}

func (s *Server) credentials(c *fiber.Ctx) (chat.Role, error) {
	auth := s.opts.Auth
	app := c.Get(headerAppID)
	if app == "" {
		return chat.RoleNone, chat.Errorf(chat.CodeUnauthorized, "missing X-ML-AppId")
	}
	if !auth.CheckApp(app) {
		return chat.RoleNone, chat.Errorf(chat.CodeUnauthorized, "unknown app")
	}
	role := chat.RoleNone
	var firstErr error
	try := func(r chat.Role, err error) {
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
		return role, nil
	}
	if firstErr != nil {
		return chat.RoleNone, firstErr
	}
	return chat.RoleNone, chat.Errorf(chat.CodeUnauthorized, "missing credentials: send X-ML-Request-Sign, X-ML-APIKey or X-ML-MasterKey")
}

// requireMaster refuses a request authenticated without the master key when
// StrictAdmin is on (403/5003, docs/maxim.md §2.3). Admin endpoints call it
// first: POST /system*, DELETE /groups/{id}, DELETE /groups/{id}/chats,
// DELETE /rooms/{id}, PUT /groups/{id}.
func (s *Server) requireMaster(c *fiber.Ctx) error {
	if !s.opts.StrictAdmin {
		return nil
	}
	if r, ok := c.Locals(localRole).(chat.Role); ok && r == chat.RoleMaster {
		return nil
	}
	return errForbidden()
}

// adminOnly wraps an admin handler with requireMaster.
func (s *Server) adminOnly(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := s.requireMaster(c); err != nil {
			return err
		}
		return h(c)
	}
}
