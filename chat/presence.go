package chat

import (
	"sort"
	"sync"
)

// Presence is the live session registry: which identities have sessions
// open, how many, and the notifyAll flag of each online user. It is memory
// only; a restart starts with everyone offline.
type Presence struct {
	mu        sync.RWMutex
	sessions  map[Identity]map[string]struct{}
	notifyAll map[string]bool // users only
	// cluster widens the registry to other nodes (SetCluster; nil: this
	// process is the whole server).
	cluster PresenceCluster
}

// PresenceCluster is the presence of the other nodes of a cluster
// (docs/scaleout.md). Presence asks it so that an identity is online while
// any node has a session, and tells it of every local change.
type PresenceCluster interface {
	// Remote is the number of sessions of id on the other live nodes.
	Remote(id Identity) int
	// RemoteIdentities returns the identities with a session on another
	// live node.
	RemoteIdentities() []Identity
	// Changed reports that session of id opened (open) or closed on this
	// node; local is id's number of sessions here after the change. It is
	// called after the change, outside the registry's lock, in the order
	// the callers serialise per identity.
	Changed(id Identity, session string, open bool, local int, notifyAll bool)
}

// SetCluster makes p count the sessions of other nodes (before serving).
func (p *Presence) SetCluster(c PresenceCluster) { p.cluster = c }

// NewPresence returns an empty registry.
func NewPresence() *Presence {
	return &Presence{
		sessions:  map[Identity]map[string]struct{}{},
		notifyAll: map[string]bool{},
	}
}

// Open registers session for id. first is true when id had no session
// before (the 0→1 transition; in a cluster, on any node). A session id
// opened twice counts once. A user's notifyAll flag takes the value of its
// latest session.
func (p *Presence) Open(id Identity, session string, notifyAll bool) (first bool) {
	p.mu.Lock()
	set := p.sessions[id]
	if set == nil {
		set = map[string]struct{}{}
		p.sessions[id] = set
	}
	first = len(set) == 0
	set[session] = struct{}{}
	if id.Kind == KindUser {
		p.notifyAll[id.ID] = notifyAll
	}
	n := len(set)
	p.mu.Unlock()
	if p.cluster != nil {
		first = first && p.cluster.Remote(id) == 0
		p.cluster.Changed(id, session, true, n, notifyAll)
	}
	return first
}

// Close unregisters session. last is true when it was the identity's last
// session (the 1→0 transition; in a cluster, on every node); notifyAll is
// the flag the user had, which is then forgotten. Closing an unknown
// session returns false.
func (p *Presence) Close(id Identity, session string) (last, notifyAll bool) {
	p.mu.Lock()
	set := p.sessions[id]
	if _, ok := set[session]; !ok {
		p.mu.Unlock()
		return false, false
	}
	delete(set, session)
	n := len(set)
	if n == 0 {
		delete(p.sessions, id)
		if id.Kind == KindUser {
			notifyAll = p.notifyAll[id.ID]
			delete(p.notifyAll, id.ID)
		}
	}
	p.mu.Unlock()
	if p.cluster != nil {
		p.cluster.Changed(id, session, false, n, notifyAll)
		if n == 0 && p.cluster.Remote(id) > 0 {
			return false, false
		}
	}
	if n > 0 {
		return false, false
	}
	return true, notifyAll
}

// Count returns the number of open sessions of id (on every node of a
// cluster).
func (p *Presence) Count(id Identity) int {
	p.mu.RLock()
	n := len(p.sessions[id])
	p.mu.RUnlock()
	if p.cluster != nil {
		n += p.cluster.Remote(id)
	}
	return n
}

// Online reports whether id has at least one session.
func (p *Presence) Online(id Identity) bool { return p.Count(id) > 0 }

// NotifyAll returns the notifyAll flag of user uid's local sessions (false
// when it has none).
func (p *Presence) NotifyAll(uid string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.notifyAll[uid]
}

// HasSession reports whether session is open for id.
func (p *Presence) HasSession(id Identity, session string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.sessions[id][session]
	return ok
}

// Sessions returns the session ids of id, sorted.
func (p *Presence) Sessions(id Identity) []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]string, 0, len(p.sessions[id]))
	for s := range p.sessions[id] {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// OnlineCount returns the number of identities with at least one session.
func (p *Presence) OnlineCount() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.sessions)
}

// OnlineIdentities returns every identity with at least one session (on
// any node of a cluster).
func (p *Presence) OnlineIdentities() []Identity {
	p.mu.RLock()
	out := make([]Identity, 0, len(p.sessions))
	for id := range p.sessions {
		out = append(out, id)
	}
	p.mu.RUnlock()
	if p.cluster != nil {
		seen := make(map[Identity]bool, len(out))
		for _, id := range out {
			seen[id] = true
		}
		for _, id := range p.cluster.RemoteIdentities() {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}
