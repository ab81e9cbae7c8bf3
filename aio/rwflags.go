package aio

import (
	"runtime"
	"syscall"

	"github.com/uringaio/uringaio/internal/backend"
)

// Per-request flags, IOCB.RWFlags (docs/contract.md §1.8): what Submit
// refuses, before any backend sees them. Every backend passes the rest to
// its kernel as they are: io_uring's rw_flags, classic AIO's aio_rw_flags,
// preadv2(2)/pwritev2(2) on the threads backend and in the pool. A request
// with flags never moves its data on the caller's goroutine (§8.5): Do
// hands it to the backend.

var (
	errSubmitRWFlags   = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "RWFlags has bits outside RWF_HIPRI|DSYNC|SYNC|NOWAIT|APPEND"}
	errSubmitRWFlagsOp = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "RWFlags set for an Op that is not a read or write"}
)

// checkRWFlags refuses an unknown RWF_* bit (the kernels would each answer
// differently: preadv2 EOPNOTSUPP, io_uring and classic AIO EINVAL or
// EOPNOTSUPP depending on the bit) and flags on an Op that is not a
// transfer (room kept, as for Len and Flags).
func checkRWFlags(cb *IOCB) error {
	if cb.RWFlags == 0 {
		return nil
	}
	if cb.RWFlags&^backend.RWFKnown != 0 {
		return errSubmitRWFlags
	}
	switch cb.Op {
	case OpRead, OpWrite, OpReadv, OpWritev:
		return nil
	}
	return errSubmitRWFlagsOp
}

// rwResult makes a flagged request's result the same on every backend.
// RWF_NOWAIT on a file that cannot honour it without waiting (ext4 refuses
// it on every buffered write, a file without FMODE_NOWAIT on every transfer)
// is -EOPNOTSUPP from preadv2/pwritev2 and classic AIO, and -EAGAIN from
// io_uring, which turns the one into the other (io_write). The library
// answers -EAGAIN everywhere: it is what a caller of RWF_NOWAIT must handle
// anyway (do it without the flag). Off Linux a flagged request ends with
// -EOPNOTSUPP (no preadv2), which stays.
func rwResult(cb *IOCB, res int64) int64 {
	if rwfLinux && res == -int64(syscall.EOPNOTSUPP) && cb.RWFlags&backend.RWFNowait != 0 {
		return -int64(syscall.EAGAIN)
	}
	return res
}

const rwfLinux = runtime.GOOS == "linux"
