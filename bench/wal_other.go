//go:build unix && !linux

package main

import (
	"fmt"
	"io"
)

// runWAL: the wal workload uses RWF_DSYNC and fdatasync, which are Linux's.
func runWAL(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bench: the wal workload runs on Linux only")
	return 1
}
