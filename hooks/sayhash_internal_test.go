package hooks

import (
	"strings"
	"testing"
)

// BenchmarkSayHash is the duplicate check's hash of one QoS 1 say.
func BenchmarkSayHash(b *testing.B) {
	r := newRegistry(nil)
	topic := "say/friend/bob"
	payload := []byte(`{"content":{"media":0,"body":"` + strings.Repeat("x", 80) + `"}}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.sayHash(topic, payload)
	}
}
