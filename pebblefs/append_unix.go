//go:build unix

package pebblefs

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// appendMode tells whether the descriptor was opened with O_APPEND, where
// pwrite(2) would ignore the offset (vfs.Default never does; a file whose
// flags cannot be read is treated the same way): such a file stays base's.
func appendMode(raw syscall.RawConn) bool {
	app := true
	_ = raw.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		app = err != nil || fl&unix.O_APPEND != 0
	})
	return app
}
