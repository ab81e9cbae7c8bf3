//go:build linux

package uringaio_test

// Generic helpers for the compatibility suite: files on a real filesystem,
// O_DIRECT-aligned buffers, pipes, eventfds, and the small wrappers around
// Submit / GetEvents / Cancel that turn a wrong answer into a test failure.
//
// Cleanup order matters for memory the kernel may write: t.Cleanup runs in
// reverse order of registration, so create buffers (alignedBuf) and files
// before the Context (newContext) that uses them; then the Context is
// destroyed — and the kernel has let go of everything — before they are freed.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// eventWait is the generous bound the helpers give an event that must come.
// It is a deadline against hangs, never a performance assertion.
const eventWait = 5 * time.Second

// quietWait is how long the helpers watch for an event that must NOT come.
const quietWait = 100 * time.Millisecond

// directAlign is the alignment used for O_DIRECT buffers, offsets and lengths:
// a page, which satisfies every logical block size.
const directAlign = 4096

// dur returns a pointer to d, for GetEvents' timeout argument.
func dur(d time.Duration) *time.Duration { return &d }

// ---- errors ----

// wantErrno fails the test unless err matches errno with errors.Is. When the
// error is a *aio.CallError, its Errno field must be errno too.
func wantErrno(t testing.TB, err error, errno unix.Errno, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil, want %v (%s)", what, errno, unix.ErrnoName(errno))
	}
	if !errors.Is(err, errno) {
		t.Fatalf("%s: err = %v, want one matching %v (%s)", what, err, errno, unix.ErrnoName(errno))
	}
	var ce *aio.CallError
	if errors.As(err, &ce) && ce.Errno != errno {
		t.Fatalf("%s: CallError.Errno = %v, want %v", what, ce.Errno, errno)
	}
}

// wantCallError is wantErrno plus: err must be a *aio.CallError whose Call is
// call.
func wantCallError(t testing.TB, err error, call string, errno unix.Errno, what string) {
	t.Helper()
	wantErrno(t, err, errno, what)
	var ce *aio.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: err = %T %v, want a *aio.CallError", what, err, err)
	}
	if ce.Call != call {
		t.Fatalf("%s: CallError.Call = %q, want %q", what, ce.Call, call)
	}
}

// ---- files ----

var (
	realDirOnce sync.Once
	realDirBase string
)

// realTempBase is a directory on a real (block-backed) filesystem where
// O_DIRECT works: os.TempDir unless it is tmpfs, else /var/tmp, else the
// current directory (the repository).
func realTempBase() string {
	realDirOnce.Do(func() {
		for _, d := range []string{os.TempDir(), "/var/tmp", "."} {
			var st unix.Statfs_t
			if unix.Statfs(d, &st) != nil {
				continue
			}
			if fsMagic(&st) == unix.TMPFS_MAGIC || fsMagic(&st) == unix.RAMFS_MAGIC {
				continue
			}
			if abs, err := filepath.Abs(d); err == nil {
				realDirBase = abs
				return
			}
		}
		realDirBase = "."
	})
	return realDirBase
}

// fsMagic is statfs(2)'s f_type as the 32-bit magic number it is: Statfs_t.Type
// is an int32 on 32-bit Linux, where RAMFS_MAGIC (0x858458f6) does not fit.
func fsMagic(st *unix.Statfs_t) uint32 { return uint32(st.Type) }

// int32Note says why a case that needs an int outside the int32 range is
// skipped on 32-bit targets.
const int32Note = "int is 32 bits here, so no int lies outside the int32 range (docs/contract.md §3.5 cannot be broken)"

// intFrom returns v as an int, and false when int cannot hold it (on 32-bit
// targets, for v outside the int32 range): the cases of docs/contract.md §3.5
// need an FD beyond int32, which only a 64-bit int can express.
func intFrom(v int64) (int, bool) {
	if int64(int(v)) != v {
		return 0, false
	}
	return int(v), true
}

