//go:build unix && !linux

package backend

// The pool's system calls outside Linux, through golang.org/x/sys/unix's
// portable wrappers (on Darwin raw system call numbers are not a stable
// interface; libc is). There is no RWF_NOWAIT: every transfer after readiness
// is made plainly on a worker (haveNowait is false, so the poller never
// transfers and Submit never tries). Vectors are moved one iovec at a time,
// stopping at the first short count: the same bytes preadv would move, though
// not as one atomic call.

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const haveNowait = false

// wakePipe is the poller's wake-up: a non-blocking pipe. pipe(2) then
// FD_CLOEXEC under ForkLock, as package os does where pipe2 is missing.
func wakePipe() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = unix.Pipe(p[:])
	if err == nil {
		unix.CloseOnExec(p[0])
		unix.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, os.NewSyscallError("pipe", err)
	}
	for _, fd := range p {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			return -1, -1, os.NewSyscallError("fcntl", err)
		}
	}
	return p[0], p[1], nil
}

// fdatasync is fsync(2): x/sys/unix has no fdatasync on these systems, and
// fsync flushes what fdatasync would and the metadata besides.
func fdatasync(fd int) error { return unix.Fsync(fd) }

// rwAt is pread(2)/pwrite(2) per iovec at off. RWF_* flags (rwflags.go)
// are Linux's: a request with any ends with EOPNOTSUPP here.
func rwAt(write bool, fd int, b *bufs, off int64, flags int32) int64 {
	if flags != 0 {
		return -int64(unix.EOPNOTSUPP)
	}
	return eachIovec(b, func(p []byte, done int64) (int, error) {
		if write {
			return unix.Pwrite(fd, p, off+done)
		}
		return unix.Pread(fd, p, off+done)
	})
}

// rwCur is read(2)/write(2) per iovec at the current position. nowait is
// never set here (haveNowait is false); RWF_* flags end with EOPNOTSUPP.
func rwCur(write bool, fd int, b *bufs, nowait bool, flags int32) int64 {
	if flags != 0 {
		return -int64(unix.EOPNOTSUPP)
	}
	return eachIovec(b, func(p []byte, _ int64) (int, error) {
		if write {
			return unix.Write(fd, p)
		}
		return unix.Read(fd, p)
	})
}

// eachIovec calls f for each iovec of b until one is short or fails,
// retrying EINTR, and returns the total or, when nothing moved, the negated
// errno.
func eachIovec(b *bufs, f func(p []byte, done int64) (int, error)) int64 {
	iov := b.own
	if len(iov) == 0 {
		iov = readIovecs(b.addr, b.n)
	}
	var done int64
	for _, v := range iov {
		p := bytesAt(v.base, v.len)
		n, err := f(p, done)
		if err == unix.EINTR {
			n, err = retryEINTR(p, done, f)
		}
		if err != nil {
			if done > 0 {
				return done
			}
			return errnoRes(err)
		}
		done += int64(n)
		if n < len(p) {
			break
		}
	}
	return done
}

func retryEINTR(p []byte, done int64, f func(p []byte, done int64) (int, error)) (int, error) {
	for {
		n, err := f(p, done)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// bytesAt is the n bytes at addr (memory the caller keeps pinned; see
// pool_unsafe.go), for one system call.
func bytesAt(addr, n uintptr) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(memAt(addr)), n)
}

// rwAtNowait: no RWF_NOWAIT here (haveNowait is false); never called.
func rwAtNowait(write bool, fd int, b *bufs, off int64) int64 { return -int64(unix.EOPNOTSUPP) }

// isDirect: without RWF_NOWAIT nothing is tried at Submit.
func isDirect(fd int) bool { return true }
