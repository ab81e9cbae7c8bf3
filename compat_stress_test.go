//go:build linux

package uringaio_test

// Stress cases of the compatibility suite: several goroutines submit a mix of
// requests, cancel at random and reap, and every event is checked against the
// one invariant of docs/contract.md §2.1 — each accepted IOCB produces exactly
// one event, delivered exactly once (by GetEvents or by a successful Cancel),
// never two, never zero — plus the data it carries: file reads return the
// file's bytes, pipe reads return only their pipe's bytes, and no byte written
// to a pipe is lost to a canceled read.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("stress/mixed", func(t *testing.T, be string) {
		runStress(t, be, stressConfig{perSubmitter: 2500})
	})
	registerCompat("stress/destroy-midway", func(t *testing.T, be string) {
		runStress(t, be, stressConfig{perSubmitter: 2500, destroyAfter: 3000})
	})
}

const (
	stressSubmitters = 4
	stressReapers    = 2
	stressCancelers  = 2
	stressPool       = 16 // IOCBs per submitter; maxEvents is exactly the sum
	stressPipes      = 8
	stressFileSize   = 64 << 10
	stressReadSize   = 512
	stressDeadline   = 30 * time.Second // against hangs only
)

type stressConfig struct {
	perSubmitter int // requests each submitter has accepted before it stops
	// destroyAfter > 0: Destroy the context once that many requests were
	// accepted, while everything runs; undelivered events are then dropped.
	destroyAfter int64
}

type stressKind uint8

const (
	skNop stressKind = iota
	skFileRead
	skDirectRead
	skPipeRead
	skPipeReadv
	skPoll
	skKinds
)

var stressKindNames = [...]string{"nop", "file-read", "direct-read", "pipe-read", "pipe-readv", "poll"}

// stressReq is one accepted submission of an IOCB.
type stressReq struct {
	cb    *aio.IOCB
	owner int
	kind  stressKind
	pipe  int
	off   int64
	size  int
}

type stressPipe struct {
	r, w    int
	marker  byte
	written atomic.Int64 // bytes the feeder wrote
	read    atomic.Int64 // bytes delivered by pipe reads
}

type stress struct {
	t     *testing.T
	c     *aio.Context
	cfg   stressConfig
	file  []byte
	fd    int
	dfd   int // the same file, O_DIRECT
	pipes []*stressPipe
	pools []chan *aio.IOCB
	bufs  map[*aio.IOCB][]byte // each IOCB's own buffer (512 bytes)
	dbufs map[*aio.IOCB][]byte // each IOCB's own aligned buffer (directAlign bytes)

	nextID     atomic.Uint64
	accepted   atomic.Int64
	stopSubmit atomic.Bool // submitters done (or the context destroyed)
	destroyed  atomic.Bool
	abort      chan struct{}
	abortOnce  sync.Once

	mu     sync.Mutex
	live   map[uint64]*stressReq // accepted, event not yet delivered
	seen   map[uint64]string     // delivered: how
	errs   []string
	counts map[string]int
}

func (s *stress) fail(format string, args ...any) {
	s.mu.Lock()
	if len(s.errs) < 20 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
	s.abortOnce.Do(func() { close(s.abort) })
}

func (s *stress) aborted() bool {
	select {
	case <-s.abort:
		return true
	default:
		return false
	}
}

func (s *stress) count(what string) {
	s.mu.Lock()
	s.counts[what]++
	s.mu.Unlock()
}

// liveCount is how many accepted requests have no delivered event yet.
func (s *stress) liveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// finished says the workers may stop: nothing more will be submitted and
// every accepted request was delivered (or the context is gone).
func (s *stress) finished() bool {
	if s.aborted() || s.destroyed.Load() {
		return true
	}
	return s.stopSubmit.Load() && s.liveCount() == 0
}

