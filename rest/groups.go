package rest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// listAPI is what differs between the group endpoints (G1–G16,
// docs/maxim.md §3.3) and the room endpoints (R1–R14, §3.4); one set of
// handlers serves both.
type listAPI struct {
	kind  chat.ListKind
	path  string // "/groups"
	param string // the id's route parameter: "gid"
	attrs chat.AttrKind
}

var (
	groupAPI = listAPI{kind: chat.GroupList, path: "/groups", param: "gid", attrs: chat.AttrGroup}
	roomAPI  = listAPI{kind: chat.RoomList, path: "/rooms", param: "rid", attrs: chat.AttrRoom}
)

// routeGroups registers G1–G16 (docs/maxim.md §3.3).
func (s *Server) routeGroups(r fiber.Router) {
	s.routeLists(r, groupAPI)
	r.Get("/groups/:gid/chats", s.groupChats)
	r.Delete("/groups/:gid/chats", s.clearGroupChats)
}

// routeRooms registers R1–R14 (docs/maxim.md §3.4). Rooms keep no history,
// so there is no /chats.
func (s *Server) routeRooms(r fiber.Router) { s.routeLists(r, roomAPI) }

func (s *Server) routeLists(r fiber.Router, api listAPI) {
	one := api.path + "/:" + api.param
	update := s.updateList(api)
	r.Post(api.path, s.createList(api))
	r.Get(api.path, s.searchLists(api))
	r.Get(one, s.getList(api))
	r.Post(one, s.getList(api)) // G3b, R3b: SDK-JS4 load() posts a null body
	r.Put(one, update)
	r.Delete(one, s.deleteList(api))
	s.routeAttributes(r, one, api.param, api.attrs)
	r.Post(one+"/members", s.listMembers(api, true, false))
	r.Delete(one+"/members", s.listMembers(api, false, false))
	r.Post(one+"/members/:uid", s.listMembers(api, true, true))
	r.Delete(one+"/members/:uid", s.listMembers(api, false, true))
}

// listDTO is a group or room: G3 and R3 have no id field, as in the spec
// examples; G2/R2 search hits and U13/U14 details have one. Only groups
// have an owner (shown even when empty) and a recent record (omitted when
// there is none).
type listDTO struct {
	ID         string          `json:"id,omitempty"`
	Owner      *string         `json:"owner,omitempty"`
	Members    []string        `json:"members"`
	Attributes chat.Attributes `json:"attributes"`
	TS         int64           `json:"ts"`
	Recent     *recordDTO      `json:"recent,omitempty"`
}

// toList returns the DTO of l; withID adds the id (list items).
func toList(l *chat.MemberList, withID bool, recent *chat.Record) listDTO {
	d := listDTO{Members: l.Members, Attributes: l.Attributes, TS: l.TS, Recent: toRecord(recent)}
	if withID {
		d.ID = l.ID
	}
	if l.Kind.Owned() {
		d.Owner = &l.Owner
	}
	return d
}

// createList is G1 {"owner", "members"?, "name"?, "attributes"?} and R1
// {"members"?, "name"?, "attributes"?} → 201 with the id as a JSON string.
func (s *Server) createList(api listAPI) fiber.Handler {
	return func(c *fiber.Ctx) error {
		m, err := s.readObject(c)
		if err != nil {
			return err
		}
		var owner string
		if api.kind.Owned() {
			if owner, err = stringField(m, "owner"); err != nil {
				return err
			}
		}
		attrs, err := attributesField(m)
		if err != nil {
			return err
		}
		id, err := s.svc.CreateMemberList(reqCtx(c), api.kind, chat.NewMemberList{
			Owner:      owner,
			Members:    members(m["members"]),
			Attributes: nameIntoAttributes(m, attrs),
		})
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusCreated).JSON(id)
	}
}

func (s *Server) searchLists(api listAPI) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q, err := chat.ParseSearch(queryPairs(c))
		if err != nil {
			return err
		}
		lists, err := s.svc.SearchMemberLists(reqCtx(c), api.kind, q)
		if err != nil {
			return err
		}
		out := make([]listDTO, 0, len(lists))
		for _, l := range lists {
			out = append(out, toList(l, true, nil))
		}
		return c.JSON(out)
	}
}

func (s *Server) getList(api listAPI) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathParam(c, api.param)
		if err != nil {
			return err
		}
		l, err := s.svc.MemberList(reqCtx(c), api.kind, id)
		if err != nil {
			return err
		}
		return c.JSON(toList(l, false, nil))
	}
}

// updateList is G4 and R4: "owner" (groups) changes the owner, "members"
// replaces the list, and "name" sets attributes.name, as G1 and R1 store it
// (docs/maxim.md §11 A4); other fields are ignored.
func (s *Server) updateList(api listAPI) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathParam(c, api.param)
		if err != nil {
			return err
		}
		m, err := s.readObject(c)
		if err != nil {
			return err
		}
		var u chat.MemberListUpdate
		if raw, ok := m["owner"]; ok && !emptyJSON(raw) && api.kind.Owned() {
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
		if raw, ok := m["name"]; ok && !emptyJSON(raw) {
			u.Name = raw
		}
		if err := s.svc.UpdateMemberList(reqCtx(c), api.kind, id, u); err != nil {
			return err
		}
		return created(c)
	}
}

func (s *Server) deleteList(api listAPI) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathParam(c, api.param)
		if err != nil {
			return err
		}
		if err := s.svc.DeleteMemberList(reqCtx(c), api.kind, id); err != nil {
			return err
		}
		return noContent(c)
	}
}

// listMembers serves G11–G14 and R11–R14: add or remove, with the ids in
// the body ({"members":[...]}) or the one id in the path.
func (s *Server) listMembers(api listAPI, add, single bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, ids, err := s.memberArgs(c, api.param, single)
		if err != nil {
			return err
		}
		if add {
			if err := s.svc.AddMembers(reqCtx(c), api.kind, id, ids); err != nil {
				return err
			}
			return created(c)
		}
		if err := s.svc.RemoveMembers(reqCtx(c), api.kind, id, ids); err != nil {
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

// userLists is U13 (/ctx/:uid/groups) and U14 (/ctx/:uid/rooms): the ids,
// or with ?detail the lists (groups with their recent record).
func (s *Server) userLists(kind chat.ListKind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		uid, err := pathParam(c, "uid")
		if err != nil {
			return err
		}
		if !queryFlag(c, "detail") {
			ids, err := s.svc.MemberListIDsOf(reqCtx(c), kind, uid)
			if err != nil {
				return err
			}
			return c.JSON(ids)
		}
		items, err := s.svc.MemberListDetailsOf(reqCtx(c), kind, uid)
		if err != nil {
			return err
		}
		out := make([]listDTO, 0, len(items))
		for i := range items {
			out = append(out, toList(&items[i].MemberList, true, items[i].Recent))
		}
		return c.JSON(out)
	}
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
