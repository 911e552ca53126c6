package rest

import (
	"encoding/json"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routeUsers registers U1–U19 (docs/maxim.md §3.2).
func (s *Server) routeUsers(r fiber.Router) {
	r.Get("/ctx", s.searchUsers)
	r.Get("/ctx/:uid", s.getUser)
	r.Post("/ctx/:uid", s.getUser) // U2b: SDK-JS4 load() posts a null body
	s.routeAttributes(r, "/ctx/:uid", "uid", chat.AttrUser)
	r.Delete("/ctx/:uid/installs", s.unbindInstalls)
	r.Post("/ctx/:uid/installs", s.unbindInstalls) // method unknown in SDK-IOS: accept both
	r.Get("/ctx/:uid/friends", s.listFriends)
	r.Post("/ctx/:uid/friends", s.addFriends)
	r.Get("/ctx/:uid/friends/:fid", s.getFriend)
	r.Post("/ctx/:uid/friends/:fid", s.addFriend)
	r.Delete("/ctx/:uid/friends/:fid", s.unfriend)
	r.Get("/ctx/:uid/friends/:fid/chats", s.friendChats)
	r.Get("/ctx/:uid/groups", s.userLists(chat.GroupList))
	r.Get("/ctx/:uid/rooms", s.userLists(chat.RoomList))
	r.Get("/ctx/:uid/strangers", s.listStrangers)
	r.Get("/ctx/:uid/strangers/:sid", s.getStranger)
	r.Get("/ctx/:uid/strangers/:sid/chats", s.strangerChats)
}

// userDTO is a user search hit (U1).
type userDTO struct {
	ID         string          `json:"id"`
	Online     bool            `json:"online"`
	TS         int64           `json:"ts"`
	Attributes chat.Attributes `json:"attributes"`
}

// userDetailDTO is U2: no id field, as in the spec example.
type userDetailDTO struct {
	Attributes chat.Attributes `json:"attributes"`
	Installs   []string        `json:"installs"`
	Sessions   int             `json:"sessions"`
	Friends    []string        `json:"friends"`
	Groups     []string        `json:"groups"`
	Rooms      []string        `json:"rooms"`
	TS         int64           `json:"ts"`
	Banned     *banDTO         `json:"banned,omitempty"`
}

// friendshipDTO is U8.
type friendshipDTO struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
	NS   string `json:"ns"`
	TS   int64  `json:"ts"`
}

// friendInfoDTO is U9: the friendship with the friend's presence.
type friendInfoDTO struct {
	ID     string `json:"id"`
	From   string `json:"from"`
	To     string `json:"to"`
	Online bool   `json:"online"`
	TS     int64  `json:"ts"`
}

// presenceItemDTO is a detailed friend (U12) or stranger (U15) entry.
type presenceItemDTO struct {
	ID     string     `json:"id"`
	Online bool       `json:"online"`
	Recent *recordDTO `json:"recent,omitempty"`
}

// strangerDTO is U16.
type strangerDTO struct {
	TS     int64      `json:"ts"`
	Online bool       `json:"online"`
	Recent *recordDTO `json:"recent,omitempty"`
}

func toFriendship(f *chat.Friendship) friendshipDTO {
	return friendshipDTO{ID: f.ID, From: f.From, To: f.To, NS: f.NS, TS: f.TS}
}

func (s *Server) searchUsers(c *fiber.Ctx) error {
	q, err := chat.ParseSearch(queryPairs(c))
	if err != nil {
		return err
	}
	users, err := s.svc.SearchUsers(reqCtx(c), q)
	if err != nil {
		return err
	}
	out := make([]userDTO, 0, len(users))
	for _, u := range users {
		out = append(out, userDTO{ID: u.ID, Online: u.Online, TS: u.TS, Attributes: u.Attributes})
	}
	return c.JSON(out)
}

func (s *Server) getUser(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	d, err := s.svc.User(reqCtx(c), uid)
	if err != nil {
		return err
	}
	out := userDetailDTO{
		Attributes: d.Attributes, Installs: d.Installs, Sessions: d.Sessions,
		Friends: d.Friends, Groups: d.Groups, Rooms: d.Rooms, TS: d.TS,
	}
	ban, err := s.svc.ActiveBan(reqCtx(c), chat.User(uid))
	if err != nil {
		return err
	}
	if ban != nil {
		out.Banned = &banDTO{Until: ban.Until, Reason: ban.Reason, TS: ban.TS}
	}
	return c.JSON(out)
}

// routeAttributes registers the five attribute endpoints of an object kind
// under prefix (U3–U7, G6–G10, R6–R10).
func (s *Server) routeAttributes(r fiber.Router, prefix, param string, kind chat.AttrKind) {
	r.Post(prefix+"/attributes", s.writeAttributes(kind, param, false))
	r.Put(prefix+"/attributes", s.writeAttributes(kind, param, true))
	r.Get(prefix+"/attributes", func(c *fiber.Ctx) error {
		id, err := pathParam(c, param)
		if err != nil {
			return err
		}
		attrs, err := s.svc.GetAttributes(reqCtx(c), kind, id)
		if err != nil {
			return err
		}
		return c.JSON(attrs)
	})
	r.Get(prefix+"/attributes/:name", func(c *fiber.Ctx) error {
		ids, err := pathParams(c, param, "name")
		if err != nil {
			return err
		}
		v, err := s.svc.GetAttribute(reqCtx(c), kind, ids[0], ids[1])
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(v)
	})
	r.Delete(prefix+"/attributes", func(c *fiber.Ctx) error {
		id, err := pathParam(c, param)
		if err != nil {
			return err
		}
		if err := s.svc.ClearAttributes(reqCtx(c), kind, id); err != nil {
			return err
		}
		return noContent(c)
	})
}

