package backend

import "golang.org/x/sys/unix"

// runRange is a range operation's blocking system call on fd, as a pool worker
// makes it: sync_file_range(2), fallocate(2) or posix_fadvise(2) (the
// fadvise64 family), with r.Off, r.RangeLen() and r.RangeArg() passed as the
// kernel takes them, retrying EINTR. It returns 0 or the negated errno, which
// is what the kernel's own io_uring commands (io_sync_file_range,
// io_fallocate, io_fadvise) report for the same arguments: they call the same
// kernel functions (sync_file_range, vfs_fallocate, vfs_fadvise).
func runRange(r *Req, fd int) int64 {
	off, n, arg := r.Off, r.RangeLen(), r.RangeArg()
	switch r.Op {
	case OpSyncFileRange:
		return retryErr(func() error { return unix.SyncFileRange(fd, off, n, int(arg)) })
	case OpFallocate:
		return retryErr(func() error { return unix.Fallocate(fd, arg, off, n) })
	case OpFadvise:
		// The advice is an int in the kernel; io_uring's u32 field reaches
		// vfs_fadvise with the same bits, so an unknown value is EINVAL on
		// both paths.
		return retryErr(func() error { return unix.Fadvise(fd, off, n, int(int32(arg))) })
	}
	return -int64(unix.EINVAL)
}
