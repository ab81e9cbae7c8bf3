//go:build linux

package backend

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// collector receives a pool's completions and checks that each tag ends once.
type collector struct {
	ch   chan Completion
	mu   sync.Mutex
	seen map[uint64]int
	got  map[uint64]Completion // received by wait but not yet asked for
}

func newCollector() *collector {
	return &collector{ch: make(chan Completion, 1<<14), seen: map[uint64]int{}, got: map[uint64]Completion{}}
}

func (c *collector) done(cp Completion) {
	c.mu.Lock()
	c.seen[cp.Tag]++
	c.mu.Unlock()
	c.ch <- cp
}

func (c *collector) wait(t *testing.T, tag uint64) Completion {
	t.Helper()
	if cp, ok := c.got[tag]; ok {
		delete(c.got, tag)
		return cp
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case cp := <-c.ch:
			if cp.Kind != KindDone {
				t.Fatalf("completion %+v: kind %d", cp, cp.Kind)
			}
			if cp.Tag == tag {
				return cp
			}
			c.got[cp.Tag] = cp
		case <-deadline:
			t.Fatalf("tag %d: no completion in 10s", tag)
		}
	}
}

// none checks that nothing completes for d.
func (c *collector) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case cp := <-c.ch:
		t.Fatalf("unexpected completion %+v", cp)
	case <-time.After(d):
	}
}

func (c *collector) checkOnce(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for tag, n := range c.seen {
		if n != 1 {
			t.Errorf("tag %d completed %d times", tag, n)
		}
	}
}

