//go:build unix

package aio

import (
	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/backend"
)

// What aio needs from the system beyond package syscall, on Unix (sys_other.go
// elsewhere, where Setup always fails and these are never reached).

// iovec is struct iovec, the array a vectored request's Bufs become.
type iovec = unix.Iovec

// pollAlways are the conditions poll(2) reports whether asked for or not.
const pollAlways = unix.POLLERR | unix.POLLHUP | unix.POLLNVAL

// fdOpen reports whether fd is an open descriptor: fcntl(F_GETFD) fails with
// EBADF otherwise.
func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// fileFlags reads fd's status flags (fcntl(F_GETFL)): whether writes append
// (O_APPEND) and whether I/O bypasses the page cache (O_DIRECT, oDirect in
// inline_linux.go; 0 where there is no inline path). ok is false when fcntl
// fails.
// fileHint is backend.Req.Hint for a File's requests on fd: held (the File
// holds the descriptor through RawConn.Control for each request's life),
// and its kind (none for a directory or when fstat fails: the backend then
// looks for itself).
func fileHint(fd uintptr) uint8 {
	var st unix.Stat_t
	if unix.Fstat(int(fd), &st) != nil {
		return backend.HintHeld
	}
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFBLK:
		if _, direct, ok := fileFlags(fd); !ok || direct {
			return backend.HintHeld | backend.HintStorage | backend.HintDirect
		}
		return backend.HintHeld | backend.HintStorage
	case unix.S_IFDIR:
		return backend.HintHeld
	}
	return backend.HintHeld | backend.HintStream
}

func fileFlags(fd uintptr) (appendMode, direct, ok bool) {
	fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		return false, false, false
	}
	return fl&unix.O_APPEND != 0, fl&oDirect != 0, true
}

// storageFile reports whether fd is a regular file or a block device (whose
// reads and writes wait for storage, not for readiness), and whether it is
// O_DIRECT: fstat and fcntl(F_GETFL), for a raw descriptor whose transfer the
// caller is about to make with a blocking call (caller.go).
func storageFile(fd int) (storage, direct bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false, false
	}
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFBLK:
	default:
		return false, false
	}
	_, direct, ok := fileFlags(uintptr(fd))
	return ok, direct
}

// syncCall is fsync(2), or fdatasync(2) when data, of fd: the call the
// threads pool's worker makes (backend.SyncFD), here on the caller's
// goroutine (caller_sync.go). The result is 0 or a negated errno.
func syncCall(fd int, data bool) int64 { return backend.SyncFD(fd, data) }
