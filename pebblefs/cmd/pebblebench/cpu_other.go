//go:build !unix

package main

import "time"

// processCPU is 0 outside Unix: no getrusage(2); the table leaves the CPU
// ratios out.
func processCPU() time.Duration { return 0 }