// tempDir makes a directory on a real filesystem (see realTempBase), removed
// when the test ends.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(realTempBase(), "uringaio-compat-")
	if err != nil {
		t.Fatalf("MkdirTemp: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// openFD opens path with unix.Open (so no *os.File owns the fd) and closes the
// fd when the test ends.
func openFD(t testing.TB, path string, flags int) int {
	t.Helper()
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// tempFileWith creates a file in a fresh tempDir holding data and returns its
// path.
func tempFileWith(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(tempDir(t), "data")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	return path
}

// tempFD creates a file holding data and returns an O_RDWR fd on it.
func tempFD(t testing.TB, data []byte) int {
	t.Helper()
	return openFD(t, tempFileWith(t, data), unix.O_RDWR)
}

// pattern returns n bytes that differ at every offset within a 251-byte cycle
// (a prime, so that page-sized shifts are visible), starting at seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i + int(seed)) % 251)
	}
	return b
}

// preadAll reads n bytes at off with pread(2), for checking what a write left.
func preadAll(t testing.TB, fd int, n int, off int64) []byte {
	t.Helper()
	b := make([]byte, n)
	got := 0
	for got < n {
		m, err := unix.Pread(fd, b[got:], off+int64(got))
		if err != nil {
			t.Fatalf("pread: %v", err)
		}
		if m == 0 {
			break
		}
		got += m
	}
	return b[:got]
}

// wantBytes fails the test unless got equals want, showing where they differ.
func wantBytes(t testing.TB, got, want []byte, what string) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Fatalf("%s: %d bytes differ from the %d expected, first at offset %d", what, len(got), len(want), i)
}

// alignedBuf returns n bytes (rounded up to directAlign) of anonymous mmap'd
// memory, page aligned, unmapped when the test ends. Create it before the
// Context that uses it (see the file comment).
func alignedBuf(t testing.TB, n int) []byte {
	t.Helper()
	size := (n + directAlign - 1) / directAlign * directAlign
	if size == 0 {
		size = directAlign
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap %d: %v", size, err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return b[:n]
}

// unusedFD returns a descriptor number that is not open: a high number that
// was opened (dup) and closed again, so it is "a closed fd" and the kernel's
// lowest-free allocation will not hand it out again soon.
func unusedFD(t testing.TB) int {
	t.Helper()
	for fd := 1500 + int(time.Now().UnixNano()%400); fd < 20000; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			continue
		}
		src, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open /dev/null: %v", err)
		}
		err = unix.Dup3(src, fd, unix.O_CLOEXEC)
		unix.Close(src)
		if err != nil {
			continue
		}
		if err := unix.Close(fd); err != nil {
			t.Fatalf("close %d: %v", fd, err)
		}
		return fd
	}
	t.Fatal("no unused fd found")
	return -1
}

// ---- goroutines ----

// goEach starts fn(0) … fn(g-1), each on a goroutine of its own, at once,
// and returns wait: it waits for all of them and returns the errors they
// returned, leaving out the nil ones. The test may look at what runs before
// it calls wait.
func goEach(g int, fn func(w int) error) (wait func() []error) {
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if err := fn(w); err != nil {
				errs <- err
			}
		}(w)
	}
	return func() []error {
		wg.Wait()
		close(errs)
		var out []error
		for err := range errs {
			out = append(out, err)
		}
		return out
	}
}

// ---- pipes and eventfds ----

// newPipe makes a pipe with pipe2(flags|O_CLOEXEC): flags 0 gives blocking
// ends, unix.O_NONBLOCK non-blocking ones. Both ends close when the test ends.
func newPipe(t testing.TB, flags int) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], flags|unix.O_CLOEXEC); err != nil {
		t.Fatalf("pipe2: %v", err)
	}
	t.Cleanup(func() {
		unix.Close(p[0])
		unix.Close(p[1])
	})
	return p[0], p[1]
}

