//go:build linux

package uringaio_test

// Losing the race for data (docs/contract.md §3.11), and the short counts a
// mechanism must never invent (§3.8).
//
// A request that waits for data on a pollable file is woken when the file
// becomes readable, but another reader can take the data first: a second
// request of the same Context, or a reader outside the library. The request
// that lost must go back to waiting, still cancelable, and Destroy must
// return; it must not sit in a blocking read(2) that only new data ends. Each
// case below arranges such a race and bounds every Cancel and Destroy with a
// watchdog that, when it fires, writes more data (which lets a stuck read
// return) and fails the test, so that a regression fails instead of hanging.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("race/tty-slave-two-descriptors", raceTTYSlaveTwoFDs)
	registerCompat("race/tty-slave-one-descriptor", raceTTYSlaveOneFD)
	registerCompat("race/tty-master-one-descriptor", raceTTYMasterOneFD)
	registerCompat("race/tty-slave-outside-reader", raceTTYOutsideReader)
	registerCompat("race/fifo-two-descriptors", raceFIFOTwoFDs)
	registerCompat("race/fifo-outside-reader", raceFIFOOutsideReader)
	registerCompat("race/fifo-write-full", raceFIFOWriteFull)
	registerCompat("race/pipe-read", racePipeRead)
	registerCompat("race/pipe-write-full", racePipeWriteFull)
	registerCompat("race/socket-read", raceSocketRead)
	registerCompat("race/eventfd-write-room", raceEventfdWriteRoom)
	registerCompat("race/caller-flags-untouched", raceCallerFlagsUntouched)
	registerCompat("short/emfile-mid-file", shortEMFILEMidFile)
	registerCompat("short/proc-and-sysfs", shortProcSysfs)
}

// raceWait bounds each Cancel and Destroy here. They decide at once when the
// contract holds; the bound is generous so that a slow machine never fails.
const raceWait = 5 * time.Second

// raceWatch runs fn and fails the test if it has not returned within
// raceWait. Before failing it calls release, which must make the stuck call
// return (by writing or draining data), so that the test's own cleanup does
// not hang as well.
func raceWatch(t *testing.T, what string, release func(), fn func()) {
	t.Helper()
	done, _, ok := runWithin(raceWait, fn)
	if ok {
		return
	}
	release()
	select {
	case <-done:
		t.Fatalf("%s did not return within %v; it returned once more data moved (a request blocked in a transfer that only data could end)", what, raceWait)
	case <-time.After(raceWait):
		t.Fatalf("%s did not return within %v, nor after more data moved", what, raceWait)
	}
}

// raceTwo is the core scenario: two requests a and b wait on the same file
// (on one descriptor or two); feed makes room for exactly one of them to
// complete, with want as its result. The other, which lost the race, must be
// canceled at once by Cancel (end "cancel") and must not stop Destroy from
// returning (end "destroy"). release unblocks a request stuck in a blocking
// transfer, for the watchdog. after, if not nil, checks the file once the
// Context is gone (nothing consumed or written by the loser).
type raceTwo struct {
	mk      func(t *testing.T) (a, b *aio.IOCB)
	feed    func(t *testing.T)
	release func()
	want    int64
	after   func(t *testing.T, winner *aio.IOCB)
}

func (r raceTwo) run(t *testing.T, be string) {
	for _, end := range []string{"cancel", "destroy"} {
		t.Run(end, func(t *testing.T) {
			c := newContext(t, be, 4)
			a, b := r.mk(t)
			submitWithin(t, c, eventWait, a, b)
			expectNoEvents(t, c)
			r.feed(t)
			ev := reapN(t, c, 1)[0]
			winner, loser := a, b
			if ev.IOCB == b {
				winner, loser = b, a
			}
			wantEvent(t, ev, winner, r.want, "the request that won the race")
			// Give the loser time to reach its transfer: with the defect it
			// is now blocked in read(2) or write(2) on a worker.
			expectNoEvents(t, c)
			if err := c.Error(loser); !errors.Is(err, unix.EINPROGRESS) {
				t.Fatalf("Error(the request that lost) = %v, want EINPROGRESS", err)
			}
			if end == "cancel" {
				var cev aio.Event
				var err error
				raceWatch(t, "Cancel of the request that lost the race", r.release, func() { cev, err = c.Cancel(loser) })
				wantCanceled(t, cev, err, loser, "Cancel of the request that lost the race")
			}
			var err error
			raceWatch(t, "Destroy", r.release, func() { err = c.Destroy() })
			if err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			if r.after != nil {
				r.after(t, winner)
			}
		})
	}
}

