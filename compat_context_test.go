//go:build linux

package uringaio_test

// The context.Context layer (docs/contract.md §8): Do, ReadAt, WriteAt and the
// File adapter, on every backend.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("context/do-canceled-while-waiting", cfdTestDoCanceled)
	registerCompat("context/do-deadline", cfdTestDoDeadline)
	registerCompat("context/do-completes-first", cfdTestDoCompletesFirst)
	registerCompat("context/do-already-canceled", cfdTestDoAlreadyCanceled)
	registerCompat("context/do-file", cfdTestDoFile)
	registerCompat("context/do-vs-cancel-and-cancelfd", cfdTestDoVsCancel)
	registerCompat("context/readat-writeat-file", cfdTestRWAtFile)
	registerCompat("context/readat-writeat-pipe", cfdTestRWAtPipe)
	registerCompat("context/file/roundtrip", cfdTestFileRoundTrip)
	registerCompat("context/file/eof", cfdTestFileEOF)
	registerCompat("context/file/iotest", cfdTestFileIotest)
	registerCompat("context/file/parallel", cfdTestFileParallel)
	registerCompat("context/file/errors", cfdTestFileErrors)
	registerCompat("context/file/pipe", cfdTestFilePipe)
	registerCompat("context/file/close-while-pending", cfdTestFileCloseWhilePending)
	registerCompat("context/many-goroutines", cfdTestManyGoroutines)
}

// cfdWantCanceledErr fails unless err is Do's cancellation: a *aio.CanceledError
// matching both ctxErr and ECANCELED.
func cfdWantCanceledErr(t testing.TB, err, ctxErr error, what string) {
	t.Helper()
	if !errors.Is(err, ctxErr) || !errors.Is(err, unix.ECANCELED) {
		t.Fatalf("%s: err = %v, want one matching %v and ECANCELED", what, err, ctxErr)
	}
	var ce *aio.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: err = %T %v, want a *aio.CanceledError", what, err, err)
	}
	other := context.Canceled
	if ctxErr == context.Canceled {
		other = context.DeadlineExceeded
	}
	if errors.Is(err, other) {
		t.Fatalf("%s: err = %v matches %v too", what, err, other)
	}
}

// cfdWhenPending runs fn (in a new goroutine) once cb is outstanding on c, as
// Error reports it; Do's caller can then be sure fn acts on a waiting request.
func cfdWhenPending(c *aio.Context, cb *aio.IOCB, fn func()) {
	go func() {
		deadline := time.Now().Add(eventWait)
		for !errors.Is(c.Error(cb), unix.EINPROGRESS) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		// Give the request a moment to reach its wait in the kernel.
		time.Sleep(2 * time.Millisecond)
		fn()
	}()
}

// cfdDo runs c.Do and fails the test if it does not return within eventWait.
func cfdDo(t *testing.T, c *aio.Context, ctx context.Context, cb *aio.IOCB) (ev aio.Event, err error) {
	t.Helper()
	finishes(t, eventWait, "Do", func() { ev, err = c.Do(ctx, cb) })
	return ev, err
}

// cfdTestDoCanceled: the context is canceled while the read waits on an empty
// pipe. Do's error matches context.Canceled and ECANCELED, nothing moved, and
// data written afterwards is still in the pipe for the next reader.
func cfdTestDoCanceled(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 42}
	cfdWhenPending(c, cb, cancel)
	ev, err := cfdDo(t, c, ctx, cb)
	cfdWantCanceledErr(t, err, context.Canceled, "Do canceled while waiting")
	wantEvent(t, ev, cb, cfdECANCELED, "Do's event")
	cfdWantError(t, c, cb, unix.ECANCELED, "after Do")
	if !bytes.Equal(cb.Buf, make([]byte, 8)) {
		t.Fatalf("canceled read wrote %q into its buffer", cb.Buf)
	}
	writeFull(t, w, []byte("later!!!"))
	cb2 := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8)}
	ev, err = cfdDo(t, c, context.Background(), cb2)
	if err != nil {
		t.Fatalf("Do after the cancellation: %v", err)
	}
	wantEvent(t, ev, cb2, 8, "next read")
	wantBytes(t, cb2.Buf, []byte("later!!!"), "next read")
	// Do's requests never show up in GetEvents.
	expectNoEvents(t, c)
	// The IOCB is reusable right away.
	writeFull(t, w, []byte("again..."))
	if ev, err := cfdDo(t, c, context.Background(), cb); err != nil || ev.Res != 8 {
		t.Fatalf("Do with the reused IOCB = %s, %v", fmtRes(ev.Res), err)
	}
	wantBytes(t, cb.Buf, []byte("again..."), "reused IOCB")
}

// cfdTestDoDeadline: the same with a deadline; the error matches
// DeadlineExceeded and ECANCELED, and Do returns soon after the deadline.
func cfdTestDoDeadline(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	const limit = 30 * time.Millisecond
	for _, cb := range []*aio.IOCB{
		{Op: aio.OpRead, FD: r, Buf: make([]byte, 8)},
		{Op: aio.OpReadv, FD: r, Bufs: [][]byte{make([]byte, 4), make([]byte, 4)}},
		{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN},
		{Op: aio.OpPoll, FD: w, PollEvents: unix.POLLIN}, // never comes on a write end
	} {
		what := fmt.Sprintf("%v on fd %d", cb.Op, cb.FD)
		// The stopwatch starts before the deadline is set, so the deadline
		// is at least limit after start however late this goroutine runs.
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		ev, err := cfdDo(t, c, ctx, cb)
		took := time.Since(start)
		cancel()
		cfdWantCanceledErr(t, err, context.DeadlineExceeded, what)
		wantEvent(t, ev, cb, cfdECANCELED, what)
		if took < limit {
			t.Fatalf("%s: Do returned after %v, before the %v deadline", what, took, limit)
		}
	}
	writeFull(t, w, []byte("12345678"))
	wantBytes(t, readExactly(t, r, 8), []byte("12345678"), "pipe data after the deadlines")
	expectNoEvents(t, c)
}

