//go:build linux && uringaio_poll

package backend

import (
	"os"

	"golang.org/x/sys/unix"
)

// wakePipe is the poll(2) poller's wake-up (poller_other.go, which Linux
// builds only with the tag uringaio_poll, to test it): a non-blocking pipe.
func wakePipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return -1, -1, os.NewSyscallError("pipe2", err)
	}
	return p[0], p[1], nil
}
