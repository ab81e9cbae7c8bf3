//go:build linux

package uringaio_test

// Chains, IOCB.Link and DoChain (docs/contract.md §13): order, failure and
// short transfers ending the rest with -ECANCELED, Submit's refusals of a
// chain (whole or nothing), Cancel of the running and of a held member,
// CancelFD, Destroy with a chain pending, and one event per request (§2.1)
// under many goroutines, on every backend. The request that waits in these
// cases is a read of an empty pipe: every backend can stop it (§5.4), so the
// answers do not depend on timing.

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("chain/order", chainOrder)
	registerCompat("chain/fail-cancels-rest", chainFailCancelsRest)
	registerCompat("chain/short-cancels-rest", chainShortCancelsRest)
	registerCompat("chain/refusals", chainRefusals)
	registerCompat("chain/nonblock-head", chainNonblockPipe)
	registerCompat("chain/cancel-head", chainCancelHead)
	registerCompat("chain/cancel-middle", chainCancelMiddle)
	registerCompat("chain/cancelfd", chainCancelFD)
	registerCompat("chain/destroy-pending", chainDestroyPending)
	registerCompat("chain/destroy-after-head", chainDestroyAfterHead)
	registerCompat("chain/dochain-wal", chainDoChainWAL)
	registerCompat("chain/dochain-ctx", chainDoChainCtx)
	registerCompat("chain/nothing-lost", chainNothingLost)
}

// chainOrder: a write linked to a read of the same bytes; the read sees
// them, through Submit and through DoChain. Three members, each one event.
func chainOrder(t *testing.T, be string) {
	fd := tempFD(t, make([]byte, 64<<10))
	c := newContext(t, be, 8)
	var wantReqs uint64
	for round := 0; round < 3; round++ {
		data := pattern(16<<10, byte(round+1))
		off := int64(round) * 16 << 10
		got := make([]byte, len(data))
		w := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: data, Offset: off, Link: true, Data: 1}
		r := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: got, Offset: off, Link: true, Data: 2}
		s := &aio.IOCB{Op: aio.OpFdsync, FD: fd, Data: 3}
		if round%2 == 0 {
			mustSubmit(t, c, w, r, s)
			m := byIOCB(t, reapN(t, c, 3))
			wantEvent(t, m[w], w, int64(len(data)), "linked write")
			wantEvent(t, m[r], r, int64(len(data)), "linked read")
			wantEvent(t, m[s], s, 0, "linked fdatasync")
		} else {
			w.Link, r.Link = false, false // DoChain links them itself
			evs, err := c.DoChain(context.Background(), w, r, s)
			if err != nil {
				t.Fatalf("DoChain: %v", err)
			}
			wantEvent(t, evs[0], w, int64(len(data)), "DoChain write")
			wantEvent(t, evs[1], r, int64(len(data)), "DoChain read")
			wantEvent(t, evs[2], s, 0, "DoChain fdatasync")
		}
		wantBytes(t, got, data, "the read linked after the write")
		// Every member counts once in Stats.Requests, held ones too;
		// except that DoChain on threads and kaio makes this chain's
		// members on its caller, as blocking calls (§8.5).
		wantReqs += 3
		if round%2 == 1 && syncsOnCaller(be) {
			wantReqs -= 3
		}
		if st := c.Stats(); st.Requests != wantReqs {
			t.Fatalf("Stats.Requests = %d after %d chains of 3, want %d", st.Requests, round+1, wantReqs)
		}
		expectNoEventsFor(t, c, 20*time.Millisecond)
	}
}

