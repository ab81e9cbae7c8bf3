//go:build linux

package uringaio_test

// The core of the compatibility suite: every row of docs/contract.md §3
// (Submit), §4 (GetEvents), §5 (Cancel) and §7 (Destroy), a data check for
// every op, and the kernel facts of §10 that the backends must hide. Backend selection (§9)
// does not depend on the backend under test and lives in TestCompatSelect.
//
// Every case runs on every backend with the same code and the same
// expectations: nothing here may branch on the backend's name.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	// §3 Submit
	registerCompat("submit/all-accepted", coreSubmitAllAccepted)
	registerCompat("submit/destroyed", coreSubmitDestroyed)
	registerCompat("submit/invalid", coreSubmitInvalid)
	registerCompat("submit/max-bufs", coreSubmitMaxBufs)
	registerCompat("submit/busy", coreSubmitBusy)
	registerCompat("submit/full-pending", coreSubmitFullPending)
	registerCompat("submit/full-undelivered", coreSubmitFullUndelivered)
	registerCompat("submit/partial", coreSubmitPartial)
	registerCompat("submit/kernel-errors", coreSubmitKernelErrors)

	// Data, op by op
	registerCompat("data/read-write", coreDataReadWrite)
	registerCompat("data/readv-writev", coreDataReadvWritev)
	registerCompat("data/direct", coreDataDirect)
	registerCompat("data/eof", coreDataEOF)
	registerCompat("data/fsync-fdatasync", coreDataFsync)
	registerCompat("data/nop", coreDataNop)
	registerCompat("data/poll-ready", coreDataPollReady)
	registerCompat("data/poll-waits", coreDataPollWaits)
	registerCompat("data/pollable-read", coreDataPollableRead)
	registerCompat("data/pipe-write", coreDataPipeWrite)
	registerCompat("data/eventfd-read", coreDataEventfdRead)
	registerCompat("data/identity", coreDataIdentity)

	// §4 GetEvents
	registerCompat("getevents/bad-minnr", coreGetBadMinNr)
	registerCompat("getevents/zero-timeout", coreGetZeroTimeout)
	registerCompat("getevents/minnr-zero", coreGetMinNrZero)
	registerCompat("getevents/timeout-expires", coreGetTimeoutExpires)
	registerCompat("getevents/nil-timeout-waits", coreGetNilTimeoutWaits)
	registerCompat("getevents/minnr-honored", coreGetMinNrHonored)
	registerCompat("getevents/minnr-timeout-partial", coreGetMinNrTimeoutPartial)
	registerCompat("getevents/fills-up-to-len", coreGetFillsUpToLen)
	registerCompat("getevents/destroyed", coreGetDestroyed)
	registerCompat("getevents/destroy-wakes-waiters", coreGetDestroyWakes)

	// §5 Cancel
	registerCompat("cancel/nil", coreCancelNil)
	registerCompat("cancel/never-submitted", coreCancelNeverSubmitted)
	registerCompat("cancel/other-context", coreCancelOtherContext)
	registerCompat("cancel/delivered", coreCancelDelivered)
	registerCompat("cancel/pending-poll", coreCancelPendingPoll)
	registerCompat("cancel/pending-read", coreCancelPendingRead)
	registerCompat("cancel/pending-eventfd-read", coreCancelPendingEventfdRead)
	registerCompat("cancel/pending-pipe-write", coreCancelPendingPipeWrite)
	registerCompat("cancel/completed-undelivered", coreCancelCompletedUndelivered)
	registerCompat("cancel/completed-reaped", coreCancelCompletedReaped)
	registerCompat("cancel/file-read", coreCancelFileRead)
	registerCompat("cancel/concurrent-same", coreCancelConcurrentSame)
	registerCompat("cancel/racing-submit", coreCancelRacingSubmit)
	registerCompat("cancel/destroyed", coreCancelDestroyed)

	// §7 Destroy
	registerCompat("destroy/outstanding-readiness", coreDestroyReadiness)
	registerCompat("destroy/outstanding-file-reads", coreDestroyFileReads)
	registerCompat("destroy/undelivered", coreDestroyUndelivered)
	registerCompat("destroy/twice", coreDestroyTwice)
	registerCompat("destroy/calls-after", coreDestroyCallsAfter)

	// §10 kernel facts
	registerCompat("kfacts/nop-batch", coreKfactsNopBatch)
	registerCompat("kfacts/canceled-poll-res", coreKfactsCanceledPollRes)
	registerCompat("kfacts/pollable-read-submit-returns", coreKfactsReadSubmitReturns)
	registerCompat("kfacts/full-pipe-write-submit-returns", coreKfactsFullPipeWrite)
	registerCompat("kfacts/submitting-thread-exits", coreKfactsThreadExits)
	registerCompat("kfacts/cancel-after-thread-exits", coreKfactsCancelAfterThreadExits)
}

// ---- shared fixtures ----

// pollableFD is one kind of file that a read waits on: a pipe in either
// blocking mode, an os.Pipe, a socketpair. (The *os.File of an os.Pipe stays
// reachable through osPipe's cleanup until the test ends.)
type pollableFD struct {
	name string
	r, w int
}

// pollables makes one of every kind, fresh for the calling test.
func pollables(t *testing.T) []pollableFD {
	t.Helper()
	var out []pollableFD
	r, w := newPipe(t, 0)
	out = append(out, pollableFD{name: "pipe-blocking", r: r, w: w})
	r, w = newPipe(t, unix.O_NONBLOCK)
	out = append(out, pollableFD{name: "pipe-nonblocking", r: r, w: w})
	_, _, rfd, wfd := osPipe(t)
	if !isNonblock(t, rfd) {
		t.Fatalf("os.Pipe read end is blocking; the case wants O_NONBLOCK")
	}
	out = append(out, pollableFD{name: "os-pipe", r: rfd, w: wfd})
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	t.Cleanup(func() {
		unix.Close(sp[0])
		unix.Close(sp[1])
	})
	out = append(out, pollableFD{name: "socketpair-blocking", r: sp[0], w: sp[1]})
	return out
}

// forEachPollable runs fn as a subtest for every kind of pollable fd.
func forEachPollable(t *testing.T, fn func(t *testing.T, p pollableFD)) {
	for _, p := range pollables(t) {
		t.Run(p.name, func(t *testing.T) { fn(t, p) })
	}
}

// wantPollBits checks a poll event: Res positive with every bit of want set.
func wantPollBits(t testing.TB, ev aio.Event, cb *aio.IOCB, want int64, what string) {
	t.Helper()
	if ev.IOCB != cb || ev.Data != cb.Data {
		t.Fatalf("%s: event %s belongs to IOCB %p, want %p (Data %d)", what, fmtEvent(ev), ev.IOCB, cb, cb.Data)
	}
	if ev.Res <= 0 || ev.Res&want != want {
		t.Fatalf("%s: poll Res = %s (%#x), want bits %#x set", what, fmtRes(ev.Res), ev.Res, want)
	}
}

// ---- §3 Submit ----

func coreSubmitAllAccepted(t *testing.T, be string) {
	data := pattern(4096, 1)
	fd := tempFD(t, data)
	r, w := newPipe(t, unix.O_NONBLOCK)
	writeFull(t, w, []byte("p"))
	c := newContext(t, be, 16)

	rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 100), Offset: 50, Data: 1}
	wr := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: []byte("WXYZ"), Offset: 3000, Data: 2}
	rv := &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: [][]byte{make([]byte, 10), make([]byte, 20)}, Offset: 7, Data: 3}
	wv := &aio.IOCB{Op: aio.OpWritev, FD: fd, Bufs: [][]byte{[]byte("ab"), []byte("cde")}, Offset: 3500, Data: 4}
	nop := &aio.IOCB{Op: aio.OpNop, Data: 5}
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 6}
	fs := &aio.IOCB{Op: aio.OpFsync, FD: fd, Data: 7}
	fds := &aio.IOCB{Op: aio.OpFdsync, FD: fd, Data: 8}
	cbs := []*aio.IOCB{rd, wr, rv, wv, nop, poll, fs, fds}
	mustSubmit(t, c, cbs...)

	m := byIOCB(t, reapN(t, c, len(cbs)))
	wantEvent(t, m[rd], rd, 100, "read")
	wantBytes(t, rd.Buf, data[50:150], "read data")
	wantEvent(t, m[wr], wr, 4, "write")
	wantEvent(t, m[rv], rv, 30, "readv")
	wantBytes(t, append(append([]byte{}, rv.Bufs[0]...), rv.Bufs[1]...), data[7:37], "readv data")
	wantEvent(t, m[wv], wv, 5, "writev")
	wantEvent(t, m[nop], nop, 0, "nop")
	wantPollBits(t, m[poll], poll, unix.POLLIN, "poll")
	wantEvent(t, m[fs], fs, 0, "fsync")
	wantEvent(t, m[fds], fds, 0, "fdatasync")
	wantBytes(t, preadAll(t, fd, 4, 3000), []byte("WXYZ"), "file after write")
	wantBytes(t, preadAll(t, fd, 5, 3500), []byte("abcde"), "file after writev")
	expectNoEvents(t, c)
}

func coreSubmitDestroyed(t *testing.T, be string) {
	c := newContext(t, be, 4)
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	cb := &aio.IOCB{Op: aio.OpNop, Data: 9}
	n, err := c.Submit(cb)
	if n != 0 {
		t.Fatalf("Submit on a destroyed context accepted %d", n)
	}
	wantCallError(t, err, "Submit", unix.EINVAL, "Submit after Destroy")
	n, err = c.Submit(cb, &aio.IOCB{Op: aio.OpNop})
	if n != 0 {
		t.Fatalf("Submit(2) on a destroyed context accepted %d", n)
	}
	wantErrno(t, err, unix.EINVAL, "Submit(2) after Destroy")

	// The refused IOCB was not left outstanding: a live context takes it.
	c2 := newContext(t, be, 4)
	mustSubmit(t, c2, cb)
	wantEvent(t, reapOne(t, c2, cb), cb, 0, "nop on a second context")
}

