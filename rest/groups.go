package rest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routeGroups registers G1–G16 (maxim-spec.md §3.3).
func (s *Server) routeGroups(r fiber.Router) {
	r.Post("/groups", s.createGroup)
	r.Get("/groups", s.searchGroups)
	r.Get("/groups/:gid", s.getGroup)
	r.Post("/groups/:gid", s.getGroup) // G3b: SDK-JS4 load() posts a null body
	r.Put("/groups/:gid", s.adminOnly(s.updateGroup))
	r.Delete("/groups/:gid", s.adminOnly(s.deleteGroup))
	s.routeAttributes(r, "/groups/:gid", "gid", chat.AttrGroup)
	r.Post("/groups/:gid/members", s.groupMembers(true, false))
	r.Delete("/groups/:gid/members", s.groupMembers(false, false))
	r.Post("/groups/:gid/members/:uid", s.groupMembers(true, true))
	r.Delete("/groups/:gid/members/:uid", s.groupMembers(false, true))
	r.Get("/groups/:gid/chats", s.groupChats)
	r.Delete("/groups/:gid/chats", s.adminOnly(s.clearGroupChats))
}

// groupDTO is G3: no id field, as in the spec example.
type groupDTO struct {
	Owner      string          `json:"owner"`
	Members    []string        `json:"members"`
	Attributes chat.Attributes `json:"attributes"`
	TS         int64           `json:"ts"`
}

// groupItemDTO is a group in a list: G2 search hits and U13 details (with
// recent, omitted when there is none).
type groupItemDTO struct {
	ID         string          `json:"id"`
	Owner      string          `json:"owner"`
	Members    []string        `json:"members"`
	Attributes chat.Attributes `json:"attributes"`
	TS         int64           `json:"ts"`
	Recent     *recordDTO      `json:"recent,omitempty"`
}

func toGroupItem(g *chat.Group, recent *chat.Record) groupItemDTO {
	return groupItemDTO{ID: g.ID, Owner: g.Owner, Members: g.Members, Attributes: g.Attributes, TS: g.TS, Recent: toRecord(recent)}
}

// createGroup is G1: {"owner", "members"?, "name"?, "attributes"?} → 201
// with the id as a JSON string.
func (s *Server) createGroup(c *fiber.Ctx) error {
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	owner, err := stringField(m, "owner")
	if err != nil {
		return err
	}
	attrs, err := attributesField(m)
	if err != nil {
		return err
	}
	gid, err := s.svc.CreateGroup(reqCtx(c), chat.NewGroup{
		Owner:      owner,
		Members:    members(m["members"]),
		Attributes: nameIntoAttributes(m, attrs),
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(gid)
}

func (s *Server) searchGroups(c *fiber.Ctx) error {
	q, err := chat.ParseSearch(queryPairs(c))
	if err != nil {
		return err
	}
	groups, err := s.svc.SearchGroups(reqCtx(c), q)
	if err != nil {
		return err
	}
	out := make([]groupItemDTO, 0, len(groups))
	for _, g := range groups {
		out = append(out, toGroupItem(g, nil))
	}
	return c.JSON(out)
}

func (s *Server) getGroup(c *fiber.Ctx) error {
	gid, err := pathParam(c, "gid")
	if err != nil {
		return err
	}
	g, err := s.svc.Group(reqCtx(c), gid)
	if err != nil {
		return err
	}
	return c.JSON(groupDTO{Owner: g.Owner, Members: g.Members, Attributes: g.Attributes, TS: g.TS})
}

// updateGroup is G4: only owner and members are processed; name and other
// fields are ignored (maxim-spec.md §11 A4).
func (s *Server) updateGroup(c *fiber.Ctx) error {
	gid, err := pathParam(c, "gid")
	if err != nil {
		return err
	}
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	var u chat.GroupUpdate
	if raw, ok := m["owner"]; ok && !emptyJSON(raw) {
		if u.Owner, err = stringField(m, "owner"); err != nil {
			return err
		}
		if u.Owner == "" {
			return chat.Errorf(chat.CodeInvalid, "owner must not be empty")
		}
	}
	if raw, ok := m["members"]; ok && !emptyJSON(raw) {
		u.Members = members(raw)
	}
	if err := s.svc.UpdateGroup(reqCtx(c), gid, u); err != nil {
		return err
	}
	return created(c)
}

func (s *Server) deleteGroup(c *fiber.Ctx) error {
	gid, err := pathParam(c, "gid")
	if err != nil {
		return err
	}
	if err := s.svc.DeleteGroup(reqCtx(c), gid); err != nil {
		return err
	}
	return noContent(c)
}

// groupMembers serves G11–G14: add or remove, with the ids in the body
// ({"members":[...]}) or the one id in the path.
func (s *Server) groupMembers(add, single bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		gid, ids, err := s.memberArgs(c, "gid", single)
		if err != nil {
			return err
		}
		if add {
			if err := s.svc.AddGroupMembers(reqCtx(c), gid, ids); err != nil {
				return err
			}
			return created(c)
		}
		if err := s.svc.RemoveGroupMembers(reqCtx(c), gid, ids); err != nil {
			return err
		}
		return noContent(c)
	}
}

// memberArgs reads the object id and the member ids of a member change.
func (s *Server) memberArgs(c *fiber.Ctx, param string, single bool) (string, []string, error) {
	if single {
		ids, err := pathParams(c, param, "uid")
		if err != nil {
			return "", nil, err
		}
		return ids[0], ids[1:], nil
	}
	id, err := pathParam(c, param)
	if err != nil {
		return "", nil, err
	}
	ids, err := s.readMembers(c)
	return id, ids, err
}

func (s *Server) groupChats(c *fiber.Ctx) error {
	gid, err := pathParam(c, "gid")
	if err != nil {
		return err
	}
	return history(c, func(ts int64, limit int) ([]chat.Record, error) {
		return s.svc.GroupHistory(reqCtx(c), gid, ts, limit)
	}, func(after uint64, limit int) ([]chat.Record, error) {
		return s.svc.GroupHistoryAfter(reqCtx(c), gid, after, limit)
	})
}

func (s *Server) clearGroupChats(c *fiber.Ctx) error {
	gid, err := pathParam(c, "gid")
	if err != nil {
		return err
	}
	if err := s.svc.ClearGroupHistory(reqCtx(c), gid); err != nil {
		return err
	}
	return noContent(c)
}
