//go:build linux

package uringaio_test

// Per-request flags, IOCB.RWFlags (docs/contract.md §1.8, §3.2): refused
// bits, and the effect of each flag the kernel takes, checked on the file
// itself (dirty pages by cachestat(2), the size and the bytes where they
// landed), through Submit and GetEvents and through Do, on every backend.

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("rwflags/refusals", rwflagsRefusals)
	registerCompat("rwflags/dsync", rwflagsDsync)
	registerCompat("rwflags/append", rwflagsAppend)
	registerCompat("rwflags/nowait-cold-read", rwflagsNowaitColdRead)
	registerCompat("rwflags/nowait-buffered-write", rwflagsNowaitWrite)
	registerCompat("rwflags/hipri", rwflagsHipri)
}

// rwflagsRefusals: an RWF_ bit outside the five, and any flag on an Op that
// is not a read or write, are refused with EINVAL by Submit and Do (§3.2),
// and nothing of the request happens.
func rwflagsRefusals(t *testing.T, be string) {
	fd := tempFD(t, pattern(4096, 1))
	c := newContext(t, be, 4)
	for _, bad := range []int{0x20, 0x40, 1 << 30, -1, unix.RWF_DSYNC | 0x80} {
		opsRefused(t, c, &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: make([]byte, 10), RWFlags: bad}, "write with RWFlags "+fmtRes(int64(bad)))
	}
	for _, op := range []aio.Op{aio.OpFdsync, aio.OpFsync, aio.OpNop, aio.OpPoll, aio.OpFadvise} {
		cb := &aio.IOCB{Op: op, FD: fd, RWFlags: unix.RWF_DSYNC}
		if op == aio.OpPoll {
			cb.PollEvents = unix.POLLIN
		}
		opsRefused(t, c, cb, op.String()+" with RWF_DSYNC")
	}
	wantBytes(t, preadAll(t, fd, 8192, 0), pattern(4096, 1), "file after the refusals")
}

// rwflagsDsync: a buffered write with RWF_DSYNC leaves no dirty page behind
// when its event arrives (its data is on the disk); the same write without
// the flag, just before, leaves its pages dirty, so the check can fail.
func rwflagsDsync(t *testing.T, be string) {
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	data := pattern(64<<10, 7)
	for i, via := range opsVia {
		off := int64(i) * 1 << 20
		plain := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: data, Offset: off + 512<<10}
		opsWant(t, c, via, plain, int64(len(data)), "plain write")
		cb := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: data, Offset: off, RWFlags: unix.RWF_DSYNC}
		opsWant(t, c, via, cb, int64(len(data)), "RWF_DSYNC write")
		if cs, ok := opsPages(t, fd, uint64(off), uint64(len(data))); ok {
			if cs.Dirty != 0 || cs.Writeback != 0 {
				t.Fatalf("%s: after an RWF_DSYNC write, %d dirty and %d writeback pages in its range", via, cs.Dirty, cs.Writeback)
			}
			if ps, _ := opsPages(t, fd, uint64(off+512<<10), uint64(len(data))); ps.Dirty == 0 {
				t.Logf("%s: the plain write's pages were already clean (flusher); the control shows nothing this time", via)
			}
		}
		wantBytes(t, preadAll(t, fd, len(data), off), data, via+": data of the RWF_DSYNC write")
		// RWF_SYNC too, vectored.
		cb = &aio.IOCB{Op: aio.OpWritev, FD: fd, Bufs: [][]byte{data[:4096], data[4096:8192]}, Offset: off + 256<<10, RWFlags: unix.RWF_SYNC}
		opsWant(t, c, via, cb, 8192, "RWF_SYNC writev")
		if cs, ok := opsPages(t, fd, uint64(off+256<<10), 8192); ok && (cs.Dirty != 0 || cs.Writeback != 0) {
			t.Fatalf("%s: after an RWF_SYNC writev, %d dirty pages in its range", via, cs.Dirty)
		}
	}
}

// rwflagsAppend: RWF_APPEND on a descriptor not opened O_APPEND writes at
// the end of the file whatever Offset says, and leaves the bytes at Offset
// alone.
func rwflagsAppend(t *testing.T, be string) {
	orig := pattern(10000, 2)
	fd := tempFD(t, orig)
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_APPEND != 0 {
		t.Fatalf("test file opened O_APPEND")
	}
	c := newContext(t, be, 4)
	want := append([]byte(nil), orig...)
	for i, via := range opsVia {
		add := pattern(3000+i, byte(20+i))
		cb := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: add, Offset: 0, RWFlags: unix.RWF_APPEND}
		opsWant(t, c, via, cb, int64(len(add)), "RWF_APPEND write at offset 0")
		want = append(want, add...)
		if size := opsStat(t, fd).Size; size != int64(len(want)) {
			t.Fatalf("%s: size %d after RWF_APPEND, want %d", via, size, len(want))
		}
		wantBytes(t, preadAll(t, fd, len(want)+10, 0), want, via+": file after RWF_APPEND")
	}
}

