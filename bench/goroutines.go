//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// The goroutine mode is how storage engines use I/O: many goroutines, each
// making one blocking ReadAt (or WriteAt) at a time. gosync does it with
// os.File (one pread per call, one OS thread per blocked call); the library's
// backends with aio.File on ONE Context shared by all N goroutines.
//
// Each goroutine case runs in a child process of its own (this binary,
// re-executed with URINGAIO_BENCH_CHILD=1, the case as JSON on stdin, its
// row as JSON on stdout): Go never gives OS threads back, so the peak thread
// count of a case is only its own in a fresh process.

// Phases of a goroutine run, read by every worker once per call.
const (
	phaseWarm int32 = iota
	phaseMeasure
	phaseStop
)

// goWorker is one goroutine's state, padded so that workers do not share
// cache lines.
type goWorker struct {
	ops    int64
	eagain int64 // calls refused with EAGAIN (more goroutines than maxEvents), retried
	hist   *hdrhistogram.Histogram
	err    error
	_      [64]byte
}

// rwAt is what a worker calls: os.File, aio.File, or one of the raw calls
// below.
type rwAt interface {
	io.ReaderAt
	io.WriterAt
}

// fdRW is --api=fd: Context.ReadAt/WriteAt on the file's descriptor.
type fdRW struct {
	c  *aio.Context
	fd int
}

func (r fdRW) ReadAt(p []byte, off int64) (int, error) {
	return r.c.ReadAt(context.Background(), r.fd, p, off)
}

func (r fdRW) WriteAt(p []byte, off int64) (int, error) {
	return r.c.WriteAt(context.Background(), r.fd, p, off)
}

// doRW is --api=do: Context.Do with one IOCB per goroutine, reused.
type doRW struct {
	c  *aio.Context
	fd int
	cb aio.IOCB
}

func (r *doRW) ReadAt(p []byte, off int64) (int, error)  { return r.do(aio.OpRead, p, off) }
func (r *doRW) WriteAt(p []byte, off int64) (int, error) { return r.do(aio.OpWrite, p, off) }

func (r *doRW) do(op aio.Op, p []byte, off int64) (int, error) {
	r.cb.Op, r.cb.FD, r.cb.Buf, r.cb.Offset = op, r.fd, p, off
	ev, err := r.c.Do(context.Background(), &r.cb)
	r.cb.Buf = nil
	if err != nil {
		return 0, err
	}
	return int(ev.Res), nil
}

