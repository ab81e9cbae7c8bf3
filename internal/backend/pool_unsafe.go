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

import (
	"encoding/binary"
	"unsafe"
)

// memAt is the pointer whose address is addr.
func memAt(addr uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

// eventfdValue is the 8-byte value an eventfd write adds (the first 8 bytes
// of its buffer or iovecs, in native byte order), and false for a write of
// any other length, which the kernel refuses (EINVAL) without waiting.
func eventfdValue(r *Req) (uint64, bool) {
	b := reqBufs(r, 0)
	iov := b.own
	if len(iov) == 0 {
		iov = readIovecs(b.addr, b.n)
	}
	if len(iov) != 1 || iov[0].len != 8 {
		return 0, false
	}
	return binary.NativeEndian.Uint64(unsafe.Slice((*byte)(memAt(iov[0].base)), 8)), true
}

// readIovecs copies the n iovecs at addr.
func readIovecs(addr uint64, n uint32) []iovec {
	if n == 0 {
		return nil
	}
	return append([]iovec(nil), unsafe.Slice((*iovec)(memAt(uintptr(addr))), n)...)
}
