//go:build linux

package uringaio_test

// Descriptors: what a request holds, and that a request stays bound to the
// file its descriptor named (docs/contract.md §3.11, §3.12). The pool of the
// threads backend (and of what kaio and uring hand to it) shares one
// duplicate among the requests on one open file; these cases check that
// sharing can never redirect a request to a file opened later under the same
// number, that the number of descriptors a pending request holds is bounded,
// and that nothing is left open after many requests.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("fds/submit-after-close-reuse", fdsSubmitAfterReuse)
	for _, kind := range []string{"pipe", "socket", "eventfd", "tty", "regular"} {
		registerCompat("fds/file-after-close-reuse/"+kind, func(t *testing.T, be string) { fdsFileAfterReuse(t, be, kind) })
	}
	registerCompat("fds/file-needs-no-descriptor", fdsFileNoDescriptor)
	registerCompat("fds/32768-polls-one-pipe", fds32768Polls)
	registerCompat("fds/count-after-100k-mixed", fdsCountAfterMixed)
}

// fdsSubmitAfterReuse: a read waits on pipe A's read end, number N. N is
// closed and pipe B is made so that its read end is N again; a second read
// is submitted on N. Data written to B must reach the second read only, and
// data written to A the first only: a request made on N while N named A
// stays on A, and one made after stays on B, even where the library holds
// one descriptor for several requests on one file.
func fdsSubmitAfterReuse(t *testing.T, be string) {
	c := newContext(t, be, 8)
	var a [2]int
	if err := unix.Pipe2(a[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	n, aw := a[0], a[1]
	defer unix.Close(aw)
	r1 := &aio.IOCB{Op: aio.OpRead, FD: n, Buf: make([]byte, 8), Data: 1}
	r0 := &aio.IOCB{Op: aio.OpPoll, FD: n, PollEvents: unix.POLLIN, Data: 0}
	submitWithin(t, c, eventWait, r0, r1)
	expectNoEvents(t, c)
	unix.Close(n)
	var b [2]int
	if err := unix.Pipe2(b[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(b[0])
	defer unix.Close(b[1])
	if b[0] != n {
		// Another goroutine took the number: place B's read end on it.
		if err := unix.Dup3(b[0], n, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		unix.Close(b[0])
		b[0] = n
	}
	r2 := &aio.IOCB{Op: aio.OpRead, FD: n, Buf: make([]byte, 8), Data: 2}
	submitWithin(t, c, eventWait, r2)
	writeFull(t, b[1], []byte("from-B"))
	ev := reapOne(t, c, r2)
	if ev.Res != 6 || string(r2.Buf[:6]) != "from-B" {
		t.Fatalf("read submitted after the reuse: %s, %q; want 6, \"from-B\"", fmtEvent(ev), r2.Buf)
	}
	expectNoEvents(t, c) // neither the poll nor the read on A saw B's data
	writeFull(t, aw, []byte("from-A"))
	evs := byIOCB(t, reapN(t, c, 2))
	if ev := evs[r1]; ev.Res != 6 || string(r1.Buf[:6]) != "from-A" {
		t.Fatalf("read submitted before the reuse: %s, %q; want 6, \"from-A\"", fmtEvent(ev), r1.Buf)
	}
	if ev := evs[r0]; ev.Res&unix.POLLIN == 0 {
		t.Fatalf("poll submitted before the reuse: %s; want POLLIN", fmtEvent(ev))
	}
}

// fdsKind makes a file of kind for fdsFileAfterReuse: the descriptor to wrap,
// a function that makes 8 bytes ("old-fd!!") readable on it, or nil where
// they are there from the start (regular), and whether a read on it waits.
// (A File's ReadAt fills its buffer, as io.ReaderAt must.)
func fdsKind(t *testing.T, kind string) (fd int, feed func(), waits bool) {
	msg := []byte("old-fd!!")
	switch kind {
	case "pipe":
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(p[1]) })
		return p[0], func() { writeFull(t, p[1], msg) }, true
	case "socket":
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(sp[1]) })
		return sp[0], func() { writeFull(t, sp[1], msg) }, true
	case "eventfd":
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		// An eventfd read takes 8 bytes: the counter, in native order.
		return efd, func() { writeFull(t, efd, []byte{6, 0, 0, 0, 0, 0, 0, 0}) }, true
	case "tty":
		m, s, _ := racePty(t)
		d, err := unix.FcntlInt(uintptr(s), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return d, func() { writeFull(t, m, []byte("old-fd!\n")) }, true
	}
	path := tempFileWith(t, msg)
	return openFD(t, path, unix.O_RDONLY), nil, false
}

// fdsFileAfterReuse: a File's *os.File is closed and its number reused by
// another file. A read through the File then fails (os.ErrClosed) and never
// reads the new file; a read that was waiting when the *os.File was closed
// ends on the old file (its data, or an error), never on the new one.
func fdsFileAfterReuse(t *testing.T, be string, kind string) {
	c := newContext(t, be, 8)
	newData := []byte("NEWFILE!")
	newPath := tempFileWith(t, newData)

	// A read made after the close.
	fd, _, _ := fdsKind(t, kind)
	f := os.NewFile(uintptr(fd), kind)
	af := aio.NewFile(c, f)
	f.Close()
	nfd := openFD(t, newPath, unix.O_RDONLY)
	if nfd != fd {
		t.Logf("the new file got %d, not %d", nfd, fd)
	}
	p := make([]byte, 8)
	n, err := af.ReadAt(p, 0)
	if err == nil || bytes.Contains(p, newData[:n]) && n > 0 {
		t.Fatalf("ReadAt after Close = %d, %v, %q; want an error and none of the new file", n, err, p[:n])
	}
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v, want os.ErrClosed", err)
	}

	// A read waiting when the *os.File is closed.
	fd, feed, waits := fdsKind(t, kind)
	if !waits {
		return // a regular file's read never waits for data
	}
	f = os.NewFile(uintptr(fd), kind)
	af = aio.NewFile(c, f)
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	q := make([]byte, 8)
	go func() {
		n, err := af.ReadAtContext(context.Background(), q, 0)
		got <- result{n, err}
	}()
	time.Sleep(20 * time.Millisecond) // let the read start waiting
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	time.Sleep(20 * time.Millisecond)
	// Another file is opened, maybe under the same number if the close
	// went through; its data must never reach the read.
	nfd2 := openFD(t, newPath, unix.O_RDONLY)
	_ = nfd2
	feed()
	select {
	case r := <-got:
		if r.n > 0 && bytes.Equal(q[:r.n], newData[:r.n]) {
			t.Fatalf("waiting read = %d, %v, %q: the new file's data", r.n, r.err, q[:r.n])
		}
		if r.err == nil && r.n == 0 {
			t.Fatalf("waiting read = 0, nil")
		}
	case <-time.After(eventWait):
		t.Fatalf("the waiting read did not end within %v after data came", eventWait)
	}
	select {
	case <-closed:
	case <-time.After(eventWait):
		t.Fatalf("Close did not return within %v", eventWait)
	}
}

// fdsFileNoDescriptor: a File's request holds its descriptor through
// RawConn.Control for its whole life, so the library needs no duplicate of
// it: with no descriptor left (RLIMIT_NOFILE lowered to the lowest free
// number) a read through a File that waits on a pipe still waits and reads,
// where a duplicate would have failed it with EMFILE.
func fdsFileNoDescriptor(t *testing.T, be string) {
	// One lane: a second lane's pool, started on that lane's first use,
	// needs descriptors of its own (its poller), and at GOMAXPROCS 8 the
	// read with none left could be the first on another lane (found by
	// the 20-round run at GOMAXPROCS=8 on kaio).
	c, err := setupRetryOpts(t, 8, aio.Options{Backend: be, Lanes: 1})
	if err != nil {
		t.Fatalf("SetupWithOptions(8, %q, Lanes 1): %v", be, err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	r, w, _, wfd := osPipe(t)
	_ = w
	af := aio.NewFile(c, r)
	q := make([]byte, 8)
	read := func() (int, error) {
		type result struct {
			n   int
			err error
		}
		got := make(chan result, 1)
		go func() {
			n, err := af.ReadAt(q, 0)
			got <- result{n, err}
		}()
		time.Sleep(20 * time.Millisecond) // let it wait
		writeFull(t, wfd, []byte("12345678"))
		select {
		case res := <-got:
			return res.n, res.err
		case <-time.After(eventWait):
			t.Fatalf("File.ReadAt did not end within %v after data came", eventWait)
		}
		return 0, nil
	}
	// Once with descriptors to spare: whatever the Context starts on first
	// use (a pool and its poller) is started.
	if n, err := read(); n != 8 || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	probe, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(probe)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(probe), Max: orig.Max}); err != nil {
		t.Fatal(err)
	}
	n, err := read()
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if n != 8 || err != nil || string(q) != "12345678" {
		t.Fatalf("ReadAt with no descriptor left = %d, %v, %q; want 8, nil, \"12345678\"", n, err, q)
	}
}

// fdsCount is the number of open descriptors of this process.
func fdsCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // ReadDir's own
}