func coreSubmitInvalid(t *testing.T, be string) {
	fd := tempFD(t, pattern(512, 2))
	r, _ := newPipe(t, unix.O_NONBLOCK)
	c := newContext(t, be, 8)
	buf := make([]byte, 16)
	tooMany := make([][]byte, aio.MaxIOV+1)
	for i := range tooMany {
		tooMany[i] = make([]byte, 1)
	}
	cases := []struct {
		name string
		cb   *aio.IOCB
	}{
		{"nil", nil},
		{"zero-op", &aio.IOCB{FD: fd, Buf: buf}},
		{"op-200", &aio.IOCB{Op: aio.Op(200), FD: fd, Buf: buf}},
		{"op-past-last", &aio.IOCB{Op: aio.OpFadvise + 1, FD: fd, Buf: buf}},
		{"op-255", &aio.IOCB{Op: aio.Op(255)}},
		{"negative-offset-read", &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: buf, Offset: -1}},
		{"negative-offset-write", &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: buf, Offset: -4096}},
		{"negative-offset-readv", &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: [][]byte{buf}, Offset: -1 << 62}},
		{"negative-offset-nop", &aio.IOCB{Op: aio.OpNop, Offset: -1}},
		{"poll-no-events", &aio.IOCB{Op: aio.OpPoll, FD: r}},
		{"buf-and-bufs-read", &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: buf, Bufs: [][]byte{buf}}},
		{"buf-and-bufs-write", &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: buf, Bufs: [][]byte{buf}}},
		{"buf-and-bufs-readv", &aio.IOCB{Op: aio.OpReadv, FD: fd, Buf: buf, Bufs: [][]byte{buf}}},
		{"buf-and-bufs-writev", &aio.IOCB{Op: aio.OpWritev, FD: fd, Buf: buf, Bufs: [][]byte{buf}}},
		{"buf-and-bufs-nop", &aio.IOCB{Op: aio.OpNop, Buf: buf, Bufs: [][]byte{buf}}},
		{"too-many-bufs-readv", &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: tooMany}},
		{"too-many-bufs-writev", &aio.IOCB{Op: aio.OpWritev, FD: fd, Bufs: tooMany}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Alone: refused, nothing accepted.
			n, err := c.Submit(tc.cb)
			if n != 0 {
				t.Fatalf("Submit(%s) accepted %d", tc.name, n)
			}
			wantCallError(t, err, "Submit", unix.EINVAL, "Submit("+tc.name+")")

			// First of a batch: the batch stops there; the good one after it
			// was not accepted and is not left outstanding.
			good := &aio.IOCB{Op: aio.OpNop, Data: uint64(100 + i)}
			n, err = c.Submit(tc.cb, good)
			if n != 0 {
				t.Fatalf("Submit(%s, nop) accepted %d", tc.name, n)
			}
			wantErrno(t, err, unix.EINVAL, "Submit("+tc.name+", nop)")

			// After a good one: 1, nil; only the good one completes.
			n, err = c.Submit(good, tc.cb)
			if n != 1 || err != nil {
				t.Fatalf("Submit(nop, %s) = %d, %v; want 1, nil", tc.name, n, err)
			}
			wantEvent(t, reapOne(t, c, good), good, 0, "nop before the refused IOCB")

			if tc.cb != nil {
				// Never accepted, so never submitted to this context.
				_, err := c.Cancel(tc.cb)
				wantErrno(t, err, unix.EINVAL, "Cancel of a refused IOCB")
			}
		})
	}
	expectNoEvents(t, c)
}

func coreSubmitMaxBufs(t *testing.T, be string) {
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	want := pattern(aio.MaxIOV, 5)
	bufs := make([][]byte, aio.MaxIOV)
	for i := range bufs {
		bufs[i] = want[i : i+1 : i+1]
	}
	wv := &aio.IOCB{Op: aio.OpWritev, FD: fd, Bufs: bufs, Data: 1}
	mustSubmit(t, c, wv)
	wantEvent(t, reapOne(t, c, wv), wv, aio.MaxIOV, "writev of MaxIOV buffers")
	wantBytes(t, preadAll(t, fd, aio.MaxIOV+10, 0), want, "file after writev")

	got := make([]byte, aio.MaxIOV)
	rbufs := make([][]byte, aio.MaxIOV)
	for i := range rbufs {
		rbufs[i] = got[i : i+1 : i+1]
	}
	rv := &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: rbufs, Data: 2}
	mustSubmit(t, c, rv)
	wantEvent(t, reapOne(t, c, rv), rv, aio.MaxIOV, "readv of MaxIOV buffers")
	wantBytes(t, got, want, "readv data")
}

func coreSubmitBusy(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 8)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	mustSubmit(t, c, poll)

	n, err := c.Submit(poll)
	if n != 0 {
		t.Fatalf("resubmitting an outstanding IOCB accepted %d", n)
	}
	wantCallError(t, err, "Submit", unix.EBUSY, "resubmit of a pending poll")

	// In a batch, after a good one: 1, nil.
	nop := &aio.IOCB{Op: aio.OpNop, Data: 2}
	if n, err := c.Submit(nop, poll); n != 1 || err != nil {
		t.Fatalf("Submit(nop, pending poll) = %d, %v; want 1, nil", n, err)
	}
	// The nop has finished, but its event is not delivered: still outstanding.
	n, err = c.Submit(nop)
	if n != 0 {
		t.Fatalf("resubmitting an undelivered nop accepted %d", n)
	}
	wantErrno(t, err, unix.EBUSY, "resubmit of an undelivered nop")
	wantEvent(t, reapOne(t, c, nop), nop, 0, "nop")
	// Delivered: reusable.
	mustSubmit(t, c, nop)
	wantEvent(t, reapOne(t, c, nop), nop, 0, "reused nop")

	// The same IOCB twice in one batch: the second is refused.
	twice := &aio.IOCB{Op: aio.OpNop, Data: 3}
	if n, err := c.Submit(twice, twice); n != 1 || err != nil {
		t.Fatalf("Submit(x, x) = %d, %v; want 1, nil", n, err)
	}
	wantEvent(t, reapOne(t, c, twice), twice, 0, "nop submitted twice in a batch")

	// Outstanding on c, so another context refuses it too.
	c2 := newContext(t, be, 4)
	n, err = c2.Submit(poll)
	if n != 0 {
		t.Fatalf("a second context accepted an IOCB outstanding on the first: %d", n)
	}
	wantErrno(t, err, unix.EBUSY, "Submit on another context of an outstanding IOCB")

	// The poll still works where it was submitted.
	writeFull(t, w, []byte("x"))
	wantPollBits(t, reapOne(t, c, poll), poll, unix.POLLIN, "poll")
	expectNoEvents(t, c)
	expectNoEventsFor(t, c2, 0)
}

func coreSubmitFullPending(t *testing.T, be string) {
	r, _ := newPipe(t, unix.O_NONBLOCK)
	const max = 4
	c := newContext(t, be, max)
	polls := make([]*aio.IOCB, max+2)
	for i := range polls {
		polls[i] = &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: uint64(i)}
	}
	n, err := c.Submit(polls[:max+1]...)
	if n != max || err != nil {
		t.Fatalf("Submit(%d) on a context of %d = %d, %v; want %d, nil", max+1, max, n, err, max)
	}
	n, err = c.Submit(polls[max])
	if n != 0 {
		t.Fatalf("Submit on a full context accepted %d", n)
	}
	wantCallError(t, err, "Submit", unix.EAGAIN, "Submit on a full context")
	n, err = c.Submit(&aio.IOCB{Op: aio.OpNop})
	if n != 0 {
		t.Fatalf("Submit(nop) on a full context accepted %d", n)
	}
	wantErrno(t, err, unix.EAGAIN, "Submit(nop) on a full context")

	// A canceled one frees its place: exactly one fits again.
	cancelIt(t, c, polls[0])
	if n, err := c.Submit(polls[max], polls[max+1]); n != 1 || err != nil {
		t.Fatalf("Submit(2) with one free place = %d, %v; want 1, nil", n, err)
	}
	n, err = c.Submit(polls[max+1])
	if n != 0 {
		t.Fatalf("Submit on a full context accepted %d", n)
	}
	wantErrno(t, err, unix.EAGAIN, "Submit on a full context again")
	for _, cb := range polls[1 : max+1] {
		cancelIt(t, c, cb)
	}
	expectNoEvents(t, c)
}

func coreSubmitFullUndelivered(t *testing.T, be string) {
	const max = 4
	c := newContext(t, be, max)
	nops := make([]*aio.IOCB, max+1)
	for i := range nops {
		nops[i] = &aio.IOCB{Op: aio.OpNop, Data: uint64(i)}
	}
	mustSubmit(t, c, nops[:max]...)
	// Finished but not delivered: they still count against maxEvents.
	n, err := c.Submit(nops[max])
	if n != 0 {
		t.Fatalf("Submit with %d undelivered events on a context of %d accepted %d", max, max, n)
	}
	wantErrno(t, err, unix.EAGAIN, "Submit with maxEvents undelivered")

	first := reapN(t, c, 1)[0]
	mustSubmit(t, c, nops[max])
	evs := append([]aio.Event{first}, reapN(t, c, max)...)
	m := byIOCB(t, evs)
	for _, cb := range nops {
		ev, ok := m[cb]
		if !ok {
			t.Fatalf("no event for nop %d", cb.Data)
		}
		wantEvent(t, ev, cb, 0, "nop")
	}
	expectNoEvents(t, c)
}

func coreSubmitPartial(t *testing.T, be string) {
	c := newContext(t, be, 8)
	a := &aio.IOCB{Op: aio.OpNop, Data: 1}
	b := &aio.IOCB{Op: aio.OpNop, Data: 2}
	n, err := c.Submit(a, b, nil)
	if n != 2 || err != nil {
		t.Fatalf("Submit(good, good, nil) = %d, %v; want 2, nil", n, err)
	}
	m := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, m[a], a, 0, "first nop")
	wantEvent(t, m[b], b, 0, "second nop")
	expectNoEvents(t, c)

	// A refusal in the middle stops the batch: what follows is not accepted.
	bad := &aio.IOCB{Op: aio.Op(200), Data: 3}
	after := &aio.IOCB{Op: aio.OpNop, Data: 4}
	if n, err := c.Submit(a, bad, after); n != 1 || err != nil {
		t.Fatalf("Submit(good, bad, good) = %d, %v; want 1, nil", n, err)
	}
	wantEvent(t, reapOne(t, c, a), a, 0, "nop before the refusal")
	expectNoEventsFor(t, c, 0)
	// "after" was never accepted, so it is not busy.
	mustSubmit(t, c, after)
	wantEvent(t, reapOne(t, c, after), after, 0, "nop after the refusal, resubmitted")

	// [nil, good]: nothing accepted, error of the first.
	n, err = c.Submit(nil, a)
	if n != 0 {
		t.Fatalf("Submit(nil, good) accepted %d", n)
	}
	wantErrno(t, err, unix.EINVAL, "Submit(nil, good)")
	expectNoEvents(t, c)
	mustSubmit(t, c, a)
	wantEvent(t, reapOne(t, c, a), a, 0, "nop after Submit(nil, nop)")

	// An empty Submit accepts nothing and is not an error.
	if n, err := c.Submit(); n != 0 || err != nil {
		t.Fatalf("Submit() = %d, %v; want 0, nil", n, err)
	}
}

