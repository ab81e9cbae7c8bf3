//go:build linux

package uringaio_test

// Contract §8.5 ("Syncs and chains") and §13.8: where the backend makes
// fsync and fdatasync with one blocking call on a worker (threads' pool;
// classic AIO, whose IOCB_CMD_FSYNC runs on a kernel work queue), Do makes
// that call on its caller's goroutine, and DoChain runs a chain of such calls
// there, member after member. The answers are the backend's on every
// backend; only Stats tells where the call was made.

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("caller/sync-no-request", callerSyncNoRequest)
	registerCompat("chain/dochain-on-caller", chainDoChainOnCaller)
	registerCompat("chain/dochain-on-caller-in-use", chainDoChainInUse)
}

// syncsOnCaller: the backends whose syncs and chains of blocking calls run
// on the caller (§8.5).
func syncsOnCaller(be string) bool { return be == "threads" || be == "kaio" }

// wantCallsMade checks how many requests and caller-side blocking calls c
// made since before: on threads and kaio calls blocking calls and no
// request, on uring calls requests and no blocking call.
func wantCallsMade(t *testing.T, be string, c *aio.Context, before aio.Stats, calls uint64, what string) {
	t.Helper()
	st := c.Stats()
	reqs, blk := st.Requests-before.Requests, st.Blocking-before.Blocking
	wantReqs, wantBlk := calls, uint64(0)
	if syncsOnCaller(be) {
		wantReqs, wantBlk = 0, calls
	}
	if reqs != wantReqs || blk != wantBlk {
		t.Fatalf("%s: %d requests and %d blocking calls on the caller, want %d and %d", what, reqs, blk, wantReqs, wantBlk)
	}
}

// callerSyncNoRequest: Do of fsync and fdatasync on a file with dirty pages,
// and Do of a write with RWF_DSYNC or RWF_SYNC, is a blocking call on the
// caller on threads and kaio (no request), a request on uring; the file's
// pages are clean after each. A write with another flag (RWF_APPEND) is a
// request everywhere. A descriptor that is not open answers EBADF and a pipe
// EINVAL on every backend.
func callerSyncNoRequest(t *testing.T, be string) {
	fd := tempFD(t, nil)
	c := newContext(t, be, 8)
	ctx := context.Background()
	before := c.Stats()
	for i, op := range []aio.Op{aio.OpFsync, aio.OpFdsync} {
		if _, err := unix.Pwrite(fd, pattern(8192, byte(i+1)), int64(i)*8192); err != nil {
			t.Fatal(err)
		}
		cb := &aio.IOCB{Op: op, FD: fd, Data: 7}
		ev, err := c.Do(ctx, cb)
		if err != nil {
			t.Fatalf("Do(%v): %v", op, err)
		}
		wantEvent(t, ev, cb, 0, op.String())
		if err := c.Error(cb); err != nil {
			t.Fatalf("Error after Do(%v) = %v, want nil", op, err)
		}
		if cs, ok := opsPages(t, fd, 0, 0); ok && cs.Dirty != 0 {
			t.Fatalf("Do(%v): %d dirty pages after it", op, cs.Dirty)
		}
	}
	wantCallsMade(t, be, c, before, 2, "Do(fsync), Do(fdatasync)")

	// Writes made durable by their own flags: the same on the caller.
	before = c.Stats()
	for i, fl := range []int{unix.RWF_DSYNC, unix.RWF_SYNC, unix.RWF_DSYNC | unix.RWF_SYNC} {
		off := 16384 + int64(i)*4096
		cb := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(4096, byte(10+i)), Offset: off, RWFlags: fl}
		ev, err := c.Do(ctx, cb)
		if err != nil {
			t.Fatalf("Do(write, RWFlags %#x): %v", fl, err)
		}
		wantEvent(t, ev, cb, 4096, "durable write")
		if cs, ok := opsPages(t, fd, uint64(off), 4096); ok && cs.Dirty != 0 {
			t.Fatalf("Do(write, RWFlags %#x): its page is dirty after it", fl)
		}
		wantBytes(t, preadAll(t, fd, 4096, off), pattern(4096, byte(10+i)), "the durable write's bytes")
	}
	wantCallsMade(t, be, c, before, 3, "Do(write) with RWF_DSYNC, RWF_SYNC and both")
	// Any other flag stays the backend's request: RWF_APPEND.
	before = c.Stats()
	app := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: []byte("tail"), RWFlags: unix.RWF_APPEND}
	if _, err := c.Do(ctx, app); err != nil {
		t.Fatalf("Do(write, RWF_APPEND): %v", err)
	}
	if st := c.Stats(); st.Requests-before.Requests != 1 || st.Blocking != before.Blocking {
		t.Fatalf("Do(write, RWF_APPEND): %d requests and %d blocking calls, want 1 and 0",
			st.Requests-before.Requests, st.Blocking-before.Blocking)
	}

	_, err := c.Do(ctx, &aio.IOCB{Op: aio.OpFsync, FD: unusedFD(t)})
	wantErrno(t, err, unix.EBADF, "Do(fsync) of a descriptor that is not open")
	r, _ := newPipe(t, 0)
	_, err = c.Do(ctx, &aio.IOCB{Op: aio.OpFdsync, FD: r})
	wantErrno(t, err, unix.EINVAL, "Do(fdatasync) of a pipe")
}

