//go:build linux

package uringaio_test

// Issue 8, the reliability items: Destroy never hangs behind a Do that its
// cancellation ended; a request is bound to the file its fd named at Submit;
// exiting threads never cancel a request; out-of-range fds are refused, never
// truncated; the IOCB's owner is not a data race between Contexts; requests
// progress with nobody waiting.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// relHangLimit is how long a call that must return gets before the test calls
// it hung. It detects hangs; it is not a performance bound.
const relHangLimit = 10 * time.Second

// relWithin runs fn in a goroutine and reports whether it returned within d.
// On false the goroutine is left behind (the test is failing anyway).
func relWithin(d time.Duration, fn func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// ---- item 1: Destroy wakes itself when a Do frees its slot ----

// TestRelContractDestroyWakesReaper: Destroy cancels requests that Do (and
// File.ReadAt, built on Do) wait for; those calls then free their slots, and
// Destroy — possibly blocked in the kernel as the reaper, waiting for every
// slot to be free — must notice. Two scenarios, many rounds each, every
// Destroy bounded by a watchdog: one Do on an empty pipe plus one GetEvents
// waiter; three concurrent Do-style calls and no GetEvents.
func TestRelContractDestroyWakesReaper(t *testing.T) {
	const rounds = 40
	relEachBackend(t, func(t *testing.T, be string) {
		t.Run("do-and-getevents", func(t *testing.T) {
			for round := range rounds {
				relDestroyRound(t, be, round, 1, true)
			}
		})
		t.Run("three-do", func(t *testing.T) {
			for round := range rounds {
				relDestroyRound(t, be, round, 3, false)
			}
		})
	})
}

// relDestroyRound starts nDo calls that wait on empty pipes (the third one is
// a File.ReadAt), and a GetEvents waiter if getEvents, then destroys the
// Context. Destroy must return nil, every call must end canceled, and the
// GetEvents waiter must get EINVAL, each within relHangLimit.
func relDestroyRound(t *testing.T, be string, round, nDo int, getEvents bool) {
	c, err := setupRetry(t, 8, be)
	if err != nil {
		t.Fatalf("SetupWithOptions: %v", err)
	}
	// No t.Cleanup(Destroy): a second Destroy after a hung first one could
	// hang the cleanup too. A Context left behind here belongs to a failure.
	var fds []int
	var files []*os.File
	type result struct {
		n   int
		err error
	}
	results := make(chan result, nDo+1)
	for i := range nDo {
		var p [2]int
		flags := unix.O_CLOEXEC
		if i == 1 {
			flags |= unix.O_NONBLOCK
		}
		if err := unix.Pipe2(p[:], flags); err != nil {
			t.Fatalf("pipe2: %v", err)
		}
		fds = append(fds, p[1])
		if i == 2 {
			// File.ReadAt on a blocking pipe (not registered with Go's
			// poller, so its Close never waits for the call).
			f := os.NewFile(uintptr(p[0]), "contract-pipe")
			files = append(files, f)
			af := aio.NewFile(c, f)
			go func() {
				n, err := af.ReadAt(make([]byte, 16), 0)
				results <- result{n, err}
			}()
			continue
		}
		fds = append(fds, p[0])
		cb := &aio.IOCB{Op: aio.OpRead, FD: p[0], Buf: make([]byte, 16), Data: uint64(i)}
		go func() {
			ev, err := c.Do(context.Background(), cb)
			results <- result{int(ev.Res), err}
		}()
	}
	gotEvents := make(chan error, 1)
	if getEvents {
		go func() {
			_, err := c.GetEvents(1, make([]aio.Event, 4), nil)
			gotEvents <- err
		}()
	}
	// Wait until every call's request is accepted, then let them settle in
	// their waits.
	deadline := time.Now().Add(eventWait)
	for c.Stats().Requests < uint64(nDo) {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: %d of %d requests submitted after %v", round, c.Stats().Requests, nDo, eventWait)
		}
		time.Sleep(100 * time.Microsecond)
	}
	time.Sleep(2 * time.Millisecond)

	var derr error
	if !relWithin(relHangLimit, func() { derr = c.Destroy() }) {
		t.Fatalf("round %d (%d Do, GetEvents waiter %v): Destroy did not return within %v: hung",
			round, nDo, getEvents, relHangLimit)
	}
	if derr != nil {
		t.Fatalf("round %d: Destroy = %v", round, derr)
	}
	timer := time.NewTimer(relHangLimit)
	defer timer.Stop()
	for i := range nDo {
		select {
		case r := <-results:
			if !relIsErrno(r.err, unix.ECANCELED) || r.n > 0 {
				t.Fatalf("round %d: a Do-style call ended with %d, %v; want ECANCELED (Destroy canceled it)", round, r.n, r.err)
			}
		case <-timer.C:
			t.Fatalf("round %d: %d of %d Do-style calls still waiting %v after Destroy", round, nDo-i, nDo, relHangLimit)
		}
	}
	if getEvents {
		select {
		case err := <-gotEvents:
			relWantErr(t, fmt.Sprintf("round %d: GetEvents interrupted by Destroy", round), err, unix.EINVAL)
		case <-timer.C:
			t.Fatalf("round %d: GetEvents still waiting %v after Destroy", round, relHangLimit)
		}
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	for _, f := range files {
		f.Close()
	}
}

// ---- item 2: a request is bound to the file its fd named at Submit ----

// TestRelContractFDReuse: a read (or a write to a full pipe) is submitted, and
// before anything reaps, its descriptor is closed and a new file B put on the
// same number (dup3). The old request must end with -EBADF or complete on the
// original file; it must never touch B: B's data all stays in B, and a
// regular file that took a writer's number never receives the write.
func TestRelContractFDReuse(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		for _, kind := range []string{"pipe-blocking", "pipe-nonblocking", "os-pipe", "socketpair", "eventfd"} {
			t.Run("read/"+kind, func(t *testing.T) { relFDReuseRead(t, be, kind) })
		}
		for _, kind := range []string{"pipe-blocking", "pipe-nonblocking", "os-pipe", "socketpair"} {
			t.Run("write/"+kind, func(t *testing.T) { relFDReuseWrite(t, be, kind) })
		}
	})
}

