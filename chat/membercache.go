package chat

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// memberCacheCost bounds a memberCache: the sum over its entries of 1 + the
// number of ids they hold, about 30 MiB at worst. It is split evenly among
// the shards; past its share a fill evicts arbitrary entries of the shard
// (Go map iteration order), which is enough to keep memory bounded: a miss
// only costs the store read the cache saves. An object holding more ids
// than a shard's share (a room past 4095 members) is not cached.
const (
	memberCacheCost   = 1 << 18
	memberCacheShards = 64
	memberShardCost   = memberCacheCost / memberCacheShards
)

// memberCache keeps the membership facts Say checks on every message, keyed
// exactly like the membership locks (see Service.lockKey):
//
//   - string(FriendConv(a, b)) → the two are friends (only the positive
//     fact is kept: AddFriends writes without the conversation lock, so a
//     cached "not friends" could outlive it);
//   - ListKind.lockKey(id), "g:<gid>" or "r:<rid>" → the owner and
//     members of an existing group or room.
//
// The invariant that keeps it exact: an entry is filled only while the
// filler holds the key's lock for reading (after reading the store under
// it), and every writer that changes the fact deletes the entry while it
// holds the key's lock for writing, after its store update returned
// (Service.updateLocked). So a fill never races a change: it either
// completes before the writer takes the lock (and is then deleted) or
// starts after the change committed (and reads it). Facts that only appear
// without the lock (a new friendship, a new group or room) are never cached
// negatively, so they need no invalidation; attribute writes keep the
// membership as it is (their transaction would conflict with a concurrent
// change) and the cache holds no attributes. Cached values are shared and
// never modified. Anything writing memberships to the store behind the
// Service's back would have to drop the entry the same way.
type memberCache struct {
	seed   maphash.Seed
	shards [memberCacheShards]memberShard
	// off: fill nothing (Service.SetMembershipCache).
	off atomic.Bool
}

type memberShard struct {
	mu   sync.RWMutex
	m    map[string]memberEntry
	cost int // sum of the entries' cost
}

type memberEntry struct {
	v    any // true (friends) or *MemberList
	cost int
}

func (c *memberCache) shard(key string) *memberShard {
	return &c.shards[maphash.String(c.seed, key)%memberCacheShards]
}

func (c *memberCache) get(key string) (any, bool) {
	sh := c.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[key]
	sh.mu.RUnlock()
	return e.v, ok
}

// put stores v, holding ids ids, under key; the caller holds the key's
// membership lock for reading or writing.
func (c *memberCache) put(key string, v any, ids int) {
	cost := ids + 1
	if cost > memberShardCost {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.off.Load() { // under the shard lock: clear cannot miss this entry
		return
	}
	if sh.m == nil {
		sh.m = make(map[string]memberEntry)
	}
	if old, ok := sh.m[key]; ok {
		sh.cost -= old.cost
		delete(sh.m, key)
	}
	for k, e := range sh.m {
		if sh.cost+cost <= memberShardCost {
			break
		}
		sh.cost -= e.cost
		delete(sh.m, k)
	}
	sh.m[key] = memberEntry{v: v, cost: cost}
	sh.cost += cost
}

// drop deletes key; the caller holds the key's membership lock for writing
// and has committed its change.
func (c *memberCache) drop(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	if e, ok := sh.m[key]; ok {
		sh.cost -= e.cost
		delete(sh.m, key)
	}
	sh.mu.Unlock()
}

// clear drops every entry.
func (c *memberCache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.m, sh.cost = nil, 0
		sh.mu.Unlock()
	}
}

// areFriends reports whether a and b, whose friend conversation is conv,
// are friends. The caller holds the read lock of conv. A negative answer
// is an error with CodeUnauthorized.
func (s *Service) areFriends(ctx context.Context, conv Conv, a, b string) error {
	key := string(conv)
	if _, ok := s.members.get(key); ok {
		return nil
	}
	err := s.store.View(ctx, func(tx Tx) error { _, err := tx.Friendship(a, b); return err })
	if IsNotFound(err) {
		return Errorf(CodeUnauthorized, "%s and %s are not friends", a, b)
	}
	if err == nil {
		s.members.put(key, true, 0)
	}
	return err
}

// listMembers returns the owner and members of group or room id (a shared
// value: read only). The caller holds the read lock of kind.lockKey(id).
// The error is the store's (CodeNotFound for an unknown list).
func (s *Service) listMembers(ctx context.Context, kind ListKind, id string) (*MemberList, error) {
	key := kind.lockKey(id)
	if v, ok := s.members.get(key); ok {
		return v.(*MemberList), nil
	}
	var l *MemberList
	err := s.store.View(ctx, func(tx Tx) (err error) { l, err = tx.MemberList(kind, id); return err })
	if err != nil {
		return nil, err
	}
	l = &MemberList{Kind: kind, ID: l.ID, Owner: l.Owner, Members: l.Members}
	ids := len(l.Members)
	if l.Owner != "" {
		ids++
	}
	s.members.put(key, l, ids)
	return l, nil
}