// chainFailCancelsRest: a chain whose middle member fails (a descriptor
// that is not open): the members before it succeed, it fails with its own
// errno, the rest end with -ECANCELED without having run (their write is not
// in the file). Error agrees.
func chainFailCancelsRest(t *testing.T, be string) {
	orig := pattern(8192, 1)
	fd := tempFD(t, orig)
	bad := unusedFD(t)
	c := newContext(t, be, 8)
	for _, via := range []string{"submit", "dochain"} {
		a := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(100, 5), Offset: 0, Link: true, Data: 1}
		b := &aio.IOCB{Op: aio.OpFdsync, FD: bad, Link: true, Data: 2}
		d := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(100, 6), Offset: 4096, Link: true, Data: 3}
		e := &aio.IOCB{Op: aio.OpFsync, FD: fd, Data: 4}
		var m map[*aio.IOCB]aio.Event
		if via == "submit" {
			mustSubmit(t, c, a, b, d, e)
			m = byIOCB(t, reapN(t, c, 4))
		} else {
			evs, err := c.DoChain(context.Background(), a, b, d, e)
			wantErrno(t, err, unix.EBADF, "DoChain with a failing member")
			m = byIOCB(t, evs)
		}
		wantEvent(t, m[a], a, 100, via+": member before the failure")
		wantEvent(t, m[b], b, -int64(unix.EBADF), via+": the failing member")
		wantEvent(t, m[d], d, -int64(unix.ECANCELED), via+": member after the failure")
		wantEvent(t, m[e], e, -int64(unix.ECANCELED), via+": last member")
		wantErrno(t, c.Error(d), unix.ECANCELED, via+": Error of a canceled member")
		want := append(pattern(100, 5), orig[100:]...)
		wantBytes(t, preadAll(t, fd, 8192, 0), want, via+": file (the canceled write must not have run)")
		expectNoEventsFor(t, c, 20*time.Millisecond)
	}
}

// chainShortCancelsRest: a read that comes back short (it reaches the end
// of the file) breaks the chain as a failure does, as io_uring's
// IOSQE_IO_LINK does; a read that moves every byte does not.
func chainShortCancelsRest(t *testing.T, be string) {
	fd := tempFD(t, pattern(5000, 2))
	c := newContext(t, be, 8)
	buf := make([]byte, 4096)
	short := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: buf, Offset: 4096, Link: true, Data: 1}
	after := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(10, 9), Offset: 0, Data: 2}
	mustSubmit(t, c, short, after)
	m := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, m[short], short, 5000-4096, "short read")
	wantEvent(t, m[after], after, -int64(unix.ECANCELED), "member after a short read")
	wantBytes(t, preadAll(t, fd, 5000, 0), pattern(5000, 2), "file after the canceled write")

	short.Buf = buf[:5000-4096]
	evs, err := c.DoChain(context.Background(), short, after)
	if err != nil {
		t.Fatalf("DoChain with a full read: %v", err)
	}
	wantEvent(t, evs[0], short, 904, "read reaching exactly the end")
	short.Buf, short.Offset = buf, 4500
	evs, err = c.DoChain(context.Background(), short, after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("DoChain with a short read: error %v, want io.ErrUnexpectedEOF", err)
	}
	wantEvent(t, evs[1], after, -int64(unix.ECANCELED), "DoChain: member after a short read")
}