// rwflagsNowaitColdRead: RWF_NOWAIT on a read of data not in the page cache
// ends at once: -EAGAIN (nothing moved), or the bytes that were cached
// (readahead may have brought some), never a wait for the disk and never a
// different answer per backend. A cached read under RWF_NOWAIT moves it all.
func rwflagsNowaitColdRead(t *testing.T, be string) {
	data := pattern(1<<20, 5)
	fd := tempFD(t, data)
	c := newContext(t, be, 4)
	for i, via := range opsVia {
		if err := unix.Fdatasync(fd); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		off := int64(256<<10 + i*(128<<10))
		// Nothing of the range cached (cachestat says so): then nothing can
		// be read without waiting, and the answer must be -EAGAIN.
		cs, ok := opsPages(t, fd, uint64(off), uint64(len(buf)))
		cold := ok && cs.Cache == 0
		cb := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: buf, Offset: off, RWFlags: unix.RWF_NOWAIT}
		res := opsRun(t, c, via, cb)
		switch {
		case cold && res != -int64(unix.EAGAIN):
			t.Fatalf("%s: RWF_NOWAIT read of a range with no page cached: Res %s, want -EAGAIN", via, fmtRes(res))
		case res == -int64(unix.EAGAIN):
		case res > 0 && res <= int64(len(buf)):
			if !bytes.Equal(buf[:res], data[off:off+res]) {
				t.Fatalf("%s: RWF_NOWAIT read returned %d bytes that are not the file's", via, res)
			}
		default:
			t.Fatalf("%s: RWF_NOWAIT read of uncached data: Res %s, want -EAGAIN or bytes", via, fmtRes(res))
		}
		// Cached now (a plain read brings it in): all of it.
		preadAll(t, fd, len(buf), off)
		clear(buf)
		opsWant(t, c, via, cb, int64(len(buf)), "RWF_NOWAIT read of cached data")
		wantBytes(t, buf, data[off:off+int64(len(buf))], via+": cached RWF_NOWAIT read")
	}
}

// rwflagsNowaitWrite: RWF_NOWAIT on a buffered write ends with the same
// answer on every backend: the bytes written where the file system takes
// such writes, -EAGAIN where it cannot without waiting (ext4 refuses every
// one: pwritev2 says EOPNOTSUPP, io_uring EAGAIN; the library says EAGAIN,
// §1.8). The file is unchanged when it says EAGAIN.
func rwflagsNowaitWrite(t *testing.T, be string) {
	orig := pattern(8192, 3)
	fd := tempFD(t, orig)
	c := newContext(t, be, 4)
	add := pattern(4096, 9)
	// What the kernel says through pwritev2, to know which of the two to
	// expect here.
	_, kerr := unix.Pwritev2(fd, [][]byte{orig[:4096]}, 0, unix.RWF_NOWAIT)
	for _, via := range opsVia {
		cb := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: add, Offset: 4096, RWFlags: unix.RWF_NOWAIT}
		res := opsRun(t, c, via, cb)
		switch {
		case kerr == nil && res == int64(len(add)):
			wantBytes(t, preadAll(t, fd, 8192, 0)[4096:], add, via+": RWF_NOWAIT write")
		case kerr != nil && res == -int64(unix.EAGAIN):
			wantBytes(t, preadAll(t, fd, 8192, 0), orig, via+": file after a refused RWF_NOWAIT write")
		default:
			t.Fatalf("%s: RWF_NOWAIT buffered write: Res %s (pwritev2 says %v); want the count or -EAGAIN", via, fmtRes(res), kerr)
		}
	}
}

// rwflagsHipri: RWF_HIPRI on buffered I/O, where there is nothing to poll,
// moves the data as without it, on every backend (io_uring would refuse it
// on a ring without IOPOLL; the library drops it there, as classic AIO
// does, §1.8).
func rwflagsHipri(t *testing.T, be string) {
	data := pattern(8192, 4)
	fd := tempFD(t, data)
	c := newContext(t, be, 4)
	for _, via := range opsVia {
		buf := make([]byte, 4096)
		opsWant(t, c, via, &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: buf, Offset: 4096, RWFlags: unix.RWF_HIPRI}, 4096, "RWF_HIPRI read")
		wantBytes(t, buf, data[4096:], via+": RWF_HIPRI read")
		w := pattern(4096, 11)
		opsWant(t, c, via, &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: w, RWFlags: unix.RWF_HIPRI}, 4096, "RWF_HIPRI write")
		wantBytes(t, preadAll(t, fd, 4096, 0), w, via+": RWF_HIPRI write")
	}
}
