package hooks_test

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/hooks"
)

// BenchmarkACL is the hook's decision as mochi calls it: the write side for
// every client publish, the read side for every recipient of every message.
//
//	go test -run '^$' -bench ACL -benchmem ./hooks/
func BenchmarkACL(b *testing.B) {
	h := &hooks.ACL{}
	cl := &mqtt.Client{}
	cl.Properties.Username = []byte("u00042")
	for _, c := range []struct {
		name, topic string
		write, want bool
	}{
		{"write-say", "say/friend/u00043", true, true},
		{"write-inbox", "users/u00043/message", true, false},
		{"read-own", "users/u00042/message", false, true},
		{"read-other", "users/u00043/message", false, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if h.OnACLCheck(cl, c.topic, c.write) != c.want {
					b.Fatal("wrong decision")
				}
			}
		})
	}
}