// chainRefusals: a chain is accepted whole or refused whole (§13, §3.2):
// Link on the last IOCB of a Submit, a malformed member, a member still
// outstanding, a chain longer than maxEvents, no room for all of it. A
// plain request before the chain is accepted and the count stops before the
// chain.
func chainRefusals(t *testing.T, be string) {
	fd := tempFD(t, pattern(4096, 1))
	c := newContext(t, be, 4)
	mk := func(link bool) *aio.IOCB {
		return &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: make([]byte, 8), Link: link}
	}
	// Link on the last IOCB.
	x := mk(true)
	n, err := c.Submit(x)
	if n != 0 {
		t.Fatalf("Submit of a lone linked IOCB accepted %d", n)
	}
	wantCallError(t, err, "Submit", unix.EINVAL, "Link on the last IOCB")
	wantErrno(t, c.Error(x), unix.EINVAL, "Error after the refusal")
	// A malformed middle member: the whole chain is refused, the plain
	// request before it is accepted.
	plain := mk(false)
	h, bad, tail := mk(true), &aio.IOCB{Op: aio.OpWrite, FD: fd, Offset: -1, Link: true}, mk(false)
	if n, err := c.Submit(plain, h, bad, tail); n != 1 || err != nil {
		t.Fatalf("Submit(plain, chain with a bad member) = %d, %v; want 1, nil", n, err)
	}
	reapOne(t, c, plain)
	wantErrno(t, c.Error(h), unix.EINVAL, "the head of a refused chain was never submitted")
	if n, err := c.Submit(h, bad, tail); n != 0 {
		t.Fatalf("Submit(chain with a bad member) accepted %d", n)
	} else {
		wantCallError(t, err, "Submit", unix.EINVAL, "chain with a negative Offset")
	}
	// Longer than maxEvents (4).
	long := []*aio.IOCB{mk(true), mk(true), mk(true), mk(true), mk(false)}
	if n, err := c.Submit(long...); n != 0 {
		t.Fatalf("Submit of a chain of 5 on a Context of 4 accepted %d", n)
	} else {
		wantCallError(t, err, "Submit", unix.EINVAL, "chain longer than maxEvents")
	}
	// No room for all of it: EAGAIN, nothing accepted.
	r, w := newPipe(t, 0)
	_ = w
	waiters := []*aio.IOCB{
		{Op: aio.OpRead, FD: r, Buf: make([]byte, 1)},
		{Op: aio.OpRead, FD: r, Buf: make([]byte, 1)},
	}
	mustSubmit(t, c, waiters...)
	three := []*aio.IOCB{mk(true), mk(true), mk(false)}
	if n, err := c.Submit(three...); n != 0 {
		t.Fatalf("Submit of a chain of 3 with room for 2 accepted %d", n)
	} else {
		wantCallError(t, err, "Submit", unix.EAGAIN, "chain without room")
	}
	// The same IOCB twice in one chain: EBUSY, nothing left outstanding.
	for _, cb := range waiters {
		cancelIt(t, c, cb)
	}
	dup := mk(true)
	if n, err := c.Submit(dup, dup, mk(false)); n != 0 {
		t.Fatalf("Submit of a chain holding one IOCB twice accepted %d", n)
	} else {
		wantCallError(t, err, "Submit", unix.EBUSY, "chain holding one IOCB twice")
	}
	wantErrno(t, c.Error(dup), unix.EINVAL, "Error of the IOCB of a refused chain")
	// Do runs one request: a Link there would end no chain.
	if _, err := c.Do(context.Background(), mk(true)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Do with Link = %v, want EINVAL", err)
	}
	// DoChain's own refusals.
	if _, err := c.DoChain(context.Background()); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("DoChain() = %v, want EINVAL", err)
	}
	if _, err := c.DoChain(context.Background(), mk(false), mk(true)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("DoChain with Link on the last = %v, want EINVAL", err)
	}
	expectNoEventsFor(t, c, 20*time.Millisecond)
	wantBytes(t, preadAll(t, fd, 4096, 0)[8:], pattern(4096, 1)[8:], "file after the refusals")
}

// chainNonblockPipe: a chain whose head reads an empty file opened
// O_NONBLOCK — a pipe, and a pty master — waits for data, as a lone read
// does (§3.10, §13.9), and the chain goes on when it comes. On Linux 6.18
// io_uring itself waits for both (the case passes there even without the
// library keeping such chains); where io_uring answers -EAGAIN (§10.5) the
// library keeps the chain, and this is what must still hold.
func chainNonblockPipe(t *testing.T, be string) {
	fd := tempFD(t, pattern(4096, 1))
	c := newContext(t, be, 8)
	pr, pw := newPipe(t, unix.O_NONBLOCK)
	master, slave := contractPty(t)
	if err := unix.SetNonblock(master, true); err != nil {
		t.Fatal(err)
	}
	for i, src := range []struct {
		name string
		r, w int
	}{{"pipe", pr, pw}, {"pty master", master, slave}} {
		data := pattern(64, byte(7+i))
		head := &aio.IOCB{Op: aio.OpRead, FD: src.r, Buf: make([]byte, 8), Link: true, Data: 1}
		mid := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: data, Data: 2}
		submitWithin(t, c, eventWait, head, mid)
		expectNoEventsFor(t, c, 20*time.Millisecond)
		writeFull(t, src.w, []byte("abcdefgh"))
		m := byIOCB(t, reapN(t, c, 2))
		wantEvent(t, m[head], head, 8, src.name+": read of the O_NONBLOCK file")
		wantEvent(t, m[mid], mid, int64(len(data)), src.name+": write after it")
		wantBytes(t, preadAll(t, fd, 64, 0), data, src.name+": the write after the read")
	}
}

// pipeChain is a chain whose head waits: a read of an empty pipe, then a
// write of data at 0 of fd, then an fsync of fd.
func pipeChain(t *testing.T, rfd, fd int, data []byte) (head, mid, last *aio.IOCB) {
	head = &aio.IOCB{Op: aio.OpRead, FD: rfd, Buf: make([]byte, 8), Link: true, Data: 1}
	mid = &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: data, Link: true, Data: 2}
	last = &aio.IOCB{Op: aio.OpFsync, FD: fd, Data: 3}
	return
}

