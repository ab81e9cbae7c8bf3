package aio

import (
	"sync/atomic"
	"syscall"
	"time"

	"github.com/uringaio/uringaio/internal/backend"
)

// Op is the operation an IOCB asks for. The zero value is not a valid Op, so an
// IOCB whose Op was never set is refused with EINVAL.
type Op uint8

// The operations. Each names the classic AIO command and the io_uring opcode
// that carry it.
const (
	OpRead   Op = Op(backend.OpRead)   // pread: IOCB_CMD_PREAD, IORING_OP_READ
	OpWrite  Op = Op(backend.OpWrite)  // pwrite: IOCB_CMD_PWRITE, IORING_OP_WRITE
	OpReadv  Op = Op(backend.OpReadv)  // preadv: IOCB_CMD_PREADV, IORING_OP_READV
	OpWritev Op = Op(backend.OpWritev) // pwritev: IOCB_CMD_PWRITEV, IORING_OP_WRITEV
	OpFsync  Op = Op(backend.OpFsync)  // fsync: IOCB_CMD_FSYNC, IORING_OP_FSYNC
	OpFdsync Op = Op(backend.OpFdsync) // fdatasync: IOCB_CMD_FDSYNC, IORING_OP_FSYNC with IORING_FSYNC_DATASYNC
	OpPoll   Op = Op(backend.OpPoll)   // poll: IOCB_CMD_POLL, IORING_OP_POLL_ADD
	OpNop    Op = Op(backend.OpNop)    // no operation: IORING_OP_NOP; completed by the library on classic AIO

	// The range operations act on the Len bytes at Offset, with Flags as
	// their argument. Classic AIO has no command for them: on the kaio
	// backend, as on threads, a worker of the library's pool makes the
	// system call. Off Linux they end with ENOSYS.

	// OpSyncFileRange is sync_file_range(2): IORING_OP_SYNC_FILE_RANGE.
	// Flags holds SYNC_FILE_RANGE_WAIT_BEFORE, _WRITE and _WAIT_AFTER;
	// Len 0 means to the end of the file.
	OpSyncFileRange Op = Op(backend.OpSyncFileRange)
	// OpFallocate is fallocate(2): IORING_OP_FALLOCATE. Flags is the mode
	// (0, or FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, …); Len must be
	// positive.
	OpFallocate Op = Op(backend.OpFallocate)
	// OpFadvise is posix_fadvise(2): IORING_OP_FADVISE. Flags is the advice
	// (POSIX_FADV_WILLNEED to read ahead, POSIX_FADV_DONTNEED, …); Len 0
	// means to the end of the file.
	OpFadvise Op = Op(backend.OpFadvise)
)

var opNames = [...]string{
	OpRead: "read", OpWrite: "write", OpReadv: "readv", OpWritev: "writev",
	OpFsync: "fsync", OpFdsync: "fdatasync", OpPoll: "poll", OpNop: "nop",
	OpSyncFileRange: "sync_file_range", OpFallocate: "fallocate", OpFadvise: "fadvise",
}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "Op(" + itoa(int64(o)) + ")"
}

// MaxIOV is the most buffers one vectored IOCB may carry (the kernel's IOV_MAX).
const MaxIOV = 1024

// MaxRW is the most bytes one request may move: the kernel's MAX_RW_COUNT
// (INT_MAX rounded down to a page). Both kernels would silently shorten a longer
// transfer; the library refuses it with EINVAL instead so that a short transfer
// always means what it says (EOF, a pipe, a full disk).
const MaxRW = 0x7ffff000