// racePty is contractPty plus the slave's path.
func racePty(t *testing.T) (master, slave int, slavePath string) {
	t.Helper()
	m, s := contractPty(t)
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	return m, s, fmt.Sprintf("/dev/pts/%d", n)
}

// raceTTYReads: two reads of 8 bytes wait on the tty (rfd1, rfd2); one byte
// written on wfd lets one of them complete. Afterwards the byte written next
// reaches a plain reader: the loser consumed nothing after it was canceled or
// destroyed.
func raceTTYReads(t *testing.T, be string, pick func(m, s int, sp string) (r1, r2, w int)) {
	var w, r int
	raceTwo{
		mk: func(t *testing.T) (a, b *aio.IOCB) {
			m, s, sp := racePty(t)
			var r2 int
			r, r2, w = pick(m, s, sp)
			a = &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
			b = &aio.IOCB{Op: aio.OpRead, FD: r2, Buf: make([]byte, 8), Data: 2}
			return a, b
		},
		feed:    func(t *testing.T) { writeFull(t, w, []byte("x")) },
		release: func() { unix.Write(w, []byte("release!")) },
		want:    1,
		after: func(t *testing.T, winner *aio.IOCB) {
			if winner.Buf[0] != 'x' {
				t.Fatalf("the winner read %q, want \"x\"", winner.Buf[:1])
			}
			writeFull(t, w, []byte("y"))
			if got := readExactly(t, r, 1); got[0] != 'y' {
				t.Fatalf("after Destroy a plain read got %q, want \"y\"", got)
			}
		},
	}.run(t, be)
}

// raceTTYSlaveTwoFDs: the reproduction, one read on each of two
// descriptors of a pty slave.
func raceTTYSlaveTwoFDs(t *testing.T, be string) {
	raceTTYReads(t, be, func(m, s int, sp string) (int, int, int) {
		return s, openFD(t, sp, unix.O_RDWR|unix.O_NOCTTY), m
	})
}

// raceTTYSlaveOneFD: both reads on one descriptor of a pty slave.
func raceTTYSlaveOneFD(t *testing.T, be string) {
	raceTTYReads(t, be, func(m, s int, sp string) (int, int, int) { return s, s, m })
}

// raceTTYMasterOneFD: both reads on the pty master, which cannot be reopened
// (a new open of /dev/ptmx makes a new pty): the library must not let its own
// requests race each other there.
func raceTTYMasterOneFD(t *testing.T, be string) {
	raceTTYReads(t, be, func(m, s int, sp string) (int, int, int) { return m, m, s })
}

// raceOutside: a read waits on rfd; the test writes one byte on wfd and at
// once takes it itself through steal (a non-blocking description of its own),
// racing the library. Whoever wins, the library's request ends right: with
// the byte, or still waiting and then canceled at once. Many rounds, so that
// the test wins some.
func raceOutside(t *testing.T, be string, rfd, wfd, steal int) {
	c := newContext(t, be, 4)
	stolen, lost := 0, 0
	for round := 0; round < 40; round++ {
		rd := &aio.IOCB{Op: aio.OpRead, FD: rfd, Buf: make([]byte, 8), Data: uint64(round)}
		submitWithin(t, c, eventWait, rd)
		writeFull(t, wfd, []byte("s"))
		got := false
		deadline := time.Now().Add(eventWait)
		for !got && time.Now().Before(deadline) {
			var b [1]byte
			if n, err := unix.Read(steal, b[:]); n == 1 && err == nil {
				got = true
				break
			}
			if !errors.Is(c.Error(rd), unix.EINPROGRESS) {
				break
			}
		}
		if got {
			stolen++
			var ev aio.Event
			var err error
			raceWatch(t, "Cancel of a read whose data another reader took", func() { unix.Write(wfd, []byte("release!")) },
				func() { ev, err = c.Cancel(rd) })
			wantCanceled(t, ev, err, rd, fmt.Sprintf("round %d: Cancel after another reader took the data", round))
			continue
		}
		lost++
		wantEvent(t, reapOne(t, c, rd), rd, 1, fmt.Sprintf("round %d: the read that got the byte", round))
	}
	t.Logf("the outside reader took the byte in %d of %d rounds", stolen, stolen+lost)
	var err error
	raceWatch(t, "Destroy", func() { unix.Write(wfd, []byte("release!")) }, func() { err = c.Destroy() })
	if err != nil {
		t.Fatalf("Destroy: %v", err)
	}
}

