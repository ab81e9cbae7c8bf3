//go:build linux

package uringaio_test

// The POSIX aio_cancel surface (docs/contract.md §6): CancelFD and Error, on
// every backend.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("cancelfd/ebadf", cfdTestEBADF)
	registerCompat("cancelfd/einval-fd-mismatch", cfdTestMismatch)
	registerCompat("cancelfd/einval-not-submitted", cfdTestNotSubmitted)
	registerCompat("cancelfd/einval-destroyed", cfdTestDestroyed)
	registerCompat("cancelfd/all-canceled", cfdTestAllCanceled)
	registerCompat("cancelfd/all-done", cfdTestAllDone)
	registerCompat("cancelfd/not-canceled-file", cfdTestNotCanceledAll)
	registerCompat("cancelfd/not-canceled-file-one", cfdTestNotCanceledOne)
	registerCompat("cancelfd/one-by-one-then-all", cfdTestOneByOne)
	registerCompat("cancelfd/two-fds", cfdTestTwoFDs)
	registerCompat("cancelfd/race-completions", cfdTestRace)
	registerCompat("cancelfd/error-states", cfdTestErrorStates)
	registerCompat("cancelfd/error-polling-sees-completion", cfdTestErrorPolling)
	registerCompat("cancelfd/closed-descriptor", cfdTestClosedDescriptor)
}

// cfdECANCELED is a canceled request's Res.
const cfdECANCELED = -int64(unix.ECANCELED)

// cfdReads returns k pipe (or file) reads on fd, each with its own buffer of
// size bytes and Data = base+i.
func cfdReads(fd, k, size int, base uint64) []*aio.IOCB {
	cbs := make([]*aio.IOCB, k)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, size), Data: base + uint64(i)}
	}
	return cbs
}

// cfdWantError fails unless c.Error(cb) is want (nil or exactly that errno).
func cfdWantError(t testing.TB, c *aio.Context, cb *aio.IOCB, want error, what string) {
	t.Helper()
	got := c.Error(cb)
	if want == nil {
		if got != nil {
			t.Fatalf("%s: Error() = %v, want nil", what, got)
		}
		return
	}
	if got == nil || !errors.Is(got, want) {
		t.Fatalf("%s: Error() = %v, want %v", what, got, want)
	}
	var errno unix.Errno
	if errors.As(got, &errno) && errno != want {
		t.Fatalf("%s: Error() errno = %v, want %v", what, errno, want)
	}
}

// cfdWantResult fails unless CancelFD answered want with a nil error.
func cfdWantResult(t testing.TB, got aio.CancelResult, err error, want aio.CancelResult, what string) {
	t.Helper()
	if err != nil || got != want {
		t.Fatalf("%s = %v, %v; want %v, nil", what, got, err, want)
	}
}

// cfdWantRefused fails unless CancelFD refused with errno (a *aio.CallError
// naming CancelFD) and answered NoCancelResult with it: a result read before
// the error must not say Canceled, NotCanceled or AllDone (contract §6.1,
// where aio_cancel(3) returns -1).
func cfdWantRefused(t testing.TB, got aio.CancelResult, err error, errno unix.Errno, what string) {
	t.Helper()
	wantCallError(t, err, "CancelFD", errno, what)
	if got != aio.NoCancelResult {
		t.Fatalf("%s = %v, %v; want NoCancelResult with the error", what, got, err)
	}
}

// cfdErrorMatches reports whether Error's answer e agrees with an event's Res:
// nil for Res >= 0, else exactly the errno -Res.
// cfdAnswerAgrees fails the test unless CancelFD's answer res agrees with the
// events it led to: Canceled needs a canceled request, AllDone none, and
// NotCanceled one that ended with data or readiness (a pipe read or poll can
// always be stopped while it waits; one that CancelFD found finishing could
// not be).
func cfdAnswerAgrees(t *testing.T, round int, res aio.CancelResult, nCan, nData int) {
	t.Helper()
	switch res {
	case aio.Canceled:
		if nCan == 0 {
			t.Fatalf("round %d: CancelFD said Canceled but nothing was", round)
		}
	case aio.AllDone:
		if nCan != 0 {
			t.Fatalf("round %d: CancelFD said AllDone but %d were canceled", round, nCan)
		}
	case aio.NotCanceled:
		if nData == 0 {
			t.Fatalf("round %d: CancelFD said NotCanceled but nothing ended with data or readiness", round)
		}
	default:
		t.Fatalf("round %d: CancelFD answered %v", round, res)
	}
}

func cfdErrorMatches(e error, res int64) bool {
	if res >= 0 {
		return e == nil
	}
	var errno unix.Errno
	return errors.As(e, &errno) && errno == unix.Errno(-res)
}