// cfdTestDoCompletesFirst: a request that completes before the context ends
// returns its result with no error, whether the data was there already or
// came while Do waited.
func cfdTestDoCompletesFirst(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	writeFull(t, w, []byte("ready-77"))
	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 5}
	ev, err := cfdDo(t, c, ctx, cb)
	if err != nil || ev.Err() != nil {
		t.Fatalf("Do(ready data) = %v, %v", ev.Err(), err)
	}
	wantEvent(t, ev, cb, 8, "ready read")
	wantBytes(t, cb.Buf, []byte("ready-77"), "ready read")

	cb2 := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 6}
	cfdWhenPending(c, cb2, func() { _, _ = unix.Write(w, []byte("later-88")) })
	ev, err = cfdDo(t, c, ctx, cb2)
	if err != nil {
		t.Fatalf("Do(data arrives while waiting): %v", err)
	}
	wantEvent(t, ev, cb2, 8, "waiting read")
	wantBytes(t, cb2.Buf, []byte("later-88"), "waiting read")
	cfdWantError(t, c, cb2, nil, "waiting read")

	// Canceling the context after Do returned changes nothing.
	cancel()
	cfdWantError(t, c, cb2, nil, "after cancel()")
	expectNoEvents(t, c)

	// A nop and a poll that is ready.
	nop := &aio.IOCB{Op: aio.OpNop, Data: 9}
	if ev, err := cfdDo(t, c, context.Background(), nop); err != nil || ev.Res != 0 || ev.IOCB != nop || ev.Data != 9 {
		t.Fatalf("Do(nop) = %s, %v", fmtEvent(ev), err)
	}
	poll := &aio.IOCB{Op: aio.OpPoll, FD: w, PollEvents: unix.POLLOUT}
	if ev, err := cfdDo(t, c, context.Background(), poll); err != nil || ev.Res&int64(unix.POLLOUT) == 0 {
		t.Fatalf("Do(poll POLLOUT on an empty pipe) = %s, %v", fmtEvent(ev), err)
	}
}

// cfdTestDoAlreadyCanceled: a context that has already ended is not submitted
// at all: the error matches both ctx.Err() and ECANCELED, the IOCB was never
// submitted (Error says EINVAL), and the pipe keeps its data.
func cfdTestDoAlreadyCanceled(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	writeFull(t, w, []byte("keepme"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 6)}
	_, err := cfdDo(t, c, ctx, cb)
	cfdWantCanceledErr(t, err, context.Canceled, "Do(canceled ctx)")
	wantCallError(t, c.Error(cb), "Error", unix.EINVAL, "Error of an IOCB Do did not submit")
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	_, err = cfdDo(t, c, dctx, cb)
	cfdWantCanceledErr(t, err, context.DeadlineExceeded, "Do(expired ctx)")
	n, err := c.ReadAt(ctx, r, cb.Buf, 0)
	if n != 0 {
		t.Fatalf("ReadAt(canceled ctx) = %d", n)
	}
	cfdWantCanceledErr(t, err, context.Canceled, "ReadAt(canceled ctx)")
	if !bytes.Equal(cb.Buf, make([]byte, 6)) {
		t.Fatalf("buffer written: %q", cb.Buf)
	}
	wantBytes(t, readExactly(t, r, 6), []byte("keepme"), "pipe data")
	expectNoEvents(t, c)
}

// cfdTestDoFile: Do on a regular file (read, write, fsync, a failure).
func cfdTestDoFile(t *testing.T, be string) {
	data := pattern(8192, 1)
	fd := tempFD(t, data)
	c := newContext(t, be, 4)
	rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 100), Offset: 4000}
	ev, err := cfdDo(t, c, context.Background(), rd)
	if err != nil {
		t.Fatalf("Do(read): %v", err)
	}
	wantEvent(t, ev, rd, 100, "file read")
	wantBytes(t, rd.Buf, data[4000:4100], "file read")
	wr := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: []byte("hello"), Offset: 8190}
	if ev, err := cfdDo(t, c, context.Background(), wr); err != nil || ev.Res != 5 {
		t.Fatalf("Do(write) = %s, %v", fmtRes(ev.Res), err)
	}
	fsync := &aio.IOCB{Op: aio.OpFsync, FD: fd}
	if ev, err := cfdDo(t, c, context.Background(), fsync); err != nil || ev.Res != 0 {
		t.Fatalf("Do(fsync) = %s, %v", fmtRes(ev.Res), err)
	}
	wantBytes(t, preadAll(t, fd, 10, 8185), append(append([]byte(nil), data[8185:8190]...), "hello"...), "after write")
	// A request that fails in the kernel: its errno, as a RequestError.
	bad := &aio.IOCB{Op: aio.OpRead, FD: unusedFD(t), Buf: make([]byte, 4)}
	ev, err = cfdDo(t, c, context.Background(), bad)
	wantErrno(t, err, unix.EBADF, "Do(read on a closed fd)")
	var re *aio.RequestError
	if !errors.As(err, &re) || ev.Res != -int64(unix.EBADF) {
		t.Fatalf("Do(read on a closed fd) = %s, %T %v", fmtRes(ev.Res), err, err)
	}
	if errors.Is(err, unix.ECANCELED) {
		t.Fatalf("EBADF matches ECANCELED: %v", err)
	}
	cfdWantError(t, c, bad, unix.EBADF, "Do(read on a closed fd)")
}

