//go:build unix && !linux

package backend

import "golang.org/x/sys/unix"

// runRange: sync_file_range(2) and fallocate(2) are Linux system calls, and
// IOCB.Flags holds Linux's values (SYNC_FILE_RANGE_*, FALLOC_FL_*, Linux's
// POSIX_FADV_* numbers), which another kernel's nearest call (F_PREALLOCATE,
// posix_fallocate, posix_fadvise) would read differently or not at all. So on
// the other Unix systems every range operation ends with ENOSYS, the errno a
// C library gives for a call the system does not have; the request was
// accepted and its event carries it, like any per-request failure.
func runRange(*Req, int) int64 { return -int64(unix.ENOSYS) }