// pendingChain is the set-up several cases share: a 4 KiB file holding
// orig, a pipe with nothing in it, a Context of 8 slots, and pipeChain's
// chain on them (the head waits on the pipe). submit says whether it is
// submitted already (whole, within eventWait).
type pendingChain struct {
	c               *aio.Context
	fd, r           int
	orig            []byte
	head, mid, last *aio.IOCB
}

func newPendingChain(t *testing.T, be string, submit bool) pendingChain {
	pc := pendingChain{orig: pattern(4096, 1)}
	pc.fd = tempFD(t, pc.orig)
	pc.r, _ = newPipe(t, 0)
	pc.c = newContext(t, be, 8)
	pc.head, pc.mid, pc.last = pipeChain(t, pc.r, pc.fd, pattern(64, 7))
	if submit {
		submitWithin(t, pc.c, eventWait, pc.head, pc.mid, pc.last)
	}
	return pc
}

// chainCancelHead: Cancel of the member that runs stops it (its event is
// Cancel's answer) and the rest end with -ECANCELED, through GetEvents,
// without having run.
func chainCancelHead(t *testing.T, be string) {
	pc := newPendingChain(t, be, true)
	c, fd, orig, head, mid, last := pc.c, pc.fd, pc.orig, pc.head, pc.mid, pc.last
	expectNoEventsFor(t, c, 20*time.Millisecond)
	cancelIt(t, c, head)
	m := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, m[mid], mid, -int64(unix.ECANCELED), "member after the canceled head")
	wantEvent(t, m[last], last, -int64(unix.ECANCELED), "last member")
	wantBytes(t, preadAll(t, fd, 4096, 0), orig, "file after the chain was canceled")
	expectNoEventsFor(t, c, 20*time.Millisecond)
}

// chainCancelMiddle: a member held behind the one that runs cannot be
// canceled by itself (EAGAIN, on every backend: io_uring's ASYNC_CANCEL
// does not find it); the chain goes on when the head completes, and every
// member has its event.
func chainCancelMiddle(t *testing.T, be string) {
	fd := tempFD(t, pattern(4096, 1))
	r, w := newPipe(t, 0)
	c := newContext(t, be, 8)
	data := pattern(64, 7)
	head, mid, last := pipeChain(t, r, fd, data)
	submitWithin(t, c, eventWait, head, mid, last)
	for _, cb := range []*aio.IOCB{mid, last} {
		_, err := c.Cancel(cb)
		wantCallError(t, err, "Cancel", unix.EAGAIN, "Cancel of a held member")
		wantErrno(t, c.Error(cb), unix.EINPROGRESS, "Error of a held member")
	}
	writeFull(t, w, []byte("12345678"))
	m := byIOCB(t, reapN(t, c, 3))
	wantEvent(t, m[head], head, 8, "head")
	wantEvent(t, m[mid], mid, int64(len(data)), "middle")
	wantEvent(t, m[last], last, 0, "last")
	wantBytes(t, preadAll(t, fd, 64, 0), data, "the middle member's write")
}

// chainCancelFD: CancelFD of the descriptor the running member and a held
// member wait on cancels both (the held one with the chain: Canceled, and
// its event -ECANCELED); CancelFD naming a held member alone is
// NotCanceled; a chain whose running member is on another descriptor is
// NotCanceled for the held member's descriptor.
func chainCancelFD(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	r2, _ := newPipe(t, 0)
	c := newContext(t, be, 8)
	a := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 4), Link: true, Data: 1}
	b := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 4), Link: true, Data: 2}
	x := &aio.IOCB{Op: aio.OpRead, FD: r2, Buf: make([]byte, 4), Data: 3}
	submitWithin(t, c, eventWait, a, b, x)
	if res, err := c.CancelFD(r, b); err != nil || res != aio.NotCanceled {
		t.Fatalf("CancelFD(fd, held member) = %v, %v; want NotCanceled", res, err)
	}
	if res, err := c.CancelFD(r2, nil); err != nil || res != aio.NotCanceled {
		t.Fatalf("CancelFD of a held member's fd, chain running on another = %v, %v; want NotCanceled", res, err)
	}
	if res, err := c.CancelFD(r, nil); err != nil || res != aio.Canceled {
		t.Fatalf("CancelFD(fd of the chain) = %v, %v; want Canceled", res, err)
	}
	m := byIOCB(t, reapN(t, c, 3))
	for _, cb := range []*aio.IOCB{a, b, x} {
		wantEvent(t, m[cb], cb, -int64(unix.ECANCELED), "member after CancelFD")
	}
	if res, err := c.CancelFD(r, nil); err != nil || res != aio.AllDone {
		t.Fatalf("CancelFD after the chain ended = %v, %v; want AllDone", res, err)
	}
}

