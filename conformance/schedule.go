package conformance

import (
	"container/heap"
	"strings"
)

// The runner executes cases concurrently, but two cases must not overlap
// when running them at the same time could change either result:
//
//   - They connect with the same client id: the second CONNECT takes over
//     the first one's session and disconnects it. The default client ids
//     are the case names, which repeat a few times in the catalogue, and
//     most hand-written CONNECTs use the client id "p".
//   - One publishes to a topic (a PUBLISH, a will, external_publish) that
//     a subscription of the other matches: the message would arrive where
//     the other case expects something else. Two publishers of one topic
//     conflict too, because retained messages make their order visible.
//   - One unsubscribes from a filter that the other subscribes to. MQTT
//     says an UNSUBACK reports on the client's own subscription, but a
//     broker may get that wrong (mochi v2.7.9 reports success whenever the
//     filter exists in its index, whoever subscribed), and a deterministic
//     run should show that the same way every time.
//
// Conflicting cases run in catalogue order, one after the other; that is
// exactly what the sequential original harness does, so their results
// do not depend on the concurrency. Everything else runs in parallel.

// resource is something a case uses, with the way it uses it.
type resource struct {
	// key is "id:<client id>", "topic:<topic name>" or "filter:<filter>".
	key string
	// sub is the shared mode of a topic or filter (subscribing); the
	// other mode (publishing, unsubscribing) excludes every other use.
	// Client ids are always exclusive.
	sub bool
}

// plan is the dependency graph of a run.
type plan struct {
	cases []*Case
	// deps[i] counts the cases that must finish before cases[i] starts;
	// next[i] lists the cases waiting for cases[i].
	deps []int
	next [][]int
	// height[i] is the length of the longest chain of waiting cases that
	// starts at cases[i]. Running tall cases first shortens the run.
	height []int
	// final cases (files named ZZ*, the catalogue's last broker check)
	// run after everything else, alone.
	final []*Case
}

// newPlan builds the dependency graph of cases, which must be in
// catalogue order.
func newPlan(cases []*Case) *plan {
	p := &plan{}
	var uses [][]resource
	for _, c := range cases {
		if strings.HasPrefix(c.File, "ZZ") {
			p.final = append(p.final, c)
			continue
		}
		p.cases = append(p.cases, c)
	}
	published := make(map[string]bool)
	for _, c := range p.cases {
		for _, t := range publishedTopics(c) {
			published[t] = true
		}
	}
	for _, c := range p.cases {
		uses = append(uses, resources(c, published))
	}

	n := len(p.cases)
	p.deps = make([]int, n)
	p.next = make([][]int, n)
	type state struct {
		last int   // last exclusive user (id) or last publisher (topic); -1 if none
		subs []int // topic subscribers since last
	}
	states := make(map[string]*state)
	for i := range p.cases {
		before := make(map[int]bool)
		for _, r := range uses[i] {
			s := states[r.key]
			if s == nil {
				s = &state{last: -1}
				states[r.key] = s
			}
			if s.last >= 0 {
				before[s.last] = true
			}
			switch {
			case strings.HasPrefix(r.key, "id:"):
				s.last = i
			case r.sub:
				s.subs = append(s.subs, i)
			default:
				for _, j := range s.subs {
					before[j] = true
				}
				s.last, s.subs = i, nil
			}
		}
		delete(before, i)
		for j := range before {
			p.deps[i]++
			p.next[j] = append(p.next[j], i)
		}
	}
	p.height = make([]int, n)
	for i := n - 1; i >= 0; i-- {
		h := 0
		for _, j := range p.next[i] {
			h = max(h, p.height[j])
		}
		p.height[i] = h + 1
	}
	return p
}