// cfdTestDoVsCancel: the public cancel calls meet Do's private requests.
// CancelFD cancels them like any other (Do returns ECANCELED, not a context
// error); Cancel cannot hand out their event (EAGAIN) but stops them for Do.
// GetEvents sees none of it.
func cfdTestDoVsCancel(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	ctx := context.Background()

	cb := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
	var res aio.CancelResult
	var cerr error
	cancelDone := make(chan struct{})
	cfdWhenPending(c, cb, func() {
		res, cerr = c.CancelFD(r, nil)
		close(cancelDone)
	})
	ev, err := cfdDo(t, c, ctx, cb)
	<-cancelDone
	cfdWantResult(t, res, cerr, aio.Canceled, "CancelFD(r, nil) with Do's read pending")
	wantEvent(t, ev, cb, cfdECANCELED, "Do's read canceled by CancelFD")
	wantErrno(t, err, unix.ECANCELED, "Do's read canceled by CancelFD")
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do's error %v claims a context error; the context is alive", err)
	}

	cb2 := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 2}
	var cev aio.Event
	cancelDone2 := make(chan struct{})
	cfdWhenPending(c, cb2, func() {
		cev, cerr = c.Cancel(cb2)
		close(cancelDone2)
	})
	ev, err = cfdDo(t, c, ctx, cb2)
	<-cancelDone2
	wantCallError(t, cerr, "Cancel", unix.EAGAIN, "Cancel(Do's read)")
	if cev != (aio.Event{}) {
		t.Fatalf("Cancel(Do's read) returned an event %s", fmtEvent(cev))
	}
	wantEvent(t, ev, cb2, cfdECANCELED, "Do's read stopped by Cancel")
	wantErrno(t, err, unix.ECANCELED, "Do's read stopped by Cancel")
	expectNoEvents(t, c)
	writeFull(t, w, []byte("intact.."))
	wantBytes(t, readExactly(t, r, 8), []byte("intact.."), "pipe data")
}

// cfdTestRWAtFile: Context.ReadAt and WriteAt on a regular file: round trip,
// io.EOF at the end, a negative offset.
func cfdTestRWAtFile(t *testing.T, be string) {
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	ctx := context.Background()
	data := pattern(100000, 7)
	if n, err := c.WriteAt(ctx, fd, data, 0); n != len(data) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if n, err := c.WriteAt(ctx, fd, []byte("tail"), int64(len(data))); n != 4 || err != nil {
		t.Fatalf("WriteAt(tail) = %d, %v", n, err)
	}
	data = append(data, "tail"...)
	wantBytes(t, preadAll(t, fd, len(data)+10, 0), data, "file after WriteAt")
	got := make([]byte, len(data))
	if n, err := c.ReadAt(ctx, fd, got, 0); n != len(data) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(all) = %d, %v", n, err)
	}
	wantBytes(t, got, data, "ReadAt(all)")
	p := make([]byte, 10)
	if n, err := c.ReadAt(ctx, fd, p, int64(len(data)-3)); n != 3 || err != io.EOF {
		t.Fatalf("ReadAt(10 bytes, 3 before the end) = %d, %v; want 3, io.EOF", n, err)
	}
	wantBytes(t, p[:3], []byte("ail"), "short read")
	if n, err := c.ReadAt(ctx, fd, p, int64(len(data))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(at the end) = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := c.ReadAt(ctx, fd, p, 1<<40); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(far past the end) = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := c.ReadAt(ctx, fd, p[:0], 5); n != 0 || err != nil {
		t.Fatalf("ReadAt(empty) = %d, %v; want 0, nil", n, err)
	}
	if n, err := c.ReadAt(ctx, fd, p, -1); n != 0 || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("ReadAt(off -1) = %d, %v; want 0, EINVAL", n, err)
	}
	if n, err := c.WriteAt(ctx, fd, p, -1); n != 0 || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("WriteAt(off -1) = %d, %v; want 0, EINVAL", n, err)
	}
	// A read-only descriptor: WriteAt fails with EBADF and n == 0.
	ro := openFD(t, fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY)
	if n, err := c.WriteAt(ctx, ro, []byte("x"), 0); n != 0 || !errors.Is(err, unix.EBADF) {
		t.Fatalf("WriteAt(read-only fd) = %d, %v; want 0, EBADF", n, err)
	}
	expectNoEvents(t, c)
}