// chainDoChainOnCaller: DoChain(write, fdatasync) — the write-ahead log's
// commit — and DoChain(write, read, fsync) are blocking calls on the caller
// on threads and kaio (no request), requests on uring; the data is in the
// file. A chain with a member the caller does not make (a write to a pipe)
// is a chain of requests on every backend, and keeps its order. A chain
// whose first member fails ends the rest with -ECANCELED (the canceled
// write never runs), made on the caller too.
func chainDoChainOnCaller(t *testing.T, be string) {
	fd := tempFD(t, make([]byte, 16384))
	c := newContext(t, be, 8)
	ctx := context.Background()

	before := c.Stats()
	rec := pattern(4096, 3)
	w := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: rec, Offset: 0, Data: 1}
	s := &aio.IOCB{Op: aio.OpFdsync, FD: fd, Data: 2}
	evs, err := c.DoChain(ctx, w, s)
	if err != nil {
		t.Fatalf("DoChain(write, fdatasync): %v", err)
	}
	wantEvent(t, evs[0], w, 4096, "WAL write")
	wantEvent(t, evs[1], s, 0, "WAL fdatasync")
	wantCallsMade(t, be, c, before, 2, "DoChain(write, fdatasync)")

	before = c.Stats()
	got := make([]byte, 4096)
	w2 := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(4096, 4), Offset: 8192}
	r2 := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: got, Offset: 8192}
	s2 := &aio.IOCB{Op: aio.OpFsync, FD: fd}
	if _, err := c.DoChain(ctx, w2, r2, s2); err != nil {
		t.Fatalf("DoChain(write, read, fsync): %v", err)
	}
	wantBytes(t, got, pattern(4096, 4), "the read after the write, in one chain")
	wantCallsMade(t, be, c, before, 3, "DoChain(write, read, fsync)")
	wantBytes(t, preadAll(t, fd, 16384, 0)[:4096], rec, "the WAL record")

	// A pipe member: the whole chain is requests, in order.
	pr, pw := newPipe(t, 0)
	before = c.Stats()
	pwc := &aio.IOCB{Op: aio.OpWrite, FD: pw, Buf: []byte("abc")}
	ps := &aio.IOCB{Op: aio.OpFdsync, FD: fd}
	if _, err := c.DoChain(ctx, pwc, ps); err != nil {
		t.Fatalf("DoChain(pipe write, fdatasync): %v", err)
	}
	if st := c.Stats(); st.Requests-before.Requests != 2 || st.Blocking != before.Blocking {
		t.Fatalf("DoChain(pipe write, fdatasync): %d requests and %d blocking calls, want 2 and 0",
			st.Requests-before.Requests, st.Blocking-before.Blocking)
	}
	buf := make([]byte, 3)
	if n, err := unix.Read(pr, buf); n != 3 || err != nil || string(buf) != "abc" {
		t.Fatalf("pipe after the chain: %d %v %q", n, err, buf[:max(n, 0)])
	}

	// The first member fails: the rest end -ECANCELED without running.
	ro := openFD(t, fdPath(t, fd), unix.O_RDONLY)
	bw := &aio.IOCB{Op: aio.OpWrite, FD: ro, Buf: pattern(100, 9), Offset: 0, Data: 1}
	cw := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(100, 9), Offset: 4096, Data: 2}
	cs := &aio.IOCB{Op: aio.OpFdsync, FD: fd, Data: 3}
	evs, err = c.DoChain(ctx, bw, cw, cs)
	wantErrno(t, err, unix.EBADF, "DoChain whose write is to a read-only descriptor")
	wantEvent(t, evs[0], bw, -int64(unix.EBADF), "the failing write")
	wantEvent(t, evs[1], cw, -int64(unix.ECANCELED), "the write after it")
	wantEvent(t, evs[2], cs, -int64(unix.ECANCELED), "the fdatasync after it")
	wantErrno(t, c.Error(cw), unix.ECANCELED, "Error of the canceled write")
	wantBytes(t, preadAll(t, fd, 16384, 0)[4096:8192], make([]byte, 4096), "the bytes the canceled write would have written")
	expectNoEventsFor(t, c, 20*time.Millisecond)
}

