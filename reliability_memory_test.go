//go:build linux

package uringaio_test

// Memory and leaks (issue 5): buffers and IOCBs the caller dropped survive
// garbage collection while the kernel holds them, and are released after; no
// descriptor, mapping or goroutine outlives a Context (goroutines: goleak in
// TestMain); Destroy with 10,000 outstanding requests frees everything.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// relOrphanPattern is what pipe i is fed in round r.
func relOrphanPattern(r, i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(r*31 + i*7 + j*13 + j/256)
	}
	return b
}

// relSubmitOrphans submits one read per pipe from buffers and IOCBs that
// nothing but the library references once it returns. Half are OpRead, half
// OpReadv of three buffers. Finalizers count any that the collector frees.
//
//go:noinline
func relSubmitOrphans(t *testing.T, c *aio.Context, pipes []*relPipe, freedCB, freedBuf *atomic.Int64) {
	for i, p := range pipes {
		cb := &aio.IOCB{FD: p.r, Data: uint64(i)}
		if i%2 == 0 {
			buf := make([]byte, 4096)
			runtime.SetFinalizer(&buf[0], func(*byte) { freedBuf.Add(1) })
			cb.Op, cb.Buf = aio.OpRead, buf
		} else {
			cb.Op, cb.Bufs = aio.OpReadv, [][]byte{make([]byte, 1000), make([]byte, 2000), make([]byte, 1096)}
		}
		runtime.SetFinalizer(cb, func(*aio.IOCB) { freedCB.Add(1) })
		if n, err := c.Submit(cb); n != 1 || err != nil {
			t.Fatalf("Submit = %d, %v", n, err)
		}
	}
}

// relChurnHeap runs the collector several times while allocating garbage, and
// returns live "poison" blocks (filled with 0xEE) that reuse whatever memory
// the collector freed: a kernel write into freed memory would show there.
func relChurnHeap() [][]byte {
	var poison [][]byte
	for range 5 {
		runtime.GC()
		for range 2048 {
			b := make([]byte, 4096)
			for i := range b {
				b[i] = 0xEE
			}
			poison = append(poison, b)
		}
		var garbage [][]byte
		for range 4096 {
			garbage = append(garbage, make([]byte, 1024))
		}
		runtime.KeepAlive(garbage)
	}
	runtime.GC()
	return poison
}

// TestRelMemoryGC: reads submitted from a function whose locals die survive
// runtime.GC and heavy allocation while they wait; when their pipes are fed,
// every byte arrives in the right buffer, no other memory is touched, and
// once delivered and dropped the IOCBs and buffers are collected (the library
// keeps nothing).
func TestRelMemoryGC(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		const n = 64
		c := relCtx(t, be, n)
		for round := range 3 {
			pipes := make([]*relPipe, n)
			for i := range pipes {
				pipes[i] = relNewPipe(t, round%2 == 1)
			}
			var freedCB, freedBuf atomic.Int64
			relSubmitOrphans(t, c, pipes, &freedCB, &freedBuf)
			poison := relChurnHeap()
			if f, b := freedCB.Load(), freedBuf.Load(); f != 0 || b != 0 {
				t.Fatalf("round %d: the collector freed %d IOCBs and %d buffers the kernel still holds", round, f, b)
			}
			for i, p := range pipes {
				p.write(t, relOrphanPattern(round, i, 4096))
			}
			evs := relCollect(t, c, n, 10*time.Second)
			seen := make(map[uint64]bool)
			for _, ev := range evs {
				if ev.IOCB == nil || ev.IOCB.Data != ev.Data || seen[ev.Data] || ev.Data >= n {
					t.Fatalf("round %d: bad event %+v", round, ev)
				}
				seen[ev.Data] = true
				if ev.Res != 4096 {
					t.Fatalf("round %d: read %d: Res %d (%v)", round, ev.Data, ev.Res, ev.Err())
				}
				var got []byte
				if ev.IOCB.Op == aio.OpRead {
					got = ev.IOCB.Buf
				} else {
					got = bytes.Join(ev.IOCB.Bufs, nil)
				}
				if want := relOrphanPattern(round, int(ev.Data), 4096); !bytes.Equal(got, want) {
					t.Fatalf("round %d: read %d delivered wrong bytes", round, ev.Data)
				}
			}
			for i, b := range poison {
				if !relAll(b, 0xEE) {
					t.Fatalf("round %d: unrelated memory (block %d) was overwritten", round, i)
				}
			}
			// Delivered and dropped: the library must let them go.
			clear(evs)
			deadline := time.Now().Add(5 * time.Second)
			for freedCB.Load() < n || freedBuf.Load() < n/2 {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: after delivery only %d of %d IOCBs and %d of %d buffers were collected: the library keeps them",
						round, freedCB.Load(), n, freedBuf.Load(), n/2)
				}
				runtime.GC()
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("%s: 3 rounds x %d orphaned reads (half readv) survived 5 forced GCs each with 40 MiB of churn; every byte right; all collected after delivery", be, n)
	})
}