func runStress(t *testing.T, be string, cfg stressConfig) {
	s := &stress{
		t:      t,
		cfg:    cfg,
		file:   pattern(stressFileSize, 77),
		abort:  make(chan struct{}),
		live:   map[uint64]*stressReq{},
		seen:   map[uint64]string{},
		counts: map[string]int{},
		bufs:   map[*aio.IOCB][]byte{},
		dbufs:  map[*aio.IOCB][]byte{},
	}
	path := tempFileWith(t, s.file)
	s.fd = openFD(t, path, unix.O_RDONLY)
	s.dfd = openFD(t, path, unix.O_RDONLY|unix.O_DIRECT)
	for i := 0; i < stressPipes; i++ {
		// Half the read ends block, half do not; the feeder's write ends
		// never block.
		flags := 0
		if i%2 == 1 {
			flags = unix.O_NONBLOCK
		}
		r, w := newPipe(t, flags)
		if err := unix.SetNonblock(w, true); err != nil {
			t.Fatal(err)
		}
		s.pipes = append(s.pipes, &stressPipe{r: r, w: w, marker: byte('a' + i)})
	}
	for i := 0; i < stressSubmitters; i++ {
		pool := make(chan *aio.IOCB, stressPool)
		for j := 0; j < stressPool; j++ {
			cb := &aio.IOCB{}
			s.bufs[cb] = make([]byte, stressReadSize)
			s.dbufs[cb] = alignedBuf(t, directAlign)
			pool <- cb
		}
		s.pools = append(s.pools, pool)
	}
	// Not newContext: if the library hangs, the test must report it and
	// let the rest of the suite run, not hang again in a cleanup Destroy.
	c, err := setupRetry(t, stressSubmitters*stressPool, be)
	if err != nil {
		t.Fatalf("SetupWithOptions: %v", err)
	}
	s.c = c
	hung := false
	t.Cleanup(func() {
		if !hung {
			_ = c.Destroy()
		}
	})

	var subWG, workWG sync.WaitGroup
	for i := 0; i < stressSubmitters; i++ {
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			s.submitter(i)
		}()
	}
	for i := 0; i < stressReapers; i++ {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			s.reaper()
		}()
	}
	for i := 0; i < stressCancelers; i++ {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			s.canceler(i)
		}()
	}
	workWG.Add(1)
	go func() {
		defer workWG.Done()
		s.feeder()
	}()
	if cfg.destroyAfter > 0 {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			s.destroyer()
		}()
	}

	start := time.Now()
	allDone := make(chan struct{})
	go func() {
		subWG.Wait()
		s.stopSubmit.Store(true)
		workWG.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
	case <-time.After(stressDeadline):
		s.fail("not finished after %v: %d accepted, %d live; outstanding: %s",
			stressDeadline, s.accepted.Load(), s.liveCount(), s.describeLive())
		select {
		case <-allDone:
		case <-time.After(eventWait):
			// Something is stuck inside the library: leave the context
			// (and the stuck goroutines) alone and report.
			hung = true
			t.Fatalf("stress hung (goroutines still inside the library %v after the abort):\n  %s",
				eventWait, stressJoinLines(s.errs))
		}
	}
	if s.aborted() {
		t.Fatalf("stress failed:\n  %s", stressJoinLines(s.errs))
	}
	t.Logf("%s: %d accepted in %v; %v", be, s.accepted.Load(), time.Since(start).Round(time.Millisecond), s.counts)

	if cfg.destroyAfter == 0 {
		s.checkComplete()
	} else {
		s.checkDestroyed()
	}
}

// describeLive lists the outstanding requests, for a failure message.
func (s *stress) describeLive() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	n := 0
	for id, r := range s.live {
		if n == 10 {
			fmt.Fprintf(&b, " …")
			break
		}
		fmt.Fprintf(&b, " [Data %d: %s pipe %d fd %d]", id, stressKindNames[r.kind], r.pipe, r.cb.FD)
		n++
	}
	return b.String()
}