// cfdTestEBADF: a descriptor that is not open gives EBADF, whatever cb is.
func cfdTestEBADF(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	closed := unusedFD(t)
	c := newContext(t, be, 8)
	// A pending read, so that the context is not idle.
	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
	mustSubmit(t, c, cb)
	for _, fd := range []int{-1, -1000, closed, 1 << 30} {
		res, err := c.CancelFD(fd, nil)
		cfdWantRefused(t, res, err, unix.EBADF, fmt.Sprintf("CancelFD(%d, nil)", fd))
		bad := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 8)}
		res, err = c.CancelFD(fd, bad)
		cfdWantRefused(t, res, err, unix.EBADF, fmt.Sprintf("CancelFD(%d, cb with that FD)", fd))
	}
	// The pending read was not touched.
	cfdWantError(t, c, cb, unix.EINPROGRESS, "pending read after EBADF calls")
	res, err := c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r, nil)")
	wantEvent(t, reapN(t, c, 1)[0], cb, cfdECANCELED, "canceled read")
}

// cfdTestMismatch: cb.FD != fd gives EINVAL and cancels nothing.
func cfdTestMismatch(t *testing.T, be string) {
	r1, _ := newPipe(t, 0)
	r2, _ := newPipe(t, 0)
	c := newContext(t, be, 8)
	a := &aio.IOCB{Op: aio.OpRead, FD: r1, Buf: make([]byte, 8), Data: 1}
	b := &aio.IOCB{Op: aio.OpRead, FD: r2, Buf: make([]byte, 8), Data: 2}
	mustSubmit(t, c, a, b)
	res, err := c.CancelFD(r2, a)
	cfdWantRefused(t, res, err, unix.EINVAL, "CancelFD(r2, cb on r1)")
	res, err = c.CancelFD(r1, b)
	cfdWantRefused(t, res, err, unix.EINVAL, "CancelFD(r1, cb on r2)")
	cfdWantError(t, c, a, unix.EINPROGRESS, "a after EINVAL")
	cfdWantError(t, c, b, unix.EINPROGRESS, "b after EINVAL")
	expectNoEvents(t, c)
	res, err = c.CancelFD(r1, a)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r1, a)")
	res, err = c.CancelFD(r2, b)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r2, b)")
	evs := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, evs[a], a, cfdECANCELED, "a")
	wantEvent(t, evs[b], b, cfdECANCELED, "b")
}

// cfdTestNotSubmitted: an IOCB never submitted to this Context gives EINVAL;
// so does one submitted to another Context.
func cfdTestNotSubmitted(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 8)
	other := newContext(t, be, 8)
	never := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8)}
	res, err := c.CancelFD(r, never)
	cfdWantRefused(t, res, err, unix.EINVAL, "CancelFD(r, never submitted)")
	foreign := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 7}
	mustSubmit(t, other, foreign)
	res, err = c.CancelFD(r, foreign)
	cfdWantRefused(t, res, err, unix.EINVAL, "CancelFD(r, cb of another Context)")
	// Nothing of c's is on r; the other Context's read is not c's business.
	res, err = c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, nil) on c")
	cfdWantError(t, other, foreign, unix.EINPROGRESS, "foreign read")
	res, err = other.CancelFD(r, foreign)
	cfdWantResult(t, res, err, aio.Canceled, "other.CancelFD(r, foreign)")
	wantEvent(t, reapN(t, other, 1)[0], foreign, cfdECANCELED, "foreign read")
}

// cfdTestDestroyed: CancelFD on a destroyed Context gives EINVAL.
func cfdTestDestroyed(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 8)
	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8)}
	mustSubmit(t, c, cb)
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	res, err := c.CancelFD(r, nil)
	cfdWantRefused(t, res, err, unix.EINVAL, "CancelFD(r, nil) after Destroy")
	res, err = c.CancelFD(r, cb)
	cfdWantRefused(t, res, err, unix.EINVAL, "CancelFD(r, cb) after Destroy")
}

