//go:build linux

package uringaio_test

// Issue 8, the items about identical behaviour on every backend
// (docs/contract.md §3, §5, §6, §10): full reads of partly cached files
// (§3.8, §10.3), I/O that io_uring does and classic AIO refused (ttys, eventfd
// writes, /proc files, directories: §3.4, §3.10, §10.3), exact poll masks and
// the refusal of poll bits ≥ 1<<16 (§3.9, §3.2), CancelFD and Cancel on
// completions the kernel has but nobody reaped (§5.2, §6.4), and the
// precedence of Submit's refusals (§3.3).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("contract/file-read-full", contractFileReadFull)
	registerCompat("contract/tty-read", contractTTYRead)
	registerCompat("contract/eventfd-write", contractEventfdWrite)
	registerCompat("contract/proc-read", contractProcRead)
	registerCompat("contract/dir-read", contractDirRead)
	registerCompat("contract/poll-mask-exact", contractPollMaskExact)
	registerCompat("contract/poll-high-bits", contractPollHighBits)
	registerCompat("contract/cancel-sees-kernel-completion", contractCancelSeesCompletion)
	registerCompat("contract/submit-precedence", contractSubmitPrecedence)
}

// ---- item 3: no short reads in the middle of a regular file ----

// contractDropCache writes the file's dirty pages back and drops the file from
// the page cache, then reads warm bytes at off with pread, so that exactly
// that part (and whatever readahead adds) is cached: a read starting there is
// partly cached.
func contractDropCache(t *testing.T, fd int, off int64, warm int) {
	t.Helper()
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("fadvise(DONTNEED): %v", err)
	}
	preadAll(t, fd, warm, off)
}

// contractFileReadFull: a 256 KiB read (and readv) in the middle of a 1 MiB
// file whose first page alone is cached returns all 256 KiB; one that crosses
// the end of the file returns exactly the bytes up to it.
func contractFileReadFull(t *testing.T, be string) {
	const size = 1 << 20
	const n = 256 << 10
	data := pattern(size, 9)
	fd := tempFD(t, data)
	c := newContext(t, be, 4)

	for round := range 2 {
		off := int64(round) * 64 << 10 // 0, then 64 KiB: both well inside the file
		contractDropCache(t, fd, off, 4096)
		rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, n), Offset: off, Data: 1}
		mustSubmit(t, c, rd)
		ev := reapOne(t, c, rd)
		wantEvent(t, ev, rd, n, fmt.Sprintf("read of %d bytes at %d (first page cached)", n, off))
		wantBytes(t, rd.Buf, data[off:off+n], "read data")

		contractDropCache(t, fd, off, 4096)
		b1, b2 := make([]byte, n/2), make([]byte, n/2)
		rv := &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: [][]byte{b1, b2}, Offset: off, Data: 2}
		mustSubmit(t, c, rv)
		ev = reapOne(t, c, rv)
		wantEvent(t, ev, rv, n, fmt.Sprintf("readv of %d bytes at %d (first page cached)", n, off))
		wantBytes(t, append(b1, b2...), data[off:off+n], "readv data")
	}

	// Crossing the end: 100 KiB are left.
	const left = 100 << 10
	off := int64(size - left)
	contractDropCache(t, fd, off, 4096)
	rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, n), Offset: off, Data: 3}
	mustSubmit(t, c, rd)
	wantEvent(t, reapOne(t, c, rd), rd, left, "read crossing EOF (first page cached)")
	wantBytes(t, rd.Buf[:left], data[off:], "read crossing EOF")

	contractDropCache(t, fd, off, 4096)
	b1, b2 := make([]byte, n/2), make([]byte, n/2)
	rv := &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: [][]byte{b1, b2}, Offset: off, Data: 4}
	mustSubmit(t, c, rv)
	wantEvent(t, reapOne(t, c, rv), rv, left, "readv crossing EOF (first page cached)")
	wantBytes(t, append(b1, b2...)[:left], data[off:], "readv crossing EOF")
}

// ---- item 4: what io_uring does, every backend does ----

// contractPty opens a pseudo-terminal pair (blocking descriptors), with the
// slave in raw mode without echo, so that single bytes arrive as written and
// nothing comes back. Both close when the test ends.
func contractPty(t *testing.T) (master, slave int) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { unix.Close(m) })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("TIOCSPTLCK: %v", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	s := openFD(t, fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY)
	tio, err := unix.IoctlGetTermios(s, unix.TCGETS)
	if err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	tio.Lflag &^= unix.ICANON | unix.ECHO | unix.ECHONL | unix.ISIG | unix.IEXTEN
	tio.Iflag &^= unix.ICRNL | unix.INLCR | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(s, unix.TCSETS, tio); err != nil {
		t.Fatalf("TCSETS: %v", err)
	}
	return m, s
}