// relReuseEnds makes a file of kind and returns the descriptor the request
// uses (r), and one that reaches the same file from the other side (w): the
// write end of a pipe, the peer of a socket, a duplicate of an eventfd. Both
// are closed when the test ends, by whoever owns the number then (an
// *os.File for os-pipe).
func relReuseEnds(t *testing.T, kind string) (r, w int) {
	t.Helper()
	switch kind {
	case "pipe-blocking", "pipe-nonblocking":
		p := relNewPipe(t, kind == "pipe-nonblocking")
		return p.r, p.w
	case "os-pipe":
		_, _, rfd, wfd := osPipe(t)
		if !isNonblock(t, rfd) || !isNonblock(t, wfd) {
			t.Fatal("os.Pipe gave blocking descriptors")
		}
		return rfd, wfd
	case "socketpair":
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("socketpair: %v", err)
		}
		t.Cleanup(func() { unix.Close(sp[0]); unix.Close(sp[1]) })
		return sp[0], sp[1]
	case "eventfd":
		fd := newEventfd(t)
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("dup eventfd: %v", err)
		}
		t.Cleanup(func() { unix.Close(dup) })
		return fd, dup
	}
	t.Fatalf("unknown kind %q", kind)
	return -1, -1
}

// relPutOn puts the file of fd on number num (closing what num held) and
// closes fd: num's owner now closes the new file.
func relPutOn(t *testing.T, fd, num int) {
	t.Helper()
	if err := unix.Dup3(fd, num, unix.O_CLOEXEC); err != nil {
		t.Fatalf("dup3(%d, %d): %v", fd, num, err)
	}
	if err := unix.Close(fd); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func relU64(v uint64) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, v)
	return b
}