func relAll(b []byte, v byte) bool {
	for _, x := range b {
		if x != v {
			return false
		}
	}
	return true
}

// relWorkload is a representative use of a Context: reads, writes, readv,
// polls, NOPs, fsyncs, Cancel, CancelFD, Do, ReadAt/WriteAt, then Destroy.
func relWorkload(t *testing.T, be string) {
	t.Helper()
	c, err := setupRetry(t, 128, be)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := relFile(t, dir, relPattern(1<<16, 5), unix.O_RDWR)
	pipes := []*relPipe{relNewPipe(t, false), relNewPipe(t, true)}
	evs := make([]aio.Event, 128)
	for iter := range 40 {
		var cbs []*aio.IOCB
		for i := range 24 {
			p := pipes[(i/6)%2]
			switch i % 6 {
			case 0:
				cbs = append(cbs, &aio.IOCB{Op: aio.OpRead, FD: file, Buf: make([]byte, 512), Offset: int64(i * 512)})
			case 1:
				cbs = append(cbs, &aio.IOCB{Op: aio.OpWrite, FD: file, Buf: relPattern(512, byte(iter)), Offset: int64(i * 512)})
			case 2:
				cbs = append(cbs, &aio.IOCB{Op: aio.OpReadv, FD: file, Bufs: [][]byte{make([]byte, 100), make([]byte, 200)}})
			case 3:
				cbs = append(cbs, &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN})
			case 4:
				cbs = append(cbs, &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 4)})
			default:
				cbs = append(cbs, &aio.IOCB{Op: aio.OpNop})
			}
		}
		cbs = append(cbs, &aio.IOCB{Op: aio.OpFdsync, FD: file})
		relSubmit(t, c, cbs...)
		pending := len(cbs)
		// cancel one poll, CancelFD one pipe, feed the other
		for _, cb := range cbs {
			if cb.Op == aio.OpPoll && cb.FD == pipes[0].r {
				if _, err := c.Cancel(cb); err == nil {
					pending--
				}
				break
			}
		}
		if _, err := c.CancelFD(pipes[0].r, nil); err != nil {
			t.Fatal(err)
		}
		pipes[1].write(t, make([]byte, 64))
		deadline := time.Now().Add(10 * time.Second)
		for pending > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("workload: %d requests never ended", pending)
			}
			k, err := c.GetEvents(1, evs, relTimeout(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			pending -= k
			if k == 0 {
				// a pipe read may still wait: feed again
				pipes[1].write(t, make([]byte, 64))
			}
		}
		// drain the fed pipe
		for {
			if _, err := unix.Read(pipes[1].r, make([]byte, 4096)); err != nil {
				break // EAGAIN: empty (the pipe is O_NONBLOCK)
			}
		}
		if _, err := c.WriteAt(context.Background(), file, relPattern(1000, 1), 70000); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadAt(context.Background(), file, make([]byte, 1000), 70000); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do(context.Background(), &aio.IOCB{Op: aio.OpNop}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pipes {
		p.close()
	}
}

// relSnapshot is the process's descriptors and mappings. The Go allocator
// grows the heap with nameless anonymous mappings at times of its own
// choosing, so those are counted apart (anon, reported, not compared); every
// other mapping — the binary, [stack], and any io_uring ring
// ("anon_inode:[io_uring]") or AIO ring ("/[aio]") — must match exactly.
type relSnapshot struct {
	fds, maps, anon, kernelMaps int
	lines                       []string
}

func relSnap(t *testing.T) relSnapshot {
	runtime.GC()
	m := relMaps(t)
	s := relSnapshot{fds: relCountFDs(t), kernelMaps: relKernelMaps(m)}
	for _, l := range m {
		// "[anon: Go: heap]" and the like (kernels with CONFIG_ANON_VMA_NAME)
		// are the allocator's too.
		if f := strings.Fields(l); len(f) >= 6 && !strings.HasPrefix(f[5], "[anon:") {
			s.maps++
			s.lines = append(s.lines, l)
		} else {
			s.anon++
		}
	}
	return s
}

func (s relSnapshot) same(o relSnapshot) bool {
	return s.fds == o.fds && s.maps == o.maps && s.kernelMaps == o.kernelMaps
}

func (s relSnapshot) String() string {
	return fmt.Sprintf("{fds %d, named mappings %d (kernel AIO %d), anonymous %d}", s.fds, s.maps, s.kernelMaps, s.anon)
}

// relMapsDiff lists the mappings only in a and only in b.
func relMapsDiff(a, b relSnapshot) string {
	in := func(l string, set []string) bool {
		for _, x := range set {
			if x == l {
				return true
			}
		}
		return false
	}
	var out []string
	for _, l := range a.lines {
		if !in(l, b.lines) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b.lines {
		if !in(l, a.lines) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRelMemoryFDsAndMaps: descriptors and mappings are the same before and
// after each backend's representative workload (measured after a warm-up
// round, so that the runtime's lazily made threads and arenas are there).
func TestRelMemoryFDsAndMaps(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		t.Run("warm-up", func(t *testing.T) { relWorkload(t, be) })
		before := relSnap(t)
		if before.kernelMaps != 0 {
			t.Fatalf("%d io_uring/aio mappings before the workload", before.kernelMaps)
		}
		// while a Context is alive its kernel mappings are visible (the
		// measurement can see a leak)
		c := relCtx(t, be, 8)
		if during := relSnap(t); during.kernelMaps == 0 || during.fds <= before.fds {
			t.Fatalf("a live %s Context shows %d kernel mappings, %d fds (before: %d)", be, during.kernelMaps, during.fds, before.fds)
		}
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			t.Run(fmt.Sprint("run-", i), func(t *testing.T) { relWorkload(t, be) })
		}
		after := relSnap(t)
		if !after.same(before) {
			t.Fatalf("%s: before %v, after 3 workloads %v\n%s", be, before, after, relMapsDiff(before, after))
		}
		t.Logf("%s: fds %d, named mappings %d (kernel AIO %d) the same before and after 3 workload runs (anonymous heap mappings %d -> %d)",
			be, after.fds, after.maps, after.kernelMaps, before.anon, after.anon)
	})
}

// TestRelMemoryDestroy10k: Destroy with 10,000 outstanding requests (pipe
// reads and polls, maxEvents 10000) returns nil, frees every descriptor and
// mapping, leaves every IOCB canceled (Error ECANCELED) and reusable, and no
// canceled read moved any data.
func TestRelMemoryDestroy10k(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		const n, npipes = 10000, 100
		// warm up the runtime (threads, arenas) with a round of the same size
		relDestroyMany(t, be, n, npipes, false)
		before := relSnap(t)
		took := relDestroyMany(t, be, n, npipes, true)
		after := relSnap(t)
		if !after.same(before) {
			t.Fatalf("%s: before %v, after Destroy of %d requests %v\n%s", be, before, n, after, relMapsDiff(before, after))
		}
		t.Logf("%s: Destroy with %d outstanding (%d polls, %d pipe reads) took %v; fds %d and named mappings %d back to baseline (anonymous heap mappings %d -> %d)",
			be, n, n/2, n/2, took, after.fds, after.maps, before.anon, after.anon)
	})
}

