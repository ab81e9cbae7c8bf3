//go:build unix

package aio

// Buffers' memory: an anonymous private mapping, never Go memory, so no Go
// pointer is ever stored in it and the garbage collector never looks at it.
// Its address is taken once, as an integer, for the kernel's buffer table
// and for prepare's range check.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func mapBuffers(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// retireBuffers gives the memory back (MADV_DONTNEED drops the pages of a
// private anonymous mapping) and leaves the range reserved with no access,
// so that nothing else is ever mapped where a stale block points.
func retireBuffers(b []byte) error {
	if err := unix.Mprotect(b, unix.PROT_NONE); err != nil {
		return err
	}
	return unix.Madvise(b, unix.MADV_DONTNEED)
}