// osPipe makes a pipe with os.Pipe (non-blocking ends registered with Go's
// poller) and returns the files and their descriptors. The descriptors are
// taken with SyscallConn, which, unlike File.Fd, leaves them non-blocking. The
// files close when the test ends, and the cleanup keeps them reachable (so
// their finalizers cannot close the fds) until then.
func osPipe(t testing.TB) (r, w *os.File, rfd, wfd int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("os.Pipe: %v", err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w, rawFD(t, r), rawFD(t, w)
}

// rawFD returns f's descriptor without changing its blocking mode.
func rawFD(t testing.TB, f *os.File) int {
	t.Helper()
	sc, err := f.SyscallConn()
	if err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
	fd := -1
	if err := sc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatalf("Control: %v", err)
	}
	return fd
}

// isNonblock reports whether fd has O_NONBLOCK.
func isNonblock(t testing.TB, fd int) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatalf("F_GETFL: %v", err)
	}
	return fl&unix.O_NONBLOCK != 0
}

// newEventfd makes a non-blocking eventfd, closed when the test ends.
func newEventfd(t testing.TB) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatalf("eventfd: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// writeFull writes all of b to fd (blocking or not; it polls on EAGAIN).
func writeFull(t testing.TB, fd int, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EAGAIN {
			waitReady(t, fd, unix.POLLOUT)
			continue
		}
		if err != nil {
			t.Fatalf("write fd %d: %v", fd, err)
		}
		b = b[n:]
	}
}

// waitReady waits (at most eventWait) until fd reports events.
func waitReady(t testing.TB, fd int, events int16) {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	for {
		p := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(p, int(time.Until(deadline)/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll fd %d: %v", fd, err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fd %d not ready for %#x within %v", fd, events, eventWait)
		}
	}
}

// readExactly reads exactly n bytes from fd with plain read(2), polling first
// so that it works on blocking and non-blocking descriptors alike and fails
// (instead of hanging) when the data does not come within eventWait.
func readExactly(t testing.TB, fd int, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	got := 0
	for got < n {
		waitReady(t, fd, unix.POLLIN)
		m, err := unix.Read(fd, b[got:])
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("read fd %d: %v", fd, err)
		}
		if m == 0 {
			t.Fatalf("read fd %d: EOF after %d of %d bytes", fd, got, n)
		}
		got += m
	}
	return b
}

// drainNow reads whatever fd holds right now without blocking: preadv2 with
// RWF_NOWAIT at the current position never waits, whatever the fd's mode, so
// a request of the library that takes the data first (it may, with nobody
// reaping) cannot leave the test blocked in read.
func drainNow(t testing.TB, fd int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Preadv2(fd, [][]byte{buf}, -1, unix.RWF_NOWAIT)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return out
		}
		if err != nil {
			t.Fatalf("read fd %d: %v", fd, err)
		}
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// fillPipe writes to the pipe's write end w until it is full and returns how
// many bytes it wrote. A blocking w is switched to non-blocking for the fill
// and back afterwards (O_NONBLOCK belongs to the open file, so the caller's
// later requests see the mode it had).
func fillPipe(t testing.TB, w int) int {
	t.Helper()
	wasNonblock := isNonblock(t, w)
	if !wasNonblock {
		if err := unix.SetNonblock(w, true); err != nil {
			t.Fatalf("SetNonblock: %v", err)
		}
		defer unix.SetNonblock(w, false)
	}
	chunk := bytes.Repeat([]byte{'F'}, 4096)
	total := 0
	for {
		n, err := unix.Write(w, chunk)
		if err == unix.EAGAIN {
			// A partial page may still fit.
			n, err = unix.Write(w, chunk[:1])
			if err == unix.EAGAIN {
				return total
			}
		}
		if err != nil {
			t.Fatalf("fill pipe: %v", err)
		}
		total += n
	}
}

// ---- Submit / GetEvents / Cancel wrappers ----

// mustSubmit submits cbs and fails unless all were accepted with a nil error.
func mustSubmit(t testing.TB, c *aio.Context, cbs ...*aio.IOCB) {
	t.Helper()
	n, err := c.Submit(cbs...)
	if n != len(cbs) || err != nil {
		t.Fatalf("Submit(%d IOCBs) = %d, %v; want %d, nil", len(cbs), n, err, len(cbs))
	}
}

