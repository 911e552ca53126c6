package broker

import "testing"

// BenchmarkInboxAllowed is the read ACL that mochi runs for every recipient
// of every message.
//
//	go test -run '^$' -bench InboxAllowed -benchmem ./broker/
func BenchmarkInboxAllowed(b *testing.B) {
	user := []byte("u00042")
	for _, c := range []struct {
		name, topic string
		want        bool
	}{
		{"own-message", "users/u00042/message", true},
		{"own-wildcard", "users/u00042/#", true},
		{"other-user", "users/u00043/message", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if InboxAllowed(user, c.topic) != c.want {
					b.Fatal("wrong decision")
				}
			}
		})
	}
}
