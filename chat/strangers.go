package chat

import "context"

// StrangerQuery selects stranger associations (U15).
type StrangerQuery struct {
	Skip  int // negative is 0
	Limit int // clamped by NormalizeLimit
	// IDs, when not empty, restricts the result to these strangers.
	IDs []string
	// Detail loads presence and the latest record of each entry.
	Detail bool
}

// StrangerItem is one stranger association of a user (U15, U16). TS is the
// first contact, Last the latest message. Online and Recent are filled for
// detailed results only; Recent is nil when no record is within retention.
type StrangerItem struct {
	ID     string
	TS     int64
	Last   int64
	Online bool
	Recent *Record
}

// Strangers returns the stranger associations of uid, latest interaction
// first, paged by q (U15). An unknown user has none.
func (s *Service) Strangers(ctx context.Context, uid string, q StrangerQuery) ([]StrangerItem, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	var all []*Stranger
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		all, err = tx.Strangers(uid)
		return err
	})
	if err != nil {
		return nil, err
	}
	limit := NormalizeLimit(q.Limit)
	skip := max(q.Skip, 0)
	now := s.nowMillis()
	out := []StrangerItem{}
	for _, st := range all {
		if len(q.IDs) > 0 && !contains(q.IDs, st.Other) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(out) == limit {
			break
		}
		it := StrangerItem{ID: st.Other, TS: st.TS, Last: st.Last}
		if q.Detail {
			if err := s.fillStranger(ctx, uid, &it, now); err != nil {
				return nil, err
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// Stranger returns the association of uid with sid, with presence of sid and
// the latest record (U16). Returns CodeNotFound when there is none.
func (s *Service) Stranger(ctx context.Context, uid, sid string) (*StrangerItem, error) {
	if err := checkPair(uid, sid); err != nil {
		return nil, err
	}
	var st *Stranger
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		st, err = tx.Stranger(uid, sid)
		return err
	})
	if IsNotFound(err) {
		return nil, Errorf(CodeNotFound, "%s has no stranger association with %s", uid, sid)
	}
	if err != nil {
		return nil, err
	}
	it := &StrangerItem{ID: st.Other, TS: st.TS, Last: st.Last}
	if err := s.fillStranger(ctx, uid, it, s.nowMillis()); err != nil {
		return nil, err
	}
	return it, nil
}

func (s *Service) fillStranger(ctx context.Context, uid string, it *StrangerItem, now int64) error {
	it.Online = s.Presence.Online(User(it.ID))
	rec, err := s.latestRecord(ctx, StrangerConv(uid, it.ID), now)
	it.Recent = rec
	return err
}