func relFDReuseRead(t *testing.T, be, kind string) {
	c := relCtx(t, be, 4)
	num, aw := relReuseEnds(t, kind)
	n := 64
	dataA, dataB := []byte("AAAA-the-original-file"), []byte("BBBB-the-new-file-on-the-same-number")
	if kind == "eventfd" {
		n, dataA, dataB = 8, relU64(3), relU64(5)
	}
	cb := &aio.IOCB{Op: aio.OpRead, FD: num, Buf: make([]byte, n), Data: 1}
	relSubmit(t, c, cb)
	// No GetEvents (nor Error, which may reap) before the number is reused.

	// B, holding its data, takes the number.
	var br, bw int
	switch kind {
	case "eventfd":
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatalf("eventfd: %v", err)
		}
		br, bw = fd, fd
		writeFull(t, bw, dataB)
	case "socketpair":
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("socketpair: %v", err)
		}
		t.Cleanup(func() { unix.Close(sp[1]) })
		br, bw = sp[0], sp[1]
		writeFull(t, bw, dataB)
	default:
		flags := unix.O_CLOEXEC
		if kind != "pipe-blocking" {
			flags |= unix.O_NONBLOCK
		}
		var p [2]int
		if err := unix.Pipe2(p[:], flags); err != nil {
			t.Fatalf("pipe2: %v", err)
		}
		t.Cleanup(func() { unix.Close(p[1]) })
		br, bw = p[0], p[1]
		writeFull(t, bw, dataB)
	}
	relPutOn(t, br, num)

	// The original file becomes readable: the old request may complete
	// there. If nothing holds the original file's read side any more (the
	// request let go of it), the write fails with EPIPE, which is fine.
	if _, err := unix.Write(aw, dataA); err != nil && err != unix.EPIPE && err != unix.ECONNRESET {
		t.Fatalf("write to the original file: %v", err)
	}
	evs := relCollect(t, c, 1, 5*time.Second)
	ev := evs[0]
	if ev.IOCB != cb {
		t.Fatalf("event %+v is not the request's", ev)
	}
	switch {
	case ev.Res == -int64(unix.EBADF):
	case ev.Res > 0:
		got := cb.Buf[:ev.Res]
		if !bytes.Equal(got, dataA[:min(int(ev.Res), len(dataA))]) {
			t.Errorf("%s: the request on the reused number read %q (Res %d); the original file held %q, the new one %q",
				kind, got, ev.Res, dataA, dataB)
		}
	default:
		t.Errorf("%s: the request on the reused number ended with %d (%v); want -EBADF or the original file's data",
			kind, ev.Res, ev.Err())
	}
	// B still holds all of its data.
	if got := drainNow(t, num); !bytes.Equal(got, dataB) {
		t.Errorf("%s: the new file on the reused number holds %q, want all of %q: the old request took its data",
			kind, got, dataB)
	}
}

func relFDReuseWrite(t *testing.T, be, kind string) {
	c := relCtx(t, be, 4)
	ar, num := relReuseEnds(t, kind)
	filled := fillPipe(t, num)
	marker := []byte("MARKER-issue-8-write-on-a-reused-number")
	cb := &aio.IOCB{Op: aio.OpWrite, FD: num, Buf: marker, Data: 2}
	relSubmit(t, c, cb)
	// No GetEvents (nor Error) before the number is reused.

	// An unrelated regular file takes the writer's number.
	path := filepath.Join(t.TempDir(), "unrelated")
	f, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	relPutOn(t, f, num)

	// Room in the original file: the old write may complete there.
	drained := drainNow(t, ar)
	evs := relCollect(t, c, 1, 5*time.Second)
	ev := evs[0]
	if ev.IOCB != cb {
		t.Fatalf("event %+v is not the request's", ev)
	}
	drained = append(drained, drainNow(t, ar)...)
	switch {
	case ev.Res == -int64(unix.EBADF):
		if len(drained) != filled {
			t.Errorf("%s: the write ended -EBADF but the original file got %d bytes after the %d of the fill", kind, len(drained)-filled, filled)
		}
	case ev.Res == int64(len(marker)):
		if len(drained) != filled+len(marker) || !bytes.HasSuffix(drained, marker) {
			t.Errorf("%s: the write reports %d bytes, but the original file got %d bytes after the %d of the fill", kind, ev.Res, len(drained)-filled, filled)
		}
	default:
		t.Errorf("%s: the write on the reused number ended with %d (%v); want -EBADF or the whole write on the original file",
			kind, ev.Res, ev.Err())
	}
	if got := preadAll(t, num, 1<<16, 0); len(got) != 0 {
		t.Errorf("%s: the unrelated regular file that took the number now holds %q (marker in it: %v)",
			kind, got, bytes.Contains(got, marker))
	}
}

// ---- item 6: exiting threads never cancel a request ----

