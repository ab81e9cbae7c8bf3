package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Phases of a gosync run, read by every worker once per call.
const (
	phaseWarm int32 = iota
	phaseMeasure
	phaseStop
)

// gosyncWorker is one goroutine's state, padded so that workers do not share
// cache lines.
type gosyncWorker struct {
	ops  int64
	hist *hdrhistogram.Histogram
	err  error
	_    [64]byte
}

// runGosync is what Go programmers do today: iodepth goroutines, each calling
// os.File.ReadAt (or WriteAt) on one shared *os.File, one request at a time.
// Latency is per call: each worker reads the clock once per call, so a call's
// figure runs from the end of its previous call to its own end (the few
// nanoseconds of picking an offset included, and with more goroutines than
// GOMAXPROCS, any wait for a P too).
func runGosync(cs Case, env *runEnv, row *Row) error {
	info := workloads[cs.Workload]
	if !info.disk {
		return &skipError{"n/a: gosync has no " + cs.Workload}
	}
	f, err := openData(env.data, info)
	if err != nil {
		return err
	}
	defer f.Close()
	bs, qd := cs.BS, cs.QD
	nblocks := uint64(env.data.Size / int64(bs))
	if nblocks == 0 {
		return fmt.Errorf("data file region %d bytes is smaller than --bs %d", env.data.Size, bs)
	}
	region, free, err := alignedRegion(qd * bs)
	if err != nil {
		return err
	}
	defer free()
	if info.write {
		fillRandom(region, uint64(time.Now().UnixNano()))
	}
	row.BackendRan = "gosync"
	row.Batch = 1

	var phase atomic.Int32
	failed := make(chan struct{}) // closed by the first worker that fails
	var failOnce sync.Once
	workers := make([]gosyncWorker, qd)
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	for i := range workers {
		w := &workers[i]
		w.hist = newHist()
		buf := region[i*bs : (i+1)*bs : (i+1)*bs]
		r := newRNG(seed + uint64(i)*0x9E3779B97F4A7C15)
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := time.Now()
			for {
				ph := phase.Load()
				if ph == phaseStop {
					return
				}
				off := r.offset(nblocks, bs)
				var n int
				var err error
				if info.write {
					n, err = f.WriteAt(buf, off)
				} else {
					n, err = f.ReadAt(buf, off)
				}
				if err != nil || n != bs {
					if err == nil {
						err = fmt.Errorf("short transfer: %d of %d bytes", n, bs)
					}
					call := "ReadAt"
					if info.write {
						call = "WriteAt"
					}
					w.err = fmt.Errorf("gosync %s at offset %d of %s: %w", call, off, env.data.Path, err)
					phase.Store(phaseStop)
					failOnce.Do(func() { close(failed) })
					return
				}
				now := time.Now()
				if ph == phaseMeasure && phase.Load() == phaseMeasure {
					record(w.hist, now.Sub(last).Nanoseconds())
					w.ops++
				}
				last = now
			}
		}()
	}
	base := time.Now()
	env.caseStarted(cs, base)
	var a, b snapshot
	sleep := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-failed:
		}
	}
	if cs.Warmup > 0 {
		sleep(cs.Warmup)
	}
	a = takeSnapshot()
	phase.CompareAndSwap(phaseWarm, phaseMeasure)
	sleep(cs.Runtime)
	stopped := phase.CompareAndSwap(phaseMeasure, phaseStop)
	b = takeSnapshot()
	wg.Wait()
	h := newHist()
	var ops int64
	for i := range workers {
		if workers[i].err != nil {
			return workers[i].err
		}
		ops += workers[i].ops
		h.Merge(workers[i].hist)
	}
	if !stopped {
		return fmt.Errorf("gosync run stopped early")
	}
	row.fillFigures(ops, b.at.Sub(a.at), h, a, b)
	one := 1.0 // each call is one pread/pwrite system call
	row.SubmitsPerOp = &one
	return nil
}