// fds32768Polls: 32768 polls wait on one pipe while RLIMIT_NOFILE is 20000.
// Every one must wait (none ends early, with EMFILE or anything else), the
// process must hold a bounded number of extra descriptors meanwhile, and
// every one must then cancel.
func fds32768Polls(t *testing.T, be string) {
	const n = 32768
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	lim := orig
	lim.Cur = min(20000, orig.Max)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
	r, _ := newPipe(t, 0)
	c := newContext(t, be, n)
	before := fdsCount(t)
	cbs := make([]*aio.IOCB, n)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: uint64(i)}
	}
	submitWithin(t, c, 60*time.Second, cbs...)
	expectNoEvents(t, c)
	// A bound, not a figure: a few descriptors for the pool (its poller
	// and the shared duplicate), nowhere near one per request.
	if during := fdsCount(t); during-before > 16 {
		t.Fatalf("%d descriptors while %d polls wait on one pipe, %d before", during, n, before)
	}
	var res aio.CancelResult
	var err error
	finishes(t, 60*time.Second, "CancelFD of 32768 polls", func() { res, err = c.CancelFD(r, nil) })
	if res != aio.Canceled || err != nil {
		t.Fatalf("CancelFD = %v, %v; want Canceled", res, err)
	}
	for _, ev := range reapNWithin(t, c, n, 60*time.Second) {
		if ev.Res != -int64(unix.ECANCELED) {
			t.Fatalf("event %s, want -ECANCELED", fmtEvent(ev))
		}
	}
}

