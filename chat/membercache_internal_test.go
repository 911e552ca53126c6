package chat

import (
	"fmt"
	"hash/maphash"
	"testing"
)

// Ensure the cache stays within its cost bound, keeps its cost accounting
// exact through replacement and drop, and skips objects past a shard's share.
func TestMemberCache_Bound(t *testing.T) {
	c := &memberCache{seed: maphash.MakeSeed()}
	total := func() (n, cost int) {
		for i := range c.shards {
			sh := &c.shards[i]
			sum := 0
			for _, e := range sh.m {
				sum += e.cost
			}
			if sum != sh.cost {
				t.Fatalf("shard %d: cost %d, entries sum to %d", i, sh.cost, sum)
			}
			if sh.cost > memberShardCost {
				t.Fatalf("shard %d: cost %d past %d", i, sh.cost, memberShardCost)
			}
			n += len(sh.m)
			cost += sh.cost
		}
		return n, cost
	}
	g := &Group{Owner: "o", Members: make([]string, 49)}
	for i := range memberCacheCost / 2 { // about three times the bound
		if i%10 == 0 {
			c.put(fmt.Sprintf("g:%d", i), g, 50)
		} else {
			c.put(fmt.Sprintf("f:%d|x", i), true, 0)
		}
	}
	n, cost := total()
	if cost > memberCacheCost || n == 0 {
		t.Fatalf("%d entries of cost %d, bound %d", n, cost, memberCacheCost)
	}
	c.put("k", true, 0)
	c.put("k", g, 50) // replaced, not counted twice
	if v, ok := c.get("k"); !ok || v != g {
		t.Fatalf("get(k) = %v, %v", v, ok)
	}
	total()
	c.drop("k")
	if _, ok := c.get("k"); ok {
		t.Fatal("k still cached after drop")
	}
	total()
	c.put("r:big", &Room{}, memberShardCost)
	if _, ok := c.get("r:big"); ok {
		t.Fatal("an object past a shard's share was cached")
	}
}
