package main

import (
	"math/bits"
	"time"
)

// Latency histogram: values in microseconds, exact below 64 µs, then 32
// sub-buckets per power of two (about 3% resolution), up to 2^40 µs.
const (
	histExact   = 64
	histSub     = 32
	histBuckets = histExact + 40*histSub
)

// Hist is a latency histogram. It is not safe for concurrent use.
type Hist struct {
	counts [histBuckets]uint64
	n      uint64
	max    uint64
}

func histIndex(us uint64) int {
	if us < histExact {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us >> e is in [32, 63]
	i := histExact + (e-1)*histSub + int(us>>e) - histSub
	return min(i, histBuckets-1)
}

// histValue returns the middle of bucket i, in µs.
func histValue(i int) uint64 {
	if i < histExact {
		return uint64(i)
	}
	e := (i-histExact)/histSub + 1
	m := uint64((i-histExact)%histSub + histSub)
	return m<<e + (uint64(1)<<e)/2
}

// Add records one latency.
func (h *Hist) Add(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.counts[histIndex(us)]++
	h.n++
	h.max = max(h.max, us)
}

// Merge adds o into h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns the number of values.
func (h *Hist) Count() uint64 { return h.n }

// Quantile returns the q-quantile (0 < q <= 1).
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return time.Duration(min(histValue(i), h.max)) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

// Max returns the largest value.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// bitset is a growable set of sequence numbers.
type bitset []uint64

// set adds i and reports whether it was already there.
func (b *bitset) set(i uint64) bool {
	w := int(i / 64)
	for w >= len(*b) {
		*b = append(*b, 0)
	}
	m := uint64(1) << (i % 64)
	was := (*b)[w]&m != 0
	(*b)[w] |= m
	return was
}

func (b bitset) has(i uint64) bool {
	w := int(i / 64)
	return w < len(b) && b[w]&(1<<(i%64)) != 0
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}
