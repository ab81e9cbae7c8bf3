//go:build unix

package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// processCPU is the process's user+sys CPU time, all threads, from
// getrusage(2): io_uring's and the threads backend's workers count too.
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
