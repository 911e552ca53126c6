package rest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// routeSystem registers the system messages (docs/maxim.md §3.6): S1 POST
// /system to everyone online, S2 POST /system/{target} to a user (or
// passenger), or with the valueless flag ?group or ?room to a group or room.
// Both answer 202 with no body; system messages are not stored. In
// strict-admin mode they require the master key.
func (s *Server) routeSystem(r fiber.Router) {
	r.Post("/system", s.systemBroadcast)
	r.Post("/system/:target", s.systemSend)
}

// systemBroadcast is S1.
func (s *Server) systemBroadcast(c *fiber.Ctx) (err error) {
	defer func() { s.opts.Metrics.Say(metrics.KindSystem, metrics.SayOutcome(err)) }()
	msg, err := s.systemMessage(c)
	if err != nil {
		return err
	}
	if err := s.svc.SystemBroadcast(reqCtx(c), msg); err != nil {
		return err
	}
	c.Status(fiber.StatusAccepted)
	return nil
}

// systemSend is S2.
func (s *Server) systemSend(c *fiber.Ctx) (err error) {
	defer func() { s.opts.Metrics.Say(metrics.KindSystem, metrics.SayOutcome(err)) }()
	target, err := pathParam(c, "target")
	if err != nil {
		return err
	}
	kind := chat.SystemToUser
	group, room := queryFlag(c, "group"), queryFlag(c, "room")
	switch {
	case group && room:
		return chat.Errorf(chat.CodeInvalid, "use ?group or ?room, not both")
	case group:
		kind = chat.SystemToGroup
	case room:
		kind = chat.SystemToRoom
	}
	msg, err := s.systemMessage(c)
	if err != nil {
		return err
	}
	if err := s.svc.SystemSend(reqCtx(c), kind, target, msg); err != nil {
		return err
	}
	c.Status(fiber.StatusAccepted)
	return nil
}

// systemMessage reads the body {"content":{..},"remark":..,"push":{..}}.
func (s *Server) systemMessage(c *fiber.Ctx) (chat.SystemMessage, error) {
	b, err := s.body(c)
	if err != nil {
		return chat.SystemMessage{}, err
	}
	return chat.ParseSystemMessage(b, s.svc.Options().MaxBodyLen)
}
