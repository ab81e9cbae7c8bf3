//go:build linux || freebsd || netbsd || dragonfly || aix || solaris

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path with O_DIRECT.
func openDirect(path string, flags int) (*os.File, error) {
	return os.OpenFile(path, flags|unix.O_DIRECT, 0)
}
