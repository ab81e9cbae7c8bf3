//go:build !unix

package backend

import (
	"fmt"
	"runtime"
)

// The threads backend needs poll(2) and positioned reads and writes on
// descriptors, which this system does not offer through golang.org/x/sys/unix.
func startThreads(int) (Backend, error) {
	return nil, fmt.Errorf("the threads backend needs a Unix system (this is %s): %w", runtime.GOOS, ErrNotSupported)
}
