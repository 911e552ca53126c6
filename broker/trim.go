package broker

import (
	"runtime"
	"runtime/debug"
	"time"
)

// Memory after a connection storm.
//
// Each connection's read goroutine grows its stack to 32 KiB while it
// handles the SUBSCRIBE of a new session (mochi's subscribe path is 13 KiB
// deep before it calls publishRetainedToClient, whose frame alone is
// 2.6 KiB), and an idle one needs 16 KiB. Go gives a stack back only at a
// garbage collection, and by halves: on a server that has just taken
// thousands of connections and then idles, nothing allocates, no
// collection runs, and each connection keeps 32 KiB of read stack
// (measured with mqim's hooks: 36 KiB of stacks a connection before a
// collection, 20 after). The memory freed by the storm's garbage also
// stays with the process until the runtime's scavenger slowly returns it.
//
// So once trimAfter connections have been accepted since the last trim,
// and the storm has calmed (fewer than trimQuiet in the last trimInterval)
// or trimMaxWait has passed, the broker runs two collections, the second
// of which also returns free memory to the operating system. A collection
// costs milliseconds of CPU per 100 MiB of heap, at most once per
// trimInterval and only after a thousand new connections.
const (
	trimInterval = time.Second
	trimAfter    = 1000
	trimQuiet    = 100
	trimMaxWait  = 30 * time.Second
)

// trimLoop runs until stop is closed.
func (s *Server) trimLoop(stop <-chan struct{}) {
	tick := time.NewTicker(trimInterval)
	defer tick.Stop()
	var trimmedAt, prev int64
	lastTrim := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			n := s.guard.accepted.Load()
			recent := n - prev
			prev = n
			if n-trimmedAt < trimAfter || (recent >= trimQuiet && now.Sub(lastTrim) < trimMaxWait) {
				continue
			}
			trimmedAt, lastTrim = n, now
			start := time.Now()
			runtime.GC()
			debug.FreeOSMemory()
			s.log.Debug().Int64("accepted", n).Dur("took", time.Since(start)).Msg("memory trimmed after new connections")
		}
	}
}