// IOCB is one request, owned by the caller. It may be reused once its event has
// been delivered (by GetEvents, by a successful Cancel, or as Do's result). While
// it is outstanding the caller must not change it, nor the memory of Buf or Bufs.
//
// An IOCB must not be copied after its first use.
type IOCB struct {
	Op         Op       // what to do
	FD         int      // the file descriptor
	Buf        []byte   // OpRead, OpWrite: the buffer
	Bufs       [][]byte // OpReadv, OpWritev: the buffers, at most MaxIOV
	Offset     int64    // file offset; ignored by files without one (pipes, sockets)
	PollEvents uint32   // OpPoll: the events to wait for (unix.POLLIN, unix.POLLOUT, …)
	// Flags is the range operation's argument: for OpSyncFileRange the
	// SYNC_FILE_RANGE_* bits (any other bit is refused with EINVAL), for
	// OpFallocate the mode (FALLOC_FL_*), for OpFadvise the advice
	// (POSIX_FADV_*). A mode or advice the kernel does not know is the
	// request's failure (EOPNOTSUPP, EINVAL), as the system call reports
	// it. It must be 0 for every other Op (EINVAL).
	Flags uint32
	Data  uint64 // echoed in the Event, like aio_data
	// Len is the byte count of the range starting at Offset, for
	// OpSyncFileRange, OpFallocate and OpFadvise. For sync_file_range and
	// fadvise 0 means to the end of the file, as the system calls say;
	// fallocate refuses 0. Negative is refused (EINVAL), and so is a
	// nonzero Len on any other Op.
	Len int64
	// RWFlags are per-request flags of a read or write (OpRead, OpWrite,
	// OpReadv, OpWritev), the RWF_* bits of preadv2(2): unix.RWF_DSYNC and
	// unix.RWF_SYNC (this write is durable when it completes, as under
	// O_DSYNC/O_SYNC), unix.RWF_APPEND (this write goes at the end of the
	// file, whatever Offset says), unix.RWF_NOWAIT (do not wait for the
	// disk or a lock: the request ends with -EAGAIN, or a short count, where
	// it would) and unix.RWF_HIPRI (poll for an O_DIRECT completion where
	// the device can). Any other bit, or any bit on another Op, is refused
	// with EINVAL. Linux only: elsewhere such a request ends with
	// -EOPNOTSUPP. See docs/contract.md §1.8.
	RWFlags int
	// Link makes this request the head or a middle member of a chain: the
	// next IOCB of the same Submit starts only after this one succeeded
	// (a read or write moved every byte), and if it fails the rest of the
	// chain ends with -ECANCELED, as io_uring's IOSQE_IO_LINK orders them.
	// The last IOCB of a Submit must not have it (EINVAL). DoChain runs a
	// chain and waits for its end. See docs/contract.md §13.
	Link bool

	// The library's state. Every field is atomic: an IOCB may be handed to one
	// Context while another Context's Cancel or Error looks at it (and is
	// refused), so no single Context's lock can guard them.
	state cbWord                  // cbIdle, cbOutstanding, cbCompleted or cbInline, and the result once completed (Error reads it)
	ctx   atomic.Pointer[Context] // the Context it was last submitted to
	slot  atomic.Int32            // its slot there, while outstanding
	// hint is backend.Req.Hint, set only on the library's own IOCBs (rwAsync,
	// for a File's request) before they are submitted; a caller's is 0.
	hint uint8

	// Registered files (fixedfile.go): the lane's fixed-file entry plus
	// one, set only on the library's own IOCBs (File's); and the File that
	// SetFile named.
	fixedFile int32
	file      *File
}

const (
	cbIdle        uint32 = iota // never submitted, or its event was delivered
	cbOutstanding               // submitted; the kernel (or the library) still has it
	cbCompleted                 // finished; its event is waiting to be delivered
	cbInline                    // Do is moving its data on the caller's goroutine (caller.go)
)

// cbWord is an IOCB's state and its result in one atomic word: the state in
// the low byte, the result (bytes, a poll mask or a negated errno; far
// inside 56 bits) above it. A completion sets both with one atomic store
// (finish), where two (one per field) cost a locked exchange each: 6 ns of
// the 53 ns of a NOP request on classic AIO (BenchmarkSubmitGetEvents).
type cbWord struct{ w atomic.Uint64 }

// Load is the state.
func (s *cbWord) Load() uint32 { return uint32(s.w.Load() & 0xff) }

// result is the result the last finish stored.
func (s *cbWord) result() int64 { return int64(s.w.Load()) >> 8 }

// CompareAndSwap changes the state from old to new, keeping the result, and
// reports whether it did.
func (s *cbWord) CompareAndSwap(old, new uint32) bool {
	for {
		w := s.w.Load()
		if uint32(w&0xff) != old {
			return false
		}
		if s.w.CompareAndSwap(w, w&^0xff|uint64(new)) {
			return true
		}
	}
}

// Store sets the state, keeping the result.
func (s *cbWord) Store(st uint32) {
	for {
		w := s.w.Load()
		if s.w.CompareAndSwap(w, w&^0xff|uint64(st)) {
			return
		}
	}
}

// finish sets the state and the result at once.
func (s *cbWord) finish(st uint32, res int64) { s.w.Store(uint64(res)<<8 | uint64(st)) }

