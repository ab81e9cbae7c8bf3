//go:build !unix

package aio

import "syscall"

// Off Unix no backend runs (Setup returns an error matching ErrNotSupported),
// so no Context exists to reach these; they keep the package building with
// the same API everywhere.

// iovec has struct iovec's shape: a base pointer and a size_t length.
type iovec struct {
	Base *byte
	Len  uintptr
}

// SetLen sets the length, as unix.Iovec's method does.
func (v *iovec) SetLen(n int) { v.Len = uintptr(n) }

// pollAlways is POLLERR|POLLHUP|POLLNVAL with the values every Unix gives them.
const pollAlways = 0x8 | 0x10 | 0x20

// fdOpen cannot check a descriptor here; with no Context it is never asked.
func fdOpen(int) bool { return true }

// fileFlags: there are no descriptor status flags to read here.
func fileFlags(uintptr) (appendMode, direct, ok bool) { return false, false, false }

// fileHint: nothing is known here.
func fileHint(uintptr) uint8 { return 0 }

// storageFile: nothing is known here.
func storageFile(int) (storage, direct bool) { return false, false }

// blockingRW is never reached without a Context.
func blockingRW(bool, int, []byte, int64) (int, syscall.Errno) { return 0, syscall.ENOSYS }

// syncCall is never reached without a Context.
func syncCall(int, bool) int64 { return -int64(syscall.ENOSYS) }

// blockingRWFlags is never reached without a Context.
func blockingRWFlags(bool, int, []byte, int64, int) (int, syscall.Errno) { return 0, syscall.ENOSYS }