func coreSubmitKernelErrors(t *testing.T, be string) {
	data := pattern(4*directAlign, 6)
	path := tempFileWith(t, data)
	wo := openFD(t, path, unix.O_WRONLY)
	ro := openFD(t, path, unix.O_RDONLY)
	dfd := openFD(t, path, unix.O_RDWR|unix.O_DIRECT)
	closed := unusedFD(t)
	a1 := alignedBuf(t, 2*directAlign)
	a2 := alignedBuf(t, 2*directAlign)
	a3 := alignedBuf(t, directAlign)
	a4 := alignedBuf(t, directAlign)
	a5 := alignedBuf(t, directAlign)
	c := newContext(t, be, 32)

	ebadf, einval := -int64(unix.EBADF), -int64(unix.EINVAL)
	cases := []struct {
		name string
		cb   *aio.IOCB
		want int64
	}{
		{"read-fd-minus-1", &aio.IOCB{Op: aio.OpRead, FD: -1, Buf: make([]byte, 16)}, ebadf},
		{"write-fd-minus-1", &aio.IOCB{Op: aio.OpWrite, FD: -1, Buf: make([]byte, 16)}, ebadf},
		{"read-closed-fd", &aio.IOCB{Op: aio.OpRead, FD: closed, Buf: make([]byte, 16)}, ebadf},
		{"write-closed-fd", &aio.IOCB{Op: aio.OpWrite, FD: closed, Buf: make([]byte, 16)}, ebadf},
		{"readv-closed-fd", &aio.IOCB{Op: aio.OpReadv, FD: closed, Bufs: [][]byte{make([]byte, 16)}}, ebadf},
		{"writev-fd-minus-1", &aio.IOCB{Op: aio.OpWritev, FD: -1, Bufs: [][]byte{make([]byte, 16)}}, ebadf},
		{"fsync-closed-fd", &aio.IOCB{Op: aio.OpFsync, FD: closed}, ebadf},
		{"fdsync-fd-minus-1", &aio.IOCB{Op: aio.OpFdsync, FD: -1}, ebadf},
		{"poll-closed-fd", &aio.IOCB{Op: aio.OpPoll, FD: closed, PollEvents: unix.POLLIN}, ebadf},
		{"read-write-only-fd", &aio.IOCB{Op: aio.OpRead, FD: wo, Buf: make([]byte, 16)}, ebadf},
		{"readv-write-only-fd", &aio.IOCB{Op: aio.OpReadv, FD: wo, Bufs: [][]byte{make([]byte, 16)}}, ebadf},
		{"write-read-only-fd", &aio.IOCB{Op: aio.OpWrite, FD: ro, Buf: make([]byte, 16)}, ebadf},
		{"direct-read-misaligned-buf", &aio.IOCB{Op: aio.OpRead, FD: dfd, Buf: a1[1 : 1+directAlign]}, einval},
		{"direct-read-misaligned-offset", &aio.IOCB{Op: aio.OpRead, FD: dfd, Buf: a3, Offset: 1}, einval},
		{"direct-read-misaligned-length", &aio.IOCB{Op: aio.OpRead, FD: dfd, Buf: a4[:100]}, einval},
		{"direct-write-misaligned-buf", &aio.IOCB{Op: aio.OpWrite, FD: dfd, Buf: a2[7 : 7+directAlign], Offset: directAlign}, einval},
		{"direct-write-misaligned-offset", &aio.IOCB{Op: aio.OpWrite, FD: dfd, Buf: a5, Offset: directAlign + 512 + 1}, einval},
	}
	// One batch, with good requests mixed in: every one is accepted, and each
	// failure is that request's event.
	goodRead := &aio.IOCB{Op: aio.OpRead, FD: ro, Buf: make([]byte, 64), Offset: 100}
	goodNop := &aio.IOCB{Op: aio.OpNop}
	var cbs []*aio.IOCB
	for i, tc := range cases {
		tc.cb.Data = uint64(i + 1)
		cbs = append(cbs, tc.cb)
		if i == len(cases)/2 {
			cbs = append(cbs, goodRead)
		}
	}
	cbs = append(cbs, goodNop)
	goodRead.Data, goodNop.Data = 1000, 1001
	var n int
	var err error
	finishes(t, eventWait, "Submit of failing requests", func() { n, err = c.Submit(cbs...) })
	if n != len(cbs) || err != nil {
		t.Fatalf("Submit(%d with per-request failures) = %d, %v; want %d, nil", len(cbs), n, err, len(cbs))
	}
	m := byIOCB(t, reapN(t, c, len(cbs)))
	for _, tc := range cases {
		ev := m[tc.cb]
		wantEvent(t, ev, tc.cb, tc.want, tc.name)
		if !errors.Is(ev.Err(), unix.Errno(-tc.want)) {
			t.Fatalf("%s: Event.Err() = %v, want %v", tc.name, ev.Err(), unix.Errno(-tc.want))
		}
		var re *aio.RequestError
		if !errors.As(ev.Err(), &re) || re.Op != tc.cb.Op {
			t.Fatalf("%s: Event.Err() = %#v, want a *aio.RequestError for %v", tc.name, ev.Err(), tc.cb.Op)
		}
	}
	wantEvent(t, m[goodRead], goodRead, 64, "good read in the batch")
	wantBytes(t, goodRead.Buf, data[100:164], "good read data")
	wantEvent(t, m[goodNop], goodNop, 0, "good nop in the batch")
	if m[goodNop].Err() != nil {
		t.Fatalf("Event.Err() of a good nop = %v", m[goodNop].Err())
	}
	expectNoEvents(t, c)

	// The same failures one Submit at a time.
	for _, tc := range cases {
		mustSubmit(t, c, tc.cb)
		wantEvent(t, reapOne(t, c, tc.cb), tc.cb, tc.want, tc.name+" alone")
	}
}

// ---- data ----

func coreDataReadWrite(t *testing.T, be string) {
	fd := tempFD(t, pattern(3000, 0))
	c := newContext(t, be, 4)
	want := pattern(5000, 9)
	wr := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: want, Offset: 1000, Data: 11}
	mustSubmit(t, c, wr)
	wantEvent(t, reapOne(t, c, wr), wr, 5000, "write")
	wantBytes(t, preadAll(t, fd, 6000, 1000), want, "file after write")

	got := bytes.Repeat([]byte{0xAA}, 5000)
	rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: got, Offset: 1000, Data: 12}
	mustSubmit(t, c, rd)
	wantEvent(t, reapOne(t, c, rd), rd, 5000, "read")
	wantBytes(t, got, want, "read data")

	// An empty buffer moves nothing and succeeds.
	empty := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: []byte{}, Offset: 0, Data: 13}
	mustSubmit(t, c, empty)
	wantEvent(t, reapOne(t, c, empty), empty, 0, "read of 0 bytes")
}

func coreDataReadvWritev(t *testing.T, be string) {
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	parts := [][]byte{pattern(7, 1), pattern(4096, 2), pattern(333, 3)}
	want := bytes.Join(parts, nil)
	wv := &aio.IOCB{Op: aio.OpWritev, FD: fd, Bufs: parts, Offset: 10, Data: 21}
	mustSubmit(t, c, wv)
	wantEvent(t, reapOne(t, c, wv), wv, int64(len(want)), "writev")
	file := preadAll(t, fd, 10+len(want)+1, 0)
	wantBytes(t, file[10:], want, "file after writev")
	wantBytes(t, file[:10], make([]byte, 10), "hole before writev")

	// Read it back into differently cut buffers.
	rbufs := [][]byte{make([]byte, 100), make([]byte, 4000), make([]byte, 336)}
	rv := &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: rbufs, Offset: 10, Data: 22}
	mustSubmit(t, c, rv)
	wantEvent(t, reapOne(t, c, rv), rv, int64(len(want)), "readv")
	wantBytes(t, bytes.Join(rbufs, nil), want, "readv data")
}

func coreDataDirect(t *testing.T, be string) {
	dir := tempDir(t)
	path := dir + "/direct"
	if err := os.WriteFile(path, make([]byte, 4*directAlign), 0o600); err != nil {
		t.Fatal(err)
	}
	dfd := openFD(t, path, unix.O_RDWR|unix.O_DIRECT)
	plain := openFD(t, path, unix.O_RDONLY)
	wbuf := alignedBuf(t, 2*directAlign)
	rbuf := alignedBuf(t, 2*directAlign)
	v1, v2 := alignedBuf(t, directAlign), alignedBuf(t, directAlign)
	r1, r2 := alignedBuf(t, directAlign), alignedBuf(t, directAlign)
	c := newContext(t, be, 4)

	want := pattern(2*directAlign, 17)
	copy(wbuf, want)
	wr := &aio.IOCB{Op: aio.OpWrite, FD: dfd, Buf: wbuf, Offset: directAlign, Data: 1}
	mustSubmit(t, c, wr)
	wantEvent(t, reapOne(t, c, wr), wr, 2*directAlign, "O_DIRECT write")
	wantBytes(t, preadAll(t, plain, 2*directAlign, directAlign), want, "file after O_DIRECT write")

	rd := &aio.IOCB{Op: aio.OpRead, FD: dfd, Buf: rbuf, Offset: directAlign, Data: 2}
	mustSubmit(t, c, rd)
	wantEvent(t, reapOne(t, c, rd), rd, 2*directAlign, "O_DIRECT read")
	wantBytes(t, rbuf, want, "O_DIRECT read data")

	// Vectored, two aligned pages, at the end of the file (offset 3 pages,
	// so the second page is past EOF and the read is short).
	wv1, wv2 := pattern(directAlign, 40), pattern(directAlign, 41)
	copy(v1, wv1)
	copy(v2, wv2)
	wv := &aio.IOCB{Op: aio.OpWritev, FD: dfd, Bufs: [][]byte{v1, v2}, Offset: 2 * directAlign, Data: 3}
	mustSubmit(t, c, wv)
	wantEvent(t, reapOne(t, c, wv), wv, 2*directAlign, "O_DIRECT writev")
	rv := &aio.IOCB{Op: aio.OpReadv, FD: dfd, Bufs: [][]byte{r1, r2}, Offset: 3 * directAlign, Data: 4}
	mustSubmit(t, c, rv)
	wantEvent(t, reapOne(t, c, rv), rv, directAlign, "O_DIRECT readv across EOF")
	wantBytes(t, r1, wv2, "O_DIRECT readv data")
}