func stressJoinLines(ss []string) string {
	var b bytes.Buffer
	for i, x := range ss {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// checkComplete runs after a stress without Destroy: exactly one event per
// accepted request, nothing more, and every pipe byte accounted for.
func (s *stress) checkComplete() {
	t := s.t
	if len(s.live) != 0 {
		t.Fatalf("%d accepted requests never delivered", len(s.live))
	}
	if got, want := int64(len(s.seen)), s.accepted.Load(); got != want {
		t.Fatalf("%d events delivered for %d accepted requests", got, want)
	}
	if want := int64(stressSubmitters * s.cfg.perSubmitter); s.accepted.Load() != want {
		t.Fatalf("%d requests accepted, want %d", s.accepted.Load(), want)
	}
	if s.counts["cancel-ok"] == 0 || s.counts["getevents"] == 0 {
		t.Fatalf("the stress did not exercise both ways of delivery: %v", s.counts)
	}
	expectNoEvents(t, s.c)
	if err := s.c.Destroy(); err != nil {
		t.Fatalf("Destroy after the stress: %v", err)
	}
	for i, p := range s.pipes {
		rest := drainNow(t, p.r)
		if bytes.Count(rest, []byte{p.marker}) != len(rest) {
			t.Fatalf("pipe %d holds bytes of another pipe", i)
		}
		if w, r := p.written.Load(), p.read.Load(); w != r+int64(len(rest)) {
			t.Fatalf("pipe %d: %d bytes written, %d delivered by reads, %d left: %d lost",
				i, w, r, len(rest), w-r-int64(len(rest)))
		}
	}
}

// checkDestroyed runs after a stress that Destroy interrupted: no event was
// delivered twice, every call now answers EINVAL, and no request still reads
// the pipes.
func (s *stress) checkDestroyed() {
	t := s.t
	if !s.destroyed.Load() {
		t.Fatalf("the destroyer never ran (%d accepted)", s.accepted.Load())
	}
	if n, err := s.c.Submit(&aio.IOCB{Op: aio.OpNop}); n != 0 || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Submit after Destroy = %d, %v; want 0, EINVAL", n, err)
	}
	if _, err := s.c.GetEvents(0, make([]aio.Event, 1), dur(0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("GetEvents after Destroy: %v, want EINVAL", err)
	}
	wantErrno(t, s.c.Destroy(), unix.EINVAL, "Destroy after Destroy")
	for i, p := range s.pipes {
		writeFull(t, p.w, []byte("END"))
		rest := drainNow(t, p.r)
		if !bytes.HasSuffix(rest, []byte("END")) {
			t.Fatalf("pipe %d: data written after Destroy was eaten (%d bytes left)", i, len(rest))
		}
		body := rest[:len(rest)-3]
		if bytes.Count(body, []byte{p.marker}) != len(body) {
			t.Fatalf("pipe %d holds bytes of another pipe", i)
		}
		if w, r := p.written.Load(), p.read.Load(); r+int64(len(body)) > w {
			t.Fatalf("pipe %d: %d written, but %d delivered and %d left", i, w, r, len(body))
		}
	}
}

func (s *stress) submitter(id int) {
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	pool := s.pools[id]
	done := 0
	for done < s.cfg.perSubmitter && !s.aborted() && !s.destroyed.Load() {
		k := 1 + rng.IntN(4)
		k = min(k, s.cfg.perSubmitter-done)
		var batch []*aio.IOCB
		var reqs []*stressReq
		for len(batch) < k {
			var cb *aio.IOCB
			if len(batch) == 0 {
				select {
				case cb = <-pool:
				case <-s.abort:
					return
				case <-time.After(10 * time.Millisecond):
					// Re-check whether the context went away.
					if s.destroyed.Load() {
						return
					}
					continue
				}
			} else {
				select {
				case cb = <-pool:
				default:
				}
				if cb == nil {
					break
				}
			}
			r := s.prepare(rng, cb, id)
			batch = append(batch, cb)
			reqs = append(reqs, r)
		}
		// Register before Submit: the event may be delivered before Submit
		// returns.
		s.mu.Lock()
		for _, r := range reqs {
			s.live[r.cb.Data] = r
		}
		s.mu.Unlock()
		n, err := s.c.Submit(batch...)
		if n != len(batch) || err != nil {
			if !(n == 0 && errors.Is(err, unix.EINVAL) && s.cfg.destroyAfter > 0) {
				s.fail("Submit(%d) = %d, %v; want all accepted (at most maxEvents are ever outstanding)", len(batch), n, err)
			}
			s.mu.Lock()
			for _, r := range reqs[n:] {
				delete(s.live, r.cb.Data)
			}
			s.mu.Unlock()
			for _, cb := range batch[n:] {
				pool <- cb
			}
			if n == 0 {
				return
			}
		}
		done += n
		s.accepted.Add(int64(n))
		if rng.IntN(8) == 0 {
			runtime.Gosched()
		}
	}
}

// prepare fills cb for a random kind of request under a fresh id.
func (s *stress) prepare(rng *rand.Rand, cb *aio.IOCB, owner int) *stressReq {
	r := &stressReq{cb: cb, owner: owner, kind: stressKind(rng.IntN(int(skKinds)))}
	buf := s.bufs[cb]
	// Reset the public fields one by one: an IOCB must not be copied over,
	// and a canceler may still hold this pointer.
	cb.Op, cb.FD, cb.Buf, cb.Bufs, cb.Offset, cb.PollEvents = 0, 0, nil, nil, 0, 0
	cb.Data = s.nextID.Add(1)
	switch r.kind {
	case skNop:
		cb.Op = aio.OpNop
	case skFileRead:
		r.off = rng.Int64N(stressFileSize - stressReadSize)
		r.size = stressReadSize
		cb.Op, cb.FD, cb.Buf, cb.Offset = aio.OpRead, s.fd, buf, r.off
	case skDirectRead:
		r.off = rng.Int64N(stressFileSize/directAlign) * directAlign
		r.size = directAlign
		cb.Op, cb.FD, cb.Buf, cb.Offset = aio.OpRead, s.dfd, s.dbufs[cb], r.off
	case skPipeRead:
		r.pipe = rng.IntN(stressPipes)
		r.size = 1 + rng.IntN(48)
		cb.Op, cb.FD, cb.Buf = aio.OpRead, s.pipes[r.pipe].r, buf[:r.size]
	case skPipeReadv:
		r.pipe = rng.IntN(stressPipes)
		a, b := 1+rng.IntN(16), 1+rng.IntN(16)
		r.size = a + b
		cb.Op, cb.FD, cb.Bufs = aio.OpReadv, s.pipes[r.pipe].r, [][]byte{buf[:a], buf[a : a+b]}
	case skPoll:
		r.pipe = rng.IntN(stressPipes)
		cb.Op, cb.FD, cb.PollEvents = aio.OpPoll, s.pipes[r.pipe].r, unix.POLLIN
	}
	return r
}

// deliver checks one delivered event and gives its IOCB back to its owner.
func (s *stress) deliver(ev aio.Event, via string) {
	s.mu.Lock()
	r, ok := s.live[ev.Data]
	if !ok {
		prev, dup := s.seen[ev.Data]
		s.mu.Unlock()
		if dup {
			s.fail("event Data %d delivered twice: by %s, then by %s (%s)", ev.Data, prev, via, fmtEvent(ev))
		} else {
			s.fail("event for Data %d, which is not outstanding (%s via %s)", ev.Data, fmtEvent(ev), via)
		}
		return
	}
	if r.cb != ev.IOCB {
		s.mu.Unlock()
		s.fail("event Data %d carries IOCB %p, submitted with %p", ev.Data, ev.IOCB, r.cb)
		return
	}
	delete(s.live, ev.Data)
	s.seen[ev.Data] = via
	s.counts[via]++
	s.mu.Unlock()

	kind := stressKindNames[r.kind]
	canceled := ev.Res == -int64(unix.ECANCELED)
	switch {
	case via == "cancel-ok":
		if !canceled {
			s.fail("successful Cancel of a %s returned Res %s", kind, fmtRes(ev.Res))
		}
	case canceled:
		s.fail("GetEvents delivered a %s with -ECANCELED; only Cancel may end a request here", kind)
	case ev.Res2 != 0:
		s.fail("%s: Res2 = %d", kind, ev.Res2)
	default:
		s.checkResult(r, ev)
	}
	s.pools[r.owner] <- r.cb
}

func (s *stress) checkResult(r *stressReq, ev aio.Event) {
	kind := stressKindNames[r.kind]
	switch r.kind {
	case skNop:
		if ev.Res != 0 {
			s.fail("nop Res %s", fmtRes(ev.Res))
		}
	case skFileRead, skDirectRead:
		if ev.Res != int64(r.size) {
			s.fail("%s at %d: Res %s, want %d", kind, r.off, fmtRes(ev.Res), r.size)
		} else if !bytes.Equal(r.cb.Buf, s.file[r.off:r.off+int64(r.size)]) {
			s.fail("%s at %d: wrong bytes", kind, r.off)
		}
	case skPipeRead, skPipeReadv:
		if ev.Res <= 0 || ev.Res > int64(r.size) {
			s.fail("%s of %d bytes: Res %s", kind, r.size, fmtRes(ev.Res))
			return
		}
		got := r.cb.Buf
		if r.kind == skPipeReadv {
			got = append(append([]byte{}, r.cb.Bufs[0]...), r.cb.Bufs[1]...)
		}
		p := s.pipes[r.pipe]
		if bytes.Count(got[:ev.Res], []byte{p.marker}) != int(ev.Res) {
			s.fail("%s on pipe %d returned bytes that are not its pipe's", kind, r.pipe)
		}
		p.read.Add(ev.Res)
	case skPoll:
		if ev.Res <= 0 || ev.Res&unix.POLLIN == 0 {
			s.fail("poll Res %s, want POLLIN set", fmtRes(ev.Res))
		}
	}
}

func (s *stress) reaper() {
	evs := make([]aio.Event, 8)
	for !s.finished() {
		n, err := s.c.GetEvents(1, evs, dur(20*time.Millisecond))
		if err != nil {
			if errors.Is(err, unix.EINVAL) && s.cfg.destroyAfter > 0 {
				return // destroyed under us
			}
			s.fail("GetEvents: %v", err)
			return
		}
		if n < 0 || n > len(evs) {
			s.fail("GetEvents returned %d", n)
			return
		}
		for _, ev := range evs[:n] {
			s.deliver(ev, "getevents")
		}
	}
}

func (s *stress) canceler(id int) {
	rng := rand.New(rand.NewPCG(uint64(100+id), uint64(time.Now().UnixNano())))
	for !s.finished() {
		s.mu.Lock()
		var cb *aio.IOCB
		if len(s.live) > 0 {
			skip := rng.IntN(len(s.live))
			for _, r := range s.live {
				if skip == 0 {
					cb = r.cb
					break
				}
				skip--
			}
		}
		s.mu.Unlock()
		if cb == nil {
			runtime.Gosched()
			continue
		}
		ev, err := s.c.Cancel(cb)
		switch {
		case err == nil:
			s.deliver(ev, "cancel-ok")
		case errors.Is(err, unix.EAGAIN):
			s.count("cancel-eagain")
		case errors.Is(err, unix.EINVAL):
			// Delivered meanwhile (or the context destroyed).
			s.count("cancel-einval")
		default:
			s.fail("Cancel: %v, want nil, EAGAIN or EINVAL", err)
			return
		}
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond) // pacing, not synchronization
		}
	}
}

