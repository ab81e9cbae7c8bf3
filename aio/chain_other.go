//go:build !linux

package aio

// chainNonblock: only io_uring (Linux) orders chains in the kernel.
func chainNonblock(fd int) bool { return false }