// TestRelContractThreadExitRetries: requests are submitted from a thread that
// exits; then, 24 times, each pipe gets a byte (a wake-up for the waiting
// request, whose arming thread is gone) that the test takes back at once, and
// a thread that then exits reaps (and so rearms) them. No request may end with
// an -ECANCELED nobody asked for, however many threads exit; a request that
// took a byte is legitimate and is submitted again. At the end the data
// comes and each request completes with it.
func TestRelContractThreadExitRetries(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		c := relCtx(t, be, 8)
		p1, p2, p3 := relNewPipe(t, false), relNewPipe(t, true), relNewPipe(t, false)
		rd1 := &aio.IOCB{Op: aio.OpRead, FD: p1.r, Buf: make([]byte, 16), Data: 1}
		rd2 := &aio.IOCB{Op: aio.OpRead, FD: p2.r, Buf: make([]byte, 16), Data: 2}
		poll := &aio.IOCB{Op: aio.OpPoll, FD: p3.r, PollEvents: unix.POLLIN, Data: 3}
		var n int
		var err error
		relOnDyingThread(t, func() { n, err = c.Submit(rd1, rd2, poll) })
		if n != 3 || err != nil {
			t.Fatalf("Submit from a locked thread = %d, %v", n, err)
		}
		var bad []string
		threads := 1
		for round := range 24 {
			for _, p := range []*relPipe{p1, p2, p3} {
				p.write(t, []byte{byte(round)})
			}
			// A read whose pipe the test found empty took the byte itself:
			// its event must come, and this round waits for it. (How soon it
			// comes is not the point: on a loaded machine the library's
			// retry may be scheduled long after a short GetEvents gave up,
			// and a later round or the final collection would then see it.)
			owed := map[*aio.IOCB]bool{}
			for _, x := range []struct {
				p  *relPipe
				cb *aio.IOCB
			}{{p1, rd1}, {p2, rd2}, {p3, nil}} {
				if got := drainNow(t, x.p.r); len(got) == 0 && x.cb != nil {
					owed[x.cb] = true
				}
			}
			evs := make([]aio.Event, 3)
			deadline := time.Now().Add(5 * time.Second)
			for first := true; first || len(owed) > 0; first = false {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: a read took its pipe's byte but its event did not come within 5s (%d owed)", round, len(owed))
				}
				relOnDyingThread(t, func() { n, err = c.GetEvents(1, evs, relTimeout(30*time.Millisecond)) })
				threads++
				if err != nil {
					t.Fatalf("round %d: GetEvents: %v", round, err)
				}
				for _, ev := range evs[:n] {
					took := owed[ev.IOCB]
					delete(owed, ev.IOCB)
					if ev.Res < 0 {
						bad = append(bad, fmt.Sprintf("round %d: Data %d Res %d (%v)", round, ev.Data, ev.Res, ev.Err()))
						continue
					}
					// It took the byte (or saw it, for the poll) before the
					// test did: legitimate. Wait again.
					if ev.IOCB.Op == aio.OpRead && (!took || ev.Res != 1 || ev.IOCB.Buf[0] != byte(round)) {
						bad = append(bad, fmt.Sprintf("round %d: read %d bytes %q (the test found the pipe empty: %v), want the byte %d",
							round, ev.Res, ev.IOCB.Buf[:ev.Res], took, round))
					}
					relSubmit(t, c, ev.IOCB)
				}
			}
		}
		if len(bad) > 0 {
			t.Fatalf("requests ended although nobody canceled them (%d threads exited): %q", threads, bad)
		}
		p1.write(t, []byte("one"))
		p2.write(t, []byte("two!"))
		p3.write(t, []byte("3"))
		got := relCollect(t, c, 3, 5*time.Second)
		for _, ev := range got {
			switch ev.IOCB {
			case rd1:
				if ev.Res != 3 || string(rd1.Buf[:3]) != "one" {
					t.Logf("blocking pipe read got %q", rd1.Buf[:max(ev.Res, 0)])
					t.Errorf("blocking pipe read: %+v (%v)", ev, ev.Err())
				}
			case rd2:
				if ev.Res != 4 || string(rd2.Buf[:4]) != "two!" {
					t.Logf("non-blocking pipe read got %q", rd2.Buf[:max(ev.Res, 0)])
					t.Errorf("non-blocking pipe read: %+v (%v)", ev, ev.Err())
				}
			case poll:
				if ev.Res != unix.POLLIN {
					t.Errorf("poll: %+v (%v), want POLLIN", ev, ev.Err())
				}
			default:
				t.Fatalf("unexpected event %+v", ev)
			}
		}
	})
}

// ---- item 7: out-of-range descriptors are refused, never truncated ----