// runGoroutines runs N (cs.QD) goroutines, each calling ReadAt (or WriteAt)
// on one shared file at random aligned offsets, one call at a time: through
// os.File for gosync, through aio.NewFile on one shared Context (maxEvents
// cs.MaxEvents) for a library backend. Latency is per call: each worker reads
// the clock once per call, so a call's figure runs from the end of its
// previous call to its own end (the few nanoseconds of picking an offset
// included, and with more goroutines than GOMAXPROCS, any wait for a P too).
// A sampler reads the process's OS thread count every few milliseconds.
func runGoroutines(cs Case, env *runEnv, row *Row) error {
	info := workloads[cs.Workload]
	if !info.disk {
		return fmt.Errorf("workload %s has no goroutine mode", cs.Workload)
	}
	threads := startThreadSampler(2 * time.Millisecond)
	defer threads.stop()

	f, err := openData(env.data, info)
	if err != nil {
		return err
	}
	defer f.Close()
	bs, n := cs.BS, cs.QD
	nblocks := uint64(env.data.Size / int64(bs))
	if nblocks == 0 {
		return fmt.Errorf("data file region %d bytes is smaller than --bs %d", env.data.Size, bs)
	}
	region, free, err := alignedRegion(n * bs)
	if err != nil {
		return err
	}
	defer free() // runs after Destroy (deferred later)
	if info.write {
		fillRandom(region, uint64(time.Now().UnixNano()))
	}
	row.Batch = 1
	row.Goroutines = n

	var file rwAt = f
	perWorker := func() rwAt { return file }
	var actx *aio.Context
	var blocks *aio.Buffers // --fixedbufs
	call := "os.File.ReadAt"
	if info.write {
		call = "os.File.WriteAt"
	}
	if cs.Backend == "gosync" {
		row.BackendRan = "gosync"
	} else {
		maxEv := cs.MaxEvents
		if maxEv <= 0 {
			maxEv = defaultMaxEvents
		}
		row.MaxEvents = maxEv
		actx, err = setupAIO(cs, maxEv, row)
		if err != nil {
			return err
		}
		defer actx.Destroy()
		af := aio.NewFile(actx, f)
		if cs.Ring.RegisterFiles {
			// Destroy (deferred) empties the entry; f is closed after.
			if err := af.Register(); err != nil {
				return fmt.Errorf("File.Register: %w", err)
			}
		}
		if cs.Ring.FixedBufs {
			b, err := aio.NewBuffers(actx, bs, n)
			if err != nil {
				return fmt.Errorf("aio.NewBuffers(%d, %d): %w", bs, n, err)
			}
			defer func() {
				_ = actx.Destroy() // every request has ended
				_ = b.Release()
			}()
			for i := 0; i < n; i++ {
				copy(b.Block(i), region[i*bs:(i+1)*bs])
			}
			blocks = b
		}
		switch cs.API {
		case apiFD, apiDo:
			// The descriptor stays valid: f is open until the case ends.
			fd := af.Fd()
			if cs.API == apiFD {
				file = fdRW{actx, fd}
				call = "aio.Context.ReadAt"
				if info.write {
					call = "aio.Context.WriteAt"
				}
			} else {
				perWorker = func() rwAt { return &doRW{c: actx, fd: fd} }
				call = "aio.Context.Do(OpRead)"
				if info.write {
					call = "aio.Context.Do(OpWrite)"
				}
			}
		default:
			file = af
			call = "aio.File.ReadAt"
			if info.write {
				call = "aio.File.WriteAt"
			}
		}
	}
	row.LatencyOf = "per " + call + " call"

	var phase atomic.Int32
	failed := make(chan struct{}) // closed by the first worker that fails
	var failOnce sync.Once
	workers := make([]goWorker, n)
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	for i := range workers {
		w := &workers[i]
		w.hist = newHist()
		buf := region[i*bs : (i+1)*bs : (i+1)*bs]
		if blocks != nil {
			buf = blocks.Block(i)
		}
		r := newRNG(seed + uint64(i)*0x9E3779B97F4A7C15)
		file := perWorker()
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
				var got int
				var err error
				if info.write {
					got, err = file.WriteAt(buf, off)
				} else {
					got, err = file.ReadAt(buf, off)
				}
				if err != nil && errors.Is(err, unix.EAGAIN) && got == 0 {
					// More goroutines than maxEvents, and the library refuses
					// instead of waiting for room: counted, shown, retried.
					if ph == phaseMeasure {
						w.eagain++
					}
					runtime.Gosched()
					continue
				}
				if err != nil || got != bs {
					if err == nil {
						err = fmt.Errorf("short transfer: %d of %d bytes", got, bs)
					}
					w.err = fmt.Errorf("%s at offset %d of %s: %w", call, off, env.data.Path, err)
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
	var sa, sb aio.Stats
	if actx != nil {
		sa = actx.Stats()
	}
	a := takeSnapshot()
	phase.CompareAndSwap(phaseWarm, phaseMeasure)
	sleep(cs.Runtime)
	stopped := phase.CompareAndSwap(phaseMeasure, phaseStop)
	b := takeSnapshot()
	if actx != nil {
		sb = actx.Stats()
	}
	wg.Wait()
	row.PeakThreads = threads.stop()
	h := newHist()
	var ops, eagain int64
	for i := range workers {
		if workers[i].err != nil {
			return workers[i].err
		}
		ops += workers[i].ops
		eagain += workers[i].eagain
		h.Merge(workers[i].hist)
	}
	if !stopped {
		return fmt.Errorf("goroutine run stopped early")
	}
	row.fillFigures(ops, b.at.Sub(a.at), h, a, b)
	row.Errors = eagain
	if eagain > 0 {
		row.Notes = append(row.Notes, fmt.Sprintf("%d calls failed with EAGAIN (%d goroutines, maxEvents %d) and were retried", eagain, n, row.MaxEvents))
	}
	if ops > 0 {
		if actx == nil {
			one := 1.0 // each call is one pread/pwrite system call
			row.SubmitsPerOp = &one
		} else {
			spo := float64(sb.Submits-sa.Submits) / float64(ops)
			ipo := float64(sb.Inline-sa.Inline) / float64(ops)
			row.SubmitsPerOp, row.InlinePerOp = &spo, &ipo
		}
	}
	if actx != nil {
		if err := actx.Destroy(); err != nil {
			return fmt.Errorf("destroy: %w", err)
		}
	}
	return nil
}

// threadSampler polls the Threads: line of /proc/self/status and keeps the
// peak. It reads into a fixed buffer: a read every few milliseconds, no
// allocation.
type threadSampler struct {
	peak atomic.Int64
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func startThreadSampler(every time.Duration) *threadSampler {
	s := &threadSampler{done: make(chan struct{})}
	fd, err := unix.Open("/proc/self/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return s
	}
	var buf [4096]byte
	sample := func() {
		n, err := unix.Pread(fd, buf[:], 0)
		if err != nil || n <= 0 {
			return
		}
		if v := parseThreads(buf[:n]); v > s.peak.Load() {
			s.peak.Store(v)
		}
	}
	sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer unix.Close(fd)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return s
}

// stop ends the sampling (once) and returns the peak.
func (s *threadSampler) stop() int {
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
	})
	return int(s.peak.Load())
}

// parseThreads finds "Threads:\t<n>" in the text of /proc/<pid>/status.
func parseThreads(status []byte) int64 {
	key := []byte("\nThreads:")
	i := bytes.Index(status, key)
	if i < 0 {
		return 0
	}
	rest := status[i+len(key):]
	var v int64
	seen := false
	for _, c := range rest {
		switch {
		case c == ' ' || c == '\t':
			if seen {
				return v
			}
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			seen = true
		default:
			return v
		}
	}
	return v
}

// The child-process protocol.

// childEnv, set to "1", makes this binary (or the test binary) run one
// goroutine case: a childSpec as JSON on stdin, a childReply as JSON on stdout.
const childEnv = "URINGAIO_BENCH_CHILD"

type childSpec struct {
	Case   Case   `json:"case"`
	File   string `json:"file"`
	Size   int64  `json:"size"`
	FSType string `json:"fs_type"`
	Row    Row    `json:"row"` // the row as the parent started it (notes, residency)
}

type childReply struct {
	Row   Row    `json:"row"`
	Error string `json:"error,omitempty"` // the protocol failed (not the case: that is Row.Error)
}

// isChild reports whether this process was started as a goroutine-case child.
func isChild() bool { return os.Getenv(childEnv) == "1" }

// childMain runs one goroutine case as the parent asked and writes its row.
func childMain(in io.Reader, out io.Writer) int {
	var spec childSpec
	reply := func(r childReply) int {
		if err := json.NewEncoder(out).Encode(r); err != nil {
			return 1
		}
		return 0
	}
	if err := json.NewDecoder(in).Decode(&spec); err != nil {
		return reply(childReply{Error: "reading the case: " + err.Error()})
	}
	env := &runEnv{data: &dataFile{Path: spec.File, Size: spec.Size, FSType: spec.FSType}}
	row := spec.Row
	cs := spec.Case
	limit := cs.Warmup + cs.Runtime + 2*time.Minute
	watchdog := time.AfterFunc(limit, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "bench child: case %s has not finished after %v; the library seems stuck. Goroutines:\n%s\n", cs, limit, buf[:n])
		os.Exit(3)
	})
	defer watchdog.Stop()
	runtime.GC()
	finishErr(&row, runGoroutines(cs, env, &row))
	return reply(childReply{Row: row})
}

// runInChild runs a goroutine case in a child process and returns its row.
func runInChild(cs Case, env *runEnv, row Row) Row {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	spec, err := json.Marshal(childSpec{Case: cs, File: env.data.Path, Size: env.data.Size, FSType: env.data.FSType, Row: row})
	if err != nil {
		row.Error = err.Error()
		return row
	}
	ctx, cancel := context.WithTimeout(context.Background(), cs.Warmup+cs.Runtime+3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if _, set := os.LookupEnv("GORACE"); !set {
		// A -race build (the tests) would otherwise sleep a second at exit.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Stdin = bytes.NewReader(spec)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep childReply
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		msg := fmt.Sprintf("child process for %s: no reply (%v)", cs, err)
		if runErr != nil {
			msg = fmt.Sprintf("child process for %s: %v", cs, runErr)
		}
		if s := firstLine(stderr.String()); s != "" {
			msg += ": " + s
		}
		row.Error = msg
		return row
	}
	if rep.Error != "" {
		row.Error = "child process: " + rep.Error
		return row
	}
	if runErr != nil && rep.Row.Error == "" {
		rep.Row.Error = "child process: " + runErr.Error()
	}
	rep.Row.Child = true
	return rep.Row
}
