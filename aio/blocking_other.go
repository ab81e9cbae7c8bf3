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
