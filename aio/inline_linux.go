package aio

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// oDirect is O_DIRECT: such a file is never tried inline (see NewFile).
const oDirect = unix.O_DIRECT

// inlineRW moves p at off on the calling goroutine without waiting:
// preadv2(2)/pwritev2(2) with RWF_NOWAIT. Data in the page cache is copied at
// the cost of pread(2); anything that would wait (uncached data, a lock, a
// buffered write ext4 will not do under RWF_NOWAIT) comes back EAGAIN having
// moved nothing, or as a short count that stops at the first page that would
// wait. A file without an offset (pipe, socket) answers ESPIPE; one that
// cannot honour RWF_NOWAIT, EOPNOTSUPP.
//
// p is passed to the kernel only for the duration of the call: the iovec and
// the slice stay alive and in place for it (the conversion sits in the call
// expression).
func inlineRW(write bool, fd int, p []byte, off int64) (int, unix.Errno) {
	nr := uintptr(unix.SYS_PREADV2)
	if write {
		nr = unix.SYS_PWRITEV2
	}
	iov := oneIovec(p)
	for {
		n, _, e := unix.Syscall6(nr, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1,
			uintptr(off), uintptr(off>>32), unix.RWF_NOWAIT)
		if e == unix.EINTR {
			continue
		}
		return int(n), e
	}
}

// plainPwrite is pwrite(2), retried on EINTR.
func plainPwrite(fd int, p []byte, off int64) (int, unix.Errno) {
	for {
		n, err := unix.Pwrite(fd, p, off)
		if err == nil {
			return n, 0
		}
		if err != unix.EINTR {
			return 0, err.(unix.Errno)
		}
	}
}

// hotReads: a file whose reads keep finding their data in the page cache is
// read with hotPread. Only where pread64 takes its offset in one register
// (64-bit); elsewhere such reads keep their RWF_NOWAIT try.
const hotReads = unsafe.Sizeof(uintptr(0)) == 8

// hotPread is pread(2) made without giving up the P (RawSyscall): for data
// in the page cache it returns in about a microsecond, and it saves the
// scheduler's work around a system call. Holding the P is also the bound
// on such reads: at most GOMAXPROCS run at once, so a file that has gone
// cold while marked hot holds at most that many threads in the kernel (and
// stalls those Ps for one disk read each until a sampled try notices; see
// caller.go). Reads of regular files do not return EINTR.
func hotPread(fd int, p []byte, off int64) (int, unix.Errno) {
	var base unsafe.Pointer
	if len(p) > 0 {
		base = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(base), uintptr(len(p)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// blockingRW is a transfer that may wait for the device, made on the caller
// (caller.go: blocking) the way every Go system call is made: it gives up its
// P while it waits. It is preadv2(2)/pwritev2(2) with one iovec and no flags
// (preadv/pwritev where the kernel has no preadv2) rather than pread/pwrite
// so that it can be told apart, in /proc/self/task/*/syscall, from a hot read
// (pread64, which keeps its P), an RWF_NOWAIT try (preadv2 with flags) and a
// pool worker's call (preadv): the compat suite counts each kind's threads
// against its own bound. Retried on EINTR.
func blockingRW(write bool, fd int, p []byte, off int64) (int, unix.Errno) {
	return blockingRWFlags(write, fd, p, off, 0)
}

// blockingRWFlags is blockingRW carrying RWF_* flags (an RWF_DSYNC write of
// Do's, caller_sync.go), as the pool's worker's preadv2/pwritev2 carries
// them. With flags it never falls back to preadv/pwritev, which cannot carry
// them: ENOSYS is the answer then.
func blockingRWFlags(write bool, fd int, p []byte, off int64, flags int) (int, unix.Errno) {
	nr, old := uintptr(unix.SYS_PREADV2), uintptr(unix.SYS_PREADV)
	if write {
		nr, old = unix.SYS_PWRITEV2, unix.SYS_PWRITEV
	}
	iov := oneIovec(p)
	for {
		n, _, e := unix.Syscall6(nr, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1,
			uintptr(off), uintptr(off>>32), uintptr(flags))
		switch e {
		case 0:
			return int(n), 0
		case unix.EINTR:
			continue
		case unix.ENOSYS:
			if nr != old && flags == 0 {
				nr = old
				continue
			}
		}
		return 0, e
	}
}

// oneIovec is the iovec of p (empty for an empty p).
func oneIovec(p []byte) unix.Iovec {
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
	}
	return iov
}