// cfdTestAllCanceled: every pending request on the fd (reads, a poll) is
// canceled; each is notified once through GetEvents with -ECANCELED; requests
// on the other end of the pipe are untouched.
func cfdTestAllCanceled(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 16)
	cbs := cfdReads(r, 4, 16, 0)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 100}
	cbs = append(cbs, poll)
	vec := &aio.IOCB{Op: aio.OpReadv, FD: r, Bufs: [][]byte{make([]byte, 4), make([]byte, 4)}, Data: 101}
	cbs = append(cbs, vec)
	mustSubmit(t, c, cbs...)
	// A poll on the write end (POLLIN never comes for a write end): not on r.
	wpoll := &aio.IOCB{Op: aio.OpPoll, FD: w, PollEvents: unix.POLLIN, Data: 200}
	mustSubmit(t, c, wpoll)
	for _, cb := range cbs {
		cfdWantError(t, c, cb, unix.EINPROGRESS, fmt.Sprintf("Data %d before CancelFD", cb.Data))
	}
	res, err := c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r, nil)")
	// Decided on return: Error says ECANCELED before any GetEvents.
	for _, cb := range cbs {
		cfdWantError(t, c, cb, unix.ECANCELED, fmt.Sprintf("Data %d after CancelFD", cb.Data))
	}
	cfdWantError(t, c, wpoll, unix.EINPROGRESS, "poll on the write end")
	evs := byIOCB(t, reapN(t, c, len(cbs)))
	for _, cb := range cbs {
		ev, ok := evs[cb]
		if !ok {
			t.Fatalf("no event for Data %d", cb.Data)
		}
		wantEvent(t, ev, cb, cfdECANCELED, fmt.Sprintf("Data %d", cb.Data))
		if !errors.Is(ev.Err(), unix.ECANCELED) {
			t.Fatalf("Data %d: Err() = %v, want ECANCELED", cb.Data, ev.Err())
		}
		cfdWantError(t, c, cb, unix.ECANCELED, fmt.Sprintf("Data %d after delivery", cb.Data))
	}
	expectNoEvents(t, c)
	// Nothing is eaten: data written now is all still in the pipe.
	writeFull(t, w, []byte("still here"))
	wantBytes(t, readExactly(t, r, 10), []byte("still here"), "pipe data after CancelFD")
	res, err = c.CancelFD(w, nil)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(w, nil)")
	wantEvent(t, reapN(t, c, 1)[0], wpoll, cfdECANCELED, "poll on the write end")
}

// cfdTestAllDone: nothing outstanding on fd gives AllDone, for cb == nil and
// for a cb that completed (delivered or not yet delivered).
func cfdTestAllDone(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	other, _ := newPipe(t, 0)
	c := newContext(t, be, 8)
	res, err := c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, nil) on a fresh Context")

	// Pending work on another fd does not count.
	busy := &aio.IOCB{Op: aio.OpRead, FD: other, Buf: make([]byte, 8), Data: 9}
	mustSubmit(t, c, busy)
	res, err = c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, nil) with a read pending on another fd")

	// Completed, event not yet delivered.
	writeFull(t, w, []byte("12345678"))
	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
	mustSubmit(t, c, cb)
	cfdSettle(t, c, cb)
	res, err = c.CancelFD(r, cb)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, cb) completed, not delivered")
	res, err = c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, nil) completed, not delivered")
	ev := reapN(t, c, 1)[0]
	wantEvent(t, ev, cb, 8, "read")
	wantBytes(t, cb.Buf, []byte("12345678"), "read data")
	res, err = c.CancelFD(r, cb)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, cb) delivered")
	cfdWantError(t, c, busy, unix.EINPROGRESS, "read on the other fd")
}