// contractTTYRead: a read on a tty that has to wait does wait (no event within
// quietWait), never blocks Submit, can be canceled (-ECANCELED), and returns
// what the other side writes. Both directions of a pty.
func contractTTYRead(t *testing.T, be string) {
	m, s := contractPty(t)
	c := newContext(t, be, 4)
	for _, dir := range []struct {
		name     string
		rfd, wfd int
	}{{"slave-reads", s, m}, {"master-reads", m, s}} {
		rd := &aio.IOCB{Op: aio.OpRead, FD: dir.rfd, Buf: make([]byte, 16), Data: 7}
		submitWithin(t, c, eventWait, rd)
		expectNoEvents(t, c)
		ev, err := c.Cancel(rd)
		wantCanceled(t, ev, err, rd, dir.name+": Cancel of a waiting tty read")
		expectNoEventsFor(t, c, 20*time.Millisecond)

		rd.Buf = make([]byte, 16)
		submitWithin(t, c, eventWait, rd)
		expectNoEvents(t, c)
		writeFull(t, dir.wfd, []byte("q"))
		ev = reapOne(t, c, rd)
		wantEvent(t, ev, rd, 1, dir.name+": tty read after a write")
		wantBytes(t, rd.Buf[:1], []byte("q"), dir.name+": tty read data")
	}
}

// contractEventfdWrite: an 8-byte write to an eventfd adds to its counter.
func contractEventfdWrite(t *testing.T, be string) {
	efd := newEventfd(t)
	c := newContext(t, be, 4)
	buf := make([]byte, 8)
	binary.NativeEndian.PutUint64(buf, 5)
	wr := &aio.IOCB{Op: aio.OpWrite, FD: efd, Buf: buf, Data: 3}
	mustSubmit(t, c, wr)
	wantEvent(t, reapOne(t, c, wr), wr, 8, "eventfd write")
	got := make([]byte, 8)
	n, err := unix.Read(efd, got)
	if err != nil || n != 8 {
		t.Fatalf("read eventfd after the write = %d, %v; want the counter", n, err)
	}
	if v := binary.NativeEndian.Uint64(got); v != 5 {
		t.Fatalf("eventfd counter = %d, want 5", v)
	}
}

// contractProcRead: a read of a /proc file at offset 0 gives what pread gives.
func contractProcRead(t *testing.T, be string) {
	c := newContext(t, be, 4)
	for _, path := range []string{"/proc/version", "/proc/self/cmdline"} {
		fd := openFD(t, path, unix.O_RDONLY)
		want := preadAll(t, fd, 8192, 0)
		if len(want) == 0 {
			t.Fatalf("%s: pread gave nothing", path)
		}
		rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 8192), Data: 4}
		mustSubmit(t, c, rd)
		wantEvent(t, reapOne(t, c, rd), rd, int64(len(want)), path+": read at 0")
		wantBytes(t, rd.Buf[:len(want)], want, path)
	}
}

// contractDirRead: a read of a directory ends with -EISDIR.
func contractDirRead(t *testing.T, be string) {
	dfd := openFD(t, tempDir(t), unix.O_RDONLY|unix.O_DIRECTORY)
	c := newContext(t, be, 4)
	rd := &aio.IOCB{Op: aio.OpRead, FD: dfd, Buf: make([]byte, 64), Data: 5}
	mustSubmit(t, c, rd)
	wantEvent(t, reapOne(t, c, rd), rd, -int64(unix.EISDIR), "read of a directory")
	rv := &aio.IOCB{Op: aio.OpReadv, FD: dfd, Bufs: [][]byte{make([]byte, 64)}, Data: 6}
	mustSubmit(t, c, rv)
	wantEvent(t, reapOne(t, c, rv), rv, -int64(unix.EISDIR), "readv of a directory")
}

// ---- item 5: poll masks ----

// contractPollAllowed is what a poll may report besides the events asked for.
const contractPollAllowed = unix.POLLERR | unix.POLLHUP | unix.POLLNVAL