// raceTTYOutsideReader: raceOutside on a pty slave, the test reading through a
// non-blocking open of the same slave.
func raceTTYOutsideReader(t *testing.T, be string) {
	if be == "uring" {
		t.Skip("known exception (contract §3.11): io_uring reads a terminal in its own worker with a blocking call after readiness; when an outside reader takes the data first, the request blocks in the kernel and Cancel waits for it")
	}
	m, s, sp := racePty(t)
	raceOutside(t, be, s, m, openFD(t, sp, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK))
}

// raceFIFO makes a named pipe and opens it read-write (which never blocks),
// returning the path and the descriptor.
func raceFIFO(t *testing.T) (string, int) {
	t.Helper()
	path := filepath.Join(tempDir(t), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	return path, openFD(t, path, unix.O_RDWR)
}

// raceFIFOTwoFDs: a named pipe refuses RWF_NOWAIT (unlike pipe(2)'s pipes);
// two reads, one on each of two descriptors, one byte written.
func raceFIFOTwoFDs(t *testing.T, be string) {
	var w, r1 int
	raceTwo{
		mk: func(t *testing.T) (a, b *aio.IOCB) {
			path, fd := raceFIFO(t)
			r1, w = fd, fd
			r2 := openFD(t, path, unix.O_RDONLY|unix.O_NONBLOCK)
			if err := unix.SetNonblock(r2, false); err != nil {
				t.Fatal(err)
			}
			a = &aio.IOCB{Op: aio.OpRead, FD: r1, Buf: make([]byte, 8), Data: 1}
			b = &aio.IOCB{Op: aio.OpRead, FD: r2, Buf: make([]byte, 8), Data: 2}
			return a, b
		},
		feed:    func(t *testing.T) { writeFull(t, w, []byte("f")) },
		release: func() { unix.Write(w, []byte("release!")) },
		want:    1,
		after: func(t *testing.T, _ *aio.IOCB) {
			writeFull(t, w, []byte("g"))
			if got := readExactly(t, r1, 1); got[0] != 'g' {
				t.Fatalf("after Destroy a plain read got %q, want \"g\"", got)
			}
		},
	}.run(t, be)
}

// raceFIFOOutsideReader: raceOutside on a named pipe.
func raceFIFOOutsideReader(t *testing.T, be string) {
	path, fd := raceFIFO(t)
	raceOutside(t, be, fd, fd, openFD(t, path, unix.O_RDONLY|unix.O_NONBLOCK))
}

// raceWriteFull: two 4096-byte writes wait on the full pipe or FIFO w; the
// test drains one page, room for one of them. The other must stay
// cancelable, and nothing of it may reach the pipe.
func raceWriteFull(t *testing.T, be string, open func(t *testing.T) (r, w int)) {
	var r int
	var filled int
	raceTwo{
		mk: func(t *testing.T) (a, b *aio.IOCB) {
			var w int
			r, w = open(t)
			filled = fillPipe(t, w)
			a = &aio.IOCB{Op: aio.OpWrite, FD: w, Buf: pattern(4096, 'a'), Data: 1}
			b = &aio.IOCB{Op: aio.OpWrite, FD: w, Buf: pattern(4096, 'b'), Data: 2}
			return a, b
		},
		feed:    func(t *testing.T) { readExactly(t, r, 4096) },
		release: func() { raceDrain(r) },
		want:    4096,
		after: func(t *testing.T, winner *aio.IOCB) {
			got := readExactly(t, r, filled)
			if !bytes.Equal(got[:filled-4096], bytes.Repeat([]byte{'F'}, filled-4096)) {
				t.Fatal("the pipe's first bytes are not the fill's")
			}
			wantBytes(t, got[filled-4096:], winner.Buf, "the winner's bytes at the end of the pipe")
			var b [1]byte
			if n, err := unix.Read(raceNonblock(t, r), b[:]); n > 0 || err != unix.EAGAIN {
				t.Fatalf("after Destroy the pipe holds more (read = %d, %v): the loser wrote", n, err)
			}
		},
	}.run(t, be)
}

// raceDrain reads whatever r holds, without blocking.
func raceDrain(r int) {
	buf := make([]byte, 1<<16)
	for {
		p := []unix.PollFd{{Fd: int32(r), Events: unix.POLLIN}}
		if n, _ := unix.Poll(p, 0); n <= 0 {
			return
		}
		if n, err := unix.Read(r, buf); n <= 0 || err != nil {
			return
		}
	}
}

// raceNonblock is a non-blocking description of the pipe r reads (a FIFO
// reopened, or the pipe's own /proc link), closed with the test.
func raceNonblock(t *testing.T, r int) int {
	t.Helper()
	return openFD(t, fmt.Sprintf("/proc/self/fd/%d", r), unix.O_RDONLY|unix.O_NONBLOCK)
}

// raceFIFOWriteFull: raceWriteFull on a named pipe (no RWF_NOWAIT).
func raceFIFOWriteFull(t *testing.T, be string) {
	raceWriteFull(t, be, func(t *testing.T) (int, int) {
		path, fd := raceFIFO(t)
		w := openFD(t, path, unix.O_WRONLY)
		return fd, w
	})
}

// racePipeWriteFull: raceWriteFull on pipe(2)'s pipe (blocking ends).
func racePipeWriteFull(t *testing.T, be string) {
	raceWriteFull(t, be, func(t *testing.T) (int, int) { return newPipe(t, 0) })
}

// racePipeRead: two reads on one blocking pipe, one byte written.
func racePipeRead(t *testing.T, be string) {
	var r, w int
	raceTwo{
		mk: func(t *testing.T) (a, b *aio.IOCB) {
			r, w = newPipe(t, 0)
			a = &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 1}
			b = &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 2}
			return a, b
		},
		feed:    func(t *testing.T) { writeFull(t, w, []byte("p")) },
		release: func() { unix.Write(w, []byte("release!")) },
		want:    1,
	}.run(t, be)
}

