package rest

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routeAccounts registers the tokens and account control of
// docs/maxim.md §2.4–§2.5. Who may call them is in the policy (policy.go).
func (s *Server) routeAccounts(r fiber.Router) {
	r.Post("/tokens", s.mintToken)
	r.Delete("/ctx/:uid/tokens", s.revokeTokens)
	r.Post("/ctx/:uid/kick", s.kickUser)
	r.Put("/ctx/:uid/ban", s.banUser)
	r.Delete("/ctx/:uid/ban", s.unbanUser)
	r.Delete("/ctx/:uid", s.eraseUser)
}

// eraseUser is DELETE /ctx/{uid}[?history=true] (docs/maxim.md §2.8).
func (s *Server) eraseUser(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	if err := s.svc.EraseUser(reqCtx(c), uid, queryFlag(c, "history")); err != nil {
		return err
	}
	return noContent(c)
}

// tokenDTO is the answer of POST /tokens.
type tokenDTO struct {
	Token   string `json:"token"`
	Expires int64  `json:"expires"`
}

// mintToken is POST /tokens: {"user":"alice"} or {"passenger":"p1"},
// optional "ttl" (a Go duration).
func (s *Server) mintToken(c *fiber.Ctx) error {
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	user, err := stringField(m, "user")
	if err != nil {
		return err
	}
	pid, err := stringField(m, "passenger")
	if err != nil {
		return err
	}
	ttlText, err := stringField(m, "ttl")
	if err != nil {
		return err
	}
	var id chat.Identity
	switch {
	case user != "" && pid == "":
		id = chat.User(user)
	case pid != "" && user == "":
		id = chat.Passenger(pid)
	default:
		return chat.Errorf(chat.CodeInvalid, `body must name one of "user" or "passenger"`)
	}
	var ttl time.Duration
	if ttlText != "" {
		if ttl, err = time.ParseDuration(ttlText); err != nil || ttl <= 0 {
			return chat.Errorf(chat.CodeInvalid, `ttl must be a positive duration such as "24h"`)
		}
	}
	tok, exp, err := s.svc.IssueToken(id, ttl)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(tokenDTO{Token: tok, Expires: exp})
}

func (s *Server) revokeTokens(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	n, err := s.svc.RevokeTokens(reqCtx(c), chat.User(uid))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"disconnected": n})
}

func (s *Server) kickUser(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	n, err := s.svc.Kick(reqCtx(c), chat.User(uid))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"kicked": n})
}

// banDTO is the body of PUT /ctx/{uid}/ban and the "banned" field of
// GET /ctx/{uid}.
type banDTO struct {
	Until  int64  `json:"until"`
	Reason string `json:"reason,omitempty"`
	TS     int64  `json:"ts,omitempty"`
}

func (s *Server) banUser(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	b, err := s.body(c)
	if err != nil {
		return err
	}
	var in banDTO
	if !emptyJSON(b) {
		if err := json.Unmarshal(b, &in); err != nil {
			return chat.Errorf(chat.CodeInvalid, `body must be {"until":<ms, 0 = for ever>,"reason":"..."}`)
		}
	}
	ban, err := s.svc.BanIdentity(reqCtx(c), chat.User(uid), in.Until, in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(banDTO{Until: ban.Until, Reason: ban.Reason, TS: ban.TS})
}

func (s *Server) unbanUser(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	if err := s.svc.Unban(reqCtx(c), chat.User(uid)); err != nil {
		return err
	}
	return noContent(c)
}
