//go:build unix

package backend

// Reading the caller's memory from the pool. A Req holds addresses as
// integers (it keeps nothing alive for the garbage collector; package aio pins
// the memory and keeps it reachable until the request's completion). Most
// addresses go straight to the kernel as uintptr arguments; this file holds
// the two places where Go code itself must look at that memory: the iovec
// array, to skip bytes already moved, and (outside Linux,
// pool_unsafe_other.go) a buffer as a []byte for unix.Pread and friends.
//
// An integer becomes a pointer here by reinterpreting the integer's bytes
// (memAt), not by a uintptr→unsafe.Pointer conversion: -race's checkptr
// rejects such a conversion for heap memory when no pointer into the same
// object appears in the expression, and go vet flags it. The memory is a live,
// pinned Go object (or C memory) for as long as the pointer is used, which is
// what makes the pointer valid; the pointer never outlives the call that
// uses it.

import "unsafe"

// memAt is the pointer whose address is addr.
func memAt(addr uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

// readIovecs copies the n iovecs at addr.
func readIovecs(addr uint64, n uint32) []iovec {
	if n == 0 {
		return nil
	}
	return append([]iovec(nil), unsafe.Slice((*iovec)(memAt(uintptr(addr))), n)...)
}
