//go:build unix && !linux

package backend

// Off Linux no call says whether two descriptors are one open file
// description, so the pool shares no duplicate: each request gets its own.
const sameFileWorks = false

func sameFile(a, b int) bool { return false }