// cfdSettle waits until cb has completed without delivering its event: Error
// reads state only, so it has the Context take completions from the kernel by
// running Do on a ready one-byte pipe read (whoever waits reaps for everyone,
// and public events go to the ready queue), until Error stops saying
// EINPROGRESS.
func cfdSettle(t *testing.T, c *aio.Context, cb *aio.IOCB) {
	t.Helper()
	pr, pw := newPipe(t, 0)
	deadline := time.Now().Add(eventWait)
	for errors.Is(c.Error(cb), unix.EINPROGRESS) {
		if time.Now().After(deadline) {
			t.Fatalf("request still in progress after %v", eventWait)
		}
		writeFull(t, pw, []byte{1})
		poke := &aio.IOCB{Op: aio.OpRead, FD: pr, Buf: make([]byte, 1)}
		if ev, err := c.Do(context.Background(), poke); err != nil || ev.Res != 1 {
			t.Fatalf("Do(ready pipe read) = %s, %v", fmtRes(ev.Res), err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// cfdDirectReads opens a file of k*size bytes on a real filesystem with
// O_DIRECT and returns k reads of size bytes covering it (page-aligned mmap
// buffers, created before the Context as the helpers require) and the data.
func cfdDirectReads(t *testing.T, k, size int) (int, []*aio.IOCB, []byte) {
	t.Helper()
	data := pattern(k*size, 3)
	path := filepath.Join(tempDir(t), "direct")
	fd := openFD(t, path, unix.O_RDWR|unix.O_CREAT)
	if n, err := unix.Pwrite(fd, data, 0); n != len(data) || err != nil {
		t.Fatalf("pwrite: %d, %v", n, err)
	}
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	dfd := openFD(t, path, unix.O_RDONLY|unix.O_DIRECT)
	bufs := alignedBuf(t, k*size)
	cbs := make([]*aio.IOCB, k)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Op: aio.OpRead, FD: dfd, Buf: bufs[i*size : (i+1)*size : (i+1)*size],
			Offset: int64(i * size), Data: uint64(i)}
	}
	return dfd, cbs, data
}

// cfdCheckFileCancel reaps every event of cbs after a CancelFD on a file that
// answered res, with after[i] = Error(cbs[i]) taken just after it returned,
// and checks that they agree: exactly one event each, either the full read
// with the right data or -ECANCELED; Error consistent with the event before
// and after delivery; and res consistent with the events. It returns the
// number of events with data and the number canceled.
func cfdCheckFileCancel(t *testing.T, c *aio.Context, cbs []*aio.IOCB, data []byte, res aio.CancelResult, after []error) (nData, nCan int) {
	t.Helper()
	evs := byIOCB(t, reapN(t, c, len(cbs)))
	inProgress := 0
	for i, cb := range cbs {
		ev, ok := evs[cb]
		if !ok {
			t.Fatalf("no event for read %d", i)
		}
		switch {
		case ev.Res == cfdECANCELED:
			nCan++
			// A canceled request was decided inside CancelFD.
			if !errors.Is(after[i], unix.ECANCELED) {
				t.Fatalf("read %d: canceled, but Error() right after CancelFD was %v", i, after[i])
			}
		case ev.Res == int64(len(cb.Buf)):
			nData++
			if after[i] != nil && !errors.Is(after[i], unix.EINPROGRESS) {
				t.Fatalf("read %d: completed, but Error() right after CancelFD was %v", i, after[i])
			}
			wantBytes(t, cb.Buf, data[cb.Offset:cb.Offset+int64(len(cb.Buf))], fmt.Sprintf("read %d", i))
		default:
			t.Fatalf("read %d: Res = %s, want %d or -ECANCELED", i, fmtRes(ev.Res), len(cb.Buf))
		}
		if errors.Is(after[i], unix.EINPROGRESS) {
			inProgress++
		}
		if e := c.Error(cb); !cfdErrorMatches(e, ev.Res) {
			t.Fatalf("read %d: Error() = %v after an event with Res %s", i, e, fmtRes(ev.Res))
		}
	}
	switch res {
	case aio.Canceled:
		if nCan == 0 || inProgress > 0 {
			t.Fatalf("CancelFD said Canceled, but %d events were -ECANCELED and %d reads were still in progress", nCan, inProgress)
		}
	case aio.NotCanceled:
		if nData == 0 {
			t.Fatal("CancelFD said NotCanceled, but every read was canceled")
		}
	case aio.AllDone:
		if nCan > 0 {
			t.Fatalf("CancelFD said AllDone, but %d reads were canceled", nCan)
		}
	default:
		t.Fatalf("CancelFD answered %v", res)
	}
	expectNoEventsFor(t, c, 10*time.Millisecond)
	return nData, nCan
}

// cfdTestNotCanceledAll: O_DIRECT reads of a regular file in flight. Classic
// AIO can never stop them, io_uring only sometimes (when still queued in
// io-wq); so CancelFD(fd, nil) answers NotCanceled (some or all ran) or
// Canceled (io_uring stopped every one), or AllDone if they had all finished.
// Each read must end exactly once, and Error must agree. Over several rounds
// the uncancellable case must show up at least once: deep queues of 1 MiB
// direct reads keep some in flight right after Submit.
func cfdTestNotCanceledAll(t *testing.T, be string) {
	const k, size, rounds = 16, 1 << 20, 30
	fd, cbs, data := cfdDirectReads(t, k, size)
	c := newContext(t, be, k)
	seen := map[aio.CancelResult]int{}
	for round := 0; round < rounds; round++ {
		for _, cb := range cbs {
			clear(cb.Buf)
		}
		mustSubmit(t, c, cbs...)
		cfdLetWorkersStart(be)
		res, err := c.CancelFD(fd, nil)
		after := make([]error, k)
		for i, cb := range cbs {
			after[i] = c.Error(cb)
		}
		if err != nil {
			t.Fatalf("round %d: CancelFD(file, nil): %v", round, err)
		}
		cfdCheckFileCancel(t, c, cbs, data, res, after)
		seen[res]++
		res, err = c.CancelFD(fd, nil)
		cfdWantResult(t, res, err, aio.AllDone, "CancelFD(file, nil) after every event")
	}
	t.Logf("%s: over %d rounds: %v", be, rounds, seen)
	if seen[aio.NotCanceled] == 0 {
		t.Fatalf("CancelFD never answered NotCanceled for in-flight O_DIRECT reads in %d rounds: %v", rounds, seen)
	}
}

// cfdLetWorkersStart gives the threads backend's workers a moment to take
// their first requests into the kernel. The kernel backends start the reads
// inside Submit; the pool's workers are goroutines, and with GOMAXPROCS=1
// none of them runs until the test goroutine yields, so every read would
// still be queued (and always canceled) when CancelFD looks. A yield, not a
// sleep: a sleep long enough for a worker to start can also let a 1 MiB
// read finish.
func cfdLetWorkersStart(be string) {
	if be == "threads" {
		runtime.Gosched()
	}
}

// cfdTestNotCanceledOne: the same for cb != nil, asking about the read of a
// deep batch most surely in flight where nothing can stop it: on the kernel
// backends the last one (all are at the device); on threads the first not yet
// finished, which a worker runs (the last waits in the pool's queue, and a
// queued request is always canceled there: contract §9).
func cfdTestNotCanceledOne(t *testing.T, be string) {
	const k, size, rounds = 16, 1 << 20, 30
	fd, cbs, data := cfdDirectReads(t, k, size)
	c := newContext(t, be, k)
	seen := map[aio.CancelResult]int{}
	last := cbs[k-1]
	if be == "threads" {
		last = cbs[0]
	}
	for round := 0; round < rounds; round++ {
		mustSubmit(t, c, cbs...)
		cfdLetWorkersStart(be)
		if be == "threads" {
			// The workers take the reads in order: the first one not
			// finished is the one a worker is running (with GOMAXPROCS=1
			// the first may have finished before the test runs again).
			for _, cb := range cbs {
				if errors.Is(c.Error(cb), unix.EINPROGRESS) {
					last = cb
					break
				}
			}
		}
		res, err := c.CancelFD(fd, last)
		after := make([]error, k)
		for i, cb := range cbs {
			after[i] = c.Error(cb)
		}
		if err != nil {
			t.Fatalf("round %d: CancelFD(file, last): %v", round, err)
		}
		// Only one was asked about: the others are never canceled.
		nData, nCan := cfdCheckFileCancel(t, c, cbs, data, aio.NotCanceled, after)
		if nData < k-1 || nCan > 1 {
			t.Fatalf("round %d: %d reads with data and %d canceled; only the one asked about may be canceled", round, nData, nCan)
		}
		lastCanceled := nCan == 1
		switch res {
		case aio.Canceled:
			if !lastCanceled {
				t.Fatalf("round %d: CancelFD(file, last) said Canceled, but last read its data", round)
			}
		case aio.NotCanceled, aio.AllDone:
			if lastCanceled {
				t.Fatalf("round %d: CancelFD(file, last) said %v, but last ended with -ECANCELED", round, res)
			}
		default:
			t.Fatalf("round %d: CancelFD answered %v", round, res)
		}
		seen[res]++
	}
	t.Logf("%s: over %d rounds: %v", be, rounds, seen)
	if seen[aio.NotCanceled] == 0 {
		t.Fatalf("CancelFD(fd, cb) never answered NotCanceled for an in-flight O_DIRECT read in %d rounds: %v", rounds, seen)
	}
}

// cfdTestOneByOne: five reads on one pipe, three canceled one at a time with
// CancelFD(fd, cb), then the rest with CancelFD(fd, nil); Error checked for
// every IOCB after every step, every event delivered exactly once.
func cfdTestOneByOne(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 8)
	cbs := cfdReads(r, 5, 8, 10)
	mustSubmit(t, c, cbs...)
	canceled := make([]bool, len(cbs))
	check := func(step string) {
		t.Helper()
		for i, cb := range cbs {
			want := unix.EINPROGRESS
			if canceled[i] {
				want = unix.ECANCELED
			}
			cfdWantError(t, c, cb, want, fmt.Sprintf("%s: read %d", step, i))
		}
	}
	check("before")
	for i := 0; i < 3; i++ {
		res, err := c.CancelFD(r, cbs[i])
		cfdWantResult(t, res, err, aio.Canceled, fmt.Sprintf("CancelFD(r, read %d)", i))
		canceled[i] = true
		check(fmt.Sprintf("after canceling read %d", i))
		// A second try: completed (event not delivered yet, or delivered).
		res, err = c.CancelFD(r, cbs[i])
		cfdWantResult(t, res, err, aio.AllDone, fmt.Sprintf("CancelFD(r, read %d) again", i))
		if i == 0 {
			// Deliver the first one now; the next two stay undelivered.
			wantEvent(t, reapN(t, c, 1)[0], cbs[0], cfdECANCELED, "read 0")
			check("after delivering read 0")
			res, err = c.CancelFD(r, cbs[0])
			cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, read 0) delivered")
		}
	}
	res, err := c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r, nil) for the last two")
	canceled[3], canceled[4] = true, true
	check("after CancelFD(r, nil)")
	evs := byIOCB(t, reapN(t, c, 4))
	for i := 1; i < 5; i++ {
		ev, ok := evs[cbs[i]]
		if !ok {
			t.Fatalf("no event for read %d", i)
		}
		wantEvent(t, ev, cbs[i], cfdECANCELED, fmt.Sprintf("read %d", i))
	}
	check("after delivering all")
	expectNoEvents(t, c)
	res, err = c.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, nil) at the end")
	// The IOCBs are reusable, and the pipe lost nothing.
	writeFull(t, w, []byte("abcdefgh"))
	mustSubmit(t, c, cbs[2])
	wantEvent(t, reapN(t, c, 1)[0], cbs[2], 8, "reused read 2")
	wantBytes(t, cbs[2].Buf, []byte("abcdefgh"), "reused read 2 data")
	cfdWantError(t, c, cbs[2], nil, "reused read 2")
	cfdWantError(t, c, cbs[3], unix.ECANCELED, "read 3 still")
}

