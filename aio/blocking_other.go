//go:build unix && !linux

package aio

import "syscall"

// blockingRW is pread(2) or pwrite(2), retried on EINTR: a transfer that may
// wait for the device, made on the caller (caller.go: blocking) the way every
// Go system call is made, giving up its P while it waits.
func blockingRW(write bool, fd int, p []byte, off int64) (int, syscall.Errno) {
	for {
		var (
			n   int
			err error
		)
		if write {
			n, err = syscall.Pwrite(fd, p, off)
		} else {
			n, err = syscall.Pread(fd, p, off)
		}
		switch {
		case err == nil:
			return n, 0
		case err != syscall.EINTR:
			e, _ := err.(syscall.Errno)
			if e == 0 {
				e = syscall.EIO
			}
			return 0, e
		}
	}
}

// blockingRWFlags: without pwritev2 no flag can be carried (EOPNOTSUPP, as
// the threads pool answers a flagged request here); never reached with
// flags, since Do makes flagged writes on the caller only on Linux.
func blockingRWFlags(write bool, fd int, p []byte, off int64, flags int) (int, syscall.Errno) {
	if flags != 0 {
		return 0, syscall.EOPNOTSUPP
	}
	return blockingRW(write, fd, p, off)
}