// chainDestroyPending: Destroy with a chain pending (its head waits on a
// pipe, the rest held) returns, and every member reports ECANCELED
// afterwards (§7.3); the held write never ran.
func chainDestroyPending(t *testing.T, be string) {
	pc := newPendingChain(t, be, true)
	c, fd, orig, head, mid, last := pc.c, pc.fd, pc.orig, pc.head, pc.mid, pc.last
	// A DoChain pending too.
	r2, _ := newPipe(t, 0)
	h2, m2, l2 := pipeChain(t, r2, fd, pattern(64, 8))
	h2.Link, m2.Link = false, false
	done := make(chan error, 1)
	go func() {
		_, err := c.DoChain(context.Background(), h2, m2, l2)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	finishes(t, eventWait, "Destroy with chains pending", func() {
		if err := c.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	select {
	case err := <-done:
		if !errors.Is(err, unix.ECANCELED) {
			t.Fatalf("DoChain ended by Destroy: %v, want ECANCELED", err)
		}
	case <-time.After(eventWait):
		t.Fatalf("DoChain did not return after Destroy")
	}
	for _, cb := range []*aio.IOCB{head, mid, last} {
		wantErrno(t, c.Error(cb), unix.ECANCELED, "Error after Destroy")
	}
	wantBytes(t, preadAll(t, fd, 4096, 0), orig, "file after Destroy (held writes never ran)")
}

// chainDestroyAfterHead: a chain whose head ends at once (a write of a
// regular file) and whose next member would wait for ever (a read of an
// empty pipe), destroyed straight after Submit, without anybody reaping:
// Destroy returns whether the head ended before it ran (the read then runs
// and is canceled as any request), while it ran (kaio and threads never
// start the read; on uring the kernel starts it and the library asks it to
// stop), and every member reports either its result or ECANCELED.
func chainDestroyAfterHead(t *testing.T, be string) {
	fd := tempFD(t, nil)
	for i := 0; i < 20; i++ {
		r, _ := newPipe(t, 0)
		c := newContext(t, be, 8)
		w := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(512, byte(i)), Link: true}
		rd := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8)}
		submitWithin(t, c, eventWait, w, rd)
		if i%2 == 1 {
			time.Sleep(time.Millisecond)
		}
		finishes(t, eventWait, "Destroy with a chain whose next member waits", func() {
			if err := c.Destroy(); err != nil {
				t.Errorf("Destroy: %v", err)
			}
		})
		if err := c.Error(w); err != nil && !errors.Is(err, unix.ECANCELED) {
			t.Fatalf("Error of the head after Destroy: %v", err)
		}
		wantErrno(t, c.Error(rd), unix.ECANCELED, "Error of the waiting read after Destroy")
	}
}

// chainDoChainWAL: the write-ahead log's commit, write then fdatasync,
// appended record after record; every record is in the file, the events
// say so, and nothing is left dirty.
func chainDoChainWAL(t *testing.T, be string) {
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	var want []byte
	for i := 0; i < 20; i++ {
		rec := pattern(4096*(1+i%4), byte(i))
		w := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: rec, Offset: int64(len(want))}
		s := &aio.IOCB{Op: aio.OpFdsync, FD: fd}
		evs, err := c.DoChain(context.Background(), w, s)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		wantEvent(t, evs[0], w, int64(len(rec)), "WAL write")
		wantEvent(t, evs[1], s, 0, "WAL fdatasync")
		want = append(want, rec...)
		if cs, ok := opsPages(t, fd, 0, 0); ok && cs.Dirty != 0 {
			t.Fatalf("commit %d: %d dirty pages after write+fdatasync", i, cs.Dirty)
		}
	}
	wantBytes(t, preadAll(t, fd, len(want)+1, 0), want, "the log")
}

