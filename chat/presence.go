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
}

// NewPresence returns an empty registry.
func NewPresence() *Presence {
	return &Presence{
		sessions:  map[Identity]map[string]struct{}{},
		notifyAll: map[string]bool{},
	}
}

// Open registers session for id. first is true when id had no session
// before (the 0→1 transition). A session id opened twice counts once. A
// user's notifyAll flag takes the value of its latest session.
func (p *Presence) Open(id Identity, session string, notifyAll bool) (first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
	return first
}

// Close unregisters session. last is true when it was the identity's last
// session (the 1→0 transition); notifyAll is the flag the user had, which is
// then forgotten. Closing an unknown session returns false.
func (p *Presence) Close(id Identity, session string) (last, notifyAll bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.sessions[id]
	if _, ok := set[session]; !ok {
		return false, false
	}
	delete(set, session)
	if len(set) > 0 {
		return false, false
	}
	delete(p.sessions, id)
	if id.Kind == KindUser {
		notifyAll = p.notifyAll[id.ID]
		delete(p.notifyAll, id.ID)
	}
	return true, notifyAll
}

// Count returns the number of open sessions of id.
func (p *Presence) Count(id Identity) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.sessions[id])
}

// Online reports whether id has at least one session.
func (p *Presence) Online(id Identity) bool { return p.Count(id) > 0 }

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

// OnlineIdentities returns every identity with at least one session.
func (p *Presence) OnlineIdentities() []Identity {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]Identity, 0, len(p.sessions))
	for id := range p.sessions {
		out = append(out, id)
	}
	return out
}