// cfdTestTwoFDs: canceling one fd leaves the requests on another alone; they
// complete with their data later.
func cfdTestTwoFDs(t *testing.T, be string) {
	ra, wa := newPipe(t, 0)
	rb, wb := newPipe(t, 0)
	c := newContext(t, be, 16)
	as := cfdReads(ra, 3, 8, 0)
	bs := cfdReads(rb, 3, 8, 100)
	bpoll := &aio.IOCB{Op: aio.OpPoll, FD: rb, PollEvents: unix.POLLIN, Data: 200}
	// Interleave them in one Submit.
	mustSubmit(t, c, as[0], bs[0], as[1], bs[1], bpoll, as[2], bs[2])
	res, err := c.CancelFD(ra, nil)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(ra, nil)")
	for i := range as {
		cfdWantError(t, c, as[i], unix.ECANCELED, fmt.Sprintf("a%d", i))
		cfdWantError(t, c, bs[i], unix.EINPROGRESS, fmt.Sprintf("b%d", i))
	}
	cfdWantError(t, c, bpoll, unix.EINPROGRESS, "b poll")
	evs := byIOCB(t, reapN(t, c, 3))
	for i, cb := range as {
		ev, ok := evs[cb]
		if !ok {
			t.Fatalf("no event for a%d (got %d events, all must be a's)", i, len(evs))
		}
		wantEvent(t, ev, cb, cfdECANCELED, fmt.Sprintf("a%d", i))
	}
	expectNoEvents(t, c)
	for i := range bs {
		cfdWantError(t, c, bs[i], unix.EINPROGRESS, fmt.Sprintf("b%d after a's delivered", i))
	}
	// Now feed b: three 8-byte messages; each read takes one (8-byte writes
	// are atomic), and the poll fires.
	msgs := map[string]bool{}
	for i := 0; i < 3; i++ {
		m := fmt.Sprintf("msg-%04d", i)
		msgs[m] = true
		writeFull(t, wb, []byte(m))
	}
	evs = byIOCB(t, reapN(t, c, 4))
	for i, cb := range bs {
		ev, ok := evs[cb]
		if !ok {
			t.Fatalf("no event for b%d", i)
		}
		wantEvent(t, ev, cb, 8, fmt.Sprintf("b%d", i))
		if !msgs[string(cb.Buf)] {
			t.Fatalf("b%d read %q, not one of the messages or one taken twice", i, cb.Buf)
		}
		delete(msgs, string(cb.Buf))
		cfdWantError(t, c, cb, nil, fmt.Sprintf("b%d", i))
	}
	pev, ok := evs[bpoll]
	if !ok {
		t.Fatal("no event for the poll on b")
	}
	if pev.Res&int64(unix.POLLIN) == 0 {
		t.Fatalf("poll on b: Res = %s, want POLLIN set", fmtRes(pev.Res))
	}
	// The a pipe kept nothing back and lost nothing.
	writeFull(t, wa, []byte("a-pipe-ok"))
	wantBytes(t, readExactly(t, ra, 9), []byte("a-pipe-ok"), "a pipe")
	for _, fd := range []int{ra, rb} {
		res, err := c.CancelFD(fd, nil)
		cfdWantResult(t, res, err, aio.AllDone, fmt.Sprintf("CancelFD(%d, nil) at the end", fd))
	}
}