func coreDataEOF(t *testing.T, be string) {
	data := pattern(100, 4)
	fd := tempFD(t, data)
	c := newContext(t, be, 8)
	short := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 64), Offset: 80, Data: 1}
	at := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 64), Offset: 100, Data: 2}
	past := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 64), Offset: 1 << 20, Data: 3}
	vshort := &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: [][]byte{make([]byte, 10), make([]byte, 10)}, Offset: 85, Data: 4}
	vpast := &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: [][]byte{make([]byte, 10)}, Offset: 101, Data: 5}
	mustSubmit(t, c, short, at, past, vshort, vpast)
	m := byIOCB(t, reapN(t, c, 5))
	wantEvent(t, m[short], short, 20, "read crossing EOF")
	wantBytes(t, short.Buf[:20], data[80:], "read crossing EOF data")
	wantBytes(t, short.Buf[20:], make([]byte, 44), "buffer past the short read")
	wantEvent(t, m[at], at, 0, "read at EOF")
	wantEvent(t, m[past], past, 0, "read past EOF")
	wantEvent(t, m[vshort], vshort, 15, "readv crossing EOF")
	wantBytes(t, append(append([]byte{}, vshort.Bufs[0]...), vshort.Bufs[1][:5]...), data[85:], "readv crossing EOF data")
	wantEvent(t, m[vpast], vpast, 0, "readv past EOF")
}

func coreDataFsync(t *testing.T, be string) {
	fd := tempFD(t, pattern(100, 0))
	c := newContext(t, be, 4)
	wr := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: []byte("dirty"), Offset: 50, Data: 1}
	mustSubmit(t, c, wr)
	wantEvent(t, reapOne(t, c, wr), wr, 5, "write")
	fs := &aio.IOCB{Op: aio.OpFsync, FD: fd, Data: 2}
	mustSubmit(t, c, fs)
	wantEvent(t, reapOne(t, c, fs), fs, 0, "fsync")
	mustSubmit(t, c, wr)
	wantEvent(t, reapOne(t, c, wr), wr, 5, "write again")
	fds := &aio.IOCB{Op: aio.OpFdsync, FD: fd, Data: 3}
	mustSubmit(t, c, fds)
	wantEvent(t, reapOne(t, c, fds), fds, 0, "fdatasync")
	// On a directory too (fsync of a directory is legal).
	dfd := openFD(t, tempDir(t), unix.O_RDONLY|unix.O_DIRECTORY)
	dsync := &aio.IOCB{Op: aio.OpFsync, FD: dfd, Data: 4}
	mustSubmit(t, c, dsync)
	wantEvent(t, reapOne(t, c, dsync), dsync, 0, "fsync of a directory")
}

func coreDataNop(t *testing.T, be string) {
	c := newContext(t, be, 4)
	nop := &aio.IOCB{Op: aio.OpNop, Data: 0xfeedface}
	mustSubmit(t, c, nop)
	ev := reapOne(t, c, nop)
	wantEvent(t, ev, nop, 0, "nop")
	if ev.Err() != nil {
		t.Fatalf("nop Event.Err() = %v", ev.Err())
	}
	// A nop ignores FD, Buf and Offset.
	nop2 := &aio.IOCB{Op: aio.OpNop, FD: -1, Buf: make([]byte, 8), Offset: 1 << 40, Data: 2}
	mustSubmit(t, c, nop2)
	wantEvent(t, reapOne(t, c, nop2), nop2, 0, "nop with stray fields")
}

func coreDataPollReady(t *testing.T, be string) {
	r, w := newPipe(t, unix.O_NONBLOCK)
	_, ew := newPipe(t, 0) // empty: its write end is writable
	efd := newEventfd(t)
	hr, hw := newPipe(t, 0) // write end closed: hang-up
	writeFull(t, w, []byte("data"))
	if _, err := unix.Write(efd, binary.NativeEndian.AppendUint64(nil, 1)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(hw); err != nil {
		t.Fatal(err)
	}
	c := newContext(t, be, 8)
	in := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	out := &aio.IOCB{Op: aio.OpPoll, FD: ew, PollEvents: unix.POLLOUT, Data: 2}
	ev := &aio.IOCB{Op: aio.OpPoll, FD: efd, PollEvents: unix.POLLIN, Data: 3}
	hup := &aio.IOCB{Op: aio.OpPoll, FD: hr, PollEvents: unix.POLLIN, Data: 4}
	mustSubmit(t, c, in, out, ev, hup)
	m := byIOCB(t, reapN(t, c, 4))
	// The mask is the ready events among those asked for (plus POLLERR and
	// POLLHUP, which are always reported): the same on every backend.
	wantEvent(t, m[in], in, unix.POLLIN, "POLLIN on a pipe with data")
	wantEvent(t, m[out], out, unix.POLLOUT, "POLLOUT on an empty pipe's write end")
	wantEvent(t, m[ev], ev, unix.POLLIN, "POLLIN on a signaled eventfd")
	wantPollBits(t, m[hup], hup, unix.POLLHUP, "POLLIN on a pipe whose writer closed")
	// Polling consumed nothing.
	wantBytes(t, readExactly(t, r, 4), []byte("data"), "pipe data after poll")
}

func coreDataPollWaits(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN | unix.POLLPRI, Data: 5}
	mustSubmit(t, c, poll)
	expectNoEventsFor(t, c, 0)
	expectNoEvents(t, c)
	writeFull(t, w, []byte("!"))
	wantEvent(t, reapOne(t, c, poll), poll, unix.POLLIN, "poll after data came")
	// Reusable: ready at once now.
	mustSubmit(t, c, poll)
	wantEvent(t, reapOne(t, c, poll), poll, unix.POLLIN, "second poll")
}

func coreDataPollableRead(t *testing.T, be string) {
	forEachPollable(t, func(t *testing.T, p pollableFD) {
		c := newContext(t, be, 4)
		// Data already there.
		writeFull(t, p.w, []byte("hello"))
		rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 16), Data: 1}
		mustSubmit(t, c, rd)
		wantEvent(t, reapOne(t, c, rd), rd, 5, "read of ready data")
		wantBytes(t, rd.Buf[:5], []byte("hello"), "read data")

		// Data comes later.
		rd2 := &aio.IOCB{Op: aio.OpReadv, FD: p.r, Bufs: [][]byte{make([]byte, 2), make([]byte, 8)}, Data: 2}
		mustSubmit(t, c, rd2)
		expectNoEvents(t, c)
		writeFull(t, p.w, []byte("world"))
		wantEvent(t, reapOne(t, c, rd2), rd2, 5, "readv of late data")
		wantBytes(t, append(append([]byte{}, rd2.Bufs[0]...), rd2.Bufs[1][:3]...), []byte("world"), "readv data")
		if rest := drainNow(t, p.r); len(rest) != 0 {
			t.Fatalf("%d bytes left in the pipe", len(rest))
		}
	})
}

func coreDataPipeWrite(t *testing.T, be string) {
	forEachPollable(t, func(t *testing.T, p pollableFD) {
		c := newContext(t, be, 4)
		wr := &aio.IOCB{Op: aio.OpWrite, FD: p.w, Buf: []byte("to the pipe"), Data: 1}
		wv := &aio.IOCB{Op: aio.OpWritev, FD: p.w, Bufs: [][]byte{[]byte("+"), []byte("vec")}, Data: 2}
		mustSubmit(t, c, wr)
		wantEvent(t, reapOne(t, c, wr), wr, 11, "write to a pipe")
		mustSubmit(t, c, wv)
		wantEvent(t, reapOne(t, c, wv), wv, 4, "writev to a pipe")
		wantBytes(t, readExactly(t, p.r, 15), []byte("to the pipe+vec"), "pipe contents")
	})
}

func coreDataEventfdRead(t *testing.T, be string) {
	efd := newEventfd(t)
	c := newContext(t, be, 4)
	rd := &aio.IOCB{Op: aio.OpRead, FD: efd, Buf: make([]byte, 8), Data: 1}
	mustSubmit(t, c, rd)
	expectNoEvents(t, c)
	if _, err := unix.Write(efd, binary.NativeEndian.AppendUint64(nil, 7)); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, reapOne(t, c, rd), rd, 8, "eventfd read")
	if v := binary.NativeEndian.Uint64(rd.Buf); v != 7 {
		t.Fatalf("eventfd read %d, want 7", v)
	}
}

func coreDataIdentity(t *testing.T, be string) {
	c := newContext(t, be, 64)
	datas := []uint64{0, 1, 1 << 32, 1 << 61, 1 << 62, 1 << 63, ^uint64(0), 0xdeadbeefcafef00d}
	var cbs []*aio.IOCB
	for i := 0; i < 40; i++ {
		cbs = append(cbs, &aio.IOCB{Op: aio.OpNop, Data: datas[i%len(datas)]})
	}
	mustSubmit(t, c, cbs...)
	m := byIOCB(t, reapN(t, c, len(cbs)))
	for _, cb := range cbs {
		ev, ok := m[cb]
		if !ok {
			t.Fatalf("no event for IOCB %p", cb)
		}
		wantEvent(t, ev, cb, 0, "nop")
	}
	// Data is the value at Submit time: changing the IOCB after its event was
	// delivered does not change the event.
	cb := cbs[0]
	mustSubmit(t, c, cb)
	ev := reapOne(t, c, cb)
	cb.Data = 99
	if ev.Data != datas[0] || ev.IOCB != cb {
		t.Fatalf("event %s changed with its IOCB", fmtEvent(ev))
	}
	expectNoEvents(t, c)
}

// ---- §4 GetEvents ----

