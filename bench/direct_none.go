//go:build unix && !(linux || freebsd || netbsd || dragonfly || aix || solaris || darwin)

package main

import (
	"os"
	"runtime"
)

// openDirect fails: this system has no way to bypass the page cache.
func openDirect(string, int) (*os.File, error) {
	return nil, &skipError{"no O_DIRECT (or F_NOCACHE) on " + runtime.GOOS}
}
