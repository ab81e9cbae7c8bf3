package backend

// The pool's system calls on Linux. Memory: every buffer address comes from a
// Req, whose memory the caller keeps pinned until the request's completion;
// the iovec arrays built in Go (bufs.own) are passed as uintptr inside the
// call expression, which keeps them alive and in place for the call. No
// address outlives a call.
//
// Positioned transfers use preadv(2)/pwritev(2) even for one buffer: their
// offset travels as two register-sized halves (pos_l, pos_h), so the same
// call is right on every architecture, where pread64's 64-bit argument is
// padded differently on arm and mips o32. Transfers at the current position
// use preadv2(2)/pwritev2(2) with offset -1, which is what takes RWF_NOWAIT.
// (pool_unsafe.go reads the caller's iovecs; this file only passes addresses.)

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// haveNowait: preadv2/pwritev2 with RWF_NOWAIT exist (Linux 4.14; pipes
// honour it since 5.8). A file that refuses it says EOPNOTSUPP.
const haveNowait = true

func fdatasync(fd int) error { return unix.Fdatasync(fd) }

// halfLong is half a register's bits: pos_h is shifted by it twice, so it is
// 0 on 64-bit systems (where pos_l holds the whole offset) and the high word
// on 32-bit ones, as the kernel's pos_from_hilo expects.
const halfLong = 4 * unsafe.Sizeof(uintptr(0))

func offHiLo(off int64) (lo, hi uintptr) {
	return uintptr(off), uintptr(uint64(off) >> halfLong >> halfLong)
}

// rwAt is preadv(2)/pwritev(2) at off; preadv2(2)/pwritev2(2) when the
// request has RWF_* flags (rwflags.go).
func rwAt(write bool, fd int, b *bufs, off int64, flags int32) int64 {
	nr := uintptr(unix.SYS_PREADV)
	if write {
		nr = unix.SYS_PWRITEV
	}
	if flags != 0 {
		nr = uintptr(unix.SYS_PREADV2)
		if write {
			nr = unix.SYS_PWRITEV2
		}
	}
	lo, hi := offHiLo(off)
	return rwv(nr, fd, b, lo, hi, int(flags))
}

// rwAtNowait is preadv2(2)/pwritev2(2) at off with RWF_NOWAIT: what the page
// cache has, without waiting (-EAGAIN, or a short count, where it would).
func rwAtNowait(write bool, fd int, b *bufs, off int64) int64 {
	nr := uintptr(unix.SYS_PREADV2)
	if write {
		nr = unix.SYS_PWRITEV2
	}
	lo, hi := offHiLo(off)
	return rwv(nr, fd, b, lo, hi, unix.RWF_NOWAIT)
}

// isDirect reports whether fd was opened O_DIRECT: a transfer on it waits for
// the device even under RWF_NOWAIT, so it is never tried at Submit.
func isDirect(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err != nil || fl&unix.O_DIRECT != 0
}

// rwCur is preadv2(2)/pwritev2(2) at the current position (offset -1), with
// the request's RWF_* flags, and RWF_NOWAIT when nowait.
func rwCur(write bool, fd int, b *bufs, nowait bool, rwFlags int32) int64 {
	nr := uintptr(unix.SYS_PREADV2)
	if write {
		nr = unix.SYS_PWRITEV2
	}
	flags := int(rwFlags)
	if nowait {
		flags |= unix.RWF_NOWAIT
	}
	lo, hi := offHiLo(-1)
	return rwv(nr, fd, b, lo, hi, flags)
}

// rwv makes the call, retrying EINTR, and returns the count or a negated
// errno.
func rwv(nr uintptr, fd int, b *bufs, lo, hi uintptr, flags int) int64 {
	for {
		var r uintptr
		var e unix.Errno
		if len(b.own) > 0 {
			r, _, e = unix.Syscall6(nr, uintptr(fd), uintptr(unsafe.Pointer(&b.own[0])), uintptr(len(b.own)), lo, hi, uintptr(flags))
		} else {
			r, _, e = unix.Syscall6(nr, uintptr(fd), uintptr(b.addr), uintptr(b.n), lo, hi, uintptr(flags))
		}
		switch e {
		case 0:
			return int64(r)
		case unix.EINTR:
			continue
		}
		return -int64(e)
	}
}
