//go:build !unix

package pebblefs

import "syscall"

// appendMode reports true: outside Unix the descriptor's flags cannot be read
// the same way, and a file whose flags are unknown stays base's (no backend
// of the library runs there anyway).
func appendMode(syscall.RawConn) bool { return true }