// raceSocketRead: two reads on one end of a blocking stream socket pair.
func raceSocketRead(t *testing.T, be string) {
	var w int
	raceTwo{
		mk: func(t *testing.T) (a, b *aio.IOCB) {
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(sp[0]); unix.Close(sp[1]) })
			w = sp[1]
			a = &aio.IOCB{Op: aio.OpRead, FD: sp[0], Buf: make([]byte, 8), Data: 1}
			b = &aio.IOCB{Op: aio.OpRead, FD: sp[0], Buf: make([]byte, 8), Data: 2}
			return a, b
		},
		feed:    func(t *testing.T) { writeFull(t, w, []byte("k")) },
		release: func() { unix.Write(w, []byte("release!")) },
		want:    1,
	}.run(t, be)
}

// raceEventfdWriteRoom: an eventfd write blocks while its value does not fit
// under the counter's maximum (0xfffffffffffffffe), and eventfd writes refuse
// RWF_NOWAIT. The counter is filled; writes of 3 and of max-2 wait; the test
// reads the counter (to 0), which makes both writable, but only one fits.
// The other must stay cancelable, and the counter must hold only the
// winner's value.
func raceEventfdWriteRoom(t *testing.T, be string) {
	const max = 0xfffffffffffffffe
	var efd int
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	raceTwo{
		mk: func(t *testing.T) (a, b *aio.IOCB) {
			fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC) // blocking, as a caller's may be
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			efd = fd
			writeFull(t, efd, u64(max))
			a = &aio.IOCB{Op: aio.OpWrite, FD: efd, Buf: u64(3), Data: 1}
			b = &aio.IOCB{Op: aio.OpWrite, FD: efd, Buf: u64(max - 2), Data: 2}
			return a, b
		},
		feed: func(t *testing.T) {
			if v := binary.NativeEndian.Uint64(readExactly(t, efd, 8)); v != max {
				t.Fatalf("eventfd counter = %#x, want %#x", v, uint64(max))
			}
		},
		release: func() {
			var b [8]byte
			unix.Read(efd, b[:])
		},
		want: 8,
		after: func(t *testing.T, winner *aio.IOCB) {
			got := binary.NativeEndian.Uint64(readExactly(t, efd, 8))
			if want := binary.NativeEndian.Uint64(winner.Buf); got != want {
				t.Fatalf("eventfd counter = %#x, want the winner's %#x alone", got, want)
			}
		},
	}.run(t, be)
}