// cfdTestRWAtPipe: ReadAt fills p across several reads as the data trickles
// in; with a deadline it returns the bytes read so far; WriteAt on a pipe that
// fills up returns, at the deadline, exactly the bytes that went in.
func cfdTestRWAtPipe(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 4)
	want := []byte("one-two-three-")
	go func() {
		for _, part := range []string{"one-", "two-", "three-"} {
			time.Sleep(5 * time.Millisecond)
			_, _ = unix.Write(w, []byte(part))
		}
	}()
	p := make([]byte, len(want))
	var n int
	var err error
	finishes(t, eventWait, "ReadAt", func() { n, err = c.ReadAt(context.Background(), r, p, 0) })
	if n != len(want) || err != nil {
		t.Fatalf("ReadAt(trickle) = %d, %v", n, err)
	}
	wantBytes(t, p, want, "ReadAt(trickle)")

	// Part of the data, then a deadline.
	writeFull(t, w, []byte("part"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	p = make([]byte, 10)
	finishes(t, eventWait, "ReadAt", func() { n, err = c.ReadAt(ctx, r, p, 0) })
	if n != 4 {
		t.Fatalf("ReadAt(4 of 10 bytes, then the deadline) = %d, %v; want n 4", n, err)
	}
	cfdWantCanceledErr(t, err, context.DeadlineExceeded, "ReadAt(deadline)")
	wantBytes(t, p[:4], []byte("part"), "ReadAt(deadline) data")

	// WriteAt bigger than the pipe, nobody reading; its context ends once
	// part of it is in (not at a fixed time: on a loaded machine 30 ms
	// could pass before the first byte, seen once at GOMAXPROCS=1 with
	// four suites running).
	big := pattern(1<<20, 9)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() {
		defer cancel2()
		for deadline := time.Now().Add(eventWait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if n, err := unix.IoctlGetInt(r, unix.TIOCINQ); err != nil || n > 0 {
				time.Sleep(10 * time.Millisecond) // let it fill
				return
			}
		}
	}()
	finishes(t, eventWait, "WriteAt", func() { n, err = c.WriteAt(ctx2, w, big, 0) })
	cfdWantCanceledErr(t, err, context.Canceled, "WriteAt(full pipe)")
	if n <= 0 || n >= len(big) {
		t.Fatalf("WriteAt(full pipe) = %d; want 0 < n < %d", n, len(big))
	}
	in := drainNow(t, r)
	if len(in) != n {
		t.Fatalf("WriteAt said %d bytes went in, the pipe holds %d", n, len(in))
	}
	wantBytes(t, in, big[:n], "pipe contents after WriteAt")
	expectNoEvents(t, c)
}

// cfdOpenFile creates a file holding data on a real filesystem and opens it
// with os.OpenFile(flag); it is closed when the test ends.
func cfdOpenFile(t *testing.T, data []byte, flag int) *os.File {
	t.Helper()
	path := tempFileWith(t, data)
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// cfdTestFileRoundTrip: WriteAt at scattered offsets (one past the end, making
// a hole) and ReadAt give back what os reads.
func cfdTestFileRoundTrip(t *testing.T, be string) {
	f := cfdOpenFile(t, nil, os.O_RDWR)
	c := newContext(t, be, 4)
	af := aio.NewFile(c, f)
	if af.File() != f || af.Context() != c {
		t.Fatal("File()/Context() do not return what NewFile got")
	}
	if af.Fd() < 0 || af.Fd() != rawFD(t, f) {
		t.Fatalf("Fd() = %d, want %d", af.Fd(), rawFD(t, f))
	}
	want := make([]byte, 0, 300000)
	chunks := []struct {
		off int64
		n   int
	}{{0, 1000}, {1000, 70000}, {200000, 5}, {71000, 129000}}
	want = want[:200005]
	for i, ch := range chunks {
		b := pattern(ch.n, byte(i*31))
		n, err := af.WriteAt(b, ch.off)
		if n != ch.n || err != nil {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", ch.n, ch.off, n, err)
		}
		copy(want[ch.off:], b)
	}
	onDisk, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, onDisk, want, "file on disk")
	got := make([]byte, len(want))
	if n, err := af.ReadAt(got, 0); n != len(want) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(all) = %d, %v", n, err)
	}
	wantBytes(t, got, want, "ReadAt(all)")
	// The context-taking variants, with a live context.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := af.WriteAtContext(ctx, []byte("ctx"), 10); n != 3 || err != nil {
		t.Fatalf("WriteAtContext = %d, %v", n, err)
	}
	p := make([]byte, 5)
	if n, err := af.ReadAtContext(ctx, p, 9); n != 5 || err != nil {
		t.Fatalf("ReadAtContext = %d, %v", n, err)
	}
	wantBytes(t, p, append(append([]byte{want[9]}, "ctx"...), want[13]), "ReadAtContext")
	// io.ReadFull through a SectionReader.
	sr := io.NewSectionReader(af, 199990, 15)
	q := make([]byte, 15)
	if n, err := io.ReadFull(sr, q); n != 15 || err != nil {
		t.Fatalf("ReadFull(section) = %d, %v", n, err)
	}
	wantBytes(t, q, want[199990:200005], "ReadFull(section)")
	// The file offset is untouched (ReadAt/WriteAt are positional).
	if off, err := f.Seek(0, io.SeekCurrent); off != 0 || err != nil {
		t.Fatalf("file offset = %d, %v; want 0", off, err)
	}
}

