package chat

import (
	"context"
	"math"
)

// FriendHistory returns the friend chat records of uid and fid (U11): the
// latest limit records with TS < ts, within retention, ascending. ts 0
// means now and ts below 1e11 is seconds (NormalizeCutoff); limit is
// clamped by NormalizeLimit. Records stay readable after an unfriend until
// they expire. Returns CodeInvalid for bad ids or uid == fid.
func (s *Service) FriendHistory(ctx context.Context, uid, fid string, ts int64, limit int) ([]Record, error) {
	return s.readHistory(ctx, ConvFriend, uid, fid, ts, limit)
}

// StrangerHistory returns the stranger chat records of uid and sid (U17),
// with the paging rules of FriendHistory.
func (s *Service) StrangerHistory(ctx context.Context, uid, sid string, ts int64, limit int) ([]Record, error) {
	return s.readHistory(ctx, ConvStranger, uid, sid, ts, limit)
}

// GroupHistory returns the records of group gid (G15), with the paging
// rules of FriendHistory. Returns CodeNotFound for an unknown group.
func (s *Service) GroupHistory(ctx context.Context, gid string, ts int64, limit int) ([]Record, error) {
	return s.readHistory(ctx, ConvGroup, gid, "", ts, limit)
}

// PassengerHistory returns the records of passenger pid with user uid (P3),
// with the paging rules of FriendHistory. Returns CodeNotFound for an
// unknown passenger.
func (s *Service) PassengerHistory(ctx context.Context, pid, uid string, ts int64, limit int) ([]Record, error) {
	return s.readHistory(ctx, ConvPassenger, pid, uid, ts, limit)
}

// ClearGroupHistory deletes every stored record of group gid (G16).
// Returns CodeNotFound for an unknown group.
func (s *Service) ClearGroupHistory(ctx context.Context, gid string) error {
	if _, err := s.MemberList(ctx, GroupList, gid); err != nil {
		return err
	}
	return s.store.DeleteRecords(ctx, GroupConv(gid))
}

// historyConv checks the arguments of a history, catch-up or edits call
// and returns its conversation: the friend or stranger chat of users a and
// b, group a (CodeNotFound for an unknown group), or the chat of passenger
// a with user b (CodeNotFound for an unknown passenger).
func (s *Service) historyConv(ctx context.Context, kind, a, b string) (Conv, error) {
	switch kind {
	case ConvFriend, ConvStranger:
		if err := checkPair(a, b); err != nil {
			return "", err
		}
		if kind == ConvFriend {
			return FriendConv(a, b), nil
		}
		return StrangerConv(a, b), nil
	case ConvGroup:
		if _, err := s.MemberList(ctx, GroupList, a); err != nil {
			return "", err
		}
		return GroupConv(a), nil
	case ConvPassenger:
		if err := CheckID("user", b); err != nil {
			return "", err
		}
		if _, err := s.Passenger(ctx, a); err != nil {
			return "", err
		}
		return PassengerConv(a, b), nil
	}
	return "", Errorf(CodeInvalid, "unknown conversation kind %q", kind)
}

func (s *Service) readHistory(ctx context.Context, kind, a, b string, ts int64, limit int) ([]Record, error) {
	conv, err := s.historyConv(ctx, kind, a, b)
	if err != nil {
		return nil, err
	}
	now := s.nowMillis()
	recs, err := s.store.Records(ctx, conv, NormalizeCutoff(ts, now), s.notBefore(conv, now), NormalizeLimit(limit))
	if err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []Record{}
	}
	return recs, nil
}

// latestRecord returns the latest record of conv still within retention, or
// nil: the "recent" of detail lists (docs/maxim.md §5.2). The cutoff is
// unbounded so that a record stamped a little ahead of this clock still
// counts.
func (s *Service) latestRecord(ctx context.Context, conv Conv, now int64) (*Record, error) {
	recs, err := s.store.Records(ctx, conv, math.MaxInt64, s.notBefore(conv, now), 1)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return &recs[len(recs)-1], nil
}

// checkPair validates the two user ids of a one-to-one relation.
func checkPair(uid, other string) error {
	if err := CheckID("user", uid); err != nil {
		return err
	}
	if err := CheckID("user", other); err != nil {
		return err
	}
	if uid == other {
		return Errorf(CodeInvalid, "a user cannot pair with itself")
	}
	return nil
}
