//go:build !linux

package backend

import (
	"fmt"
	"runtime"
)

// io_uring and classic kernel AIO are Linux system calls: elsewhere both are
// refusals that "auto" records before it runs threads, and that a named
// backend reports (matching ErrNotSupported).

func startUring(int, Config) (Backend, error) {
	return nil, fmt.Errorf("io_uring is a Linux interface (this is %s): %w", runtime.GOOS, ErrNotSupported)
}

func startKaio(int, int) (Backend, error) {
	return nil, fmt.Errorf("classic kernel AIO (io_setup) is a Linux interface (this is %s): %w", runtime.GOOS, ErrNotSupported)
}
