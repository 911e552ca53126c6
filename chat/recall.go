package chat

import (
	"context"
	"time"
)

// DefaultRecallWindow is how long a speaker may recall its message.
const DefaultRecallWindow = 2 * time.Minute

// EventRecall is the inbox event of a recalled message.
const EventRecall = "recall"

// RecallEvent is the payload of the recall event: the conversation as the
// receiver names it, the message's seq, who recalled it and when.
type RecallEvent struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	By   string `json:"by"`
	TS   int64  `json:"ts"`
}

// Recall takes back message seq of the conversation ref as from names it.
// Allowed: the speaker within Options.RecallWindow of the message's ts,
// the owner of a group for any of its messages, and master (the master
// key, REST only) for any message; anyone else gets CodeUnauthorized. An
// unknown (or expired) seq is CodeNotFound. Without master, from must be
// allowed to say to ref now, as for say.
//
// The record keeps its id, seq, speaker and ts and loses its content (and
// earlier versions). Every session of every party, from's included, gets
// the recall event; nothing is pushed. Recalling a recalled message again
// succeeds and sends nothing. ts is the time of the recall.
func (s *Service) Recall(ctx context.Context, from Identity, master bool, ref ConvRef, seq uint64) (ts int64, err error) {
	cp, unlock, err := s.resolveConv(ctx, from, ref, !master)
	if err != nil {
		return 0, err
	}
	defer unlock()
	now := s.nowMillis()
	var again bool
	err = s.store.UpdateRecord(ctx, cp.conv, seq, func(rec *Record) (*Edit, error) {
		again = rec.Recalled
		if !master && !(from.Kind == KindUser && from.ID == cp.owner) {
			if rec.Speaker != from.ID {
				return nil, Errorf(CodeUnauthorized, "only the speaker, the group owner or the master key may recall message %d", seq)
			}
			if w := s.opts.RecallWindow; w >= 0 && now-rec.TS > w.Milliseconds() {
				return nil, Errorf(CodeUnauthorized, "message %d is older than the recall window (%s)", seq, w)
			}
		}
		rec.Recalled, rec.Content, rec.Remark = true, Content{}, ""
		return nil, nil
	})
	if err != nil {
		return 0, err
	}
	if !again {
		s.tellParties(&cp, EventRecall, func(r ConvRef) any {
			return RecallEvent{Kind: r.Kind, ID: r.ID, Seq: seq, By: from.ID, TS: now}
		})
	}
	return now, nil
}

// RecallMessage is Recall for a publish to recall/{kind}/{id} (payload
// {"seq":N,"ack"?:n}): the session gets the ack event on success when the
// payload had an ack number, and the error event on failure.
func (s *Service) RecallMessage(ctx context.Context, from Identity, session string, ref ConvRef, payload []byte) error {
	r, err := parseSeqRequest(payload, false, s.opts.MaxBodyLen)
	var ts int64
	if err == nil {
		ts, err = s.Recall(ctx, from, false, ref, r.Seq)
	}
	s.answerVerb(from, session, r.Ack, ts, err)
	return err
}
