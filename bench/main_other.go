//go:build !unix

// The bench needs a Unix system: off Unix no backend of the library runs
// (Setup answers aio.ErrNotSupported), so there is nothing to compare.

package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "bench: the library runs no backend on %s (every backend needs a Unix system); nothing to measure\n", runtime.GOOS)
	os.Exit(1)
}