// Event is one completion.
type Event struct {
	Data uint64 // the IOCB's Data
	IOCB *IOCB  // the request
	Res  int64  // bytes moved, the poll mask, or a negated errno
	Res2 int64  // always 0 today; kept for the io_event shape
}

// Err returns nil when Res is not negative, and otherwise the errno wrapped with
// the operation's name, so that errors.Is(ev.Err(), syscall.ECANCELED) works.
func (e Event) Err() error {
	if e.Res >= 0 {
		return nil
	}
	var op Op
	if e.IOCB != nil {
		op = e.IOCB.Op
	}
	return &RequestError{Op: op, Errno: syscall.Errno(-e.Res)}
}

// Options configures SetupWithOptions.
type Options struct {
	// Backend names the mechanism that runs the Context:
	//
	//   - "" (the default): the URINGAIO_BACKEND environment variable
	//     decides, with the same values; unset or empty means "auto".
	//   - "auto": the first of uring, kaio and threads that can start here.
	//   - "uring": io_uring. Linux 5.11 or later with IORING_FEAT_EXT_ARG,
	//     not disabled by kernel.io_uring_disabled or a seccomp filter.
	//   - "kaio": classic kernel AIO, io_setup(2) and friends. Linux;
	//     fs.aio-max-nr must leave room for maxEvents+1 events.
	//   - "threads": a pool of goroutines making the ordinary blocking system
	//     calls (pread, pwrite, preadv, pwritev, fsync, fdatasync; on Linux
	//     sync_file_range, fallocate, posix_fadvise) and one
	//     poller waiting for readiness, as glibc's POSIX AIO does. Any Unix;
	//     it needs no kernel AIO mechanism. It cancels a request that is
	//     still queued or waits for readiness, always, and never a transfer
	//     or sync a worker has started (Cancel answers EAGAIN, and its event
	//     comes when it ends).
	//
	// A named backend that cannot start is an error matching
	// ErrNotSupported, never a fallback; an unknown name matches EINVAL.
	Backend string

	// Workers bounds the pool of worker goroutines that make blocking
	// system calls: the threads backend's, and the one uring and kaio start,
	// when first needed, for the requests their kernel mechanism cannot
	// finish by itself (a read on an O_NONBLOCK pipe on io_uring, an eventfd
	// write or a tty poll on classic AIO). 0 means the default,
	// 4×GOMAXPROCS bounded to between 32 and 64; negative is refused with
	// EINVAL. Four times it also bounds the callers that make, on their own
	// goroutine, the blocking call such a worker would make for them (threads, and
	// classic AIO's buffered transfers that wait: docs/contract.md §8.5).
	Workers int

	// NoInline turns off the transfers on the caller's goroutine
	// (docs/contract.md §8.5). By default File.ReadAt and WriteAt,
	// Context.ReadAt and WriteAt on a descriptor, and Do with OpRead or
	// OpWrite move a regular file's cached data on the calling goroutine
	// (not O_DIRECT files): a cold file's reads first try preadv2(2) with
	// RWF_NOWAIT (Linux 4.14), a hot one's (whose recent tries all found
	// their data cached) are a plain pread(2), and only what would wait
	// becomes a request of the backend; Stats.Inline counts them. A buffered
	// write the filesystem will not do under RWF_NOWAIT (ext4 refuses every
	// one) is a plain pwrite(2) on the caller's goroutine, as
	// (*os.File).WriteAt makes it, while fewer than GOMAXPROCS callers do so
	// at once; past that it is a request of the backend. Where the backend
	// would make what waits a blocking call on a worker of its pool
	// (threads; classic AIO's buffered transfers; io_uring's io-wq for the
	// writes ext4 refuses under RWF_NOWAIT), the caller makes that call
	// itself, at most 4×Workers at once (Stats.Blocking). On threads and
	// classic AIO, whose fsync and fdatasync are such calls too, Do makes
	// those itself, and DoChain runs a chain of such calls on its caller.
	// Submit never does this.
	NoInline bool

	// ColdReadsToPool: on threads and classic AIO, a read of a buffered
	// regular file that would wait for the device is a request of the
	// backend's pool, as it is on io_uring (an asynchronous request), and
	// not the blocking read its caller makes by default (NoInline, §8.5).
	// A file whose last RWF_NOWAIT try missed still skips the try on most
	// reads (the try of an uncached page cost Pebble's cold Gets all of the
	// gain). O_DIRECT reads, writes and syncs are unchanged. It is a
	// trade-off, measured on this project's 2-core machine (README):
	// goroutines that do CPU work between uncached reads (Pebble's point
	// Gets on a cold cache) ran 1.3-1.5x as fast with it; goroutines that
	// only read uncached data, one read after another, reached 0.73-0.78x
	// of os.File's IOPS with it (with a p99 a tenth of os.File's), against
	// 0.89-1.04x without. io_uring ignores it.
	ColdReadsToPool bool

	// Lanes spreads the calls many goroutines make at once — ReadAt,
	// WriteAt and File's — over this many kernel instances (rings, aio
	// contexts) of the Context's backend, each with maxEvents slots, its own
	// lock and its own reaper, so that they do not all queue on one lock on
	// a machine with many cores. Submit, GetEvents, Do, Cancel and Error use
	// the first alone; CancelFD, Destroy and Stats cover them all. 0 means a
	// lane per 4 GOMAXPROCS (taken at Setup), between 1 and 8, on uring and
	// kaio, and 1 on threads, and as many of those as can be set up (a lane
	// that cannot, for want of a descriptor or of fs.aio-max-nr, is left
	// out); an explicit count is all or Setup's error. Negative is refused
	// with EINVAL.
	Lanes int
	// SQPoll asks the uring backend for a kernel thread that takes requests
	// from the ring (IORING_SETUP_SQPOLL), so that submitting costs no
	// system call. The thread spins on a CPU while requests come and for a
	// second after the last one: CPU time the program does not see in its
	// own usage (docs/contract.md §12.1 has the measured cost). A kernel that
	// refuses it runs the ring without it (Features says so); kaio and
	// threads ignore it.
	SQPoll bool

	// FixedFiles sizes each ring's table of registered files, which
	// File.Register fills (docs/contract.md §12.2): 0 means 256, negative
	// means no table (Register then leaves every File unregistered).
	// kaio and threads ignore it.
	FixedFiles int
}

