package backend

import "errors"

// Config is what a Context asks of its backend beyond choosing one. The
// kernel features it names are requests: a backend that lacks one runs
// without it and says so in Features.
type Config struct {
	// Workers bounds the pool (0: DefaultWorkers).
	Workers int
	// SQPoll asks uring for a kernel thread that consumes the SQ ring
	// (IORING_SETUP_SQPOLL).
	SQPoll bool
	// FixedFiles is the size of uring's sparse fixed-file table; 0 means
	// DefaultFixedFiles, negative means none.
	FixedFiles int
}

// DefaultFixedFiles is the fixed-file table's size when Config.FixedFiles is
// 0: enough for the files a storage engine keeps open per ring, small enough
// that the table (a pointer per entry in the kernel) costs nothing.
const DefaultFixedFiles = 256

// Feature is one optional kernel feature and whether this backend instance
// uses it. Why says, when it is off, what refused it or why it is not used.
type Feature struct {
	Name string
	On   bool
	Why  error
}

// Featurer is implemented by backends that have optional features (uring).
type Featurer interface {
	Features() []Feature
}

// Registrar is implemented by backends with kernel tables of registered
// files and buffers (uring). kaio and threads do not implement it: package aio
// then uses plain descriptors and addresses, which behave the same.
type Registrar interface {
	// RegisterFile installs fd in a free entry of the fixed-file table and
	// returns the entry's index. ErrTableFull when every entry is taken.
	RegisterFile(fd int) (int32, error)
	// UnregisterFile empties entry idx; the kernel drops its reference to
	// the file once the requests that use it have ended.
	UnregisterFile(idx int32) error
	// RegisterBuffer installs the memory [addr, addr+n) in a free entry of
	// the buffer table and returns the entry's index.
	RegisterBuffer(addr uintptr, n int) (uint16, error)
	// UnregisterBuffer empties entry idx.
	UnregisterBuffer(idx uint16) error
}

// ErrTableFull is returned by Registrar when every entry is taken.
var ErrTableFull = errors.New("registration table full")

// The Req.Fixed bits.
const (
	FixedFile uint8 = 1 << iota // Req.FileIndex names a fixed-file entry
	FixedBuf                    // Req.BufIndex names a registered buffer holding [Addr, Addr+Len)
)
