//go:build unix && !linux

package main

import "os"

// readyFD returns a descriptor that is always readable, for the poll
// workload: there is no eventfd here, so a pipe holding a byte (readyPipe).
func readyFD() (fd int, done func(), err error) { return readyPipe() }

// procStats: the OS thread count and page-cache residency are measured on
// Linux only (/proc/self/status, mincore); their columns stay empty here.
const procStats = false

// readyFDKind names readyFD's descriptor in notes and tables.
const readyFDKind = "pipe holding a byte"

// adviseWillNeed does nothing: posix_fadvise is Linux's (the read that warms
// the cache follows anyway).
func adviseWillNeed(*os.File, int64) {}

// residentFraction is -1, "cannot be told": the mincore check is Linux's.
func residentFraction(*os.File, int64) float64 { return -1 }
