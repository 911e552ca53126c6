package chat

import "context"

// FriendInfo is a friendship with the presence of the friend (U9).
type FriendInfo struct {
	Friendship
	Online bool
}

// FriendItem is one entry of a detailed friend list (U12). Recent is the
// latest record of the two within retention, nil when there is none.
type FriendItem struct {
	ID     string
	Online bool
	Recent *Record
}

// AddFriend makes uid and fid friends (U8) and returns the friendship. It is
// idempotent and order-insensitive: an existing friendship is returned as
// stored, keeping its original initiator. Unknown users are created
// (docs/maxim.md §1.2). Returns CodeInvalid for bad ids or uid == fid.
func (s *Service) AddFriend(ctx context.Context, uid, fid string) (*Friendship, error) {
	fs, err := s.AddFriends(ctx, uid, []string{fid})
	if err != nil {
		return nil, err
	}
	return fs[0], nil
}

// AddFriends makes uid friends with each of fids, in one transaction (U19).
// The result holds one friendship per id, in input order. Every id is
// validated before anything is written.
func (s *Service) AddFriends(ctx context.Context, uid string, fids []string) ([]*Friendship, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	for _, fid := range fids {
		if err := checkPair(uid, fid); err != nil {
			return nil, err
		}
	}
	now := s.nowMillis()
	var out []*Friendship
	err := s.store.Update(ctx, func(tx Tx) error {
		out = make([]*Friendship, 0, len(fids))
		if err := createUserIfMissing(tx, uid, now); err != nil {
			return err
		}
		for _, fid := range fids {
			if err := createUserIfMissing(tx, fid, now); err != nil {
				return err
			}
			f, err := tx.Friendship(uid, fid)
			if IsNotFound(err) {
				f = &Friendship{ID: NewFriendshipID(), From: uid, To: fid, NS: s.opts.AppID, TS: now}
				err = tx.PutFriendship(f)
			}
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Friendship returns the friendship of uid and fid with the presence of fid
// (U9). Returns CodeNotFound when they are not friends.
func (s *Service) Friendship(ctx context.Context, uid, fid string) (*FriendInfo, error) {
	if err := checkPair(uid, fid); err != nil {
		return nil, err
	}
	var f *Friendship
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		f, err = tx.Friendship(uid, fid)
		return err
	})
	if IsNotFound(err) {
		return nil, Errorf(CodeNotFound, "%s and %s are not friends", uid, fid)
	}
	if err != nil {
		return nil, err
	}
	return &FriendInfo{Friendship: *f, Online: s.Presence.Online(User(fid))}, nil
}

// Unfriend removes the friendship of uid and fid (U10). It is idempotent:
// unknown users or no friendship are no error. It holds the conversation's
// write lock, so once it returns no friend message that was being checked
// concurrently can still be delivered. History is kept until it expires.
func (s *Service) Unfriend(ctx context.Context, uid, fid string) error {
	if err := checkPair(uid, fid); err != nil {
		return err
	}
	return s.updateLocked(ctx, string(FriendConv(uid, fid)), func(tx Tx) error { return tx.DeleteFriendship(uid, fid) })
}

// FriendIDs returns the ids of uid's friends, oldest friendship first (U12).
// An unknown user has none.
func (s *Service) FriendIDs(ctx context.Context, uid string) ([]string, error) {
	fs, err := s.listFriendships(ctx, uid)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Other(uid))
	}
	return out, nil
}

// FriendDetails returns uid's friends with presence and latest record
// (U12 ?detail), oldest friendship first.
func (s *Service) FriendDetails(ctx context.Context, uid string) ([]FriendItem, error) {
	fs, err := s.listFriendships(ctx, uid)
	if err != nil {
		return nil, err
	}
	now := s.nowMillis()
	out := make([]FriendItem, 0, len(fs))
	for _, f := range fs {
		other := f.Other(uid)
		rec, err := s.latestRecord(ctx, FriendConv(uid, other), now)
		if err != nil {
			return nil, err
		}
		out = append(out, FriendItem{ID: other, Online: s.Presence.Online(User(other)), Recent: rec})
	}
	return out, nil
}

func (s *Service) listFriendships(ctx context.Context, uid string) ([]*Friendship, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	var fs []*Friendship
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		fs, err = tx.Friendships(uid)
		return err
	})
	return fs, err
}