// resources lists what a case uses. published holds every topic some case
// of the run publishes to: a subscription only matters for those.
func resources(c *Case, published map[string]bool) []resource {
	var rs []resource
	seen := make(map[resource]bool)
	add := func(r resource) {
		if !seen[r] {
			seen[r] = true
			rs = append(rs, r)
		}
	}
	a := analyse(c)
	for _, id := range a.ids {
		add(resource{key: "id:" + id})
	}
	for _, t := range a.pubs {
		add(resource{key: "topic:" + t})
	}
	for _, f := range a.filters {
		add(resource{key: "filter:" + f, sub: true})
		for t := range published {
			if topicMatch(f, t) {
				add(resource{key: "topic:" + t, sub: true})
			}
		}
	}
	for _, f := range a.unsubs {
		add(resource{key: "filter:" + f})
		for t := range published {
			if topicMatch(f, t) {
				add(resource{key: "topic:" + t, sub: true})
			}
		}
	}
	// A case that uses a key in both modes takes the exclusive one.
	out := rs[:0]
	for _, r := range rs {
		if r.sub && seen[resource{key: r.key}] {
			continue
		}
		out = append(out, r)
	}
	return out
}

func publishedTopics(c *Case) []string { return analyse(c).pubs }

// analysis is what a case does to shared broker state.
type analysis struct {
	ids     []string // client ids it connects with
	pubs    []string // topics it publishes to, wills included
	filters []string // topic filters it subscribes to
	unsubs  []string // topic filters it unsubscribes from
}

func analyse(c *Case) analysis {
	var a analysis
	if c.Connect {
		a.ids = append(a.ids, c.ClientID())
	}
	var sent []byte
	for _, st := range c.Steps {
		switch st.Kind {
		case StepSend:
			sent = append(sent, st.Data...)
		case StepSubscribe:
			a.filters = append(a.filters, st.Topic)
		case StepUnsubscribe:
			a.unsubs = append(a.unsubs, st.Topic)
		case StepExternalPublish:
			a.ids = append(a.ids, "helper")
			a.pubs = append(a.pubs, st.Topic)
		}
	}
	// A case may split one packet over several sends, so analyse the
	// concatenation. Later CONNECTs (protocol errors) are analysed too: a
	// broker that wrongly accepts one acts on it.
	for _, p := range splitPackets(sent) {
		switch p.First >> 4 {
		case typeConnect:
			ci := parseConnect(p.Body)
			if ci.HasID {
				a.ids = append(a.ids, ci.ClientID)
			}
			if ci.HasWillTop {
				a.pubs = append(a.pubs, ci.WillTopic)
			}
		case typePublish:
			if t, ok := publishTopic(p.Body); ok {
				a.pubs = append(a.pubs, t)
			}
		case typeSubscribe:
			a.filters = append(a.filters, subscribeFilters(p.Body, c.Ver)...)
		case typeUnsubscribe:
			a.unsubs = append(a.unsubs, unsubscribeFilters(p.Body, c.Ver)...)
		}
	}
	return a
}

// topicMatch reports whether filter matches topic under MQTT rules, with
// a shared subscription's "$share/<group>/" prefix removed. It errs
// towards matching: a false match only costs concurrency.
func topicMatch(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			filter = rest[i+1:]
		}
	}
	if filter == topic {
		return true
	}
	// Wildcards at the first level do not match $-topics.
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "#") || strings.HasPrefix(filter, "+")) {
		return false
	}
	fl := strings.Split(filter, "/")
	tl := strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) {
			return false
		}
		if f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

// readyQueue orders runnable cases: tallest first, then catalogue order.
type readyQueue struct {
	p     *plan
	items []int
}

func (q *readyQueue) Len() int { return len(q.items) }
func (q *readyQueue) Less(a, b int) bool {
	i, j := q.items[a], q.items[b]
	if q.p.height[i] != q.p.height[j] {
		return q.p.height[i] > q.p.height[j]
	}
	return i < j
}
func (q *readyQueue) Swap(a, b int) { q.items[a], q.items[b] = q.items[b], q.items[a] }
func (q *readyQueue) Push(x any)    { q.items = append(q.items, x.(int)) }
func (q *readyQueue) Pop() any {
	x := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return x
}

var _ heap.Interface = (*readyQueue)(nil)