// cfdTestRace: a writer feeds the pipe while CancelFD(fd, nil) runs. Every
// request ends exactly once, with one whole 8-byte message or -ECANCELED; Error
// agrees; and no message is lost or duplicated: those read plus those left in
// the pipe are exactly those written.
func cfdTestRace(t *testing.T, be string) {
	const k, rounds = 32, 25
	r, w := newPipe(t, 0)
	c := newContext(t, be, k)
	cbs := cfdReads(r, k, 8, 0)
	seen := map[aio.CancelResult]int{}
	for round := 0; round < rounds; round++ {
		mustSubmit(t, c, cbs...)
		nmsg := k/2 + round%k // sometimes fewer than k, sometimes more
		var wg sync.WaitGroup
		var werr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < nmsg; i++ {
				var m [8]byte
				binary.LittleEndian.PutUint32(m[:4], uint32(round))
				binary.LittleEndian.PutUint32(m[4:], uint32(i))
				if _, err := unix.Write(w, m[:]); err != nil {
					werr = err
					return
				}
				if i%4 == 3 {
					time.Sleep(time.Duration(round%5) * 20 * time.Microsecond)
				}
			}
		}()
		time.Sleep(time.Duration(round%7) * 50 * time.Microsecond)
		res, err := c.CancelFD(r, nil)
		if err != nil {
			t.Fatalf("round %d: CancelFD: %v", round, err)
		}
		seen[res]++
		wg.Wait()
		if werr != nil {
			t.Fatalf("writer: %v", werr)
		}
		evs := byIOCB(t, reapN(t, c, k))
		got := map[uint32]int{}
		nCan, nData := 0, 0
		for i, cb := range cbs {
			ev, ok := evs[cb]
			if !ok {
				t.Fatalf("round %d: no event for read %d", round, i)
			}
			switch ev.Res {
			case cfdECANCELED:
				nCan++
			case 8:
				if rr := binary.LittleEndian.Uint32(cb.Buf[:4]); rr != uint32(round) {
					t.Fatalf("round %d: read %d got a message of round %d", round, i, rr)
				}
				got[binary.LittleEndian.Uint32(cb.Buf[4:])]++
				nData++
			default:
				t.Fatalf("round %d: read %d: Res = %s, want 8 or -ECANCELED", round, i, fmtRes(ev.Res))
			}
			if e := c.Error(cb); !cfdErrorMatches(e, ev.Res) {
				t.Fatalf("round %d: read %d: Error() = %v for Res %s", round, i, e, fmtRes(ev.Res))
			}
		}
		cfdAnswerAgrees(t, round, res, nCan, nData)
		rest := drainNow(t, r)
		if len(rest)%8 != 0 {
			t.Fatalf("round %d: %d bytes left in the pipe, not whole messages", round, len(rest))
		}
		for len(rest) > 0 {
			got[binary.LittleEndian.Uint32(rest[4:8])]++
			rest = rest[8:]
		}
		for i := 0; i < nmsg; i++ {
			if got[uint32(i)] != 1 {
				t.Fatalf("round %d: message %d seen %d times (read or left in the pipe)", round, i, got[uint32(i)])
			}
		}
		if len(got) != nmsg {
			t.Fatalf("round %d: %d distinct messages, %d written", round, len(got), nmsg)
		}
		expectNoEventsFor(t, c, time.Millisecond)
	}
	t.Logf("%s: %v", be, seen)
}