// chainDoChainCtx: DoChain whose context ends while its head waits: the
// head is stopped, the rest never start, the error matches both the
// context's and ECANCELED, and every event is -ECANCELED.
func chainDoChainCtx(t *testing.T, be string) {
	pc := newPendingChain(t, be, false)
	c, fd, orig, head, mid, last := pc.c, pc.fd, pc.orig, pc.head, pc.mid, pc.last
	head.Link, mid.Link = false, false
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	var evs []aio.Event
	var err error
	finishes(t, eventWait, "DoChain with a context that ends", func() { evs, err = c.DoChain(ctx, head, mid, last) })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, unix.ECANCELED) {
		t.Fatalf("DoChain: %v, want DeadlineExceeded and ECANCELED", err)
	}
	for i, cb := range []*aio.IOCB{head, mid, last} {
		wantEvent(t, evs[i], cb, -int64(unix.ECANCELED), "DoChain member")
	}
	wantBytes(t, preadAll(t, fd, 4096, 0), orig, "file after a stopped DoChain")
	expectNoEventsFor(t, c, 20*time.Millisecond)
}

// chainNothingLost: goroutines run chains through DoChain and through
// Submit (one GetEvents collector), some of which fail in the middle, while
// another goroutine cancels by descriptor; every request ends in exactly
// one event (§2.1), and a chain's members end in order: once one fails the
// rest are -ECANCELED.
func chainNothingLost(t *testing.T, be string) {
	fd := tempFD(t, make([]byte, 1<<20))
	bad := unusedFD(t)
	c := newContext(t, be, 64)
	const workers, rounds = 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	// checkOne: the event of member pos of a chain whose member failAt (or
	// none, -1) fails.
	checkOne := func(ev aio.Event, cb *aio.IOCB, pos, failAt int) {
		switch {
		case ev.IOCB != cb:
			errs <- errors.New("event of another IOCB")
		case (failAt < 0 || pos < failAt) && ev.Res < 0:
			errs <- errors.New("member before any failure failed: " + fmtEvent(ev))
		case pos == failAt && ev.Res != -int64(unix.EBADF):
			errs <- errors.New("failing member: " + fmtEvent(ev))
		case failAt >= 0 && pos > failAt && ev.Res != -int64(unix.ECANCELED):
			errs <- errors.New("member after the failure: " + fmtEvent(ev))
		}
	}
	mkChain := func(g, i int) ([]*aio.IOCB, int) {
		failAt := -1
		if i%3 == 1 {
			failAt = 1
		}
		off := int64((g*rounds + i) * 4096 % (1 << 20))
		cbs := []*aio.IOCB{
			{Op: aio.OpWrite, FD: fd, Buf: pattern(4096, byte(i)), Offset: off},
			{Op: aio.OpFdsync, FD: fd},
			{Op: aio.OpRead, FD: fd, Buf: make([]byte, 4096), Offset: off},
		}
		if failAt >= 0 {
			cbs[failAt].FD = bad
		}
		return cbs, failAt
	}
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				cbs, failAt := mkChain(g, i)
				evs, _ := c.DoChain(context.Background(), cbs...)
				if len(evs) != len(cbs) {
					errs <- errors.New("DoChain returned the wrong number of events")
					continue
				}
				for j := range evs {
					checkOne(evs[j], cbs[j], j, failAt)
				}
			}
		}(g)
	}
	// Submit's chains, collected here.
	var sub []*aio.IOCB
	var evs []aio.Event
	fails := map[*aio.IOCB]int{}
	pos := map[*aio.IOCB]int{}
	for i := 0; i < rounds; i++ {
		cbs, failAt := mkChain(workers, i)
		cbs[0].Link, cbs[1].Link = true, true
		for j, cb := range cbs {
			fails[cb], pos[cb] = failAt, j
		}
		deadline := time.Now().Add(4 * eventWait)
		for {
			n, err := c.Submit(cbs...)
			if n == len(cbs) {
				break
			}
			if n != 0 || !errors.Is(err, unix.EAGAIN) {
				t.Fatalf("Submit of a chain: %d, %v", n, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no room for a chain within %v", 4*eventWait)
			}
			// Full: collect what has ended to make room.
			wait := 10 * time.Millisecond
			buf := make([]aio.Event, 16)
			m, err := c.GetEvents(1, buf, &wait)
			if err != nil {
				t.Fatalf("GetEvents: %v", err)
			}
			evs = append(evs, buf[:m]...)
		}
		sub = append(sub, cbs...)
	}
	evs = append(evs, reapNWithin(t, c, len(sub)-len(evs), 4*eventWait)...)
	seen := byIOCB(t, evs)
	for _, cb := range sub {
		ev, ok := seen[cb]
		if !ok {
			t.Fatalf("no event for a submitted chain member")
		}
		checkOne(ev, cb, pos[cb], fails[cb])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	expectNoEventsFor(t, c, 20*time.Millisecond)
}