// feeder writes small runs of each pipe's marker byte to random pipes, so that
// pipe reads and polls complete; it never blocks.
func (s *stress) feeder() {
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	chunk := make([]byte, 64)
	for !s.finished() {
		p := s.pipes[rng.IntN(len(s.pipes))]
		n := 1 + rng.IntN(len(chunk))
		for i := range chunk[:n] {
			chunk[i] = p.marker
		}
		m, err := unix.Write(p.w, chunk[:n])
		if err == nil {
			p.written.Add(int64(m))
		} else if err != unix.EAGAIN {
			s.fail("feeding pipe: %v", err)
			return
		}
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Microsecond) // pacing, not synchronization
	}
}

// destroyer destroys the context once cfg.destroyAfter requests were accepted.
func (s *stress) destroyer() {
	for s.accepted.Load() < s.cfg.destroyAfter {
		if s.aborted() || s.stopSubmit.Load() {
			if !s.aborted() {
				s.fail("submitters finished before %d requests were accepted", s.cfg.destroyAfter)
			}
			return
		}
		time.Sleep(time.Millisecond) // polling a counter
	}
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = s.c.Destroy()
	}()
	select {
	case <-done:
	case <-time.After(eventWait):
		s.fail("Destroy under load did not return within %v", eventWait)
		<-done
	}
	if err != nil {
		s.fail("Destroy under load: %v", err)
	}
	s.destroyed.Store(true)
}