// cfdTestFileEOF: the io.ReaderAt contract at the end of the file.
func cfdTestFileEOF(t *testing.T, be string) {
	data := pattern(100, 2)
	f := cfdOpenFile(t, data, os.O_RDONLY)
	c := newContext(t, be, 4)
	af := aio.NewFile(c, f)
	p := make([]byte, 10)
	for _, tc := range []struct {
		off   int64
		n     int
		atEOF bool
	}{
		{0, 10, false}, {90, 10, false}, {95, 5, true}, {99, 1, true}, {100, 0, true}, {1000, 0, true},
	} {
		clear(p)
		n, err := af.ReadAt(p, tc.off)
		if n != tc.n {
			t.Fatalf("ReadAt(10 at %d) n = %d, want %d (err %v)", tc.off, n, tc.n, err)
		}
		if tc.atEOF && err != io.EOF {
			t.Fatalf("ReadAt(10 at %d) err = %v, want io.EOF itself", tc.off, err)
		}
		// n == len(p) exactly at the end may say nil or io.EOF; elsewhere nil.
		if !tc.atEOF && err != nil && !(err == io.EOF && tc.off+int64(n) == int64(len(data))) {
			t.Fatalf("ReadAt(10 at %d) err = %v, want nil", tc.off, err)
		}
		if tc.n > 0 {
			wantBytes(t, p[:n], data[tc.off:tc.off+int64(n)], fmt.Sprintf("ReadAt at %d", tc.off))
		}
	}
	if n, err := af.ReadAt(p[:0], 100); n != 0 || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(empty at the end) = %d, %v", n, err)
	}
	n, err := af.ReadAt(p, -1)
	if n != 0 || err == nil {
		t.Fatalf("ReadAt(off -1) = %d, %v; want 0 and an error", n, err)
	}
	wantErrno(t, err, unix.EINVAL, "ReadAt(off -1)")
	// Compare every (off, len) in a window with os.File.ReadAt.
	for off := int64(80); off <= 105; off++ {
		for l := 0; l <= 25; l++ {
			a, b := make([]byte, l), make([]byte, l)
			n1, e1 := af.ReadAt(a, off)
			n2, e2 := f.ReadAt(b, off)
			if n1 != n2 || !bytes.Equal(a, b) || (e1 == io.EOF) != (e2 == io.EOF) || (e1 == nil) != (e2 == nil) {
				t.Fatalf("ReadAt(%d at %d) = %d, %v; os.File says %d, %v", l, off, n1, e1, n2, e2)
			}
		}
	}
}

// cfdTestFileIotest: testing/iotest's reader checks over SectionReaders on a
// File (Read, ReadAt and Seek behave as the io package demands).
func cfdTestFileIotest(t *testing.T, be string) {
	data := pattern(50000, 4)
	f := cfdOpenFile(t, data, os.O_RDONLY)
	c := newContext(t, be, 8)
	af := aio.NewFile(c, f)
	// A ReaderAt that breaks its contract (0, nil at the end) makes readers
	// loop forever: bound them, so that such a bug fails instead of hanging.
	var errs []error
	var got []byte
	finishes(t, 30*time.Second, "iotest over a File", func() {
		for _, sec := range []struct{ off, n int64 }{{0, 50000}, {7, 4096}, {49000, 1000}, {123, 0}} {
			sr := io.NewSectionReader(af, sec.off, sec.n)
			if err := iotest.TestReader(sr, data[sec.off:sec.off+sec.n]); err != nil {
				errs = append(errs, fmt.Errorf("iotest.TestReader(section %d+%d): %w", sec.off, sec.n, err))
			}
		}
		// A section that runs past the end of the file: it ends early, at io.EOF.
		b, err := io.ReadAll(iotest.OneByteReader(io.NewSectionReader(af, 49990, 100)))
		if err != nil {
			errs = append(errs, fmt.Errorf("ReadAll(section past the end): %w", err))
		}
		got = b
	})
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	wantBytes(t, got, data[49990:], "section past the end")
}

// cfdTestFileParallel: parallel ReadAt and WriteAt on one File, as io.ReaderAt
// allows, each to its own range.
func cfdTestFileParallel(t *testing.T, be string) {
	const workers, per, block = 8, 40, 4096
	data := pattern(workers*block*4, 5)
	f := cfdOpenFile(t, data, os.O_RDWR)
	c := newContext(t, be, 16)
	af := aio.NewFile(c, f)
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			base := int64(g * block * 4)
			mine := append([]byte(nil), data[base:base+block*4]...)
			for i := 0; i < per; i++ {
				off := rng.Int64N(block * 3)
				l := 1 + rng.IntN(block)
				if i%3 == 0 {
					b := pattern(l, byte(rng.IntN(250)))
					if n, err := af.WriteAt(b, base+off); n != l || err != nil {
						t.Errorf("worker %d: WriteAt = %d, %v", g, n, err)
						return
					}
					copy(mine[off:], b)
					continue
				}
				p := make([]byte, l)
				if n, err := af.ReadAt(p, base+off); n != l || err != nil {
					t.Errorf("worker %d: ReadAt = %d, %v", g, n, err)
					return
				}
				if !bytes.Equal(p, mine[off:off+int64(l)]) {
					t.Errorf("worker %d: ReadAt(%d at %d) returned other bytes", g, l, base+off)
					return
				}
			}
		}()
	}
	finishes(t, 30*time.Second, "parallel ReadAt/WriteAt", wg.Wait)
	expectNoEvents(t, c)
}