// submitWithin submits cbs from another goroutine and fails unless Submit
// returns within limit having accepted all of them. It is how a test asserts
// that a request which waits (a read on an empty pipe) never blocks Submit.
func submitWithin(t testing.TB, c *aio.Context, limit time.Duration, cbs ...*aio.IOCB) {
	t.Helper()
	var n int
	var err error
	finishes(t, limit, "Submit", func() { n, err = c.Submit(cbs...) })
	if n != len(cbs) || err != nil {
		t.Fatalf("Submit(%d IOCBs) = %d, %v; want %d, nil", len(cbs), n, err, len(cbs))
	}
}

// reapN collects exactly n events within eventWait, failing when fewer come.
// It asks GetEvents for at most n-got at a time, so it never takes an event
// beyond the n it was asked for.
func reapN(t testing.TB, c *aio.Context, n int) []aio.Event {
	t.Helper()
	return reapNWithin(t, c, n, eventWait)
}

// reapNWithin is reapN with an explicit deadline.
func reapNWithin(t testing.TB, c *aio.Context, n int, limit time.Duration) []aio.Event {
	t.Helper()
	evs := make([]aio.Event, n)
	got := 0
	deadline := time.Now().Add(limit)
	for got < n {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("GetEvents: %d of %d events within %v", got, n, limit)
		}
		m, err := c.GetEvents(1, evs[got:], &left)
		if err != nil {
			t.Fatalf("GetEvents(1, len %d, %v) after %d of %d events: %v", n-got, left, got, n, err)
		}
		if m < 0 || m > n-got {
			t.Fatalf("GetEvents returned %d, room for %d", m, n-got)
		}
		got += m
	}
	return evs
}

// reapOne collects exactly one event and checks that it belongs to cb.
func reapOne(t testing.TB, c *aio.Context, cb *aio.IOCB) aio.Event {
	t.Helper()
	ev := reapN(t, c, 1)[0]
	if ev.IOCB != cb {
		t.Fatalf("event for IOCB %p (Data %d), want %p (Data %d)", ev.IOCB, ev.Data, cb, cb.Data)
	}
	if ev.Data != cb.Data {
		t.Fatalf("event Data = %d, want %d", ev.Data, cb.Data)
	}
	return ev
}

// expectNoEvents fails if GetEvents delivers any event within quietWait.
func expectNoEvents(t testing.TB, c *aio.Context) {
	t.Helper()
	expectNoEventsFor(t, c, quietWait)
}

// expectNoEventsFor fails if GetEvents delivers any event within d.
func expectNoEventsFor(t testing.TB, c *aio.Context, d time.Duration) {
	t.Helper()
	evs := make([]aio.Event, 8)
	n, err := c.GetEvents(1, evs, &d)
	if err != nil {
		t.Fatalf("GetEvents(1, 8, %v): %v", d, err)
	}
	if n != 0 {
		t.Fatalf("GetEvents delivered %d unexpected events, first %s", n, fmtEvent(evs[0]))
	}
}

// byIOCB indexes events by their IOCB and fails on a duplicate or a nil IOCB.
func byIOCB(t testing.TB, evs []aio.Event) map[*aio.IOCB]aio.Event {
	t.Helper()
	m := make(map[*aio.IOCB]aio.Event, len(evs))
	for _, ev := range evs {
		if ev.IOCB == nil {
			t.Fatalf("event with nil IOCB: %s", fmtEvent(ev))
		}
		if _, dup := m[ev.IOCB]; dup {
			t.Fatalf("two events for one IOCB (Data %d)", ev.Data)
		}
		m[ev.IOCB] = ev
	}
	return m
}

