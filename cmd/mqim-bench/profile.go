package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profiler fetches mqim's CPU profile (over the send phase) and its
// allocation profile (at the end) from the opt-in pprof listener
// (MQIM_PPROF_ADDR).
type profiler struct {
	addr, dir, name string
	seconds         int
	logf            func(string, ...any)
	wg              sync.WaitGroup
}

func profileName(p Params) string {
	if p.Rate > 0 {
		return fmt.Sprintf("%s-rate%.0f", p.Scenario, p.Rate)
	}
	return p.Scenario
}

func (p *profiler) start() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		// Skip the first second: connections warm up.
		time.Sleep(time.Second)
		p.fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", p.seconds), p.name+".cpu.pprof")
	}()
}

func (p *profiler) finish() {
	p.wg.Wait()
	p.fetch("/debug/pprof/allocs", p.name+".allocs.pprof")
}

// heap saves the live heap (conns scenario: what idle connections hold).
func (p *profiler) heap() {
	p.fetch("/debug/pprof/heap?gc=1", p.name+".heap.pprof")
	p.fetch("/debug/pprof/goroutine", p.name+".goroutine.pprof")
	p.fetch("/debug/pprof/heap?debug=1", p.name+".heap.txt")
}

func (p *profiler) fetch(path, file string) {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		p.logf("profile: %v", err)
		return
	}
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		p.logf("profile %s: %v", path, err)
		return
	}
	defer func() { _ = resp.Body.Close() }() // read only
	out := filepath.Join(p.dir, file)
	f, err := os.Create(out)
	if err != nil {
		p.logf("profile: %v", err)
		return
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		p.logf("profile %s: %v %s", path, err, resp.Status)
		return
	}
	p.logf("  profile written: %s", out)
}
