package rest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routePassengers registers P1–P3 (docs/maxim.md §3.5).
func (s *Server) routePassengers(r fiber.Router) {
	r.Post("/passengers", s.savePassenger)
	r.Get("/passengers/:pid", s.getPassenger)
	r.Post("/passengers/:pid", s.getPassenger) // P2b: SDK-JS4 load() posts a null body
	r.Get("/passengers/:pid/chats/:uid", s.passengerChats)
}

// savePassenger is P1: the body is the attributes, with an optional "id"
// that selects the passenger to update (or create) and is not stored as an
// attribute. 201 with the id as a JSON string.
func (s *Server) savePassenger(c *fiber.Ctx) error {
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	id, err := stringField(m, "id")
	if err != nil {
		return err
	}
	delete(m, "id")
	pid, err := s.svc.SavePassenger(reqCtx(c), id, chat.Attributes(m))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(pid)
}

// getPassenger is P2: the attributes object, no id, no presence.
func (s *Server) getPassenger(c *fiber.Ctx) error {
	pid, err := pathParam(c, "pid")
	if err != nil {
		return err
	}
	p, err := s.svc.Passenger(reqCtx(c), pid)
	if err != nil {
		return err
	}
	return c.JSON(p.Attributes)
}

func (s *Server) passengerChats(c *fiber.Ctx) error {
	ids, err := pathParams(c, "pid", "uid")
	if err != nil {
		return err
	}
	return history(c, func(ts int64, limit int) ([]chat.Record, error) {
		return s.svc.PassengerHistory(reqCtx(c), ids[0], ids[1], ts, limit)
	}, func(after uint64, limit int) ([]chat.Record, error) {
		return s.svc.PassengerHistoryAfter(reqCtx(c), ids[0], ids[1], after, limit)
	})
}
