// Package backend holds the kernel mechanisms that package aio drives: io_uring
// (uring_linux.go) and classic kernel AIO (kaio_linux.go), and the choice between
// them (select.go).
//
// A backend is deliberately small. It moves requests into the kernel, reports each
// request's final result exactly once, and asks the kernel to cancel. Everything
// a caller can observe — slots, generations, pinning, the one-event invariant,
// Cancel's and Destroy's contracts — lives in package aio, once, for every
// backend. What a backend hides is how its kernel gets there: classic AIO's
// readiness polls in front of pipe reads and its NOP emulation, io_uring's
// re-arming after -EAGAIN and its resubmission of requests that the kernel
// canceled because the submitting thread exited.
//
// Concurrency contract (package aio keeps it):
//   - Submit, Cancel and Wake may be called from any goroutine, concurrently
//     with each other and with Reap; the backend serialises what it must.
//   - Reap is called by one goroutine at a time (aio's "reaper").
//   - Close is called once, when no other call is running or can start.
package backend

import (
	"errors"
	"time"
)

// Op codes shared with package aio (aio.Op has the same values).
const (
	OpRead uint8 = iota + 1
	OpWrite
	OpReadv
	OpWritev
	OpFsync
	OpFdsync
	OpPoll
	OpNop
	OpSyncFileRange
	OpFallocate
	OpFadvise
	opMax
)

// ValidOp reports whether op is one of the Op codes above.
func ValidOp(op uint8) bool { return op >= OpRead && op < opMax }

// Req is one request as the kernel will see it. Addr is the address of memory
// that package aio has pinned and keeps reachable until the request's
// Completion has been returned by Reap. It is an integer, not a pointer: Req
// holds nothing for the garbage collector (copying it costs no write barrier),
// and the backends only ever hand it to the kernel.
//
// The range operations (OpSyncFileRange, OpFallocate, OpFadvise) have no
// buffer, and Req does not grow for them: Addr carries their 64-bit byte count
// (the int64 IOCB.Len, never negative: package aio refuses that) and
// PollEvents their 32-bit argument (IOCB.Flags: the SYNC_FILE_RANGE_* bits,
// the fallocate mode, the POSIX_FADV_* advice). Len is 0 for them. RangeLen
// and RangeArg read those two fields under their meaning.
type Req struct {
	Tag        uint64 // echoed in the Completion; the kernel's user_data / aio_data
	Addr       uint64 // the buffer (Read, Write), the iovec array (Readv, Writev), the byte count (range ops)
	Len        uint32 // bytes (Read, Write) or iovec count (Readv, Writev)
	Op         uint8
	Hint       uint8  // what the caller knows of FD: Hint* bits (0: nothing)
	PollEvents uint32 // the events (Poll); flags, mode or advice (range ops)
	FD         int32
	Off        int64

	// Registered files and buffers (uring; the other backends ignore
	// them and use FD and Addr). Fixed holds FixedFile and FixedBuf.
	Fixed     uint8
	BufIndex  uint16
	FileIndex int32
	// RWFlags are the request's RWF_* bits (rwflags.go), for the transfers
	// (Read, Write, Readv, Writev) only; package aio refuses them elsewhere.
	RWFlags int32
	// Link ties the request into a chain (link.go): LinkNext when the next
	// Req of the same Submit starts only after this one succeeds, LinkPrev
	// when this one follows such a request.
	Link uint8
}

// Req.Hint bits: what package aio knows of a request's descriptor, which
// spares the backends a duplicate and an fstat where they would need them.
const (
	// HintHeld: the number stays open, naming the same file, until the
	// request's completion has been reaped (a File's request runs inside
	// RawConn.Control, which holds it): the pool may work on it without a
	// duplicate of its own.
	HintHeld uint8 = 1 << iota
	// HintStorage: a regular file or block device (reads and writes are
	// positional, and wait for the device, not for readiness).
	HintStorage
	// HintStream: a pipe, socket, tty or other file whose reads and writes
	// wait for readiness.
	HintStream
	// HintDirect: opened O_DIRECT (with HintHeld: as the File found it when
	// it was made, which is what the File's own reads go by).
	HintDirect
)

