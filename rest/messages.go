package rest

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routeMessages registers the message verbs beyond MaxIM: recall, and the
// earlier versions of an edited message on each history endpoint family.
func (s *Server) routeMessages(r fiber.Router) {
	r.Delete("/ctx/:uid/conversations/:kind/:id/messages/:seq", s.recallMessage)
	r.Get("/ctx/:uid/friends/:fid/chats/:seq/edits", s.friendEdits)
	r.Get("/ctx/:uid/strangers/:sid/chats/:seq/edits", s.strangerEdits)
	r.Get("/groups/:gid/chats/:seq/edits", s.groupEdits)
	r.Get("/passengers/:pid/chats/:uid/:seq/edits", s.passengerEdits)
}

// recallMessage recalls message seq of uid's conversation kind/id → 204.
// uid acts: the speaker within the recall window, or the group's owner;
// the master key may recall any message. Refusals are 403/5003.
func (s *Server) recallMessage(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "kind", "id")
	if err != nil {
		return err
	}
	seq, err := pathSeq(c)
	if err != nil {
		return err
	}
	if err := chat.CheckID("user", ids[0]); err != nil {
		return err
	}
	master := callerOf(c).master()
	ref := chat.ConvRef{Kind: ids[1], ID: ids[2]}
	if _, err := s.svc.Recall(reqCtx(c), chat.User(ids[0]), master, ref, seq); err != nil {
		return forbidden(err)
	}
	return noContent(c)
}

func (s *Server) friendEdits(c *fiber.Ctx) error {
	return s.edits(c, func(p []string, seq uint64) ([]chat.Edit, error) {
		return s.svc.FriendEdits(reqCtx(c), p[0], p[1], seq)
	}, "uid", "fid")
}

func (s *Server) strangerEdits(c *fiber.Ctx) error {
	return s.edits(c, func(p []string, seq uint64) ([]chat.Edit, error) {
		return s.svc.StrangerEdits(reqCtx(c), p[0], p[1], seq)
	}, "uid", "sid")
}

func (s *Server) groupEdits(c *fiber.Ctx) error {
	return s.edits(c, func(p []string, seq uint64) ([]chat.Edit, error) {
		return s.svc.GroupEdits(reqCtx(c), p[0], seq)
	}, "gid")
}

func (s *Server) passengerEdits(c *fiber.Ctx) error {
	return s.edits(c, func(p []string, seq uint64) ([]chat.Edit, error) {
		return s.svc.PassengerEdits(reqCtx(c), p[0], p[1], seq)
	}, "pid", "uid")
}

// edits answers the earlier versions of a message, oldest first:
// [{"content":{..},"ts":<when it was replaced>}].
func (s *Server) edits(c *fiber.Ctx, get func(params []string, seq uint64) ([]chat.Edit, error), names ...string) error {
	p, err := pathParams(c, names...)
	if err != nil {
		return err
	}
	seq, err := pathSeq(c)
	if err != nil {
		return err
	}
	out, err := get(p, seq)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// pathSeq reads the :seq parameter, a positive integer.
func pathSeq(c *fiber.Ctx) (uint64, error) {
	n, err := strconv.ParseUint(c.Params("seq"), 10, 64)
	if err != nil || n == 0 {
		return 0, chat.Errorf(chat.CodeInvalid, "seq must be a positive integer")
	}
	return n, nil
}

// forbidden answers a refusal of a change (5003) with 403 rather than the
// 401 of a failed authentication: the caller is known, the change is not
// theirs to make.
func forbidden(err error) error {
	var ce *chat.Error
	if errors.As(err, &ce) && ce.Code == chat.CodeUnauthorized {
		return &statusError{status: fiber.StatusForbidden, err: ce}
	}
	return err
}