// Probe is what backend selection learned about one backend it tried.
type Probe struct {
	// Backend is the backend's name: "uring", "kaio" or "threads".
	Backend string
	// Err is nil for the backend in use; otherwise it says why this backend
	// could not run, and matches ErrNotSupported when the system lacks or
	// refuses the mechanism.
	Err error // Features lists, for the backend in use, its optional kernel features
	// and whether each is on (Feature); nil for the others, and for kaio
	// and threads, which have none.
	Features []Feature
}

// String is "uring: ok" for the backend in use, and the name and the reason
// ("kaio: …") for one that could not run.
func (p Probe) String() string {
	if p.Err == nil {
		return p.Backend + ": ok"
	}
	return p.Backend + ": " + p.Err.Error()
}

// probesOf converts what backend selection reports.
func probesOf(bps []backend.Probe, be backend.Backend) []Probe {
	ps := make([]Probe, len(bps))
	for i, bp := range bps {
		ps[i] = Probe{Backend: bp.Backend, Err: bp.Err}
		if bp.Err == nil {
			ps[i].Features = featuresOf(be)
		}
	}
	return ps
}

// ErrNotSupported is matched (errors.Is) by every error that means "this backend
// or feature cannot run here".
var ErrNotSupported = backend.ErrNotSupported

// Setup creates a Context that holds up to maxEvents outstanding requests, on
// the backend that URINGAIO_BACKEND names (auto by default). It wraps
// io_uring_setup(2) or io_setup(2), or starts the threads backend's poller.
//
// maxEvents must be between 1 and 32768 (EINVAL otherwise). A backend that
// cannot start is an error matching ErrNotSupported: off Unix every backend
// is, so Setup always fails there.
func Setup(maxEvents int) (*Context, error) {
	return SetupWithOptions(maxEvents, Options{})
}

// SetupWithOptions is Setup with options: opts.Backend names the backend
// instead of URINGAIO_BACKEND, and opts.Workers sizes its pool.
func SetupWithOptions(maxEvents int, opts Options) (*Context, error) {
	if opts.Workers < 0 {
		return nil, errSetupWorkers
	}
	if opts.Lanes < 0 {
		return nil, errSetupLanes
	}
	c, err := newContext(maxEvents, opts)
	if err != nil {
		return nil, err
	}
	n := opts.Lanes
	if n == 0 {
		n = autoLanes(c.be.Name())
	}
	if n > 1 {
		if err := c.openLanes(n, opts, opts.Lanes == 0); err != nil {
			_ = c.destroy()
			return nil, err
		}
	}
	return c, nil
}

