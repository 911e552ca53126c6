package rest

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// routeConversations registers the sync extension: the conversation list,
// read cursors and group read lists (docs/realtime.md, "Conversations and
// read state").
func (s *Server) routeConversations(r fiber.Router) {
	r.Get("/ctx/:uid/conversations", s.listConversations)
	r.Post("/ctx/:uid/conversations/:kind/:id/read", s.markRead)
	r.Get("/groups/:gid/chats/:seq/reads", s.groupReads)
}

// conversationDTO is one entry of the conversation list.
type conversationDTO struct {
	Kind   string            `json:"kind"`
	ID     string            `json:"id"`
	Seq    uint64            `json:"seq"`
	Read   uint64            `json:"read"`
	Unread uint64            `json:"unread"`
	TS     int64             `json:"ts"`
	Last   *historyRecordDTO `json:"last"`
}

func (s *Server) listConversations(c *fiber.Ctx) error {
	uid, err := pathParam(c, "uid")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	before, err := queryInt(c, "before")
	if err != nil {
		return err
	}
	list, err := s.svc.Conversations(reqCtx(c), uid, int64(before), limit)
	if err != nil {
		return err
	}
	out := make([]conversationDTO, 0, len(list))
	for _, cv := range list {
		d := conversationDTO{Kind: cv.Kind, ID: cv.ID, Seq: cv.Seq, Read: cv.Read, Unread: cv.Unread, TS: cv.TS}
		if cv.Last != nil {
			d.Last = &toRecords([]chat.Record{*cv.Last})[0]
		}
		out = append(out, d)
	}
	return c.JSON(out)
}

func (s *Server) markRead(c *fiber.Ctx) error {
	ids, err := pathParams(c, "uid", "kind", "id")
	if err != nil {
		return err
	}
	b, err := s.body(c)
	if err != nil {
		return err
	}
	seq, err := chat.ParseRead(b)
	if err != nil {
		return err
	}
	if _, err := s.svc.MarkRead(reqCtx(c), chat.User(ids[0]), ids[1], ids[2], seq); err != nil {
		return err
	}
	return noContent(c)
}

func (s *Server) groupReads(c *fiber.Ctx) error {
	gid, err := pathParam(c, "gid")
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(c.Params("seq"), 10, 64)
	if err != nil {
		return chat.Errorf(chat.CodeInvalid, "seq must be a sequence number")
	}
	reads, err := s.svc.GroupReadsOf(reqCtx(c), gid, seq)
	if err != nil {
		return err
	}
	return c.JSON(reads)
}