// fdPath is the path /proc gives for fd.
func fdPath(t *testing.T, fd int) string {
	t.Helper()
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// chainDoChainInUse: while DoChain runs (its read held by a FUSE server),
// every member is in use on every backend: Error reports EINPROGRESS for
// the running member and for the one after it, and Submit refuses both
// (EBUSY). Once the read is answered the chain ends normally; on threads
// and kaio no member was a request.
func chainDoChainInUse(t *testing.T, be string) {
	srv := newFuseServer(t, pattern(fuseSize, 5), fuseOptions{asyncRead: true})
	c := newContext(t, be, 8)
	ffd := openFD(t, srv.path, unix.O_RDONLY) // not os.Open: see callerBlockingBound
	if err := unix.Fadvise(ffd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	logFD := tempFD(t, nil)
	defer srv.release() // a failing check must not leave the read held
	srv.setHold(true)
	before := c.Stats()
	got := make([]byte, 4096)
	r := &aio.IOCB{Op: aio.OpRead, FD: ffd, Buf: got, Offset: 8192}
	s := &aio.IOCB{Op: aio.OpFdsync, FD: logFD}
	type result struct {
		evs []aio.Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		evs, err := c.DoChain(context.Background(), r, s)
		done <- result{evs, err}
	}()
	if !srv.waitHeld(1, eventWait) {
		t.Fatal("the chain's read never reached the FUSE server")
	}
	wantErrno(t, c.Error(r), unix.EINPROGRESS, "Error of the running member")
	wantErrno(t, c.Error(s), unix.EINPROGRESS, "Error of the member after it")
	for _, cb := range []*aio.IOCB{r, s} {
		n, err := c.Submit(cb)
		if n != 0 {
			t.Fatalf("Submit of a member of a running DoChain accepted %d", n)
		}
		wantErrno(t, err, unix.EBUSY, "Submit of a member of a running DoChain")
	}
	srv.release()
	var res result
	finishes(t, eventWait, "DoChain after its read was answered", func() { res = <-done })
	if res.err != nil {
		t.Fatalf("DoChain: %v", res.err)
	}
	wantEvent(t, res.evs[0], r, 4096, "the held read")
	wantEvent(t, res.evs[1], s, 0, "the fdatasync after it")
	wantBytes(t, got, pattern(fuseSize, 5)[8192:8192+4096], "the held read's bytes")
	wantCallsMade(t, be, c, before, 2, "DoChain(FUSE read, fdatasync)")
}
