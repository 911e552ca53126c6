package rest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routeRooms registers R1–R14 (docs/maxim.md §3.4). Rooms keep no history,
// so there is no /chats.
func (s *Server) routeRooms(r fiber.Router) {
	r.Post("/rooms", s.createRoom)
	r.Get("/rooms", s.searchRooms)
	r.Get("/rooms/:rid", s.getRoom)
	r.Post("/rooms/:rid", s.getRoom) // R3b: SDK-JS4 load() posts a null body
	r.Put("/rooms/:rid", s.updateRoom)
	r.Delete("/rooms/:rid", s.adminOnly(s.deleteRoom))
	s.routeAttributes(r, "/rooms/:rid", "rid", chat.AttrRoom)
	r.Post("/rooms/:rid/members", s.roomMembers(true, false))
	r.Delete("/rooms/:rid/members", s.roomMembers(false, false))
	r.Post("/rooms/:rid/members/:uid", s.roomMembers(true, true))
	r.Delete("/rooms/:rid/members/:uid", s.roomMembers(false, true))
}

// roomDTO is R3: no id field.
type roomDTO struct {
	Members    []string        `json:"members"`
	Attributes chat.Attributes `json:"attributes"`
	TS         int64           `json:"ts"`
}

// roomItemDTO is a room in a list (R2, U14 detail).
type roomItemDTO struct {
	ID         string          `json:"id"`
	Members    []string        `json:"members"`
	Attributes chat.Attributes `json:"attributes"`
	TS         int64           `json:"ts"`
}

func toRoomItems(rooms []*chat.Room) []roomItemDTO {
	out := make([]roomItemDTO, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, roomItemDTO{ID: r.ID, Members: r.Members, Attributes: r.Attributes, TS: r.TS})
	}
	return out
}

// createRoom is R1: {"members"?, "name"?, "attributes"?} → 201 with the id
// as a JSON string.
func (s *Server) createRoom(c *fiber.Ctx) error {
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	attrs, err := attributesField(m)
	if err != nil {
		return err
	}
	rid, err := s.svc.CreateRoom(reqCtx(c), chat.NewRoom{
		Members:    members(m["members"]),
		Attributes: nameIntoAttributes(m, attrs),
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(rid)
}

func (s *Server) searchRooms(c *fiber.Ctx) error {
	q, err := chat.ParseSearch(queryPairs(c))
	if err != nil {
		return err
	}
	rooms, err := s.svc.SearchRooms(reqCtx(c), q)
	if err != nil {
		return err
	}
	return c.JSON(toRoomItems(rooms))
}

func (s *Server) getRoom(c *fiber.Ctx) error {
	rid, err := pathParam(c, "rid")
	if err != nil {
		return err
	}
	r, err := s.svc.Room(reqCtx(c), rid)
	if err != nil {
		return err
	}
	return c.JSON(roomDTO{Members: r.Members, Attributes: r.Attributes, TS: r.TS})
}

// updateRoom is R4: "members" replaces the list, "name" sets
// attributes.name.
func (s *Server) updateRoom(c *fiber.Ctx) error {
	rid, err := pathParam(c, "rid")
	if err != nil {
		return err
	}
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	var u chat.RoomUpdate
	if raw, ok := m["members"]; ok && !emptyJSON(raw) {
		u.Members = members(raw)
	}
	if raw, ok := m["name"]; ok && !emptyJSON(raw) {
		u.Name = raw
	}
	if err := s.svc.UpdateRoom(reqCtx(c), rid, u); err != nil {
		return err
	}
	return created(c)
}

func (s *Server) deleteRoom(c *fiber.Ctx) error {
	rid, err := pathParam(c, "rid")
	if err != nil {
		return err
	}
	if err := s.svc.DeleteRoom(reqCtx(c), rid); err != nil {
		return err
	}
	return noContent(c)
}

// roomMembers serves R11–R14 like groupMembers.
func (s *Server) roomMembers(add, single bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		rid, ids, err := s.memberArgs(c, "rid", single)
		if err != nil {
			return err
		}
		if add {
			if err := s.svc.AddRoomMembers(reqCtx(c), rid, ids); err != nil {
				return err
			}
			return created(c)
		}
		if err := s.svc.RemoveRoomMembers(reqCtx(c), rid, ids); err != nil {
			return err
		}
		return noContent(c)
	}
}
