//go:build unix

package backend

import "golang.org/x/sys/unix"

// tryFlags is threads' Submit for a transfer with RWF_* flags (rwflags.go)
// on a regular file or block device (waits false), or with RWF_NOWAIT on any
// file:
//   - RWF_NOWAIT: one preadv2(2)/pwritev2(2) with the caller's flags, here,
//     since it cannot block; what it answers (-EAGAIN, a short count, data)
//     is the request's result, as io_uring and classic AIO give it.
//   - otherwise the whole transfer goes to a worker, whose preadv2/pwritev2
//     carries the flags (runOp). No RWF_NOWAIT try of the page cache first:
//     an RWF_DSYNC or RWF_APPEND write must be one call, and a write under
//     RWF_SYNC waits for the disk anyway.
//
// Without preadv2 (outside Linux) the flags cannot be passed: EOPNOTSUPP.
func tryFlags(r *Req, waits bool) (how uint8, res int64, done bool) {
	if !haveNowait {
		return 0, -int64(unix.EOPNOTSUPP), true
	}
	if !r.Nowait() {
		return poolRun, 0, false
	}
	b := reqBufs(r, 0)
	if waits {
		return 0, rwCur(isWrite(r.Op), int(r.FD), &b, false, r.RWFlags), true
	}
	return 0, rwAt(isWrite(r.Op), int(r.FD), &b, r.Off, r.RWFlags), true
}
