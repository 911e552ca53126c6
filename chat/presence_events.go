package chat

import (
	"context"
	"encoding/json"
)

// SessionOpened registers a live session of id (for MQTT, the client id)
// in s.Presence. When it is the identity's first session (0→1) and id is a
// user, it announces the user (docs/maxim.md §4.4): online to every online
// friend, and when notifyAll is set online_x to every other online identity
// that is not a friend, passengers included. Passengers cause no presence
// events. It reports whether this was the first session.
//
// Callers must serialise SessionOpened and SessionClosed per identity, so
// that the announcements of one identity keep the order of its transitions.
func (s *Service) SessionOpened(ctx context.Context, id Identity, session string, notifyAll bool) (first bool) {
	first = s.Presence.Open(id, session, notifyAll)
	if first && id.Kind == KindUser {
		s.announce(ctx, id.ID, EventOnline, EventOnlineX, notifyAll)
	}
	return first
}

// SessionClosed unregisters a session. On the identity's last session
// (1→0) a user is announced offline and, if its notifyAll was set,
// offline_x, to the same audience as SessionOpened. It reports whether this
// was the last session. Closing an unknown session does nothing.
func (s *Service) SessionClosed(ctx context.Context, id Identity, session string) (last bool) {
	last, notifyAll := s.Presence.Close(id, session)
	if last && id.Kind == KindUser {
		s.announce(ctx, id.ID, EventOffline, EventOfflineX, notifyAll)
	}
	return last
}

// AnnounceGone announces user uid offline (and offline_x with notifyAll),
// as SessionClosed does on a 1→0 transition, when the sessions it had on
// another node are gone with that node (cluster mode: the node stopped
// answering).
func (s *Service) AnnounceGone(ctx context.Context, uid string, notifyAll bool) {
	s.announce(ctx, uid, EventOffline, EventOfflineX, notifyAll)
}

// announce publishes a presence event of uid: event to online friends and,
// with notifyAll, eventX to every other online identity.
func (s *Service) announce(ctx context.Context, uid, event, eventX string, notifyAll bool) {
	friends := map[string]bool{}
	err := s.store.View(ctx, func(tx Tx) error {
		fs, err := tx.Friendships(uid)
		for _, f := range fs {
			friends[f.Other(uid)] = true
		}
		return err
	})
	if err != nil {
		// Without the friend list the two audiences cannot be told apart;
		// sending nothing is better than telling friends the wrong event.
		s.Log.Error("presence announcement skipped", "user", uid, "event", event, "error", err)
		return
	}
	b, _ := json.Marshal(uid)
	for f := range friends {
		if s.Presence.Online(User(f)) {
			s.Publisher.Publish(User(f), event, b, "")
		}
	}
	if !notifyAll {
		return
	}
	for _, id := range s.Presence.OnlineIdentities() {
		if id.Kind == KindUser && (id.ID == uid || friends[id.ID]) {
			continue
		}
		s.Publisher.Publish(id, eventX, b, "")
	}
}