// cfdTestFileErrors: the failures, as os.File reports them.
func cfdTestFileErrors(t *testing.T, be string) {
	data := pattern(64, 6)
	c := newContext(t, be, 4)
	p := make([]byte, 8)

	ro := cfdOpenFile(t, data, os.O_RDONLY)
	n, err := aio.NewFile(c, ro).WriteAt([]byte("x"), 0)
	if n != 0 || !errors.Is(err, unix.EBADF) {
		t.Fatalf("WriteAt on a read-only file = %d, %v; want 0, EBADF", n, err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Op != "write" || pe.Path != ro.Name() {
		t.Fatalf("WriteAt error = %#v, want an *os.PathError{Op: write, Path: %s}", err, ro.Name())
	}
	wo := cfdOpenFile(t, data, os.O_WRONLY)
	if n, err := aio.NewFile(c, wo).ReadAt(p, 0); n != 0 || !errors.Is(err, unix.EBADF) || !errors.As(err, &pe) || pe.Op != "read" {
		t.Fatalf("ReadAt on a write-only file = %d, %v; want 0, EBADF in a PathError", n, err)
	}

	ap := cfdOpenFile(t, data, os.O_RDWR|os.O_APPEND)
	if n, err := aio.NewFile(c, ap).WriteAt([]byte("x"), 0); n != 0 || err == nil {
		t.Fatalf("WriteAt on an O_APPEND file = %d, %v; want 0 and an error", n, err)
	}
	if b, _ := os.ReadFile(ap.Name()); !bytes.Equal(b, data) {
		t.Fatal("WriteAt on an O_APPEND file changed it")
	}

	closed := cfdOpenFile(t, data, os.O_RDWR)
	af := aio.NewFile(c, closed)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := af.ReadAt(p, 0); n != 0 || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt after Close = %d, %v; want 0, os.ErrClosed", n, err)
	}
	if n, err := af.WriteAt(p, 0); n != 0 || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WriteAt after Close = %d, %v; want 0, os.ErrClosed", n, err)
	}
	if fd := af.Fd(); fd != -1 {
		t.Fatalf("Fd() after Close = %d, want -1", fd)
	}

	nilf := aio.NewFile(c, nil)
	if n, err := nilf.ReadAt(p, 0); n != 0 || !errors.Is(err, os.ErrInvalid) {
		t.Fatalf("ReadAt on NewFile(c, nil) = %d, %v; want 0, os.ErrInvalid", n, err)
	}
	if n, err := nilf.WriteAt(p, 0); n != 0 || !errors.Is(err, os.ErrInvalid) {
		t.Fatalf("WriteAt on NewFile(c, nil) = %d, %v; want 0, os.ErrInvalid", n, err)
	}

	// A destroyed Context: EINVAL, n 0.
	rw := cfdOpenFile(t, data, os.O_RDWR)
	dead := newContext(t, be, 2)
	if err := dead.Destroy(); err != nil {
		t.Fatal(err)
	}
	if n, err := aio.NewFile(dead, rw).ReadAt(p, 0); n != 0 || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("ReadAt through a destroyed Context = %d, %v; want 0, EINVAL", n, err)
	}
}

// cfdTestFilePipe: the File adapter on an os.Pipe: the descriptor stays
// non-blocking, a deadline cancels a waiting ReadAtContext (the error matches
// DeadlineExceeded and ECANCELED through the PathError), and the data that
// comes afterwards is read whole.
func cfdTestFilePipe(t *testing.T, be string) {
	r, w, rfd, _ := osPipe(t)
	c := newContext(t, be, 4)
	ar := aio.NewFile(c, r)
	aw := aio.NewFile(c, w)
	if ar.Fd() != rfd {
		t.Fatalf("Fd() = %d, want %d", ar.Fd(), rfd)
	}
	if !isNonblock(t, rfd) {
		t.Fatal("NewFile/Fd put the pipe's read end in blocking mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	p := make([]byte, 6)
	var n int
	var err error
	finishes(t, eventWait, "ReadAtContext", func() { n, err = ar.ReadAtContext(ctx, p, 0) })
	if n != 0 {
		t.Fatalf("ReadAtContext(empty pipe, deadline) n = %d", n)
	}
	cfdWantCanceledErr(t, err, context.DeadlineExceeded, "ReadAtContext(empty pipe)")
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Op != "read" || pe.Path != r.Name() {
		t.Fatalf("error %#v is not an *os.PathError for %s", err, r.Name())
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		_, _ = aw.WriteAt([]byte("abc"), 0)
		time.Sleep(5 * time.Millisecond)
		_, _ = w.Write([]byte("def"))
	}()
	finishes(t, eventWait, "ReadAt", func() { n, err = ar.ReadAt(p, 0) })
	if n != 6 || err != nil {
		t.Fatalf("ReadAt(pipe) = %d, %v", n, err)
	}
	wantBytes(t, p, []byte("abcdef"), "ReadAt(pipe)")
	if !isNonblock(t, rfd) {
		t.Fatal("the pipe's read end is in blocking mode after ReadAt")
	}
	// The os.File still works with Go's poller: a read deadline fires.
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v (the file lost its poller registration)", err)
	}
	if _, err := r.Read(p); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with a deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}

// cfdTestFileCloseWhilePending: closing the *os.File while a ReadAtContext
// waits on it does not close the descriptor under the request (its number
// could be reused by the next open): the os package defers the close, and its
// Close call returns only when the request has ended — here, when its context
// is canceled. If Close wins the race before the request starts, the call
// fails with os.ErrClosed instead; the test retries with a longer head start
// until it has seen the pending case.
func cfdTestFileCloseWhilePending(t *testing.T, be string) {
	c := newContext(t, be, 4)
	type result struct {
		n   int
		err error
	}
	for attempt := 0; attempt < 6; attempt++ {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ar := aio.NewFile(c, r)
		fd := ar.Fd()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		readDone := make(chan result, 1)
		go func() {
			n, err := ar.ReadAtContext(ctx, make([]byte, 4), 0)
			readDone <- result{n, err}
		}()
		time.Sleep(time.Duration(1<<attempt) * time.Millisecond)
		closeDone := make(chan error, 1)
		go func() { closeDone <- r.Close() }()
		var res result
		select {
		case res = <-readDone:
			// Close came first: the request never started.
			if res.n != 0 || !errors.Is(res.err, os.ErrClosed) {
				t.Fatalf("ReadAtContext returned %d, %v before its context ended", res.n, res.err)
			}
			finishes(t, eventWait, "Close", func() { err = <-closeDone })
			continue
		case err = <-closeDone:
			// Close returned, so no request may hold the descriptor: the read
			// must end at once with os.ErrClosed, not linger on a closed fd.
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
			finishes(t, eventWait, "ReadAtContext after Close returned", func() { res = <-readDone })
			if res.n != 0 || !errors.Is(res.err, os.ErrClosed) {
				t.Fatalf("ReadAtContext after Close = %d, %v; want os.ErrClosed", res.n, res.err)
			}
			continue
		case <-time.After(50 * time.Millisecond):
		}
		// Both wait: the request holds the descriptor open.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			t.Fatalf("descriptor %d closed under the pending read: %v", fd, err)
		}
		cancel()
		finishes(t, eventWait, "ReadAtContext after cancel", func() { res = <-readDone })
		if res.n != 0 {
			t.Fatalf("ReadAtContext n = %d", res.n)
		}
		cfdWantCanceledErr(t, res.err, context.Canceled, "ReadAtContext canceled during Close")
		finishes(t, eventWait, "Close after the read ended", func() { err = <-closeDone })
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n, err := ar.ReadAt(make([]byte, 4), 0); n != 0 || !errors.Is(err, os.ErrClosed) {
			t.Fatalf("ReadAt after Close = %d, %v; want os.ErrClosed", n, err)
		}
		expectNoEvents(t, c)
		return
	}
	t.Fatal("Close always came before the read started; the pending case was never tested")
}