// cfdTestErrorStates: Error through a request's life, as aio_error(3).
func cfdTestErrorStates(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	closed := unusedFD(t)
	c := newContext(t, be, 8)
	other := newContext(t, be, 8)

	wantCallError(t, c.Error(nil), "Error", unix.EINVAL, "Error(nil)")
	fresh := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 4)}
	wantCallError(t, c.Error(fresh), "Error", unix.EINVAL, "Error(never submitted)")

	// Outstanding, then success.
	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 4), Data: 1}
	mustSubmit(t, c, cb)
	cfdWantError(t, c, cb, unix.EINPROGRESS, "pending read")
	wantCallError(t, other.Error(cb), "Error", unix.EINVAL, "other Context's Error(cb)")
	writeFull(t, w, []byte("data"))
	wantEvent(t, reapN(t, c, 1)[0], cb, 4, "read")
	cfdWantError(t, c, cb, nil, "read delivered")
	cfdWantError(t, c, cb, nil, "read delivered, asked twice")

	// A per-request failure: EBADF arrives as the event and stays readable.
	bad := &aio.IOCB{Op: aio.OpRead, FD: closed, Buf: make([]byte, 4), Data: 2}
	mustSubmit(t, c, bad)
	wantEvent(t, reapN(t, c, 1)[0], bad, -int64(unix.EBADF), "read on a closed fd")
	cfdWantError(t, c, bad, unix.EBADF, "read on a closed fd, delivered")

	// A nop: nil.
	nop := &aio.IOCB{Op: aio.OpNop, Data: 3}
	mustSubmit(t, c, nop)
	wantEvent(t, reapN(t, c, 1)[0], nop, 0, "nop")
	cfdWantError(t, c, nop, nil, "nop delivered")

	// Resubmitting resets it: in progress again, then canceled.
	mustSubmit(t, c, cb)
	cfdWantError(t, c, cb, unix.EINPROGRESS, "resubmitted read")
	res, err := c.CancelFD(r, cb)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r, resubmitted read)")
	cfdWantError(t, c, cb, unix.ECANCELED, "canceled, not delivered")
	wantEvent(t, reapN(t, c, 1)[0], cb, cfdECANCELED, "canceled read")
	cfdWantError(t, c, cb, unix.ECANCELED, "canceled, delivered")

	// Moving an IOCB to another Context: the first one no longer knows it.
	mustSubmit(t, other, cb)
	cfdWantError(t, other, cb, unix.EINPROGRESS, "read on the other Context")
	res, err = other.CancelFD(r, nil)
	cfdWantResult(t, res, err, aio.Canceled, "other.CancelFD(r, nil)")
	wantEvent(t, reapN(t, other, 1)[0], cb, cfdECANCELED, "read on the other Context")
	wantCallError(t, c.Error(cb), "Error", unix.EINVAL, "first Context's Error(cb moved away)")
}

