package conformance

import (
	"slices"
	"testing"
)

func TestTopicMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"p", "p", true},
		{"p", "q", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "topic", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$share/g/p", "p", true},
		{"$share/share/#", "subpub/qos1", true},
		{"a/+/c", "a//c", true},
		{"ab/+e", "ab/+e", true}, // an invalid filter still matches itself
	}
	for _, tt := range tests {
		if got := topicMatch(tt.filter, tt.topic); got != tt.want {
			t.Errorf("topicMatch(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestNewPlan(t *testing.T) {
	t.Parallel()
	mk := func(name string, connect bool, payloads ...string) *Case {
		c := &Case{File: "T.json", Group: "g", Name: name, Ver: 4, Connect: connect, ExpectDisconnect: true}
		for _, p := range payloads {
			c.Steps = append(c.Steps, Step{Kind: StepSend, Data: mustPayload(t, p)})
		}
		return c
	}
	cases := []*Case{
		0:  mk("connect p", false, "10 r13 s4 'MQTT' 04 02 k10 s1 'p'"),
		1:  mk("connect p again", false, "10 r13 s4 'MQTT' 04 02 k10 s1 'p'"),
		2:  mk("sub p", true, "82 r6 m1 s1 'p' 00"),
		3:  mk("sub p too", true, "82 r6 m1 s1 'p' 00"),
		4:  mk("pub p", true, "30 r4 s1 'p' 'x'"),
		5:  mk("pub q", true, "30 r4 s1 'q' 'x'"),
		6:  mk("sub all", true, "82 r6 m1 s1 '#' 00"),
		7:  mk("unsub p", true, "A2 r5 m1 s1 'p'"),
		8:  mk("will on p with id q", false, "10 r19 s4 'MQTT' 04 06 k10 s1 'q' s1 'p' s1 'm'"),
		9:  mk("plain", true, "C0 00"),
		10: {File: "ZZ-check.json", Group: "g", Name: "end", Ver: 4, Connect: true},
	}
	for i, c := range cases {
		c.Index = i
	}
	p := newPlan(cases)
	if len(p.cases) != 10 || len(p.final) != 1 || p.final[0] != cases[10] {
		t.Fatalf("newPlan: %d cases, final %v", len(p.cases), p.final)
	}
	// waits[i] lists the cases that case i waits for directly.
	waits := make([][]int, len(p.cases))
	for j, next := range p.next {
		for _, i := range next {
			waits[i] = append(waits[i], j)
		}
	}
	for i := range waits {
		slices.Sort(waits[i])
		if len(waits[i]) != p.deps[i] {
			t.Errorf("case %d: deps %d, waits %v", i, p.deps[i], waits[i])
		}
	}
	want := [][]int{
		0: nil,
		1: {0},       // same client id
		2: nil,       // nothing published to p before it
		3: nil,       // two subscribers do not disturb each other
		4: {2, 3},    // publish lands on both subscriptions
		5: nil,       // nobody subscribes to q before it
		6: {4, 5},    // # matches p and q
		7: {2, 3, 4}, // unsubscribing p: after the subscribers of p and the last publisher to p
		8: {4, 6, 7}, // a will on p publishes to p: after the last publisher and everyone listening since
		9: nil,       // touches nothing shared
	}
	for i, w := range want {
		if !slices.Equal(waits[i], w) {
			t.Errorf("case %d (%s) waits for %v, want %v", i, p.cases[i].Name, waits[i], w)
		}
	}
	if p.height[0] != 2 || p.height[9] != 1 {
		t.Errorf("heights %v", p.height)
	}
}
