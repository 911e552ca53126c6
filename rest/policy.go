package rest

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// The access policy of the REST API (docs/maxim.md §2.6), in one table:
// every route has a rule, and authenticate consults it before any handler
// runs. A key caller (signature, X-ML-APIKey, X-ML-MasterKey) may call
// every route but the master-only ones (and, with StrictAdmin, the admin
// ones); a token caller only what its rule's token check allows.

// access is how a rule treats key callers.
type access uint8

const (
	anyKey access = iota // any app key
	strict               // the master key when StrictAdmin is on (docs/maxim.md §2.3)
	master               // always the master key
)

// tokenCheck decides whether the holder of a token for me may call the
// route; p are the path parameters. nil refuses every token.
type tokenCheck func(s *Server, c *fiber.Ctx, me chat.Identity, p map[string]string) error

// rule is the policy of one route.
type rule struct {
	method, path string
	keys         access
	token        tokenCheck
}

// policy lists every route. TestPolicy_EveryRoute checks that each route
// the server registers has its rule.
var policy = []rule{
	{"POST", "/tokens", master, nil},

	{"GET", "/ctx", anyKey, allowToken},
	{"GET", "/ctx/:uid", anyKey, selfUser("uid")},
	{"POST", "/ctx/:uid", anyKey, selfUser("uid")},
	{"DELETE", "/ctx/:uid", master, nil},
	{"POST", "/ctx/:uid/kick", master, nil},
	{"PUT", "/ctx/:uid/ban", master, nil},
	{"DELETE", "/ctx/:uid/ban", master, nil},
	{"DELETE", "/ctx/:uid/tokens", master, selfUser("uid")},
	{"POST", "/ctx/:uid/attributes", anyKey, selfUser("uid")},
	{"PUT", "/ctx/:uid/attributes", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/attributes", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/attributes/:name", anyKey, selfUser("uid")},
	{"DELETE", "/ctx/:uid/attributes", anyKey, selfUser("uid")},
	{"DELETE", "/ctx/:uid/installs", anyKey, selfUser("uid")},
	{"POST", "/ctx/:uid/installs", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/friends", anyKey, selfUser("uid")},
	{"POST", "/ctx/:uid/friends", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/friends/:fid", anyKey, selfUser("uid")},
	{"POST", "/ctx/:uid/friends/:fid", anyKey, selfUser("uid")},
	{"DELETE", "/ctx/:uid/friends/:fid", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/friends/:fid/chats", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/friends/:fid/chats/:seq/edits", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/groups", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/rooms", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/strangers", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/strangers/:sid", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/strangers/:sid/chats", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/strangers/:sid/chats/:seq/edits", anyKey, selfUser("uid")},
	{"GET", "/ctx/:uid/conversations", anyKey, selfUser("uid")},
	{"POST", "/ctx/:uid/conversations/:kind/:id/read", anyKey, selfUser("uid")},
	{"DELETE", "/ctx/:uid/conversations/:kind/:id/messages/:seq", anyKey, selfUser("uid")},

	{"POST", "/groups", anyKey, createsOwnGroup},
	{"GET", "/groups", anyKey, nil},
	{"GET", "/groups/:gid", anyKey, inList(chat.GroupList, "gid", false)},
	{"POST", "/groups/:gid", anyKey, inList(chat.GroupList, "gid", false)},
	{"PUT", "/groups/:gid", strict, inList(chat.GroupList, "gid", true)},
	{"DELETE", "/groups/:gid", strict, inList(chat.GroupList, "gid", true)},
	{"POST", "/groups/:gid/attributes", anyKey, inList(chat.GroupList, "gid", true)},
	{"PUT", "/groups/:gid/attributes", anyKey, inList(chat.GroupList, "gid", true)},
	{"GET", "/groups/:gid/attributes", anyKey, inList(chat.GroupList, "gid", false)},
	{"GET", "/groups/:gid/attributes/:name", anyKey, inList(chat.GroupList, "gid", false)},
	{"DELETE", "/groups/:gid/attributes", anyKey, inList(chat.GroupList, "gid", true)},
	{"POST", "/groups/:gid/members", anyKey, inList(chat.GroupList, "gid", true)},
	{"DELETE", "/groups/:gid/members", anyKey, leaving(chat.GroupList, "gid")},
	{"POST", "/groups/:gid/members/:uid", anyKey, inList(chat.GroupList, "gid", true)},
	{"DELETE", "/groups/:gid/members/:uid", anyKey, leaving(chat.GroupList, "gid")},
	{"GET", "/groups/:gid/chats", anyKey, inList(chat.GroupList, "gid", false)},
	{"DELETE", "/groups/:gid/chats", strict, inList(chat.GroupList, "gid", true)},
	{"GET", "/groups/:gid/chats/:seq/reads", anyKey, inList(chat.GroupList, "gid", false)},
	{"GET", "/groups/:gid/chats/:seq/edits", anyKey, inList(chat.GroupList, "gid", false)},

	{"POST", "/rooms", anyKey, nil},
	{"GET", "/rooms", anyKey, nil},
	{"GET", "/rooms/:rid", anyKey, inList(chat.RoomList, "rid", false)},
	{"POST", "/rooms/:rid", anyKey, inList(chat.RoomList, "rid", false)},
	{"PUT", "/rooms/:rid", anyKey, nil},
	{"DELETE", "/rooms/:rid", strict, nil},
	{"POST", "/rooms/:rid/attributes", anyKey, nil},
	{"PUT", "/rooms/:rid/attributes", anyKey, nil},
	{"GET", "/rooms/:rid/attributes", anyKey, inList(chat.RoomList, "rid", false)},
	{"GET", "/rooms/:rid/attributes/:name", anyKey, inList(chat.RoomList, "rid", false)},
	{"DELETE", "/rooms/:rid/attributes", anyKey, nil},
	{"POST", "/rooms/:rid/members", anyKey, nil},
	{"DELETE", "/rooms/:rid/members", anyKey, leaving(chat.RoomList, "rid")},
	{"POST", "/rooms/:rid/members/:uid", anyKey, nil},
	{"DELETE", "/rooms/:rid/members/:uid", anyKey, leaving(chat.RoomList, "rid")},

	{"POST", "/passengers", anyKey, nil},
	{"GET", "/passengers/:pid", anyKey, selfPassenger("pid")},
	{"POST", "/passengers/:pid", anyKey, selfPassenger("pid")},
	{"GET", "/passengers/:pid/chats/:uid", anyKey, passengerChat},
	{"GET", "/passengers/:pid/chats/:uid/:seq/edits", anyKey, passengerChat},

	{"POST", "/system", strict, nil},
	{"POST", "/system/:target", strict, nil},

	{"POST", "/attachment", anyKey, allowToken},

	{"GET", "/backup", master, nil},
	{"GET", "/metrics", master, nil},
	{"GET", "/stats", master, nil},
}

// errNotYours refuses a token caller outside its scope.
func errNotYours() error {
	return &statusError{status: fiber.StatusForbidden, err: chat.Errorf(chat.CodeUnauthorized, "this token does not allow this call")}
}

// authorize applies the rule of the request's route to cl.
func (s *Server) authorize(c *fiber.Ctx, cl *caller) error {
	r, p := matchRule(c.Method(), c.Path())
	if !cl.token {
		if r == nil {
			return nil // no such route: Fiber answers 404
		}
		switch {
		case r.keys == master && !cl.master(),
			r.keys == strict && s.opts.StrictAdmin && !cl.master():
			return errForbidden()
		}
		return nil
	}
	if r == nil || r.token == nil {
		return errNotYours()
	}
	return r.token(s, c, cl.subject, p)
}

// matchRule finds the rule of a request; p are its path parameters.
func matchRule(method, path string) (*rule, map[string]string) {
	if method == fiber.MethodHead {
		method = fiber.MethodGet
	}
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(path, "/")
	for i := range policy {
		r := &policy[i]
		if r.method != method {
			continue
		}
		pat := strings.Split(r.path, "/")
		if len(pat) != len(segs) {
			continue
		}
		p := map[string]string{}
		ok := true
		for j, ps := range pat {
			if name, isParam := strings.CutPrefix(ps, ":"); isParam {
				p[name] = segs[j]
			} else if ps != segs[j] {
				ok = false
				break
			}
		}
		if ok {
			return r, p
		}
	}
	return nil, nil
}

func allowToken(*Server, *fiber.Ctx, chat.Identity, map[string]string) error { return nil }

// selfUser: the route's param is the caller, a user.
func selfUser(param string) tokenCheck {
	return func(_ *Server, _ *fiber.Ctx, me chat.Identity, p map[string]string) error {
		if me.Kind == chat.KindUser && p[param] == me.ID {
			return nil
		}
		return errNotYours()
	}
}

// selfPassenger: the route's param is the caller, a passenger.
func selfPassenger(param string) tokenCheck {
	return func(_ *Server, _ *fiber.Ctx, me chat.Identity, p map[string]string) error {
		if me.Kind == chat.KindPassenger && p[param] == me.ID {
			return nil
		}
		return errNotYours()
	}
}

// passengerChat: the passenger of the conversation, or its user.
func passengerChat(_ *Server, _ *fiber.Ctx, me chat.Identity, p map[string]string) error {
	if (me.Kind == chat.KindPassenger && p["pid"] == me.ID) || (me.Kind == chat.KindUser && p["uid"] == me.ID) {
		return nil
	}
	return errNotYours()
}

// inList: the caller belongs to the group or room (owner, when
// ownerOnly). An unknown list is refused like a foreign one, so a token
// cannot probe which ids exist.
func inList(kind chat.ListKind, param string, ownerOnly bool) tokenCheck {
	return func(s *Server, c *fiber.Ctx, me chat.Identity, p map[string]string) error {
		if me.Kind != chat.KindUser {
			return errNotYours()
		}
		l, err := s.svc.MemberList(reqCtx(c), kind, p[param])
		if err != nil {
			if chat.ErrorCode(err) == chat.CodeInternal {
				return err
			}
			return errNotYours()
		}
		if l.Owner == me.ID || (!ownerOnly && slices.Contains(l.Members, me.ID)) {
			return nil
		}
		return errNotYours()
	}
}

// leaving: the owner may remove anyone; a member may remove itself (the
// :uid form, or a body naming only itself).
func leaving(kind chat.ListKind, param string) tokenCheck {
	owner := inList(kind, param, true)
	return func(s *Server, c *fiber.Ctx, me chat.Identity, p map[string]string) error {
		if owner(s, c, me, p) == nil {
			return nil
		}
		if me.Kind != chat.KindUser {
			return errNotYours()
		}
		if uid, ok := p["uid"]; ok {
			if uid == me.ID {
				return nil
			}
			return errNotYours()
		}
		ids, err := s.readMembers(c)
		if err != nil {
			return err
		}
		if len(ids) > 0 && !slices.ContainsFunc(ids, func(id string) bool { return id != me.ID }) {
			return nil
		}
		return errNotYours()
	}
}

// createsOwnGroup: POST /groups with the caller as owner.
func createsOwnGroup(s *Server, c *fiber.Ctx, me chat.Identity, _ map[string]string) error {
	if me.Kind != chat.KindUser {
		return errNotYours()
	}
	m, err := s.readObject(c)
	if err != nil {
		return err
	}
	owner, err := stringField(m, "owner")
	if err != nil {
		return err
	}
	if owner != me.ID {
		return errNotYours()
	}
	return nil
}

// errForbidden refuses a key caller on a master-key route (docs/maxim.md
// §2.3).
func errForbidden() error {
	return &statusError{status: fiber.StatusForbidden, err: chat.Errorf(chat.CodeUnauthorized, "this endpoint requires the master key")}
}

// PolicyRoutes returns "METHOD /pattern" of every rule (for tests and
// docs).
func PolicyRoutes() map[string]bool {
	out := make(map[string]bool, len(policy))
	for _, r := range policy {
		out[r.method+" "+r.path] = true
	}
	return out
}