// TestRelContractFDRange: a descriptor outside the int32 range whose low 32
// bits name an open fd is refused everywhere and never reaches that fd:
// CancelFD gives EBADF and cancels nothing; Submit gives EINVAL; ReadAt and
// WriteAt give EINVAL (pinned: they are built on Submit's refusal) and move
// no data.
func TestRelContractFDRange(t *testing.T) {
	span, ok := intFrom(1 << 32) // 1<<32 as an int, where int can hold it
	if !ok {
		t.Skip(int32Note)
	}
	relEachBackend(t, func(t *testing.T, be string) {
		c := relCtx(t, be, 4)
		p := relNewPipe(t, false)
		for _, bad := range []int{p.r + span, p.r + 2*span, p.r - span, p.r - 2*span} {
			cb := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 8), Data: 1}
			relSubmit(t, c, cb)
			relNoEvents(t, c, 10*time.Millisecond)
			res, err := c.CancelFD(bad, nil)
			if !relIsErrno(err, unix.EBADF) {
				t.Errorf("CancelFD(%#x, nil) with fd %d pending = %v, %v; want EBADF", bad, p.r, res, err)
			}
			res, err = c.CancelFD(bad, cb)
			if !relIsErrno(err, unix.EBADF) && !relIsErrno(err, unix.EINVAL) {
				t.Errorf("CancelFD(%#x, cb) = %v, %v; want EBADF (or EINVAL: cb.FD differs)", bad, res, err)
			}
			if err := c.Error(cb); !relIsErrno(err, unix.EINPROGRESS) {
				t.Errorf("after CancelFD(%#x): Error(read on fd %d) = %v, want EINPROGRESS", bad, p.r, err)
			}
			p.write(t, []byte("12345678"))
			ev := relOne(t, c, cb)
			if ev.Res != 8 || string(cb.Buf) != "12345678" {
				t.Fatalf("after CancelFD(%#x): read on fd %d ended %d (%v), want its 8 bytes", bad, p.r, ev.Res, ev.Err())
			}
		}

		for _, fd := range []int{p.r + span, -2 * span, p.r - span} {
			cb := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 8)}
			n, err := c.Submit(cb)
			if n != 0 {
				t.Fatalf("Submit(FD %#x) accepted it", fd)
			}
			wantCallError(t, err, "Submit", unix.EINVAL, fmt.Sprintf("Submit(FD %#x)", fd))
		}

		// ReadAt and WriteAt never reach fd through a number that truncates
		// to it.
		ctx := context.Background()
		p.write(t, []byte("stay"))
		var n int
		var rerr error
		if !relWithin(relHangLimit, func() { n, rerr = c.ReadAt(ctx, p.r+span, make([]byte, 4), 0) }) {
			t.Fatalf("ReadAt(fd + 1<<32) hung")
		}
		if n != 0 || !relIsErrno(rerr, unix.EINVAL) {
			t.Errorf("ReadAt(fd + 1<<32) = %d, %v; want 0, EINVAL", n, rerr)
		}
		if got := drainNow(t, p.r); string(got) != "stay" {
			t.Errorf("after ReadAt(fd + 1<<32) the pipe holds %q, want %q", got, "stay")
		}
		if !relWithin(relHangLimit, func() { n, rerr = c.WriteAt(ctx, p.w+span, []byte("leak"), 0) }) {
			t.Fatalf("WriteAt(fd + 1<<32) hung")
		}
		if n != 0 || !relIsErrno(rerr, unix.EINVAL) {
			t.Errorf("WriteAt(fd + 1<<32) = %d, %v; want 0, EINVAL", n, rerr)
		}
		if got := drainNow(t, p.r); len(got) != 0 {
			t.Errorf("WriteAt(fd + 1<<32) wrote %q into fd %d", got, p.w)
		}
	})
}

// ---- item 8: the IOCB's owner is not shared state between Contexts ----