// raceCallerFlagsUntouched: whatever the library does to wait for data
// without blocking, the caller's open file keeps its flags: O_NONBLOCK belongs
// to the open file description, which the caller shares with others.
func raceCallerFlagsUntouched(t *testing.T, be string) {
	m, s, _ := racePty(t)
	_, fifo := raceFIFO(t)
	c := newContext(t, be, 8)
	fl := func(fd int) int {
		v, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := []int{fl(m), fl(s), fl(fifo)}
	var cbs []*aio.IOCB
	for i, fd := range []int{m, s, fifo, s} {
		cbs = append(cbs, &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 8), Data: uint64(i)})
	}
	submitWithin(t, c, eventWait, cbs...)
	expectNoEvents(t, c)
	writeFull(t, m, []byte("1"))
	writeFull(t, s, []byte("2"))
	writeFull(t, fifo, []byte("3"))
	reapN(t, c, 3)
	if after := []int{fl(m), fl(s), fl(fifo)}; fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("file status flags changed: %#x -> %#x", before, after)
	}
	var err error
	raceWatch(t, "Destroy", func() { unix.Write(m, []byte("release!")) }, func() { err = c.Destroy() })
	if err != nil {
		t.Fatal(err)
	}
	if after := []int{fl(m), fl(s), fl(fifo)}; fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("file status flags changed: %#x -> %#x", before, after)
	}
}

// shortEMFILEMidFile: the second reproduction. A 256 KiB read at
// offset 0 of a 1 MiB file whose first page alone is cached, made while no
// descriptor is left (RLIMIT_NOFILE lowered to the lowest free number),
// through Submit, Do and ReadAt in turn.
// The result is all of it or -EMFILE: never a short count, which a Submit
// user reads as the end of the file (§3.8).
func shortEMFILEMidFile(t *testing.T, be string) {
	const size, n = 1 << 20, 256 << 10
	data := pattern(size, 5)
	fd := tempFD(t, data)
	c := newContext(t, be, 4)
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 9; round++ {
		contractDropCache(t, fd, 0, 4096)
		rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, n), Data: uint64(round)}
		probe, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(probe)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(probe), Max: orig.Max}); err != nil {
			t.Fatal(err)
		}
		var ev aio.Event
		var subN int
		var subErr error
		via := [...]string{"Submit", "Do", "ReadAt"}[round%3]
		var rn int
		switch via {
		case "Submit":
			subN, subErr = c.Submit(rd)
		case "Do":
			ev, subErr = c.Do(context.Background(), rd)
			subN = 1
		case "ReadAt":
			rn, subErr = c.ReadAt(context.Background(), fd, rd.Buf, 0)
			subN = 1
		}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
			t.Fatal(err)
		}
		switch via {
		case "Submit":
			if subN != 1 || subErr != nil {
				t.Fatalf("Submit = %d, %v", subN, subErr)
			}
			ev = reapOne(t, c, rd)
		case "Do":
			if subErr != nil && !errors.Is(subErr, unix.EMFILE) {
				t.Fatalf("Do: %v", subErr)
			}
		case "ReadAt":
			// io.ReaderAt: fewer bytes than asked come with an error
			// that says why, never alone.
			switch {
			case rn == n && subErr == nil:
				wantBytes(t, rd.Buf, data[:n], "ReadAt")
			case errors.Is(subErr, unix.EMFILE):
			default:
				t.Fatalf("round %d: ReadAt = %d, %v; want %d, nil or an EMFILE error", round, rn, subErr, n)
			}
			continue
		}
		switch ev.Res {
		case n:
			wantBytes(t, rd.Buf, data[:n], "the read")
		case -int64(unix.EMFILE):
		default:
			t.Fatalf("round %d via %s: Res = %s; want %d or -EMFILE (a short count mid-file reads as the end of the file)", round, via, fmtRes(ev.Res), n)
		}
	}
}

// shortProcSysfs: /proc and sysfs files refuse RWF_NOWAIT and classic AIO
// (no read_iter on some); each backend must return what pread(2) returns for
// the same offset and length, never less: whatever the mechanism, a short
// count must be the file's own.
func shortProcSysfs(t *testing.T, be string) {
	c := newContext(t, be, 4)
	for _, path := range []string{"/proc/self/cmdline", "/proc/version", "/proc/cpuinfo", "/proc/filesystems",
		"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/devices/system/cpu/online"} {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Logf("%s: %v (left out)", path, err)
			continue
		}
		for _, size := range []int{1, 7, 4096, 64 << 10} {
			want := make([]byte, size)
			wn, werr := unix.Pread(fd, want, 0)
			rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, size), Data: 1}
			mustSubmit(t, c, rd)
			ev := reapOne(t, c, rd)
			if werr != nil {
				t.Fatalf("pread %s: %v", path, werr)
			}
			if ev.Res != int64(wn) {
				t.Fatalf("%s: read of %d at 0 = %s, pread = %d", path, size, fmtRes(ev.Res), wn)
			}
			wantBytes(t, rd.Buf[:wn], want[:wn], path)
		}
		unix.Close(fd)
	}
}