// cfdTestManyGoroutines: 16 goroutines run Do on one Context at once — file
// reads, pipe reads whose data comes, pipe reads whose context is canceled —
// while another goroutine drives Submit/GetEvents on the same Context. No one
// gets anyone else's event, everyone finishes, and no data is lost.
func cfdTestManyGoroutines(t *testing.T, be string) {
	const workers, iters = 16, 30
	fileData := pattern(1<<16, 8)
	fd := openFD(t, tempFileWith(t, fileData), unix.O_RDONLY)
	type pipe struct{ r, w int }
	pipes := make([]pipe, workers+1)
	for i := range pipes {
		pipes[i].r, pipes[i].w = newPipe(t, 0)
	}
	c := newContext(t, be, 64)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var inflight [workers]atomic.Pointer[aio.IOCB] // each worker's latest read after a cancellation
	stats := map[string]int{}
	count := func(k string) {
		mu.Lock()
		stats[k]++
		mu.Unlock()
	}
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			pp := pipes[g]
			for i := 0; i < iters; i++ {
				msg := []byte(fmt.Sprintf("g%02d-i%03d", g, i))
				cb := &aio.IOCB{Op: aio.OpRead, Data: uint64(g<<16 | i)}
				var ctx context.Context = context.Background()
				var cancel context.CancelFunc = func() {}
				kind := (g + i) % 4
				switch kind {
				case 0, 1: // a file read
					off := rng.Int64N(int64(len(fileData) - 512))
					cb.FD, cb.Buf, cb.Offset = fd, make([]byte, 512), off
				case 2: // a pipe read whose data comes while it waits
					cb.FD, cb.Buf = pp.r, make([]byte, len(msg))
					delay := time.Duration(rng.IntN(300)) * time.Microsecond
					go func() {
						time.Sleep(delay)
						_, _ = unix.Write(pp.w, msg)
					}()
				case 3: // a pipe read canceled while it waits
					cb.FD, cb.Buf = pp.r, make([]byte, len(msg))
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(200+rng.IntN(800))*time.Microsecond)
				}
				ev, err := c.Do(ctx, cb)
				cancel()
				if kind == 3 && ev.IOCB == nil && errors.Is(err, context.DeadlineExceeded) && errors.Is(err, unix.ECANCELED) {
					// The deadline passed before Do submitted anything.
					count("expired")
					continue
				}
				if ev.IOCB != cb || ev.Data != cb.Data {
					t.Errorf("worker %d: Do returned the event of %p (Data %#x), not its own", g, ev.IOCB, ev.Data)
					return
				}
				switch kind {
				case 0, 1:
					if err != nil || ev.Res != 512 || !bytes.Equal(cb.Buf, fileData[cb.Offset:cb.Offset+512]) {
						t.Errorf("worker %d: file read = %s, %v", g, fmtRes(ev.Res), err)
						return
					}
					count("file")
				case 2:
					if err != nil || ev.Res != int64(len(msg)) || !bytes.Equal(cb.Buf, msg) {
						t.Errorf("worker %d: pipe read = %s, %v, %q; want %q", g, fmtRes(ev.Res), err, cb.Buf, msg)
						return
					}
					count("pipe")
				case 3:
					if err == nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, unix.ECANCELED) || ev.Res != cfdECANCELED {
						t.Errorf("worker %d: canceled pipe read = %s, %v", g, fmtRes(ev.Res), err)
						return
					}
					count("canceled")
					// Nothing was eaten: a message written now is read whole.
					if _, err := unix.Write(pp.w, msg); err != nil {
						t.Errorf("worker %d: write: %v", g, err)
						return
					}
					cb2 := &aio.IOCB{Op: aio.OpRead, FD: pp.r, Buf: make([]byte, len(msg))}
					inflight[g].Store(cb2)
					if ev, err := c.Do(context.Background(), cb2); err != nil || ev.Res != int64(len(msg)) || !bytes.Equal(cb2.Buf, msg) {
						t.Errorf("worker %d: read after cancellation = %s, %v, %q; want %q", g, fmtRes(ev.Res), err, cb2.Buf, msg)
						return
					}
				}
			}
		}()
	}

	// The Submit/GetEvents user: rounds of nops, file reads and pipe reads.
	var direct error
	directRounds := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		pp := pipes[workers]
		evs := make([]aio.Event, 8)
		for round := 0; round < 60; round++ {
			mine := map[*aio.IOCB]bool{}
			var cbs []*aio.IOCB
			for j := 0; j < 2; j++ {
				cbs = append(cbs, &aio.IOCB{Op: aio.OpNop, Data: 1<<40 | uint64(round<<8|j)})
			}
			cbs = append(cbs, &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 64), Offset: int64(round * 64), Data: 1<<40 | uint64(round<<8|2)})
			for j := 3; j < 5; j++ {
				cbs = append(cbs, &aio.IOCB{Op: aio.OpRead, FD: pp.r, Buf: make([]byte, 4), Data: 1<<40 | uint64(round<<8|j)})
			}
			for _, cb := range cbs {
				mine[cb] = true
			}
			if n, err := c.Submit(cbs...); n != len(cbs) || err != nil {
				direct = fmt.Errorf("round %d: Submit = %d, %v", round, n, err)
				return
			}
			if _, err := unix.Write(pp.w, []byte("abcdefgh")); err != nil {
				direct = err
				return
			}
			got := 0
			deadline := time.Now().Add(10 * time.Second)
			for got < len(cbs) {
				left := time.Until(deadline)
				if left <= 0 {
					direct = fmt.Errorf("round %d: %d of %d events within 10s", round, got, len(cbs))
					return
				}
				n, err := c.GetEvents(1, evs, &left)
				if err != nil {
					direct = fmt.Errorf("round %d: GetEvents: %v", round, err)
					return
				}
				for _, ev := range evs[:n] {
					if !mine[ev.IOCB] {
						direct = fmt.Errorf("round %d: GetEvents delivered a foreign or duplicate event %s", round, fmtEvent(ev))
						return
					}
					delete(mine, ev.IOCB)
					want := int64(0)
					switch ev.IOCB.Op {
					case aio.OpRead:
						want = int64(len(ev.IOCB.Buf))
					}
					if ev.Res != want || ev.Data != ev.IOCB.Data {
						direct = fmt.Errorf("round %d: event %s, want Res %d", round, fmtEvent(ev), want)
						return
					}
					if ev.IOCB.FD == fd && ev.IOCB.Op == aio.OpRead && !bytes.Equal(ev.IOCB.Buf, fileData[ev.IOCB.Offset:ev.IOCB.Offset+64]) {
						direct = fmt.Errorf("round %d: file read returned other bytes", round)
						return
					}
				}
				got += n
			}
			directRounds++
		}
	}()
	if _, _, ok := runWithin(60*time.Second, wg.Wait); !ok {
		// Say where the data is before the cleanup's Destroy frees the
		// stuck calls: in a pipe (a lost wake-up) or nowhere (eaten).
		for i, pp := range pipes {
			if n, err := unix.IoctlGetInt(pp.r, unix.TIOCINQ); err != nil || n != 0 {
				t.Logf("pipe %d holds %d unread bytes (%v)", i, n, err)
			}
		}
		t.Logf("stats %+v", c.Stats())
		for g := range inflight {
			if cb := inflight[g].Load(); cb != nil {
				if err := c.Error(cb); err != unix.EINPROGRESS {
					t.Logf("worker %d: the read after cancellation: Error = %v, buffer %q", g, err, cb.Buf)
				}
			}
		}
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Logf("goroutines:\n%s", buf.String())
		t.Fatalf("16 Do goroutines and a GetEvents goroutine did not return within 1m0s")
	}
	if direct != nil {
		t.Fatalf("Submit/GetEvents goroutine: %v", direct)
	}
	if t.Failed() {
		return
	}
	if directRounds != 60 {
		t.Fatalf("GetEvents goroutine finished %d of 60 rounds", directRounds)
	}
	for _, k := range []string{"file", "pipe", "canceled"} {
		if stats[k] == 0 {
			t.Fatalf("no %s requests ran: %v", k, stats)
		}
	}
	if total := stats["file"] + stats["pipe"] + stats["canceled"] + stats["expired"]; total != workers*iters {
		t.Fatalf("%d of %d Do calls accounted for: %v", total, workers*iters, stats)
	}
	expectNoEvents(t, c)
	for i, pp := range pipes {
		if rest := drainNow(t, pp.r); len(rest) != 0 {
			t.Fatalf("pipe %d holds %d unread bytes %q", i, len(rest), rest)
		}
	}
	t.Logf("%s: %v", be, stats)
}