func coreGetBadMinNr(t *testing.T, be string) {
	c := newContext(t, be, 4)
	nop := &aio.IOCB{Op: aio.OpNop, Data: 1}
	mustSubmit(t, c, nop)
	evs := make([]aio.Event, 2)
	for _, tc := range []struct {
		min  int
		evs  []aio.Event
		name string
	}{
		{3, evs, "minNr > len(events)"},
		{1, nil, "minNr 1, nil events"},
		{1, evs[:0], "minNr 1, empty events"},
		{-1, evs, "minNr -1"},
		{-1 << 31, evs, "minNr very negative"},
	} {
		for _, timeout := range []*time.Duration{nil, dur(0), dur(time.Second)} {
			var n int
			var err error
			finishes(t, eventWait, "GetEvents("+tc.name+")", func() { n, err = c.GetEvents(tc.min, tc.evs, timeout) })
			if n != 0 {
				t.Fatalf("GetEvents(%s) = %d", tc.name, n)
			}
			wantCallError(t, err, "GetEvents", unix.EINVAL, "GetEvents("+tc.name+")")
		}
	}
	// The refusals consumed nothing.
	wantEvent(t, reapOne(t, c, nop), nop, 0, "nop after refused GetEvents")
	// minNr == len(events) is fine.
	mustSubmit(t, c, nop)
	if n, err := c.GetEvents(1, evs[:1], dur(eventWait)); n != 1 || err != nil || evs[0].IOCB != nop {
		t.Fatalf("GetEvents(1, 1) = %d, %v, %s", n, err, fmtEvent(evs[0]))
	}
}

func coreGetZeroTimeout(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	evs := make([]aio.Event, 4)
	var n int
	var err error
	finishes(t, eventWait, "GetEvents(1, zero timeout) with nothing submitted", func() { n, err = c.GetEvents(1, evs, dur(0)) })
	if n != 0 || err != nil {
		t.Fatalf("GetEvents(1, zero timeout), nothing submitted = %d, %v; want 0, nil", n, err)
	}
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	mustSubmit(t, c, poll)
	finishes(t, eventWait, "GetEvents(1, zero timeout) with a pending poll", func() { n, err = c.GetEvents(1, evs, dur(0)) })
	if n != 0 || err != nil {
		t.Fatalf("GetEvents(1, zero timeout), pending poll = %d, %v; want 0, nil", n, err)
	}
	// A finished request is returned by a zero timeout.
	nop := &aio.IOCB{Op: aio.OpNop, Data: 2}
	mustSubmit(t, c, nop)
	finishes(t, eventWait, "GetEvents(1, zero timeout) with a finished nop", func() { n, err = c.GetEvents(1, evs, dur(0)) })
	if n != 1 || err != nil {
		t.Fatalf("GetEvents(1, zero timeout), finished nop = %d, %v; want 1, nil", n, err)
	}
	wantEvent(t, evs[0], nop, 0, "nop")
	// A negative timeout is no wait either.
	finishes(t, eventWait, "GetEvents(1, negative timeout)", func() { n, err = c.GetEvents(1, evs, dur(-time.Second)) })
	if n != 0 || err != nil {
		t.Fatalf("GetEvents(1, negative timeout) = %d, %v; want 0, nil", n, err)
	}
	cancelIt(t, c, poll)
}

func coreGetMinNrZero(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	evs := make([]aio.Event, 4)
	var n int
	var err error
	// minNr 0 never waits, even with no timeout.
	finishes(t, eventWait, "GetEvents(0, nil timeout), nothing submitted", func() { n, err = c.GetEvents(0, evs, nil) })
	if n != 0 || err != nil {
		t.Fatalf("GetEvents(0, nil), nothing submitted = %d, %v; want 0, nil", n, err)
	}
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	mustSubmit(t, c, poll)
	finishes(t, eventWait, "GetEvents(0, nil timeout), pending poll", func() { n, err = c.GetEvents(0, evs, nil) })
	if n != 0 || err != nil {
		t.Fatalf("GetEvents(0, nil), pending poll = %d, %v; want 0, nil", n, err)
	}
	// It returns what has finished.
	nop := &aio.IOCB{Op: aio.OpNop, Data: 2}
	mustSubmit(t, c, nop)
	finishes(t, eventWait, "GetEvents(0, nil timeout), finished nop", func() { n, err = c.GetEvents(0, evs, nil) })
	if n != 1 || err != nil {
		t.Fatalf("GetEvents(0, nil), finished nop = %d, %v; want 1, nil", n, err)
	}
	wantEvent(t, evs[0], nop, 0, "nop")
	// Zero-length events with minNr 0: nothing to fill, no error.
	if n, err := c.GetEvents(0, nil, nil); n != 0 || err != nil {
		t.Fatalf("GetEvents(0, nil events, nil) = %d, %v; want 0, nil", n, err)
	}
	cancelIt(t, c, poll)
}

func coreGetTimeoutExpires(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	evs := make([]aio.Event, 4)
	const timeout = 50 * time.Millisecond
	check := func(what string) {
		t.Helper()
		start := time.Now()
		var n int
		var err error
		finishes(t, eventWait, what, func() { n, err = c.GetEvents(1, evs, dur(timeout)) })
		el := time.Since(start)
		if n != 0 || err != nil {
			t.Fatalf("%s = %d, %v; want 0, nil", what, n, err)
		}
		if el < timeout {
			t.Fatalf("%s returned after %v, before its timeout %v", what, el, timeout)
		}
	}
	check("GetEvents(1, 50ms) with nothing submitted")
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	mustSubmit(t, c, poll)
	check("GetEvents(1, 50ms) with a pending poll")
	cancelIt(t, c, poll)
	check("GetEvents(1, 50ms) after the poll was canceled")
}

func coreGetNilTimeoutWaits(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	rd := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
	mustSubmit(t, c, rd)
	fed := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let GetEvents block first
		_, err := unix.Write(w, []byte("late"))
		fed <- err
	}()
	evs := make([]aio.Event, 2)
	var n int
	var err error
	finishes(t, eventWait, "GetEvents(1, nil) until a pipe is fed", func() { n, err = c.GetEvents(1, evs, nil) })
	if werr := <-fed; werr != nil {
		t.Fatalf("feeding the pipe: %v", werr)
	}
	if n != 1 || err != nil {
		t.Fatalf("GetEvents(1, nil) = %d, %v; want 1, nil", n, err)
	}
	wantEvent(t, evs[0], rd, 4, "pipe read")
	wantBytes(t, rd.Buf[:4], []byte("late"), "pipe read data")
}

func coreGetMinNrHonored(t *testing.T, be string) {
	c := newContext(t, be, 8)
	var ws [3]int
	cbs := make([]*aio.IOCB, 3)
	for i := range cbs {
		var r int
		r, ws[i] = newPipe(t, 0)
		cbs[i] = &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: uint64(i)}
	}
	mustSubmit(t, c, cbs...)
	type result struct {
		n   int
		err error
		evs []aio.Event
	}
	done := make(chan result, 1)
	go func() {
		evs := make([]aio.Event, 3)
		n, err := c.GetEvents(3, evs, nil)
		done <- result{n, err, evs}
	}()
	writeFull(t, ws[0], []byte("a"))
	writeFull(t, ws[1], []byte("bb"))
	select {
	case res := <-done:
		t.Fatalf("GetEvents(3, nil) returned %d, %v with only 2 of 3 done", res.n, res.err)
	case <-time.After(quietWait):
	}
	writeFull(t, ws[2], []byte("ccc"))
	select {
	case res := <-done:
		if res.n != 3 || res.err != nil {
			t.Fatalf("GetEvents(3, nil) = %d, %v; want 3, nil", res.n, res.err)
		}
		m := byIOCB(t, res.evs)
		for i, cb := range cbs {
			wantEvent(t, m[cb], cb, int64(i+1), "pipe read")
		}
	case <-time.After(eventWait):
		t.Fatalf("GetEvents(3, nil) did not return within %v of the third completion", eventWait)
	}
	expectNoEvents(t, c)
}

func coreGetMinNrTimeoutPartial(t *testing.T, be string) {
	c := newContext(t, be, 8)
	cbs := make([]*aio.IOCB, 3)
	for i := range cbs {
		r, w := newPipe(t, unix.O_NONBLOCK)
		if i < 2 {
			writeFull(t, w, []byte("ready")) // polls 0 and 1 finish at once
		}
		cbs[i] = &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: uint64(i)}
	}
	mustSubmit(t, c, cbs...)
	// The wait times out and returns what it gathered, with a nil error.
	const timeout = 200 * time.Millisecond
	evs := make([]aio.Event, 3)
	start := time.Now()
	var n int
	var err error
	finishes(t, eventWait, "GetEvents(3, 200ms) with 2 of 3 done", func() { n, err = c.GetEvents(3, evs, dur(timeout)) })
	el := time.Since(start)
	if n != 2 || err != nil {
		t.Fatalf("GetEvents(3, %v) with 2 of 3 done = %d, %v; want 2, nil", timeout, n, err)
	}
	if el < timeout {
		t.Fatalf("GetEvents(3, %v) with 2 of 3 done returned after %v", timeout, el)
	}
	m := byIOCB(t, evs[:2])
	wantEvent(t, m[cbs[0]], cbs[0], unix.POLLIN, "first poll")
	wantEvent(t, m[cbs[1]], cbs[1], unix.POLLIN, "second poll")
	cancelIt(t, c, cbs[2])
	expectNoEventsFor(t, c, 0)
}

func coreGetFillsUpToLen(t *testing.T, be string) {
	c := newContext(t, be, 16)
	cbs := make([]*aio.IOCB, 9)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Op: aio.OpNop, Data: uint64(i)}
	}
	mustSubmit(t, c, cbs...)
	var all []aio.Event
	deadline := time.Now().Add(eventWait)
	for len(all) < len(cbs) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events within %v", len(all), len(cbs), eventWait)
		}
		// A slice longer than what is asked for, to see that only len is used.
		evs := make([]aio.Event, 4)
		n, err := c.GetEvents(1, evs[:2], dur(eventWait))
		if err != nil || n < 1 || n > 2 {
			t.Fatalf("GetEvents(1, len 2) = %d, %v; want 1 or 2, nil", n, err)
		}
		if evs[2].IOCB != nil || evs[3].IOCB != nil {
			t.Fatalf("GetEvents wrote beyond len(events)")
		}
		all = append(all, evs[:n]...)
	}
	m := byIOCB(t, all)
	for _, cb := range cbs {
		wantEvent(t, m[cb], cb, 0, "nop")
	}
	expectNoEvents(t, c)
}