func relDestroyMany(t *testing.T, be string, n, npipes int, check bool) time.Duration {
	t.Helper()
	pipes := make([]*relPipe, npipes)
	for i := range pipes {
		pipes[i] = relNewPipe(t, i%2 == 1)
	}
	cbs := make([]*aio.IOCB, n)
	for i := range cbs {
		p := pipes[i%npipes]
		if i%2 == 0 {
			cbs[i] = &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: uint64(i)}
		} else {
			cbs[i] = &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 16), Data: uint64(i)}
		}
	}
	c, err := setupRetry(t, n, be)
	if err != nil {
		t.Fatal(err)
	}
	relSubmit(t, c, cbs...)
	if n, err := c.Submit(&aio.IOCB{Op: aio.OpNop}); n != 0 || !relIsErrno(err, unix.EAGAIN) {
		t.Fatalf("Submit beyond maxEvents = %d, %v", n, err)
	}
	if check {
		if k := relKernelMaps(relMaps(t)); k == 0 {
			t.Fatal("no kernel mapping visible while the Context lives")
		}
	}
	start := time.Now()
	err = c.Destroy()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Destroy with %d outstanding = %v", n, err)
	}
	for _, cb := range cbs {
		if err := c.Error(cb); !errors.Is(err, unix.ECANCELED) {
			t.Fatalf("Error(request %d dropped by Destroy) = %v, want ECANCELED", cb.Data, err)
		}
	}
	// No canceled read took data: what is written now is all still there.
	for i, p := range pipes {
		msg := []byte(fmt.Sprintf("pipe-%03d", i))
		p.write(t, msg)
		got := make([]byte, 64)
		k, err := unix.Read(p.r, got)
		if err != nil || !bytes.Equal(got[:k], msg) {
			t.Fatalf("pipe %d after Destroy: read %q, %v; want %q", i, got[:max(k, 0)], err, msg)
		}
	}
	if !check {
		for _, p := range pipes {
			p.close()
		}
		return took
	}
	// Reusable: a new Context takes all of them again (and Destroy again),
	// then all as NOPs, each delivered once.
	c2, err := setupRetry(t, n, be)
	if err != nil {
		t.Fatal(err)
	}
	relSubmit(t, c2, cbs...)
	if err := c2.Destroy(); err != nil {
		t.Fatal(err)
	}
	c3, err := setupRetry(t, n, be)
	if err != nil {
		t.Fatal(err)
	}
	for _, cb := range cbs {
		cb.Op, cb.Buf, cb.PollEvents = aio.OpNop, nil, 0
	}
	relSubmit(t, c3, cbs...)
	seen := make([]bool, n)
	evs := make([]aio.Event, 1024)
	for got := 0; got < n; {
		k, err := c3.GetEvents(1, evs, relTimeout(10*time.Second))
		if err != nil || k == 0 {
			t.Fatalf("GetEvents = %d, %v after %d of %d", k, err, got, n)
		}
		for _, ev := range evs[:k] {
			if seen[ev.Data] || ev.Res != 0 {
				t.Fatalf("event %+v twice or failed", ev)
			}
			seen[ev.Data] = true
		}
		got += k
	}
	if err := c3.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pipes {
		p.close()
	}
	return took
}