// Submit hands requests to the kernel, like io_submit(2). It returns how many of
// cbs were accepted, in order; an error comes back only when none was, and it is
// then the first refused IOCB's error: EINVAL for a nil or malformed IOCB, EBUSY
// for an IOCB still outstanding, EAGAIN when maxEvents requests are outstanding,
// EINVAL on a destroyed Context. Failures that the kernel reports for one request
// (a bad fd, a misaligned O_DIRECT buffer, …) are not Submit errors: they arrive
// as that request's Event.
func (c *Context) Submit(cbs ...*IOCB) (int, error) {
	return c.submit(cbs)
}

// GetEvents waits until at least minNr events are available, then fills up to
// len(events) and returns how many it filled, like io_getevents(2). A nil timeout
// waits without limit, a zero one does not wait; when the timeout expires the
// events gathered so far (possibly fewer than minNr) are returned with a nil
// error. minNr < 0 or minNr > len(events) gives EINVAL; so does a destroyed
// Context, and a wait that Destroy interrupts.
//
// Requests started by Do never appear here, nor do requests whose event a
// successful Cancel returned.
func (c *Context) GetEvents(minNr int, events []Event, timeout *time.Duration) (int, error) {
	return c.getEvents(minNr, events, timeout)
}

// Destroy cancels every outstanding request, waits until the kernel has let go of
// every buffer (including requests that could not be canceled), wakes every
// goroutine blocked in GetEvents (they return EINVAL), and releases the ring or
// the AIO context, like io_destroy(2). Undelivered events are dropped. Any later
// call, a second Destroy included, returns EINVAL.
func (c *Context) Destroy() error {
	err := c.destroy()
	if err == errDestroyTwice || c.lanes == nil {
		return err
	}
	if lerr := c.destroyLanes(); err == nil {
		err = lerr
	}
	return err
}

// Backend names the backend that runs this Context: "uring", "kaio" or
// "threads".
func (c *Context) Backend() string { return c.be.Name() }

// Probes reports what backend selection tried, in order, and why each backend
// that was not chosen could not run. The last entry, with a nil Err, is the
// backend in use.
func (c *Context) Probes() []Probe { return append([]Probe(nil), c.probes...) }

func itoa(v int64) string {
	var b [24]byte
	i := len(b)
	neg := v < 0
	if neg {
		v = -v
	}
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Stats counts what a Context has done since Setup. Benchmarks use it to show
// how requests reached the kernel; the counts are read without stopping the
// Context, so a snapshot taken while requests run is approximate.
type Stats struct {
	Requests uint64 // requests accepted (by Submit, Do and the calls built on Do)
	Submits  uint64 // submissions to the kernel: io_uring_enter or io_submit calls that carried requests
	Inline   uint64 // requests finished on the caller's goroutine without a kernel submission
	// Blocking counts the transfers of Inline that were a blocking system
	// call on the caller, made where the backend would have made the same
	// call on a worker of its pool (threads; classic AIO's buffered
	// transfers): data that was not in the page cache, or O_DIRECT; and,
	// on threads and classic AIO, the fsync and fdatasync calls of Do and
	// the members of a DoChain run on the caller (docs/contract.md §8.5).
	Blocking uint64
	// FixedFiles counts requests that named a registered file's entry
	// instead of its descriptor (File.Register; uring only).
	FixedFiles uint64
	// FixedBufs counts requests whose buffer lay in registered Buffers
	// memory and went as READ_FIXED or WRITE_FIXED (uring only).
	FixedBufs uint64
}

// counts reads this lane's request and submission counters.
func (c *Context) counts() (reqs, submits uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nReqs, c.nSubmits
}

// Stats returns the Context's counters.
func (c *Context) Stats() Stats {
	st := Stats{Inline: c.cs.inlined(), Blocking: c.cs.nBlocking.Load(),
		FixedFiles: c.nFixedFiles.Load(), FixedBufs: c.nFixedBufs.Load()}
	st.Requests, st.Submits = c.counts()
	for _, l := range c.lanes[min(1, len(c.lanes)):] {
		r, s := l.counts()
		st.Requests += r
		st.Submits += s
		st.FixedFiles += l.nFixedFiles.Load()
		st.FixedBufs += l.nFixedBufs.Load()
	}
	return st
}
