package chat

import "context"

// Catch-up pages: the records after a seq the client already has, oldest
// first, at most limit (NormalizeLimit). Each checks its arguments as the
// matching history call does (FriendHistory, ...).

// FriendHistoryAfter returns the friend chat records of uid and fid with
// Seq > after.
func (s *Service) FriendHistoryAfter(ctx context.Context, uid, fid string, after uint64, limit int) ([]Record, error) {
	if err := checkPair(uid, fid); err != nil {
		return nil, err
	}
	return s.readAfter(ctx, FriendConv(uid, fid), after, limit)
}

// StrangerHistoryAfter returns the stranger chat records of uid and sid
// with Seq > after.
func (s *Service) StrangerHistoryAfter(ctx context.Context, uid, sid string, after uint64, limit int) ([]Record, error) {
	if err := checkPair(uid, sid); err != nil {
		return nil, err
	}
	return s.readAfter(ctx, StrangerConv(uid, sid), after, limit)
}

// GroupHistoryAfter returns the records of group gid with Seq > after.
func (s *Service) GroupHistoryAfter(ctx context.Context, gid string, after uint64, limit int) ([]Record, error) {
	if _, err := s.MemberList(ctx, GroupList, gid); err != nil {
		return nil, err
	}
	return s.readAfter(ctx, GroupConv(gid), after, limit)
}

// PassengerHistoryAfter returns the records of passenger pid with user uid
// with Seq > after.
func (s *Service) PassengerHistoryAfter(ctx context.Context, pid, uid string, after uint64, limit int) ([]Record, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	if _, err := s.Passenger(ctx, pid); err != nil {
		return nil, err
	}
	return s.readAfter(ctx, PassengerConv(pid, uid), after, limit)
}

func (s *Service) readAfter(ctx context.Context, conv Conv, after uint64, limit int) ([]Record, error) {
	recs, err := s.store.RecordsAfter(ctx, conv, after, s.notBefore(conv, s.nowMillis()), NormalizeLimit(limit))
	if err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []Record{}
	}
	return recs, nil
}