func newTestPool(t *testing.T, workers int) (*pool, *collector) {
	t.Helper()
	c := newCollector()
	p, err := newPool(workers, c.done)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// tempFileFD is the descriptor of a new empty file, closed when the test ends.
func tempFileFD(t *testing.T) int {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func addr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

func iovecs(bufs ...[]byte) []unix.Iovec {
	iov := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iov[i].Base = &b[0]
		iov[i].SetLen(len(b))
	}
	return iov
}

func iovAddr(iov []unix.Iovec) uint64 { return uint64(uintptr(unsafe.Pointer(&iov[0]))) }

func testPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func dup(t *testing.T, fd int) int {
	t.Helper()
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func wantRes(t *testing.T, what string, cp Completion, res int64) {
	t.Helper()
	if cp.Res != res {
		t.Fatalf("%s: res %d (%v), want %d", what, cp.Res, errnoOf(cp.Res), res)
	}
}

func errnoOf(res int64) error {
	if res < 0 {
		return unix.Errno(-res)
	}
	return nil
}

func TestPoolRegularFile(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 2)
	defer p.close()
	fd := tempFileFD(t)

	data := []byte("0123456789abcdefghij")
	p.start(&Req{Tag: 1, Op: OpWrite, Addr: addr(data), Len: uint32(len(data)), Off: 100}, fd, false, poolRun, 0)
	wantRes(t, "write", c.wait(t, 1), 20)

	buf := make([]byte, 20)
	p.start(&Req{Tag: 2, Op: OpRead, Addr: addr(buf), Len: 20, Off: 100}, fd, false, poolRun, 0)
	wantRes(t, "read", c.wait(t, 2), 20)
	if !bytes.Equal(buf, data) {
		t.Fatalf("read %q", buf)
	}

	// A continuation: 5 bytes already moved; the pool reads the rest at
	// Off+5 into buf[5:] and reports the total.
	buf2 := make([]byte, 20)
	p.start(&Req{Tag: 3, Op: OpRead, Addr: addr(buf2), Len: 20, Off: 100}, fd, false, poolRun, 5)
	wantRes(t, "continued read", c.wait(t, 3), 20)
	if !bytes.Equal(buf2[5:], data[5:]) || !bytes.Equal(buf2[:5], make([]byte, 5)) {
		t.Fatalf("continued read %q", buf2)
	}

	// Vectors, continued across an iovec boundary.
	a, b, d := make([]byte, 4), make([]byte, 6), make([]byte, 10)
	iov := iovecs(a, b, d)
	p.start(&Req{Tag: 4, Op: OpReadv, Addr: iovAddr(iov), Len: 3, Off: 100}, fd, false, poolRun, 7)
	wantRes(t, "continued readv", c.wait(t, 4), 20)
	if got := string(b[3:]) + string(d); got != string(data[7:]) {
		t.Fatalf("continued readv %q", got)
	}
	runtime.KeepAlive(iov)

	wiov := iovecs([]byte("ABC"), []byte("DEFG"))
	p.start(&Req{Tag: 5, Op: OpWritev, Addr: iovAddr(wiov), Len: 2, Off: 0}, fd, false, poolRun, 0)
	wantRes(t, "writev", c.wait(t, 5), 7)
	runtime.KeepAlive(wiov)

	// End of file: a short count, and 0 past the end.
	p.start(&Req{Tag: 6, Op: OpRead, Addr: addr(buf), Len: 20, Off: 110}, fd, false, poolRun, 0)
	wantRes(t, "read at EOF", c.wait(t, 6), 10)
	p.start(&Req{Tag: 7, Op: OpRead, Addr: addr(buf), Len: 20, Off: 1000}, fd, false, poolRun, 0)
	wantRes(t, "read past EOF", c.wait(t, 7), 0)
	// A continuation that finds nothing more is the bytes already moved.
	p.start(&Req{Tag: 8, Op: OpRead, Addr: addr(buf), Len: 20, Off: 1000}, fd, false, poolRun, 3)
	wantRes(t, "continued read past EOF", c.wait(t, 8), 3)

	for tag, op := range map[uint64]uint8{9: OpFsync, 10: OpFdsync, 11: OpNop} {
		p.start(&Req{Tag: tag, Op: op}, fd, false, poolRun, 0)
		wantRes(t, fmt.Sprint("op ", op), c.wait(t, tag), 0)
	}

	// An owned duplicate is closed once its request ends.
	d2 := dup(t, fd)
	p.start(&Req{Tag: 12, Op: OpFsync}, d2, true, poolRun, 0)
	wantRes(t, "fsync on dup", c.wait(t, 12), 0)
	if isOpen(d2) {
		t.Fatal("owned fd still open after its completion")
	}

	// A bad descriptor is the request's result.
	p.start(&Req{Tag: 13, Op: OpRead, Addr: addr(buf), Len: 20}, 1<<30, false, poolRun, 0)
	wantRes(t, "bad fd", c.wait(t, 13), -int64(unix.EBADF))
	runtime.KeepAlive(data)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(buf2)
	c.checkOnce(t)
}

// TestPoolRangeOps: the range operations as a worker makes them, from the
// Req encoding package aio uses (the byte count in Addr, the argument in
// PollEvents): fallocate allocates [Off, Off+len) with its mode,
// sync_file_range and fadvise succeed over 64-bit lengths, and the kernel's
// refusals are the results.
func TestPoolRangeOps(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 2)
	defer p.close()
	fd := tempFileFD(t)

	p.start(&Req{Tag: 1, Op: OpFallocate, Off: 4096, Addr: 8192}, fd, false, poolRun, 0)
	wantRes(t, "fallocate mode 0", c.wait(t, 1), 0)
	p.start(&Req{Tag: 2, Op: OpFallocate, Off: 1 << 20, Addr: 4096, PollEvents: unix.FALLOC_FL_KEEP_SIZE}, fd, false, poolRun, 0)
	wantRes(t, "fallocate KEEP_SIZE", c.wait(t, 2), 0)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 4096+8192 || st.Blocks*512 < 8192+4096 {
		t.Fatalf("after fallocate of [4096, 12288) and KEEP_SIZE [1M, 1M+4096): size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
	p.start(&Req{Tag: 3, Op: OpSyncFileRange, Addr: 1 << 40, PollEvents: unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER}, fd, false, poolRun, 0)
	wantRes(t, "sync_file_range of 2^40 bytes", c.wait(t, 3), 0)
	p.start(&Req{Tag: 4, Op: OpFadvise, Addr: 1 << 40, PollEvents: unix.FADV_DONTNEED}, fd, false, poolRun, 0)
	wantRes(t, "fadvise DONTNEED of 2^40 bytes", c.wait(t, 4), 0)

	p.start(&Req{Tag: 5, Op: OpFallocate, Addr: 4096, PollEvents: 0x1000}, fd, false, poolRun, 0)
	wantRes(t, "fallocate unknown mode", c.wait(t, 5), -int64(unix.EOPNOTSUPP))
	p.start(&Req{Tag: 6, Op: OpFadvise, PollEvents: 99}, fd, false, poolRun, 0)
	wantRes(t, "fadvise unknown advice", c.wait(t, 6), -int64(unix.EINVAL))
	p.start(&Req{Tag: 7, Op: OpSyncFileRange, Off: 1 << 62, Addr: 1 << 62}, fd, false, poolRun, 0)
	wantRes(t, "sync_file_range past 2^63", c.wait(t, 7), -int64(unix.EINVAL))
	c.checkOnce(t)
}

func TestPoolDirectoryAndProc(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 0)
	defer p.close()
	dfd, err := unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	p.start(&Req{Tag: 1, Op: OpRead, Addr: addr(buf), Len: 64}, dfd, true, poolRun, 0)
	wantRes(t, "read on a directory", c.wait(t, 1), -int64(unix.EISDIR))

	pfd, err := unix.Open("/proc/self/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.start(&Req{Tag: 2, Op: OpRead, Addr: addr(buf), Len: 64}, pfd, true, poolRun, 0)
	cp := c.wait(t, 2)
	if cp.Res <= 0 || !strings.HasPrefix(string(buf), strconv.Itoa(os.Getpid())+" ") {
		t.Fatalf("/proc/self/stat: res %d, %q", cp.Res, buf)
	}
	runtime.KeepAlive(buf)
}

func TestPoolPipe(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 2)
	defer p.close()
	r, w := testPipe(t)

	buf := make([]byte, 16)
	d := dup(t, r)
	p.start(&Req{Tag: 1, Op: OpRead, Addr: addr(buf), Len: 16}, d, true, poolWait, 0)
	c.none(t, 50*time.Millisecond)
	if _, err := unix.Write(w, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	wantRes(t, "pipe read", c.wait(t, 1), 5)
	if string(buf[:5]) != "hello" {
		t.Fatalf("read %q", buf[:5])
	}
	if isOpen(d) {
		t.Fatal("owned fd still open")
	}

	// A continuation of a pipe read: 2 bytes were moved; the rest goes to buf[2:].
	buf2 := make([]byte, 8)
	p.start(&Req{Tag: 2, Op: OpRead, Addr: addr(buf2), Len: 8}, r, false, poolWait, 2)
	unix.Write(w, []byte("xyz"))
	wantRes(t, "continued pipe read", c.wait(t, 2), 5)
	if string(buf2[2:5]) != "xyz" {
		t.Fatalf("continued read %q", buf2)
	}

	// Readv waits too.
	a, b := make([]byte, 2), make([]byte, 4)
	iov := iovecs(a, b)
	p.start(&Req{Tag: 3, Op: OpReadv, Addr: iovAddr(iov), Len: 2}, r, false, poolWait, 0)
	c.none(t, 20*time.Millisecond)
	unix.Write(w, []byte("vector"))
	wantRes(t, "pipe readv", c.wait(t, 3), 6)
	if string(a)+string(b) != "vector" {
		t.Fatalf("readv %q %q", a, b)
	}
	runtime.KeepAlive(iov)

	// A write that waits for room: fill the pipe, start the write, drain.
	unix.SetNonblock(w, true)
	fill := make([]byte, 4096)
	filled := 0
	for {
		n, err := unix.Write(w, fill)
		if err != nil {
			break
		}
		filled += n
	}
	unix.SetNonblock(w, false)
	msg := []byte("after")
	p.start(&Req{Tag: 4, Op: OpWrite, Addr: addr(msg), Len: 5}, w, false, poolWait, 0)
	c.none(t, 50*time.Millisecond)
	drain := make([]byte, filled)
	for got := 0; got < filled; {
		n, err := unix.Read(r, drain[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	wantRes(t, "pipe write", c.wait(t, 4), 5)
	if n, _ := unix.Read(r, buf); string(buf[:n]) != "after" {
		t.Fatalf("read back %q", buf[:n])
	}

	// End of file: the write end closed.
	r2, w2 := testPipe(t)
	p.start(&Req{Tag: 5, Op: OpRead, Addr: addr(buf), Len: 16}, r2, false, poolWait, 0)
	unix.Close(w2)
	wantRes(t, "read at EOF", c.wait(t, 5), 0)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(buf2)
	runtime.KeepAlive(msg)
	c.checkOnce(t)
}

func TestPoolPoll(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 1)
	defer p.close()
	r, w := testPipe(t)
	p.start(&Req{Tag: 1, Op: OpPoll, PollEvents: unix.POLLIN}, r, false, poolPoll, 0)
	c.none(t, 30*time.Millisecond)
	unix.Write(w, []byte("x"))
	wantRes(t, "poll", c.wait(t, 1), unix.POLLIN)
	// Only the requested bits and POLLERR/POLLHUP/POLLNVAL: the write end
	// asked for POLLOUT|POLLPRI gets POLLOUT.
	p.start(&Req{Tag: 2, Op: OpPoll, PollEvents: unix.POLLOUT | unix.POLLPRI}, w, false, poolPoll, 0)
	wantRes(t, "poll out", c.wait(t, 2), unix.POLLOUT)
	// POLLHUP comes though not asked for.
	r2, w2 := testPipe(t)
	p.start(&Req{Tag: 3, Op: OpPoll, PollEvents: unix.POLLPRI}, r2, false, poolPoll, 0)
	unix.Close(w2)
	wantRes(t, "poll hup", c.wait(t, 3), unix.POLLHUP)
	// A closed number: POLLNVAL.
	p.start(&Req{Tag: 4, Op: OpPoll, PollEvents: unix.POLLIN}, 1<<20, false, poolPoll, 0)
	wantRes(t, "poll nval", c.wait(t, 4), unix.POLLNVAL)
}

func TestPoolPty(t *testing.T) {
	defer goleak.VerifyNone(t)
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer unix.Close(m)
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := unix.Open("/dev/pts/"+strconv.Itoa(int(n)), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)

	p, c := newTestPool(t, 2)
	defer p.close()
	// The slave in canonical mode: the read waits for a line.
	buf := make([]byte, 64)
	p.start(&Req{Tag: 1, Op: OpRead, Addr: addr(buf), Len: 64}, s, false, poolWait, 0)
	c.none(t, 50*time.Millisecond)
	unix.Write(m, []byte("line\n"))
	wantRes(t, "tty read", c.wait(t, 1), 5)
	if string(buf[:5]) != "line\n" {
		t.Fatalf("tty read %q", buf[:5])
	}
	// Drain the echo on the master, then a master read waits for output.
	time.Sleep(10 * time.Millisecond)
	unix.SetNonblock(m, true)
	for {
		if _, err := unix.Read(m, buf); err != nil {
			break
		}
	}
	unix.SetNonblock(m, false)
	mbuf := make([]byte, 64)
	p.start(&Req{Tag: 2, Op: OpRead, Addr: addr(mbuf), Len: 64}, m, false, poolWait, 0)
	c.none(t, 50*time.Millisecond)
	unix.Write(s, []byte("out"))
	wantRes(t, "pty master read", c.wait(t, 2), 3)
	if string(mbuf[:3]) != "out" {
		t.Fatalf("master read %q", mbuf[:3])
	}
	// A tty read canceled while it waits.
	p.start(&Req{Tag: 3, Op: OpRead, Addr: addr(buf), Len: 64}, s, false, poolWait, 0)
	time.Sleep(10 * time.Millisecond)
	if a := p.cancel(3); a != CancelPending {
		t.Fatalf("cancel of a waiting tty read: %d", a)
	}
	wantRes(t, "canceled tty read", c.wait(t, 3), -int64(unix.ECANCELED))
	runtime.KeepAlive(buf)
	runtime.KeepAlive(mbuf)
}

func TestPoolEventfd(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 2)
	defer p.close()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	buf := make([]byte, 8)
	p.start(&Req{Tag: 1, Op: OpRead, Addr: addr(buf), Len: 8}, efd, false, poolWait, 0)
	c.none(t, 30*time.Millisecond)
	one := []byte{7, 0, 0, 0, 0, 0, 0, 0}
	// An eventfd write through the pool (eventfd has no write_iter on
	// older kernels and may refuse RWF_NOWAIT: it is then done plainly).
	p.start(&Req{Tag: 2, Op: OpWrite, Addr: addr(one), Len: 8}, efd, false, poolWait, 0)
	wantRes(t, "eventfd write", c.wait(t, 2), 8)
	wantRes(t, "eventfd read", c.wait(t, 1), 8)
	if buf[0] != 7 {
		t.Fatalf("eventfd read %v", buf)
	}
	runtime.KeepAlive(buf)
	runtime.KeepAlive(one)
}

func TestPoolCancelWaiting(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 2)
	defer p.close()
	r, w := testPipe(t)
	buf := make([]byte, 16)
	d := dup(t, r)
	p.start(&Req{Tag: 1, Op: OpRead, Addr: addr(buf), Len: 16}, d, true, poolWait, 0)
	time.Sleep(20 * time.Millisecond)
	if a := p.cancel(1); a != CancelPending {
		t.Fatalf("cancel: %d, want CancelPending", a)
	}
	if a := p.cancel(1); a != CancelRefused {
		t.Fatalf("second cancel: %d, want CancelRefused", a)
	}
	wantRes(t, "canceled read", c.wait(t, 1), -int64(unix.ECANCELED))
	if isOpen(d) {
		t.Fatal("owned fd of a canceled request still open")
	}
	// Nothing written after the cancel is lost.
	unix.Write(w, []byte("kept"))
	n, _ := unix.Read(r, buf)
	if string(buf[:n]) != "kept" {
		t.Fatalf("after cancel, read %q", buf[:n])
	}
	// A canceled continuation reports the bytes it had moved.
	p.start(&Req{Tag: 2, Op: OpRead, Addr: addr(buf), Len: 16}, r, false, poolWait, 3)
	time.Sleep(10 * time.Millisecond)
	if a := p.cancel(2); a != CancelPending {
		t.Fatalf("cancel: %d", a)
	}
	wantRes(t, "canceled continuation", c.wait(t, 2), 3)
	if a := p.cancel(99); a != CancelRefused {
		t.Fatalf("cancel of an unknown tag: %d", a)
	}
	c.none(t, 20*time.Millisecond)
	runtime.KeepAlive(buf)
	c.checkOnce(t)
}

// newHeldPool is a pool with one worker, held inside the done callback of
// its first request (a Nop, tag 1, started here) until release is closed:
// whatever starts next on a worker stays queued.
func newHeldPool(t *testing.T) (*pool, *collector, chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	entered := make(chan struct{})
	c := newCollector()
	p, err := newPool(1, func(cp Completion) {
		if cp.Tag == 1 {
			close(entered)
			<-release
		}
		c.done(cp)
	})
	if err != nil {
		t.Fatal(err)
	}
	p.start(&Req{Tag: 1, Op: OpNop}, -1, false, poolRun, 0)
	<-entered
	return p, c, release
}

// TestPoolCancelQueued holds the only worker inside done and cancels what
// queues behind it.
func TestPoolCancelQueued(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c, release := newHeldPool(t)
	defer p.close()
	p.start(&Req{Tag: 2, Op: OpNop}, -1, false, poolRun, 0)
	p.start(&Req{Tag: 3, Op: OpNop}, -1, false, poolRun, 0)
	if a := p.cancel(2); a != CancelPending {
		t.Fatalf("cancel of a queued request: %d", a)
	}
	// The canceled one is delivered by the poller while the worker is busy.
	wantRes(t, "canceled queued", c.wait(t, 2), -int64(unix.ECANCELED))
	close(release)
	wantRes(t, "first", c.wait(t, 1), 0)
	wantRes(t, "third", c.wait(t, 3), 0)
	c.none(t, 20*time.Millisecond)
	c.checkOnce(t)
}

// TestPoolCancelRace races cancel against readiness: either the cancel won
// (CancelPending, -ECANCELED, and the byte is still in the pipe) or the read
// did (CancelRefused or a late cancel, and the read has the byte). Exactly
// one completion either way.
func TestPoolCancelRace(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 2)
	defer p.close()
	r, w := testPipe(t)
	buf := make([]byte, 1)
	rounds := 2000
	if testing.Short() {
		rounds = 200
	}
	won := 0
	for i := 0; i < rounds; i++ {
		tag := uint64(i + 1)
		p.start(&Req{Tag: tag, Op: OpRead, Addr: addr(buf), Len: 1}, r, false, poolWait, 0)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			unix.Write(w, []byte{byte(i)})
		}()
		if i%3 == 0 {
			runtime.Gosched()
		}
		a := p.cancel(tag)
		wg.Wait()
		cp := c.wait(t, tag)
		switch {
		case a == CancelPending && cp.Res == -int64(unix.ECANCELED):
			won++
			var b [1]byte
			if n, err := unix.Read(r, b[:]); n != 1 || b[0] != byte(i) {
				t.Fatalf("round %d: canceled, but the byte is gone (%d, %v)", i, n, err)
			}
		case a == CancelRefused && cp.Res == 1:
			if buf[0] != byte(i) {
				t.Fatalf("round %d: read %d", i, buf[0])
			}
		default:
			t.Fatalf("round %d: cancel %d, res %d", i, a, cp.Res)
		}
	}
	t.Logf("%d of %d cancels won", won, rounds)
	runtime.KeepAlive(buf)
	c.none(t, 10*time.Millisecond)
	c.checkOnce(t)
}

