package broker

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testwait"
)

// Ensure the broker collects (and so shrinks the stacks a storm of new
// sessions grew) once the storm is over, though nothing else would make
// the runtime collect.
func TestTrim_StacksShrinkAfterConnectionStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,100 connections")
	}
	s := startBroker(t, nil)
	const n = trimAfter + 100
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.StackInuse
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", s.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		id := fmt.Sprintf("c%04d", i)
		filter := "t/" + id
		// CONNECT (3.1.1, clean) and SUBSCRIBE in one write; read CONNACK
		// and SUBACK.
		pkt := pk(0x10, fmt.Sprintf(`0004 'MQTT' 04 02 003C 0005 '%s'`, id))
		pkt = append(pkt, pk(0x82, fmt.Sprintf(`0001 00%02X '%s' 01`, len(filter), filter))...)
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		if _, err := io.ReadFull(c, make([]byte, 4+5)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	perConn := func() float64 {
		runtime.ReadMemStats(&ms)
		return float64(ms.StackInuse-base) / 1024 / n
	}
	grown := perConn()
	forced := ms.NumForcedGC
	// The trim comes a trimInterval or two after the last connection: two
	// forced collections.
	testwait.Until(t, fmt.Sprintf("two forced collections after %d new connections", n), 10*trimInterval, func() bool {
		runtime.ReadMemStats(&ms)
		return ms.NumForcedGC >= forced+2
	})
	// What it gives back depends on the build (the race detector's frames
	// are larger); logged, not asserted.
	t.Logf("goroutine stacks per connection: %.1f KiB after the storm, %.1f KiB after the trim", grown, perConn())
}