func coreGetDestroyed(t *testing.T, be string) {
	c := newContext(t, be, 4)
	mustSubmit(t, c, &aio.IOCB{Op: aio.OpNop})
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	evs := make([]aio.Event, 2)
	for _, tc := range []struct {
		min     int
		timeout *time.Duration
		name    string
	}{
		{1, nil, "GetEvents(1, nil)"},
		{1, dur(0), "GetEvents(1, 0)"},
		{0, nil, "GetEvents(0, nil)"},
		{2, dur(time.Minute), "GetEvents(2, 1m)"},
	} {
		var n int
		var err error
		finishes(t, eventWait, tc.name+" after Destroy", func() { n, err = c.GetEvents(tc.min, evs, tc.timeout) })
		if n != 0 {
			t.Fatalf("%s after Destroy = %d", tc.name, n)
		}
		wantCallError(t, err, "GetEvents", unix.EINVAL, tc.name+" after Destroy")
	}
}

func coreGetDestroyWakes(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	mustSubmit(t, c, poll)
	type result struct {
		name string
		n    int
		err  error
	}
	done := make(chan result, 3)
	wait := func(name string, min int, timeout *time.Duration) {
		evs := make([]aio.Event, 2)
		n, err := c.GetEvents(min, evs, timeout)
		done <- result{name, n, err}
	}
	go wait("GetEvents(1, nil)", 1, nil)
	go wait("GetEvents(2, nil)", 2, nil)
	go wait("GetEvents(1, 1m)", 1, dur(time.Minute))
	select {
	case res := <-done:
		t.Fatalf("%s returned %d, %v before Destroy", res.name, res.n, res.err)
	case <-time.After(quietWait):
	}
	var derr error
	finishes(t, eventWait, "Destroy with blocked GetEvents callers", func() { derr = c.Destroy() })
	if derr != nil {
		t.Fatalf("Destroy: %v", derr)
	}
	for i := 0; i < 3; i++ {
		select {
		case res := <-done:
			if res.n != 0 {
				t.Fatalf("%s woken by Destroy returned %d events", res.name, res.n)
			}
			wantErrno(t, res.err, unix.EINVAL, res.name+" woken by Destroy")
		case <-time.After(eventWait):
			t.Fatalf("a blocked GetEvents did not return within %v of Destroy", eventWait)
		}
	}
}

// ---- §5 Cancel ----

func coreCancelNil(t *testing.T, be string) {
	c := newContext(t, be, 4)
	ev, err := c.Cancel(nil)
	wantCallError(t, err, "Cancel", unix.EFAULT, "Cancel(nil)")
	if ev != (aio.Event{}) {
		t.Fatalf("Cancel(nil) returned event %s", fmtEvent(ev))
	}
}

func coreCancelNeverSubmitted(t *testing.T, be string) {
	c := newContext(t, be, 4)
	for _, cb := range []*aio.IOCB{
		{},
		{Op: aio.OpNop},
		{Op: aio.OpPoll, FD: 0, PollEvents: unix.POLLIN},
	} {
		ev, err := c.Cancel(cb)
		wantCallError(t, err, "Cancel", unix.EINVAL, "Cancel of a never-submitted IOCB")
		if ev != (aio.Event{}) {
			t.Fatalf("Cancel of a never-submitted IOCB returned event %s", fmtEvent(ev))
		}
	}
}

func coreCancelOtherContext(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	a := newContext(t, be, 4)
	b := newContext(t, be, 4)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	mustSubmit(t, a, poll)
	_, err := b.Cancel(poll)
	wantErrno(t, err, unix.EINVAL, "Cancel on a context the IOCB was not submitted to")
	// It is untouched where it lives.
	cancelIt(t, a, poll)
	expectNoEvents(t, a)
	expectNoEventsFor(t, b, 0)

	// Delivered on a, then submitted to b: a no longer knows it.
	nop := &aio.IOCB{Op: aio.OpNop, Data: 2}
	mustSubmit(t, a, nop)
	reapOne(t, a, nop)
	mustSubmit(t, b, poll)
	_, err = a.Cancel(poll)
	wantErrno(t, err, unix.EINVAL, "Cancel on the previous context of a resubmitted IOCB")
	cancelIt(t, b, poll)
}

func coreCancelDelivered(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	nop := &aio.IOCB{Op: aio.OpNop, Data: 1}
	mustSubmit(t, c, nop)
	wantEvent(t, reapOne(t, c, nop), nop, 0, "nop")
	_, err := c.Cancel(nop)
	wantCallError(t, err, "Cancel", unix.EINVAL, "Cancel after the event was delivered")

	// Delivered by a successful Cancel: a second Cancel is EINVAL too.
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 2}
	mustSubmit(t, c, poll)
	cancelIt(t, c, poll)
	_, err = c.Cancel(poll)
	wantErrno(t, err, unix.EINVAL, "second Cancel of a canceled poll")
	expectNoEvents(t, c)
}

func coreCancelPendingPoll(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	_, fw := newPipe(t, unix.O_NONBLOCK)
	fillPipe(t, fw)
	efd := newEventfd(t)
	c := newContext(t, be, 8)
	cbs := []*aio.IOCB{
		{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1},
		{Op: aio.OpPoll, FD: fw, PollEvents: unix.POLLOUT, Data: 2},
		{Op: aio.OpPoll, FD: efd, PollEvents: unix.POLLIN, Data: 3},
	}
	mustSubmit(t, c, cbs...)
	expectNoEventsFor(t, c, 0)
	for _, cb := range cbs {
		cancelIt(t, c, cb)
	}
	// Their events never come through GetEvents, even once the fds are ready.
	writeFull(t, w, []byte("x"))
	expectNoEvents(t, c)
	// The IOCB is reusable after a successful Cancel.
	mustSubmit(t, c, cbs[0])
	wantPollBits(t, reapOne(t, c, cbs[0]), cbs[0], unix.POLLIN, "poll resubmitted after Cancel")
}

func coreCancelPendingRead(t *testing.T, be string) {
	forEachPollable(t, func(t *testing.T, p pollableFD) {
		c := newContext(t, be, 4)
		buf := bytes.Repeat([]byte{0xAA}, 16)
		rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: buf, Data: 7}
		submitWithin(t, c, eventWait, rd)
		expectNoEventsFor(t, c, 0)
		cancelIt(t, c, rd)
		wantBytes(t, buf, bytes.Repeat([]byte{0xAA}, 16), "buffer of the canceled read")
		expectNoEvents(t, c)
		// Data written after the cancel belongs to the next reader.
		writeFull(t, p.w, []byte("xyz"))
		expectNoEvents(t, c)
		wantBytes(t, readExactly(t, p.r, 3), []byte("xyz"), "plain read after the canceled read")
		if rest := drainNow(t, p.r); len(rest) != 0 {
			t.Fatalf("%d extra bytes in the pipe", len(rest))
		}
		wantBytes(t, buf, bytes.Repeat([]byte{0xAA}, 16), "buffer of the canceled read, later")

		// Vectored too.
		rv := &aio.IOCB{Op: aio.OpReadv, FD: p.r, Bufs: [][]byte{make([]byte, 4), make([]byte, 4)}, Data: 8}
		mustSubmit(t, c, rv)
		cancelIt(t, c, rv)
		writeFull(t, p.w, []byte("uvw"))
		wantBytes(t, readExactly(t, p.r, 3), []byte("uvw"), "plain read after the canceled readv")
		expectNoEventsFor(t, c, 0)
	})
}

func coreCancelPendingEventfdRead(t *testing.T, be string) {
	efd := newEventfd(t)
	c := newContext(t, be, 4)
	rd := &aio.IOCB{Op: aio.OpRead, FD: efd, Buf: make([]byte, 8), Data: 1}
	mustSubmit(t, c, rd)
	cancelIt(t, c, rd)
	if _, err := unix.Write(efd, binary.NativeEndian.AppendUint64(nil, 5)); err != nil {
		t.Fatal(err)
	}
	expectNoEvents(t, c)
	got := make([]byte, 8)
	if n, err := unix.Read(efd, got); n != 8 || err != nil {
		t.Fatalf("eventfd read after the canceled read = %d, %v", n, err)
	}
	if v := binary.NativeEndian.Uint64(got); v != 5 {
		t.Fatalf("eventfd counter %d after the canceled read, want 5", v)
	}
}

func coreCancelPendingPipeWrite(t *testing.T, be string) {
	for _, mode := range []struct {
		name  string
		flags int
	}{{"blocking", 0}, {"nonblocking", unix.O_NONBLOCK}} {
		t.Run(mode.name, func(t *testing.T) {
			r, w := newPipe(t, mode.flags)
			filled := fillPipe(t, w)
			c := newContext(t, be, 4)
			wr := &aio.IOCB{Op: aio.OpWrite, FD: w, Buf: []byte("WWWW"), Data: 1}
			submitWithin(t, c, eventWait, wr)
			expectNoEventsFor(t, c, 0)
			cancelIt(t, c, wr)
			got := drainNow(t, r)
			if len(got) != filled || bytes.IndexByte(got, 'W') >= 0 {
				t.Fatalf("pipe held %d bytes (%d of the canceled write), want the %d of the fill",
					len(got), bytes.Count(got, []byte("W")), filled)
			}
			expectNoEvents(t, c)
			if rest := drainNow(t, r); len(rest) != 0 {
				t.Fatalf("the canceled write put %d bytes in the pipe", len(rest))
			}
		})
	}
}

func coreCancelCompletedUndelivered(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	writeFull(t, w, []byte("ready"))
	c := newContext(t, be, 4)
	// A poll on a ready pipe and a nop finish at once, in the kernel or in
	// the library: they cannot be stopped.
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	nop := &aio.IOCB{Op: aio.OpNop, Data: 2}
	mustSubmit(t, c, poll, nop)
	for _, cb := range []*aio.IOCB{poll, nop} {
		ev, err := c.Cancel(cb)
		wantCallError(t, err, "Cancel", unix.EAGAIN, "Cancel of a finished "+cb.Op.String())
		if ev != (aio.Event{}) {
			t.Fatalf("Cancel answering EAGAIN returned event %s", fmtEvent(ev))
		}
	}
	m := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, m[poll], poll, unix.POLLIN, "poll after EAGAIN")
	wantEvent(t, m[nop], nop, 0, "nop after EAGAIN")
	expectNoEvents(t, c)
	_, err := c.Cancel(poll)
	wantErrno(t, err, unix.EINVAL, "Cancel after delivery")
}