// cfdTestErrorPolling: aio_error(3) is how POSIX code waits without
// aio_suspend — `while (aio_error(cb) == EINPROGRESS) …`. A request that has
// completed must stop reading as EINPROGRESS without anyone calling GetEvents,
// and the event must still be delivered exactly once afterwards. (A nop is
// completed by the library itself on classic AIO and by the kernel on
// io_uring; callers must not be able to tell.)
func cfdTestErrorPolling(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 8)
	writeFull(t, w, []byte("x"))
	rd := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 1), Data: 1}
	nop := &aio.IOCB{Op: aio.OpNop, Data: 2}
	mustSubmit(t, c, rd, nop)
	for _, cb := range []*aio.IOCB{rd, nop} {
		deadline := time.Now().Add(2 * time.Second)
		for errors.Is(c.Error(cb), unix.EINPROGRESS) {
			if time.Now().After(deadline) {
				t.Fatalf("%v (Data %d) finished in the kernel, but Error() still says EINPROGRESS after 2s of polling", cb.Op, cb.Data)
			}
			time.Sleep(time.Millisecond)
		}
		cfdWantError(t, c, cb, nil, fmt.Sprintf("%v after polling", cb.Op))
	}
	evs := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, evs[rd], rd, 1, "read")
	wantEvent(t, evs[nop], nop, 0, "nop")
	expectNoEvents(t, c)
}

// cfdTestClosedDescriptor: CancelFD takes a number, as aio_cancel(3) does
// (contract §6.7). Once the program has closed the descriptor its requests
// were submitted on, CancelFD answers EBADF and cannot reach them (they still
// wait on their file, §3.7); once the number names another file, CancelFD
// cancels every request submitted with that number, the old file's along
// with the new one's. Cancel(cb) reaches a request whatever became of its
// number.
func cfdTestClosedDescriptor(t *testing.T, be string) {
	c := newContext(t, be, 8)
	r1, _ := newPipe(t, 0)
	r2, _ := newPipe(t, 0)
	// A number far above what the test process otherwise holds, so that
	// nothing else takes it between the close and the dup3 below.
	h, err := unix.FcntlInt(uintptr(r1), unix.F_DUPFD_CLOEXEC, 700)
	if err != nil {
		t.Fatalf("F_DUPFD_CLOEXEC: %v", err)
	}
	old := &aio.IOCB{Op: aio.OpRead, FD: h, Buf: make([]byte, 8), Data: 1}
	kept := &aio.IOCB{Op: aio.OpRead, FD: h, Buf: make([]byte, 8), Data: 2}
	mustSubmit(t, c, old, kept)
	if err := unix.Close(h); err != nil {
		t.Fatalf("close(%d): %v", h, err)
	}
	res, err := c.CancelFD(h, nil)
	cfdWantRefused(t, res, err, unix.EBADF, "CancelFD(h, nil) after close(h)")
	cfdWantError(t, c, old, unix.EINPROGRESS, "read on h after close(h)")
	// The safe way: the IOCB, not the number.
	ev, err := c.Cancel(kept)
	if err != nil {
		t.Fatalf("Cancel(read on closed h) = %v; want its event", err)
	}
	wantEvent(t, ev, kept, cfdECANCELED, "Cancel(read on closed h)")

	// h now names r2's pipe.
	if err := unix.Dup3(r2, h, unix.O_CLOEXEC); err != nil {
		t.Fatalf("dup3(%d, %d): %v", r2, h, err)
	}
	t.Cleanup(func() { unix.Close(h) })
	cur := &aio.IOCB{Op: aio.OpRead, FD: h, Buf: make([]byte, 8), Data: 3}
	mustSubmit(t, c, cur)
	res, err = c.CancelFD(h, nil)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(h, nil) once h names another pipe")
	evs := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, evs[old], old, cfdECANCELED, "read submitted on h before its close")
	wantEvent(t, evs[cur], cur, cfdECANCELED, "read submitted on h after its reuse")
}
