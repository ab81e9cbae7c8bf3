//go:build unix

package main

import "strings"

// isWAL reports whether args ask for the wal workload (it has flags of its
// own and a table of its own, so it is run apart from the matrix).
func isWAL(args []string) bool {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == "workload=wal" || a == "workload" && i+1 < len(args) && args[i+1] == "wal" {
			return true
		}
	}
	return false
}