// fdsCountAfterMixed: 100k requests of every kind (reads and writes of a
// regular file, reads waiting on a socket, polls on a pipe, half of them
// canceled, fdatasyncs and nops) leave the process with the descriptors it
// had before.
func fdsCountAfterMixed(t *testing.T, be string) {
	const batch, rounds = 100, 1000
	data := pattern(1<<20, 9)
	fd := tempFD(t, data)
	r, w := newPipe(t, 0)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sp[0]); unix.Close(sp[1]) })
	c := newContext(t, be, batch)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 4096)
	}
	cbs := make([]*aio.IOCB, batch)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Data: uint64(i)}
	}
	round := func(k int) {
		for i, cb := range cbs {
			*cb = aio.IOCB{Data: uint64(i)}
			switch {
			case i < 40:
				cb.Op, cb.FD, cb.Buf, cb.Offset = aio.OpRead, fd, bufs[i], int64((k*batch+i)%256)*4096
			case i < 60:
				cb.Op, cb.FD, cb.Buf, cb.Offset = aio.OpWrite, fd, bufs[i][:512], int64(i)*512
			case i < 80:
				cb.Op, cb.FD, cb.PollEvents = aio.OpPoll, r, unix.POLLIN
			case i < 90:
				cb.Op, cb.FD, cb.Buf = aio.OpRead, sp[0], bufs[i][:1]
			case i < 92:
				cb.Op, cb.FD = aio.OpFdsync, fd
			default:
				cb.Op = aio.OpNop
			}
		}
		submitWithin(t, c, eventWait, cbs...)
		canceled := 0
		for _, cb := range cbs[60:70] {
			// Canceled (its event is Cancel's answer), or already ended
			// (its event comes through GetEvents).
			if ev, err := c.Cancel(cb); err == nil {
				if ev.Res != -int64(unix.ECANCELED) {
					t.Fatalf("round %d: Cancel = %s", k, fmtEvent(ev))
				}
				canceled++
			}
		}
		writeFull(t, w, []byte("p"))
		writeFull(t, sp[1], bytes.Repeat([]byte("s"), 10))
		for _, ev := range reapNWithin(t, c, batch-canceled, eventWait) {
			if ev.Res < 0 && ev.Res != -int64(unix.ECANCELED) {
				t.Fatalf("round %d: event %s", k, fmtEvent(ev))
			}
		}
		readExactly(t, r, 1)
	}
	round(0) // the first round starts what a Context keeps (a pool, its poller)
	before := fdsCount(t)
	for k := 1; k <= rounds; k++ {
		round(k)
		if t.Failed() {
			return
		}
	}
	if after := fdsCount(t); after != before {
		t.Fatalf("%d descriptors after %d requests, %d before", after, rounds*batch, before)
	}
}