// writeAttributes merges (POST) or replaces (PUT) attributes. An empty or
// absent body is {} (SDK-JS4 GroupBuilder posts no body): 201, no change.
func (s *Server) writeAttributes(kind chat.AttrKind, param string, replace bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathParam(c, param)
		if err != nil {
			return err
		}
		attrs, err := s.readAttributes(c)
		if err != nil {
			return err
		}
		if replace {
			err = s.svc.ReplaceAttributes(reqCtx(c), kind, id, attrs)
		} else {
			err = s.svc.MergeAttributes(reqCtx(c), kind, id, attrs)
		}
		if err != nil {
			return err
		}
		return created(c)
	}
}

// unbindInstalls is U18: {"installs":[...]}, {"install":"id"} or
// ?install=id; none of them unbinds every install of the user.
func (s *Server) unbindInstalls(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	ids := members(m["installs"])
	one, err := stringField(m, "install")
	if err != nil {
		return err
	}
	if one != "" {
		ids = append(ids, one)
	}
	if q := string(c.Context().QueryArgs().Peek("install")); q != "" {
		ids = append(ids, q)
	}
	if err := s.svc.UnbindInstalls(reqCtx(c), uid, ids); err != nil {
		return err
	}
	return noContent(c)
}

func (s *Server) listFriends(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	if !queryFlag(c, "detail") {
		ids, err := s.svc.FriendIDs(reqCtx(c), uid)
		if err != nil {
			return err
		}
		return c.JSON(ids)
	}
	items, err := s.svc.FriendDetails(reqCtx(c), uid)
	if err != nil {
		return err
	}
	out := make([]presenceItemDTO, 0, len(items))
	for _, it := range items {
		out = append(out, presenceItemDTO{ID: it.ID, Online: it.Online, Recent: toRecord(it.Recent)})
	}
	return c.JSON(out)
}

// addFriends is U19: the body is an array of ids or {"friends":[...]}.
func (s *Server) addFriends(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	b, err := s.body(c)
	if err != nil {
		return err
	}
	var v any
	if !emptyJSON(b) {
		if err := json.Unmarshal(b, &v); err != nil {
			return chat.Errorf(chat.CodeInvalid, "body must be an array of user ids or {\"friends\":[...]}")
		}
	}
	switch t := v.(type) {
	case nil, []any:
	case map[string]any:
		v = t["friends"]
	default:
		return chat.Errorf(chat.CodeInvalid, "body must be an array of user ids or {\"friends\":[...]}")
	}
	fs, err := s.svc.AddFriends(reqCtx(c), uid, chat.NormalizeMembers(v))
	if err != nil {
		return err
	}
	out := make([]friendshipDTO, 0, len(fs))
	for _, f := range fs {
		out = append(out, toFriendship(f))
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *Server) addFriend(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "fid")
	if err != nil {
		return err
	}
	f, err := s.svc.AddFriend(reqCtx(c), ids[0], ids[1])
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toFriendship(f))
}

func (s *Server) getFriend(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "fid")
	if err != nil {
		return err
	}
	f, err := s.svc.Friendship(reqCtx(c), ids[0], ids[1])
	if err != nil {
		return err
	}
	return c.JSON(friendInfoDTO{ID: f.ID, From: f.From, To: f.To, Online: f.Online, TS: f.TS})
}

func (s *Server) unfriend(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "fid")
	if err != nil {
		return err
	}
	if err := s.svc.Unfriend(reqCtx(c), ids[0], ids[1]); err != nil {
		return err
	}
	return noContent(c)
}

func (s *Server) friendChats(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "fid")
	if err != nil {
		return err
	}
	return history(c, func(ts int64, limit int) ([]chat.Record, error) {
		return s.svc.FriendHistory(reqCtx(c), ids[0], ids[1], ts, limit)
	}, func(after uint64, limit int) ([]chat.Record, error) {
		return s.svc.FriendHistoryAfter(reqCtx(c), ids[0], ids[1], after, limit)
	})
}

// listStrangers is U15: skip and limit without underscore, ids=a,b,c and
// detail.
func (s *Server) listStrangers(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	skip, err := queryInt(c, "skip")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	q := chat.StrangerQuery{Skip: skip, Limit: limit, Detail: queryFlag(c, "detail")}
	for _, id := range strings.Split(string(c.Context().QueryArgs().Peek("ids")), ",") {
		if id = strings.TrimSpace(id); id != "" {
			q.IDs = append(q.IDs, id)
		}
	}
	items, err := s.svc.Strangers(reqCtx(c), uid, q)
	if err != nil {
		return err
	}
	if !q.Detail {
		ids := make([]string, 0, len(items))
		for _, it := range items {
			ids = append(ids, it.ID)
		}
		return c.JSON(ids)
	}
	out := make([]presenceItemDTO, 0, len(items))
	for _, it := range items {
		out = append(out, presenceItemDTO{ID: it.ID, Online: it.Online, Recent: toRecord(it.Recent)})
	}
	return c.JSON(out)
}

func (s *Server) getStranger(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "sid")
	if err != nil {
		return err
	}
	it, err := s.svc.Stranger(reqCtx(c), ids[0], ids[1])
	if err != nil {
		return err
	}
	return c.JSON(strangerDTO{TS: it.TS, Online: it.Online, Recent: toRecord(it.Recent)})
}

func (s *Server) strangerChats(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "sid")
	if err != nil {
		return err
	}
	return history(c, func(ts int64, limit int) ([]chat.Record, error) {
		return s.svc.StrangerHistory(reqCtx(c), ids[0], ids[1], ts, limit)
	}, func(after uint64, limit int) ([]chat.Record, error) {
		return s.svc.StrangerHistoryAfter(reqCtx(c), ids[0], ids[1], after, limit)
	})
}