// TestPoolCancelCloseRace races cancel, readiness and close on many
// requests: every request must complete exactly once.
func TestPoolCancelCloseRace(t *testing.T) {
	defer goleak.VerifyNone(t)
	for round := 0; round < 50; round++ {
		p, c := newTestPool(t, 2)
		r, w := testPipe(t)
		const n = 64
		buf := make([]byte, n)
		for i := 0; i < n; i++ {
			p.start(&Req{Tag: uint64(i), Op: OpRead, Addr: addr(buf[i:]), Len: 1}, r, false, poolWait, 0)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			unix.Write(w, make([]byte, n/2))
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < n; i += 2 {
				p.cancel(uint64(i))
			}
		}()
		if round%2 == 0 {
			runtime.Gosched()
		}
		p.close()
		wg.Wait()
		if len(c.ch) != n {
			t.Fatalf("round %d: %d completions after close, want %d", round, len(c.ch), n)
		}
		c.checkOnce(t)
		runtime.KeepAlive(buf)
	}
}

func osThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: line")
	return 0
}

// TestPoolThousandWaits: a thousand pending pipe reads hold the poller's one
// thread, not a thousand.
func TestPoolThousandWaits(t *testing.T) {
	defer goleak.VerifyNone(t)
	const workers, n = 4, 1000
	before := osThreads(t)
	p, c := newTestPool(t, workers)
	defer p.close()
	type pp struct{ r, w int }
	pipes := make([]pp, n)
	bufs := make([]byte, n)
	for i := range pipes {
		pipes[i].r, pipes[i].w = testPipe(t)
		p.start(&Req{Tag: uint64(i), Op: OpRead, Addr: addr(bufs[i:]), Len: 1}, pipes[i].r, false, poolWait, 0)
	}
	time.Sleep(100 * time.Millisecond)
	during := osThreads(t)
	t.Logf("OS threads: %d before the pool, %d with %d reads waiting", before, during, n)
	if during-before > workers+2 {
		t.Fatalf("%d reads waiting took %d OS threads (pool bound %d)", n, during-before, workers+2)
	}
	for i := range pipes {
		unix.Write(pipes[i].w, []byte{byte(i)})
	}
	for i := range pipes {
		wantRes(t, "read", c.wait(t, uint64(i)), 1)
		if bufs[i] != byte(i) {
			t.Fatalf("read %d got %d", i, bufs[i])
		}
	}
	runtime.KeepAlive(bufs)
	c.checkOnce(t)
}

func TestPoolClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	release := make(chan struct{})
	c := newCollector()
	p, err := newPool(1, func(cp Completion) {
		if cp.Tag == 100 {
			<-release
		}
		c.done(cp)
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := testPipe(t)
	buf := make([]byte, 10)
	var owned []int
	for i := 0; i < 10; i++ {
		d := dup(t, r)
		owned = append(owned, d)
		p.start(&Req{Tag: uint64(i), Op: OpRead, Addr: addr(buf[i:]), Len: 1}, d, true, poolWait, 0)
	}
	p.start(&Req{Tag: 100, Op: OpNop}, -1, false, poolRun, 0) // holds the worker
	for i := 0; i < 5; i++ {
		p.start(&Req{Tag: uint64(200 + i), Op: OpNop}, -1, false, poolRun, 0) // queued
	}
	time.Sleep(20 * time.Millisecond)
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(release)
	}()
	p.close()
	if len(c.ch) != 16 {
		t.Fatalf("%d completions after close, want 16", len(c.ch))
	}
	for len(c.ch) > 0 {
		cp := <-c.ch
		want := -int64(unix.ECANCELED)
		if cp.Tag == 100 {
			want = 0
		}
		wantRes(t, fmt.Sprint("tag ", cp.Tag), cp, want)
	}
	for _, d := range owned {
		if isOpen(d) {
			t.Fatalf("owned fd %d open after close", d)
		}
	}
	c.checkOnce(t)
	runtime.KeepAlive(buf)
}