// IsRange reports whether op is one of the range operations, whose Req
// carries a byte count in Addr and an argument in PollEvents.
func IsRange(op uint8) bool { return op >= OpSyncFileRange && op <= OpFadvise }

// RangeLen is a range operation's byte count (Addr). Package aio stores a
// non-negative int64 there.
func (r *Req) RangeLen() int64 { return int64(r.Addr) }

// RangeArg is a range operation's argument (PollEvents): the
// sync_file_range flags, the fallocate mode or the fadvise advice.
func (r *Req) RangeArg() uint32 { return r.PollEvents }

// Tag bits above TagBits belong to the backend (its internal requests); package
// aio keeps its tags below 1<<TagBits.
const TagBits = 61

const (
	tagWake   = 1 << 63 // the backend's own wake-up request
	tagCancel = 1 << 62 // io_uring: the ASYNC_CANCEL that targets the tag in the low bits
	tagMask   = 1<<TagBits - 1
)

// Kinds of Completion.
const (
	// KindDone is a request's final result. Exactly one per accepted Req.
	KindDone uint8 = iota
	// KindCancel is the kernel's answer to an asynchronous Cancel: Res is 0 when
	// the target was found and will end with -ECANCELED, or a negated errno
	// (-ENOENT, -EALREADY) when it could not be stopped.
	KindCancel
)

// Completion is one result.
type Completion struct {
	Tag  uint64
	Res  int64
	Kind uint8
}

// CancelAnswer is what Backend.Cancel learned at once.
type CancelAnswer uint8

const (
	// CancelRefused: the target cannot be stopped (already running, or of a kind
	// the kernel never cancels); its Completion will come as usual.
	CancelRefused CancelAnswer = iota
	// CancelPending: the target will end soon; if it ends with -ECANCELED it was
	// stopped before any data moved.
	CancelPending
	// CancelAsync: the kernel's answer comes later as a KindCancel Completion with
	// the same tag.
	CancelAsync
)

// Backend is one kernel mechanism.
type Backend interface {
	// Name is "uring", "kaio" or "threads".
	Name() string
	// Submit hands reqs to the kernel. It returns how many it took, in order;
	// anything not taken never reaches the kernel and never completes. Requests
	// that end at once (per-request failures io_submit reports, emulated NOPs)
	// are written to inline, which has room for len(reqs); ninline says how many.
	Submit(reqs []Req, inline []Completion) (taken, ninline int, err error)
	// Reap fills cs with completions. With wait 0 it never blocks. Otherwise,
	// when nothing is there, it blocks until the kernel has at least wait
	// completions (its own included), or until timeout (negative: no limit)
	// expires; it may then return 0 with a nil error. Wake ends a wait for one
	// completion; a longer wait ends only when enough arrive or at the timeout,
	// so callers bound it.
	Reap(cs []Completion, wait int, timeout time.Duration) (int, error)
	// Cancel asks the kernel to stop the request with tag.
	Cancel(tag uint64) (CancelAnswer, error)
	// CancelMany asks for several at once, as one batch where the kernel allows;
	// answers[i] is the answer for tags[i].
	CancelMany(tags []uint64, answers []CancelAnswer) error
	// Wake makes a Reap blocked in the kernel return soon.
	Wake()
	// Close releases the kernel object. Every request must have completed.
	Close() error
}

// Probe is what selection learned about one backend: Err is nil for the backend
// that runs, and otherwise says why that backend could not run.
type Probe struct {
	Backend string
	Err     error
}

// ErrNotSupported is matched by every error that means "this backend or feature
// cannot run here". Package aio exports the same value.
var ErrNotSupported = errors.New("not supported")
