//go:build !linux

package aio

import "syscall"

// oDirect is 0: with no inline path, O_DIRECT does not matter (see NewFile).
const oDirect = 0

// inlineRW: preadv2/pwritev2 with RWF_NOWAIT exist only on Linux; elsewhere
// every request goes through the backend (ENOSYS turns the try off).
func inlineRW(write bool, fd int, p []byte, off int64) (int, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// plainPwrite is never reached without the inline path.
func plainPwrite(fd int, p []byte, off int64) (int, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// hotReads: without the inline path no file is read hot.
const hotReads = false

// hotPread is never reached without the inline path.
func hotPread(fd int, p []byte, off int64) (int, syscall.Errno) {
	return 0, syscall.ENOSYS
}
