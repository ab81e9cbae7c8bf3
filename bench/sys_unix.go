//go:build unix

package main

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipe returns the ends of a new pipe, both close-on-exec and non-blocking.
// (pipe2(2) would do it in one call, but macOS has none.) ForkLock keeps a
// child started meanwhile from inheriting the ends.
func pipe() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = unix.Pipe(p[:])
	if err == nil {
		unix.CloseOnExec(p[0])
		unix.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, err
	}
	for _, fd := range p {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			return -1, -1, err
		}
	}
	return p[0], p[1], nil
}

// readyPipe returns a descriptor that is always readable: the read end of a
// pipe holding one byte that is never read. done closes both ends. It is
// readyFD where there is no eventfd.
func readyPipe() (fd int, done func(), err error) {
	r, w, err := pipe()
	if err != nil {
		return -1, nil, fmt.Errorf("pipe: %w", err)
	}
	if _, err := unix.Write(w, []byte{1}); err != nil {
		unix.Close(r)
		unix.Close(w)
		return -1, nil, fmt.Errorf("write to pipe: %w", err)
	}
	return r, func() { unix.Close(r); unix.Close(w) }, nil
}
