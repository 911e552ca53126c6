package chat

import "context"

// Catch-up pages: the records after a seq the client already has, oldest
// first, at most limit (NormalizeLimit). Each checks its arguments as the
// matching history call does (FriendHistory, ...).

// FriendHistoryAfter returns the friend chat records of uid and fid with
// Seq > after.
func (s *Service) FriendHistoryAfter(ctx context.Context, uid, fid string, after uint64, limit int) ([]Record, error) {
	return s.readAfter(ctx, ConvFriend, uid, fid, after, limit)
}

// StrangerHistoryAfter returns the stranger chat records of uid and sid
// with Seq > after.
func (s *Service) StrangerHistoryAfter(ctx context.Context, uid, sid string, after uint64, limit int) ([]Record, error) {
	return s.readAfter(ctx, ConvStranger, uid, sid, after, limit)
}

// GroupHistoryAfter returns the records of group gid with Seq > after.
func (s *Service) GroupHistoryAfter(ctx context.Context, gid string, after uint64, limit int) ([]Record, error) {
	return s.readAfter(ctx, ConvGroup, gid, "", after, limit)
}

// PassengerHistoryAfter returns the records of passenger pid with user uid
// with Seq > after.
func (s *Service) PassengerHistoryAfter(ctx context.Context, pid, uid string, after uint64, limit int) ([]Record, error) {
	return s.readAfter(ctx, ConvPassenger, pid, uid, after, limit)
}

func (s *Service) readAfter(ctx context.Context, kind, a, b string, after uint64, limit int) ([]Record, error) {
	conv, err := s.historyConv(ctx, kind, a, b)
	if err != nil {
		return nil, err
	}
	recs, err := s.store.RecordsAfter(ctx, conv, after, s.notBefore(conv, s.nowMillis()), NormalizeLimit(limit))
	if err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []Record{}
	}
	return recs, nil
}