// contractPollMaskExact: a socket whose peer did shutdown(SHUT_WR), polled for
// POLLIN, reports POLLIN and nothing outside POLLIN|POLLERR|POLLHUP|POLLNVAL
// (no POLLRDHUP, no POLLRDNORM), whether the poll was ready at once or waited;
// POLLRDHUP asked for is reported.
func contractPollMaskExact(t *testing.T, be string) {
	c := newContext(t, be, 4)
	check := func(ev aio.Event, cb *aio.IOCB, what string) {
		t.Helper()
		wantPollBits(t, ev, cb, unix.POLLIN, what)
		if extra := ev.Res &^ int64(cb.PollEvents|contractPollAllowed); extra != 0 {
			t.Fatalf("%s: poll Res = %#x for events %#x: bits %#x were not asked for", what, ev.Res, cb.PollEvents, extra)
		}
	}
	for _, waits := range []bool{false, true} {
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("socketpair: %v", err)
		}
		t.Cleanup(func() { unix.Close(sp[0]); unix.Close(sp[1]) })
		what := fmt.Sprintf("POLLIN on a socket whose peer shut down writing (poll waited: %v)", waits)
		cb := &aio.IOCB{Op: aio.OpPoll, FD: sp[0], PollEvents: unix.POLLIN, Data: 1}
		if waits {
			mustSubmit(t, c, cb)
			expectNoEventsFor(t, c, 20*time.Millisecond)
		}
		if err := unix.Shutdown(sp[1], unix.SHUT_WR); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if !waits {
			mustSubmit(t, c, cb)
		}
		check(reapOne(t, c, cb), cb, what)

		// Asked for, POLLRDHUP is reported.
		rdhup := &aio.IOCB{Op: aio.OpPoll, FD: sp[0], PollEvents: unix.POLLIN | unix.POLLRDHUP, Data: 2}
		mustSubmit(t, c, rdhup)
		ev := reapOne(t, c, rdhup)
		check(ev, rdhup, "POLLIN|POLLRDHUP after the peer's shutdown")
		if ev.Res&unix.POLLRDHUP == 0 {
			t.Fatalf("POLLIN|POLLRDHUP after the peer's shutdown: Res %#x lacks POLLRDHUP", ev.Res)
		}
	}
	// A pipe with data, polled for POLLIN: exactly POLLIN.
	r, w := newPipe(t, 0)
	writeFull(t, w, []byte("x"))
	cb := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN, Data: 3}
	mustSubmit(t, c, cb)
	check(reapOne(t, c, cb), cb, "POLLIN on a pipe with data")
}

// contractPollHighBits: PollEvents with bits outside the poll(2) set (≥ 1<<16)
// are refused by Submit with EINVAL, and nothing becomes outstanding.
func contractPollHighBits(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 8)
	for _, bit := range []uint32{1 << 31, 1 << 28, 1 << 16, 1 << 20} {
		cb := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN | bit, Data: uint64(bit)}
		n, err := c.Submit(cb)
		if n != 0 {
			t.Errorf("Submit(poll with events %#x) accepted it (%d, %v); want 0, EINVAL", cb.PollEvents, n, err)
			cancelIt(t, c, cb)
			continue
		}
		wantCallError(t, err, "Submit", unix.EINVAL, fmt.Sprintf("Submit(poll with events %#x)", cb.PollEvents))
		wantErrno(t, c.Error(cb), unix.EINVAL, "Error of the refused poll")
	}
	expectNoEventsFor(t, c, 20*time.Millisecond)
}

// ---- item 10: CancelFD and Cancel see completions the kernel already has ----

// contractCancelSeesCompletion: a write that has finished in the kernel (its
// effect is visible) but was not reaped counts as done: CancelFD(fd, nil) and
// CancelFD(fd, cb) answer AllDone, Cancel(cb) EAGAIN, and GetEvents then
// delivers its one event with the full count.
func contractCancelSeesCompletion(t *testing.T, be string) {
	for _, kind := range []string{"file", "pipe-blocking", "pipe-nonblocking"} {
		t.Run(kind, func(t *testing.T) {
			msg := []byte("finished-but-not-reaped")
			var fd, r int
			switch kind {
			case "file":
				fd = tempFD(t, nil)
			case "pipe-blocking":
				r, fd = newPipe(t, 0)
			case "pipe-nonblocking":
				r, fd = newPipe(t, unix.O_NONBLOCK)
			}
			c := newContext(t, be, 4)
			wr := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: msg, Data: 11}
			mustSubmit(t, c, wr)
			// Wait for the effect, without any call on c.
			if kind == "file" {
				deadline := time.Now().Add(eventWait)
				for !bytes.Equal(preadAll(t, fd, len(msg)+1, 0), msg) {
					if time.Now().After(deadline) {
						t.Fatalf("the write was not in the file %v after Submit (nobody reaping)", eventWait)
					}
					time.Sleep(time.Millisecond)
				}
			} else {
				wantBytes(t, readExactly(t, r, len(msg)), msg, "pipe data")
			}
			// Let the kernel post the completion after the data moved.
			time.Sleep(50 * time.Millisecond)

			res, err := c.CancelFD(fd, nil)
			if err != nil || res != aio.AllDone {
				t.Errorf("CancelFD(fd, nil) on a finished, unreaped write = %v, %v; want AllDone", res, err)
			}
			res, err = c.CancelFD(fd, wr)
			if err != nil || res != aio.AllDone {
				t.Errorf("CancelFD(fd, cb) on a finished, unreaped write = %v, %v; want AllDone", res, err)
			}
			ev, err := c.Cancel(wr)
			if err == nil {
				t.Fatalf("Cancel on a finished write succeeded: %s; want EAGAIN", fmtEvent(ev))
			}
			wantErrno(t, err, unix.EAGAIN, "Cancel on a finished, unreaped write")
			wantEvent(t, reapOne(t, c, wr), wr, int64(len(msg)), "the write's event")
			expectNoEventsFor(t, c, 20*time.Millisecond)
		})
	}
}

