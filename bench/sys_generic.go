//go:build unix && !linux && !darwin

package main

// fsType is "unknown": naming the filesystem is done on Linux and macOS.
func fsType(string) string { return "unknown" }

// cpuModel is "": the CPU model is read on Linux and macOS.
func cpuModel() string { return "" }