func coreCancelCompletedReaped(t *testing.T, be string) {
	r1, w1 := newPipe(t, 0)
	r2, _ := newPipe(t, 0)
	writeFull(t, w1, []byte("ready"))
	c := newContext(t, be, 4)
	ready := &aio.IOCB{Op: aio.OpPoll, FD: r1, PollEvents: unix.POLLIN, Data: 1}
	pending := &aio.IOCB{Op: aio.OpRead, FD: r2, Buf: make([]byte, 4), Data: 2}
	mustSubmit(t, c, ready, pending)
	// Waiting for this cancellation makes the library take every completion
	// from the kernel, "ready"'s among them.
	cancelIt(t, c, pending)
	_, err := c.Cancel(ready)
	wantCallError(t, err, "Cancel", unix.EAGAIN, "Cancel of a finished, undelivered poll")
	_, err = c.Cancel(ready)
	wantErrno(t, err, unix.EAGAIN, "second Cancel of a finished, undelivered poll")
	wantEvent(t, reapOne(t, c, ready), ready, unix.POLLIN, "poll")
	expectNoEvents(t, c)
}

func coreCancelFileRead(t *testing.T, be string) {
	const size = 1 << 20
	data := pattern(size, 8)
	path := tempFileWith(t, data)
	fd := openFD(t, path, unix.O_RDONLY)
	dfd := openFD(t, path, unix.O_RDONLY|unix.O_DIRECT)
	dbuf := alignedBuf(t, size)
	c := newContext(t, be, 4)
	outcomes := map[string]int{}
	for i := 0; i < 16; i++ {
		rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, size), Data: uint64(i)}
		if i%2 == 1 {
			clear(dbuf)
			rd.FD, rd.Buf = dfd, dbuf
		}
		mustSubmit(t, c, rd)
		ev, err := c.Cancel(rd)
		switch {
		case err == nil:
			// Stopped before any data moved: exactly this one event.
			wantCanceled(t, ev, err, rd, "Cancel of a file read")
			outcomes["canceled"]++
			expectNoEventsFor(t, c, 20*time.Millisecond)
		case errors.Is(err, unix.EAGAIN):
			wantCallError(t, err, "Cancel", unix.EAGAIN, "Cancel of a file read")
			got := reapOne(t, c, rd)
			wantEvent(t, got, rd, size, "file read that was not canceled")
			wantBytes(t, rd.Buf, data, "file read data")
			outcomes["completed"]++
			expectNoEventsFor(t, c, 20*time.Millisecond)
		default:
			t.Fatalf("Cancel of a file read: %v, want nil or EAGAIN", err)
		}
		_, err = c.Cancel(rd)
		wantErrno(t, err, unix.EINVAL, "Cancel of a file read after its event")
	}
	t.Logf("file reads: %v", outcomes)
}

func coreCancelConcurrentSame(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	for round := 0; round < 20; round++ {
		poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: uint64(round)}
		mustSubmit(t, c, poll)
		type result struct {
			ev  aio.Event
			err error
		}
		res := make(chan result, 2)
		start := make(chan struct{})
		for i := 0; i < 2; i++ {
			go func() {
				<-start
				ev, err := c.Cancel(poll)
				res <- result{ev, err}
			}()
		}
		close(start)
		a, b := <-res, <-res
		if a.err != nil {
			a, b = b, a
		}
		wantCanceled(t, a.ev, a.err, poll, "the winning Cancel")
		wantCallError(t, b.err, "Cancel", unix.EINVAL, "the losing Cancel")
	}
	expectNoEvents(t, c)
}

// coreCancelRacingSubmit cancels an IOCB while it is being submitted: a
// goroutine calls Cancel in a loop (EINVAL while it is not yet submitted)
// until it gets an answer about the request, which is the first of a batch of
// nops (so the library is still busy with the batch when it looks). Whatever
// the interleaving, Cancel returns, and the request produces exactly one
// event.
func coreCancelRacingSubmit(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	const fillers = 31
	c := newContext(t, be, fillers+1)
	outcomes := map[string]int{}
	for round := 0; round < 400; round++ {
		cb := &aio.IOCB{Op: aio.OpNop, Data: uint64(round)}
		if round%2 == 1 {
			cb = &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 4), Data: uint64(round)}
		}
		batch := []*aio.IOCB{cb}
		for i := 0; i < fillers; i++ {
			batch = append(batch, &aio.IOCB{Op: aio.OpNop, Data: 1 << 40})
		}
		type result struct {
			ev  aio.Event
			err error
		}
		res := make(chan result, 1)
		spinning := make(chan struct{})
		go func() {
			for tries := 1; ; tries++ {
				ev, err := c.Cancel(cb)
				if tries == 1 {
					close(spinning)
				}
				if !errors.Is(err, unix.EINVAL) {
					res <- result{ev, err}
					return
				}
			}
		}()
		<-spinning
		mustSubmit(t, c, batch...)
		var got result
		select {
		case got = <-res:
		case <-time.After(eventWait):
			t.Fatalf("round %d (%v): Cancel racing Submit did not return within %v", round, cb.Op, eventWait)
		}
		m := byIOCB(t, reapN(t, c, fillers+1-btoi(got.err == nil)))
		for _, f := range batch[1:] {
			wantEvent(t, m[f], f, 0, "filler nop")
		}
		switch {
		case got.err == nil:
			wantCanceled(t, got.ev, got.err, cb, "Cancel racing Submit")
			if _, dup := m[cb]; dup {
				t.Fatalf("round %d: canceled request also delivered by GetEvents", round)
			}
			outcomes["canceled"]++
		case errors.Is(got.err, unix.EAGAIN):
			if cb.Op != aio.OpNop {
				t.Fatalf("round %d: Cancel of a pending pipe read: EAGAIN", round)
			}
			ev, ok := m[cb]
			if !ok {
				t.Fatalf("round %d: Cancel said EAGAIN, but GetEvents did not deliver the nop", round)
			}
			wantEvent(t, ev, cb, 0, "nop after Cancel said EAGAIN")
			outcomes["eagain"]++
		default:
			t.Fatalf("round %d: Cancel racing Submit: %v", round, got.err)
		}
		expectNoEventsFor(t, c, 0)
	}
	t.Logf("outcomes: %v", outcomes)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func coreCancelDestroyed(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 1}
	mustSubmit(t, c, poll)
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	_, err := c.Cancel(poll)
	wantCallError(t, err, "Cancel", unix.EINVAL, "Cancel after Destroy of a request outstanding at Destroy")
	_, err = c.Cancel(&aio.IOCB{Op: aio.OpNop})
	wantErrno(t, err, unix.EINVAL, "Cancel after Destroy of a never-submitted IOCB")
}

// ---- §7 Destroy ----

func coreDestroyReadiness(t *testing.T, be string) {
	ps := pollables(t)
	efd := newEventfd(t)
	c := newContext(t, be, 32)
	var cbs []*aio.IOCB
	bufs := map[*aio.IOCB][]byte{}
	for i, p := range ps {
		buf := bytes.Repeat([]byte{0xAA}, 8)
		rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: buf, Data: uint64(10 * i)}
		poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: uint64(10*i + 1)}
		cbs = append(cbs, rd, poll)
		bufs[rd] = buf
	}
	cbs = append(cbs,
		&aio.IOCB{Op: aio.OpRead, FD: efd, Buf: make([]byte, 8), Data: 100},
		&aio.IOCB{Op: aio.OpPoll, FD: efd, PollEvents: unix.POLLIN, Data: 101})
	mustSubmit(t, c, cbs...)
	var err error
	finishes(t, eventWait, "Destroy with pending reads and polls", func() { err = c.Destroy() })
	if err != nil {
		t.Fatalf("Destroy with pending reads and polls: %v", err)
	}
	// They were canceled before any data moved: data written now is intact.
	for _, p := range ps {
		writeFull(t, p.w, []byte("after"))
		wantBytes(t, readExactly(t, p.r, 5), []byte("after"), p.name+" read after Destroy")
	}
	for _, buf := range bufs {
		wantBytes(t, buf, bytes.Repeat([]byte{0xAA}, 8), "buffer of a read canceled by Destroy")
	}
	if _, err := unix.Write(efd, binary.NativeEndian.AppendUint64(nil, 3)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if n, err := unix.Read(efd, got); n != 8 || err != nil || binary.NativeEndian.Uint64(got) != 3 {
		t.Fatalf("eventfd after Destroy: %d, %v, counter %d; want 3", n, err, binary.NativeEndian.Uint64(got))
	}
}

func coreDestroyFileReads(t *testing.T, be string) {
	const size = 256 << 10
	path := tempFileWith(t, pattern(size, 1))
	fd := openFD(t, path, unix.O_RDONLY)
	dfd := openFD(t, path, unix.O_RDONLY|unix.O_DIRECT)
	dbufs := make([][]byte, 8)
	for i := range dbufs {
		dbufs[i] = alignedBuf(t, size)
	}
	c := newContext(t, be, 32)
	var cbs []*aio.IOCB
	for i := 0; i < 8; i++ {
		cbs = append(cbs,
			&aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, size), Data: uint64(2 * i)},
			&aio.IOCB{Op: aio.OpRead, FD: dfd, Buf: dbufs[i], Data: uint64(2*i + 1)})
	}
	mustSubmit(t, c, cbs...)
	var err error
	finishes(t, eventWait, "Destroy with pending file reads", func() { err = c.Destroy() })
	if err != nil {
		t.Fatalf("Destroy with pending file reads: %v", err)
	}
}

func coreDestroyUndelivered(t *testing.T, be string) {
	c := newContext(t, be, 8)
	for i := 0; i < 8; i++ {
		mustSubmit(t, c, &aio.IOCB{Op: aio.OpNop, Data: uint64(i)})
	}
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy with undelivered events: %v", err)
	}
	n, err := c.GetEvents(0, make([]aio.Event, 8), dur(0))
	if n != 0 {
		t.Fatalf("GetEvents after Destroy delivered %d dropped events", n)
	}
	wantErrno(t, err, unix.EINVAL, "GetEvents after Destroy")
}

func coreDestroyTwice(t *testing.T, be string) {
	c := newContext(t, be, 4)
	if err := c.Destroy(); err != nil {
		t.Fatalf("first Destroy: %v", err)
	}
	wantCallError(t, c.Destroy(), "Destroy", unix.EINVAL, "second Destroy")
	wantErrno(t, c.Destroy(), unix.EINVAL, "third Destroy")
}