// ---- item 11: Submit's refusals, in order ----

// contractSubmitPrecedence: on a full Context an IOCB still outstanding is
// refused with EBUSY and a malformed one with EINVAL, not EAGAIN; a destroyed
// Context gives EINVAL before everything.
func contractSubmitPrecedence(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 2)
	a := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
	b := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 2}
	mustSubmit(t, c, a, b)

	// Full: a fresh, valid IOCB does not fit.
	fresh := &aio.IOCB{Op: aio.OpNop, Data: 3}
	n, err := c.Submit(fresh)
	if n != 0 {
		t.Fatalf("Submit on a full Context accepted %d", n)
	}
	wantCallError(t, err, "Submit", unix.EAGAIN, "Submit(valid IOCB) on a full Context")

	for _, cb := range []*aio.IOCB{a, b} {
		n, err := c.Submit(cb)
		if n != 0 {
			t.Fatalf("Submit(outstanding IOCB) on a full Context accepted it")
		}
		wantCallError(t, err, "Submit", unix.EBUSY, fmt.Sprintf("Submit(outstanding IOCB %d) on a full Context", cb.Data))
	}
	// Malformed, on a full Context.
	beyond, fdRange := intFrom(int64(r) + 1<<32)
	bad := []struct {
		name string
		cb   *aio.IOCB
	}{
		{"nil", nil},
		{"negative Offset", &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Offset: -1}},
		{"unknown Op", &aio.IOCB{Op: 200, FD: r}},
		{"poll with PollEvents 0", &aio.IOCB{Op: aio.OpPoll, FD: r}},
		{"poll with EPOLLET", &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN | 1<<31}},
		// last: dropped below where int is 32 bits
		{"FD beyond int32", &aio.IOCB{Op: aio.OpRead, FD: beyond, Buf: make([]byte, 8)}},
	}
	if !fdRange {
		t.Logf("no FD-beyond-int32 row: %s", int32Note)
		bad = bad[:len(bad)-1]
	}
	for _, tc := range bad {
		n, err := c.Submit(tc.cb)
		if n != 0 {
			t.Fatalf("Submit(%s) on a full Context accepted it", tc.name)
		}
		wantCallError(t, err, "Submit", unix.EINVAL, "Submit("+tc.name+") on a full Context")
	}
	// The outstanding IOCB first, then a malformed one: the first refusal is
	// reported, and it is EBUSY.
	if n, err := c.Submit(a, bad[1].cb); n != 0 {
		t.Fatalf("Submit(outstanding, malformed) accepted %d", n)
	} else {
		wantCallError(t, err, "Submit", unix.EBUSY, "Submit(outstanding, malformed) on a full Context")
	}

	// Both reads still wait, and complete.
	writeFull(t, w, []byte("0123456789abcdef"))
	evs := byIOCB(t, reapN(t, c, 2))
	wantEvent(t, evs[a], a, 8, "read a")
	wantEvent(t, evs[b], b, 8, "read b")

	// Destroyed: EINVAL for everything, an outstanding IOCB included.
	mustSubmit(t, c, a)
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for _, tc := range append(bad, struct {
		name string
		cb   *aio.IOCB
	}{"valid", fresh}, struct {
		name string
		cb   *aio.IOCB
	}{"the IOCB that was outstanding", a}) {
		n, err := c.Submit(tc.cb)
		if n != 0 {
			t.Fatalf("Submit(%s) on a destroyed Context accepted it", tc.name)
		}
		wantCallError(t, err, "Submit", unix.EINVAL, "Submit("+tc.name+") on a destroyed Context")
	}
}