// TestPoolStorageContinuationNotCanceled: a regular-file continuation that
// moved bytes already (a short first try) is running as far as cancel is
// concerned, even while still queued: cancel refuses it and it completes in
// full. Canceling it would report the bytes moved as a short count, which
// reads as the end of the file (docs/contract.md §3.8).
func TestPoolStorageContinuationNotCanceled(t *testing.T) {
	defer goleak.VerifyNone(t)
	fd := tempFileFD(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 4)
	if _, err := unix.Pwrite(fd, data, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(data))
	p, c, release := newHeldPool(t)
	defer p.close()
	p.start(&Req{Tag: 2, Op: OpRead, Addr: addr(buf), Len: uint32(len(buf))}, fd, false, poolRun, 16)
	if a := p.cancel(2); a != CancelRefused {
		t.Fatalf("cancel of a continuation that moved bytes: %d, want CancelRefused", a)
	}
	close(release)
	wantRes(t, "nop", c.wait(t, 1), 0)
	wantRes(t, "continuation", c.wait(t, 2), int64(len(data)))
	if !bytes.Equal(buf[16:], data[16:]) {
		t.Fatalf("continuation read %q", buf[16:])
	}
	runtime.KeepAlive(buf)
	c.checkOnce(t)
}

// TestPoolPlainTransferTurns: on a file that refuses RWF_NOWAIT and cannot be
// reopened (a pty master), two reads become ready for one byte. The pool
// makes one plain transfer at a time per file and only while the file is
// still ready, so the one that loses goes back to waiting: it can be
// canceled, and close does not wait for data.
func TestPoolPlainTransferTurns(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, c := newTestPool(t, 4)
	defer p.close()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer unix.Close(m)
	unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0)
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	s, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open the pty slave: %v", err)
	}
	defer unix.Close(s)
	tio, _ := unix.IoctlGetTermios(s, unix.TCGETS)
	tio.Lflag &^= unix.ICANON | unix.ECHO
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	unix.IoctlSetTermios(s, unix.TCSETS, tio)
	if privateNonblock(m) >= 0 {
		t.Fatal("privateNonblock opened a pty master again (that makes a new pty)")
	}
	b1, b2 := make([]byte, 8), make([]byte, 8)
	p.start(&Req{Tag: 1, Op: OpRead, Addr: addr(b1), Len: 8}, m, false, poolWait, 0)
	p.start(&Req{Tag: 2, Op: OpRead, Addr: addr(b2), Len: 8}, m, false, poolWait, 0)
	c.none(t, 20*time.Millisecond)
	unix.Write(s, []byte("z"))
	var won Completion
	select {
	case won = <-c.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no read completed")
	}
	wantRes(t, "winner", won, 1)
	loser := uint64(3) - won.Tag
	time.Sleep(20 * time.Millisecond)
	if a := p.cancel(loser); a != CancelPending {
		unix.Write(s, []byte("release"))
		t.Fatalf("cancel of the read that lost: %d, want CancelPending", a)
	}
	wantRes(t, "loser", c.wait(t, loser), -int64(unix.ECANCELED))
	runtime.KeepAlive(b1)
	runtime.KeepAlive(b2)
	c.checkOnce(t)
}