// TestRelContractIOCBOwnerRace: one IOCB is submitted and reaped on Context A
// in a loop while other goroutines ask Context B about it (Cancel, Error),
// which must answer EINVAL (never submitted to B). Under -race the two
// Contexts must not race on the IOCB's bookkeeping.
func TestRelContractIOCBOwnerRace(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		a := relCtx(t, be, 4)
		b := relCtx(t, be, 4)
		cb := &aio.IOCB{Op: aio.OpNop, Data: 9}
		var stop atomic.Bool
		var wg sync.WaitGroup
		var mu sync.Mutex
		var wrong []string
		report := func(s string) {
			mu.Lock()
			if len(wrong) < 10 {
				wrong = append(wrong, s)
			}
			mu.Unlock()
		}
		defer func() {
			stop.Store(true)
			wg.Wait()
		}()
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if _, err := b.Cancel(cb); !relIsErrno(err, unix.EINVAL) {
						report(fmt.Sprintf("B.Cancel = %v", err))
					}
					if err := b.Error(cb); !relIsErrno(err, unix.EINVAL) {
						report(fmt.Sprintf("B.Error = %v", err))
					}
				}
			}()
		}
		evs := make([]aio.Event, 1)
		for i := range 300 {
			relSubmit(t, a, cb)
			n, err := a.GetEvents(1, evs, relTimeout(5*time.Second))
			if n != 1 || err != nil || evs[0].IOCB != cb || evs[0].Res != 0 {
				t.Fatalf("round %d: A.GetEvents = %d, %v, %+v", i, n, err, evs[0])
			}
		}
		stop.Store(true)
		wg.Wait()
		if len(wrong) > 0 {
			t.Fatalf("Context B answered for an IOCB of Context A: %q", wrong)
		}
	})
}

// ---- item 9: requests progress with nobody waiting ----

// TestRelContractProgress: after Submit, with no GetEvents, Do or Error
// call, a buffered write reaches a new regular file, a write waiting on a
// full pipe delivers its bytes once the reader drains the pipe, and a read
// waiting on an empty pipe consumes what the writer writes. The events are
// collected only at the end.
func TestRelContractProgress(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		t.Run("file-write", func(t *testing.T) {
			c := relCtx(t, be, 4)
			fd := openFD(t, filepath.Join(tempDir(t), "new"), unix.O_RDWR|unix.O_CREAT)
			data := relPattern(64<<10, 5)
			wr := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: data, Data: 1}
			relSubmit(t, c, wr)
			deadline := time.Now().Add(eventWait)
			for !bytes.Equal(preadAll(t, fd, len(data), 0), data) {
				if time.Now().After(deadline) {
					t.Fatalf("the write was not in the file %v after Submit, with nobody in GetEvents", eventWait)
				}
				time.Sleep(time.Millisecond)
			}
			if ev := relOne(t, c, wr); ev.Res != int64(len(data)) {
				t.Fatalf("write event %+v (%v), want %d", ev, ev.Err(), len(data))
			}
		})
		for _, nonblock := range []bool{false, true} {
			mode := map[bool]string{false: "blocking", true: "nonblocking"}[nonblock]
			t.Run("full-pipe-write/"+mode, func(t *testing.T) {
				c := relCtx(t, be, 4)
				p := relNewPipe(t, nonblock)
				filled := fillPipe(t, p.w)
				marker := []byte("progress-without-a-reaper")
				wr := &aio.IOCB{Op: aio.OpWrite, FD: p.w, Buf: marker, Data: 2}
				relSubmit(t, c, wr)
				// The reader drains the pipe; the write's bytes must follow
				// (readExactly fails after eventWait if they do not).
				got := readExactly(t, p.r, filled+len(marker))
				if !bytes.HasSuffix(got, marker) {
					t.Fatalf("the pipe delivered %q after the fill, want %q", got[filled:], marker)
				}
				if ev := relOne(t, c, wr); ev.Res != int64(len(marker)) {
					t.Fatalf("write event %+v (%v), want %d", ev, ev.Err(), len(marker))
				}
			})
			t.Run("empty-pipe-read/"+mode, func(t *testing.T) {
				c := relCtx(t, be, 4)
				p := relNewPipe(t, nonblock)
				rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 64), Data: 3}
				relSubmit(t, c, rd)
				time.Sleep(5 * time.Millisecond)
				msg := []byte("consumed-without-a-reaper")
				p.write(t, msg)
				deadline := time.Now().Add(eventWait)
				for {
					left, err := unix.IoctlGetInt(p.r, unix.TIOCINQ) // FIONREAD
					if err != nil {
						t.Fatalf("FIONREAD: %v", err)
					}
					if left == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d of %d bytes still in the pipe %v after the write, with nobody in GetEvents", left, len(msg), eventWait)
					}
					time.Sleep(time.Millisecond)
				}
				ev := relOne(t, c, rd)
				if ev.Res != int64(len(msg)) || !bytes.Equal(rd.Buf[:len(msg)], msg) {
					t.Fatalf("read event %+v (%v), buf %q; want %q", ev, ev.Err(), rd.Buf[:max(ev.Res, 0)], msg)
				}
			})
		}
	})
}