func coreDestroyCallsAfter(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 4)
	delivered := &aio.IOCB{Op: aio.OpNop, Data: 1}
	mustSubmit(t, c, delivered)
	reapOne(t, c, delivered)
	pending := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 2}
	mustSubmit(t, c, pending)
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	n, err := c.Submit(&aio.IOCB{Op: aio.OpNop})
	if n != 0 {
		t.Fatalf("Submit after Destroy accepted %d", n)
	}
	wantErrno(t, err, unix.EINVAL, "Submit after Destroy")
	n, err = c.Submit(pending)
	if n != 0 {
		t.Fatalf("Submit after Destroy accepted %d", n)
	}
	wantErrno(t, err, unix.EINVAL, "Submit after Destroy of a request it canceled")
	_, err = c.GetEvents(1, make([]aio.Event, 1), nil)
	wantErrno(t, err, unix.EINVAL, "GetEvents after Destroy")
	for _, cb := range []*aio.IOCB{delivered, pending, {Op: aio.OpNop}} {
		_, err = c.Cancel(cb)
		wantErrno(t, err, unix.EINVAL, "Cancel after Destroy")
	}
	wantErrno(t, c.Destroy(), unix.EINVAL, "Destroy after Destroy")
	if got := c.Backend(); got != be {
		t.Fatalf("Backend() after Destroy = %q, want %q", got, be)
	}
}

// ---- §10 kernel facts ----

func coreKfactsNopBatch(t *testing.T, be string) {
	fd := tempFD(t, pattern(1000, 2))
	c := newContext(t, be, 128)
	var cbs []*aio.IOCB
	for i := 0; i < 100; i++ {
		cb := &aio.IOCB{Op: aio.OpNop, Data: uint64(i)}
		if i%10 == 5 {
			cb = &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 10), Offset: int64(i), Data: uint64(i)}
		}
		cbs = append(cbs, cb)
	}
	mustSubmit(t, c, cbs...)
	m := byIOCB(t, reapN(t, c, len(cbs)))
	for _, cb := range cbs {
		want := int64(0)
		if cb.Op == aio.OpRead {
			want = 10
		}
		wantEvent(t, m[cb], cb, want, cb.Op.String()+" in a batch of nops")
	}
}

func coreKfactsCanceledPollRes(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN | unix.POLLRDHUP, Data: 1}
	mustSubmit(t, c, poll)
	ev, err := c.Cancel(poll)
	wantCanceled(t, ev, err, poll, "canceled poll")
	if ev.Res != -int64(unix.ECANCELED) {
		t.Fatalf("canceled poll Res = %d, want -ECANCELED (never 0)", ev.Res)
	}
	writeFull(t, w, []byte("x"))
	expectNoEvents(t, c)
}

func coreKfactsReadSubmitReturns(t *testing.T, be string) {
	forEachPollable(t, func(t *testing.T, p pollableFD) {
		c := newContext(t, be, 8)
		cbs := []*aio.IOCB{
			{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 3), Data: 1},
			{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 3), Data: 2},
		}
		var n int
		var err error
		finishes(t, eventWait, "Submit of reads on an empty "+p.name, func() { n, err = c.Submit(cbs...) })
		if n != 2 || err != nil {
			t.Fatalf("Submit = %d, %v; want 2, nil", n, err)
		}
		expectNoEventsFor(t, c, 0)
		writeFull(t, p.w, []byte("abcdef"))
		m := byIOCB(t, reapN(t, c, 2))
		got := ""
		for _, cb := range cbs {
			wantEvent(t, m[cb], cb, 3, "read")
			got += string(cb.Buf)
		}
		if got != "abcdef" && got != "defabc" {
			t.Fatalf("the two reads got %q, want the 6 bytes once each", got)
		}
	})
}

func coreKfactsFullPipeWrite(t *testing.T, be string) {
	for _, mode := range []struct {
		name  string
		flags int
	}{{"blocking", 0}, {"nonblocking", unix.O_NONBLOCK}} {
		t.Run(mode.name, func(t *testing.T) {
			r, w := newPipe(t, mode.flags)
			filled := fillPipe(t, w)
			c := newContext(t, be, 4)
			wr := &aio.IOCB{Op: aio.OpWrite, FD: w, Buf: []byte("WXYZ"), Data: 1}
			submitWithin(t, c, eventWait, wr)
			expectNoEventsFor(t, c, 0)
			got := readExactly(t, r, filled)
			if bytes.IndexByte(got, 'W') >= 0 {
				t.Fatalf("the pending write's bytes came before the fill's")
			}
			wantEvent(t, reapOne(t, c, wr), wr, 4, "write once the pipe drained")
			wantBytes(t, readExactly(t, r, 4), []byte("WXYZ"), "pipe after the write")
		})
	}
}

func coreKfactsThreadExits(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	pr, pw := newPipe(t, 0)
	c := newContext(t, be, 4)
	rd := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
	poll := &aio.IOCB{Op: aio.OpPoll, FD: pr, PollEvents: unix.POLLIN, Data: 2}
	var n int
	var err error
	onDyingThread(t, func() { n, err = c.Submit(rd, poll) })
	if n != 2 || err != nil {
		t.Fatalf("Submit on a thread that then exits = %d, %v; want 2, nil", n, err)
	}
	// The thread is gone; the requests must still be waiting.
	expectNoEvents(t, c)
	writeFull(t, w, []byte("alive"))
	writeFull(t, pw, []byte("p"))
	m := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, m[rd], rd, 5, "read submitted by an exited thread")
	wantBytes(t, rd.Buf[:5], []byte("alive"), "read data")
	wantEvent(t, m[poll], poll, unix.POLLIN, "poll submitted by an exited thread")
	expectNoEvents(t, c)
}

func coreKfactsCancelAfterThreadExits(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	rd := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
	var n int
	var err error
	onDyingThread(t, func() { n, err = c.Submit(rd) })
	if n != 1 || err != nil {
		t.Fatalf("Submit on a thread that then exits = %d, %v; want 1, nil", n, err)
	}
	expectNoEventsFor(t, c, 20*time.Millisecond)
	cancelIt(t, c, rd)
	writeFull(t, w, []byte("kept"))
	expectNoEvents(t, c)
	wantBytes(t, readExactly(t, r, 4), []byte("kept"), "pipe data after the canceled read")
}

// ---- §9 backend selection ----

// TestCompatSelect checks how SetupWithOptions and Setup choose the backend.
// It does not depend on the backend loop of TestCompat (and cannot run in
// parallel: it sets URINGAIO_BACKEND).
func TestCompatSelect(t *testing.T) {
	const env = "URINGAIO_BACKEND"
	setup := func(t *testing.T, opt string) *aio.Context {
		t.Helper()
		c, err := aio.SetupWithOptions(4, aio.Options{Backend: opt})
		if err != nil {
			t.Fatalf("SetupWithOptions(Backend: %q) with %s=%q: %v", opt, env, os.Getenv(env), err)
		}
		t.Cleanup(func() { c.Destroy() })
		return c
	}
	wantBackend := func(t *testing.T, c *aio.Context, want string) {
		t.Helper()
		if got := c.Backend(); got != want {
			t.Fatalf("Backend() = %q, want %q", got, want)
		}
		p := c.Probes()
		if len(p) == 0 || p[len(p)-1].Backend != want || p[len(p)-1].Err != nil {
			t.Fatalf("Probes() = %v, want a last entry {%s <nil>}", p, want)
		}
		// It works.
		nop := &aio.IOCB{Op: aio.OpNop, Data: 3}
		mustSubmit(t, c, nop)
		wantEvent(t, reapOne(t, c, nop), nop, 0, "nop")
	}
	wantUnknown := func(t *testing.T, err error, name string) {
		t.Helper()
		if err == nil {
			t.Fatalf("backend %q accepted", name)
		}
		if !errors.Is(err, unix.EINVAL) {
			t.Fatalf("unknown backend %q: %v, want an error matching EINVAL", name, err)
		}
		if errors.Is(err, aio.ErrNotSupported) {
			t.Fatalf("unknown backend %q: %v matches ErrNotSupported; it is a usage error", name, err)
		}
		msg := err.Error()
		for _, valid := range []string{"auto", "uring", "kaio", name} {
			if !strings.Contains(msg, valid) {
				t.Fatalf("unknown backend %q: message %q does not mention %q", name, msg, valid)
			}
		}
	}

	for _, be := range backends {
		t.Run("option-wins/"+be, func(t *testing.T) {
			for _, other := range append(append([]string{}, backends...), "auto", "bogus", "") {
				t.Setenv(env, other)
				wantBackend(t, setup(t, be), be)
			}
		})
		t.Run("env-switches/"+be, func(t *testing.T) {
			t.Setenv(env, be)
			wantBackend(t, setup(t, ""), be)
			c, err := aio.Setup(4)
			if err != nil {
				t.Fatalf("Setup with %s=%s: %v", env, be, err)
			}
			defer c.Destroy()
			wantBackend(t, c, be)
		})
	}
	t.Run("unknown-option", func(t *testing.T) {
		t.Setenv(env, "kaio")
		for _, name := range []string{"nope", "URING", "io_uring", " kaio", "auto "} {
			c, err := aio.SetupWithOptions(4, aio.Options{Backend: name})
			if err == nil {
				c.Destroy()
			}
			wantUnknown(t, err, name)
		}
	})
	t.Run("unknown-env", func(t *testing.T) {
		for _, name := range []string{"nope", "KAIO", "epoll"} {
			t.Setenv(env, name)
			c, err := aio.SetupWithOptions(4, aio.Options{})
			if err == nil {
				c.Destroy()
			}
			wantUnknown(t, err, name)
			c, err = aio.Setup(4)
			if err == nil {
				c.Destroy()
			}
			wantUnknown(t, err, name)
		}
	})
	t.Run("auto", func(t *testing.T) {
		t.Setenv(env, "kaio")
		wantBackend(t, setup(t, "auto"), "uring")
		for _, v := range []string{"auto", ""} {
			t.Setenv(env, v)
			wantBackend(t, setup(t, ""), "uring")
			wantBackend(t, setup(t, "auto"), "uring")
		}
		os.Unsetenv(env) // t.Setenv restores it afterwards
		wantBackend(t, setup(t, ""), "uring")
		c, err := aio.Setup(4)
		if err != nil {
			t.Fatalf("Setup with %s unset: %v", env, err)
		}
		defer c.Destroy()
		wantBackend(t, c, "uring")
	})
}