// wantEvent checks that ev belongs to cb (pointer and Data) and has Res res.
func wantEvent(t testing.TB, ev aio.Event, cb *aio.IOCB, res int64, what string) {
	t.Helper()
	if ev.IOCB != cb {
		t.Fatalf("%s: event IOCB = %p, want %p", what, ev.IOCB, cb)
	}
	if ev.Data != cb.Data {
		t.Fatalf("%s: event Data = %d, want %d", what, ev.Data, cb.Data)
	}
	if ev.Res != res {
		t.Fatalf("%s: event Res = %s, want %s", what, fmtRes(ev.Res), fmtRes(res))
	}
	if ev.Res2 != 0 {
		t.Fatalf("%s: event Res2 = %d, want 0", what, ev.Res2)
	}
}

// wantCanceled checks that Cancel's answer is a successful cancellation of cb:
// a nil error and Event{IOCB: cb, Data: cb.Data, Res: -ECANCELED}, with Err
// matching ECANCELED.
func wantCanceled(t testing.TB, ev aio.Event, err error, cb *aio.IOCB, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: Cancel error = %v, want nil", what, err)
	}
	wantEvent(t, ev, cb, -int64(unix.ECANCELED), what)
	if !errors.Is(ev.Err(), unix.ECANCELED) {
		t.Fatalf("%s: Event.Err() = %v, want ECANCELED", what, ev.Err())
	}
}

// cancelIt cancels cb and requires success (see wantCanceled).
func cancelIt(t testing.TB, c *aio.Context, cb *aio.IOCB) {
	t.Helper()
	ev, err := c.Cancel(cb)
	wantCanceled(t, ev, err, cb, "Cancel")
}

func fmtRes(res int64) string {
	if res < 0 && res > -4096 {
		return fmt.Sprintf("%d (-%s)", res, unix.ErrnoName(unix.Errno(-res)))
	}
	return fmt.Sprint(res)
}

func fmtEvent(ev aio.Event) string {
	op := "?"
	if ev.IOCB != nil {
		op = ev.IOCB.Op.String()
	}
	return fmt.Sprintf("{op %s Data %d Res %s}", op, ev.Data, fmtRes(ev.Res))
}

// ---- goroutines ----

// finishes runs fn in a goroutine and fails the test if it has not returned
// within limit. It is how a test asserts "this call does not hang".
func finishes(t testing.TB, limit time.Duration, what string, fn func()) {
	t.Helper()
	if _, _, ok := runWithin(limit, fn); !ok {
		t.Fatalf("%s did not return within %v", what, limit)
	}
}

// runWithin runs fn in a goroutine and waits at most limit for it: ok says
// whether it returned, took how long it ran. done is closed when fn returns,
// for a caller that must release fn and wait again.
func runWithin(limit time.Duration, fn func()) (done <-chan struct{}, took time.Duration, ok bool) {
	start := time.Now()
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		fn()
	}()
	select {
	case <-ch:
		return ch, time.Since(start), true
	case <-time.After(limit):
		return ch, limit, false
	}
}

// onDyingThread runs fn on a goroutine locked to its OS thread that returns
// without unlocking, so that the thread exits after fn (io_uring ties requests
// to the submitting thread; see docs/contract.md §10.6). It returns once that thread is gone
// from /proc/self/task. fn must not call t.Fatal.
func onDyingThread(t testing.TB, fn func()) {
	t.Helper()
	for attempt := 0; attempt < 10; attempt++ {
		tidc := make(chan int, 1)
		go func() {
			runtime.LockOSThread()
			// No UnlockOSThread: the thread dies with this goroutine, except
			// the main thread, which the runtime never lets exit.
			tid := unix.Gettid()
			if tid != unix.Getpid() {
				fn()
			}
			tidc <- tid
		}()
		tid := <-tidc
		if tid == unix.Getpid() {
			continue // landed on the main thread: try again
		}
		task := fmt.Sprintf("/proc/self/task/%d", tid)
		deadline := time.Now().Add(eventWait)
		for {
			if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("thread %d still alive %v after its locked goroutine returned", tid, eventWait)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("could not get a goroutine off the main thread")
}
