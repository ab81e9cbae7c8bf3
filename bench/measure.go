//go:build unix

package main

import (
	"runtime"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// Latencies are recorded in nanoseconds from 1 ns to 60 s with 3 significant
// digits (0.1 % resolution).
const (
	histMin   = 1
	histMax   = int64(60 * time.Second)
	histDigit = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigit) }

// record adds one latency, clamped into the histogram's range. It never allocates.
func record(h *hdrhistogram.Histogram, ns int64) {
	if ns < histMin {
		ns = histMin
	} else if ns > histMax {
		ns = histMax
	}
	_ = h.RecordValue(ns)
}

// snapshot is the process-wide counters a row's per-op figures come from.
type snapshot struct {
	at      time.Time
	cpu     time.Duration // user + sys of the whole process (RUSAGE_SELF)
	mallocs uint64        // runtime.MemStats.Mallocs
}

// takeSnapshot reads the counters. ReadMemStats stops the world briefly, so it is
// only called outside the timed loop or at phase changes.
func takeSnapshot() snapshot {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return snapshot{at: time.Now(), cpu: cpuTime(), mallocs: ms.Mallocs}
}

// cpuTime is user+sys CPU time of the process (all threads) from getrusage(2).
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fillFigures writes the per-row figures: ops and time give IOPS and MB/s; the
// histogram the latency percentiles; the snapshots CPU and allocations per op.
func (r *Row) fillFigures(ops int64, elapsed time.Duration, h *hdrhistogram.Histogram, a, b snapshot) {
	r.Ops = ops
	r.RuntimeSec = elapsed.Seconds()
	if elapsed > 0 {
		r.IOPS = float64(ops) / elapsed.Seconds()
		if r.BS > 0 {
			r.MBps = r.IOPS * float64(r.BS) / 1e6
		}
	}
	if h != nil && h.TotalCount() > 0 {
		r.LatP50us = us(h.ValueAtQuantile(50))
		r.LatP99us = us(h.ValueAtQuantile(99))
		r.LatP999us = us(h.ValueAtQuantile(99.9))
		r.LatP9999us = us(h.ValueAtQuantile(99.99))
		r.LatMeanUs = h.Mean() / 1e3
		r.LatStdevUs = h.StdDev() / 1e3
		r.LatMinUs = us(h.Min())
		r.LatMaxUs = us(h.Max())
		r.LatSamples = h.TotalCount()
	}
	if ops > 0 {
		r.CPUNsPerOp = float64(b.cpu-a.cpu) / float64(ops)
		r.AllocsPerOp = float64(b.mallocs-a.mallocs) / float64(ops)
	}
}

func us(ns int64) float64 { return float64(ns) / 1e3 }

// clockCost measures what one time.Now costs here (the latency clock), in ns.
func clockCost() float64 {
	const n = 200000
	var sink int64
	t0 := time.Now()
	for i := 0; i < n; i++ {
		sink += time.Now().UnixNano() & 1
	}
	d := time.Since(t0)
	_ = sink
	return float64(d.Nanoseconds()) / n
}
