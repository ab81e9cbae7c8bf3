package aio

import (
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/uringaio/uringaio/internal/backend"
)

// Buffers (docs/contract.md §12.3)
//
// A Buffers is memory for O_DIRECT in blocks of one size: mapped with
// mmap(2), so it is page aligned and outside the Go heap (the garbage
// collector neither moves nor frees it, and requests need no
// runtime.Pinner for it). On uring it is also registered in each lane's
// buffer table (IORING_REGISTER_BUFFERS_UPDATE), and an OpRead or OpWrite
// whose Buf lies wholly inside it goes as IORING_OP_READ_FIXED or
// WRITE_FIXED: the kernel skips pinning and mapping its pages per request.
// Elsewhere (kaio, threads, a ring whose table is full or whose
// RLIMIT_MEMLOCK is too low) it is plain aligned memory, with the same
// results.
//
// Lifetime. The memory lives until Release, whatever the garbage collector
// sees: a Buffers must be released explicitly. Release refuses (EBUSY) while
// a request whose Buf lies in it is outstanding, and after it the range
// stays reserved with no access (PROT_NONE), so that a block used after
// Release cannot silently reach other memory: a Go access faults (the
// program crashes, as on nil), a request ends with EFAULT on every backend,
// and Block panics. The address space (not the memory) stays taken until the
// process ends.

// Buffers is aligned memory in fixed-size blocks, registered with io_uring
// where it runs. Its methods are safe for concurrent use.
type Buffers struct {
	mem       []byte
	start     uint64 // its address
	blockSize int
	count     int

	lanes []*Context
	idx   []int32 // the buffer-table entry on lanes[i], or -1

	inflight atomic.Int64 // outstanding requests whose Buf lies in mem
	released atomic.Bool
	mu       sync.Mutex // Release
}

// maxBuffers is the most one Buffers may hold: the kernel's limit on one
// registered buffer (1 GiB).
const maxBuffers = 1 << 30

// bufAlign is what blockSize must be a multiple of: the logical block size
// of the devices O_DIRECT is used on (512 bytes; 4096 on some, which a
// multiple of 4096 satisfies).
const bufAlign = 512

// liveBuffers is every Buffers not yet released, copied on write so that
// prepare reads it without a lock.
var (
	liveBuffers   atomic.Pointer[[]*Buffers]
	liveBuffersMu sync.Mutex
)

// NewBuffers maps count blocks of blockSize bytes, page aligned, and
// registers them with c's rings when c runs on uring. blockSize must be a
// positive multiple of 512 and count positive, at most 1 GiB in all (EINVAL
// otherwise); c may be nil (plain aligned memory). A destroyed c is refused
// with EINVAL. The memory is zeroed. Release it with Release.
func NewBuffers(c *Context, blockSize, count int) (*Buffers, error) {
	if blockSize <= 0 || blockSize%bufAlign != 0 || count <= 0 || blockSize > maxBuffers/count {
		return nil, &CallError{Call: "NewBuffers", Errno: syscall.EINVAL,
			Reason: "block size must be a positive multiple of 512, count positive, at most 1 GiB in all"}
	}
	if c != nil && c.shut.Load() {
		return nil, &CallError{Call: "NewBuffers", Errno: syscall.EINVAL, Reason: "Context destroyed", destroyed: true}
	}
	mem, err := mapBuffers(blockSize * count)
	if err != nil {
		return nil, &CallError{Call: "NewBuffers", Errno: errnoOf(err), Reason: "mmap: " + err.Error()}
	}
	b := &Buffers{mem: mem, start: addrOf(mem), blockSize: blockSize, count: count}
	if c != nil {
		b.lanes = c.lanes
		if b.lanes == nil {
			b.lanes = []*Context{c}
		}
	}
	b.idx = make([]int32, len(b.lanes))
	for i, l := range b.lanes {
		b.idx[i] = -1
		l.beMu.RLock()
		if r, ok := l.be.(backend.Registrar); ok {
			if idx, err := r.RegisterBuffer(uintptr(b.start), len(mem)); err == nil {
				b.idx[i] = int32(idx)
			}
		}
		l.beMu.RUnlock()
	}
	liveBuffersMu.Lock()
	var next []*Buffers
	if cur := liveBuffers.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, b)
	liveBuffers.Store(&next)
	liveBuffersMu.Unlock()
	return b, nil
}

// Block returns block i, blockSize bytes with no room beyond them. It panics
// when i is out of range or the Buffers was released.
func (b *Buffers) Block(i int) []byte {
	if b.released.Load() {
		panic("aio: Buffers.Block after Release")
	}
	if i < 0 || i >= b.count {
		panic("aio: Buffers.Block: index out of range")
	}
	lo, hi := i*b.blockSize, (i+1)*b.blockSize
	return b.mem[lo:hi:hi]
}

// BlockSize is the size of each block.
func (b *Buffers) BlockSize() int { return b.blockSize }

// Count is the number of blocks.
func (b *Buffers) Count() int { return b.count }

// Registered reports on how many of its Context's rings the memory is
// registered (0 on kaio and threads, and where registering failed).
func (b *Buffers) Registered() int {
	n := 0
	for _, x := range b.idx {
		if x >= 0 {
			n++
		}
	}
	return n
}

// Release unregisters the memory and takes it back. It fails with a
// *CallError naming Release: EBUSY while a request whose Buf lies in it is
// outstanding, EINVAL when released already. After it the blocks must not be
// used (see the type's lifetime rules).
func (b *Buffers) Release() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released.Load() {
		return &CallError{Call: "Release", Errno: syscall.EINVAL, Reason: "Buffers released already"}
	}
	b.released.Store(true)
	if b.inflight.Load() != 0 {
		// use saw released false and counted itself first: that request
		// runs on this memory.
		b.released.Store(false)
		return &CallError{Call: "Release", Errno: syscall.EBUSY, Reason: "a request on its memory is outstanding"}
	}
	liveBuffersMu.Lock()
	if cur := liveBuffers.Load(); cur != nil {
		var next []*Buffers
		for _, x := range *cur {
			if x != b {
				next = append(next, x)
			}
		}
		liveBuffers.Store(&next)
	}
	liveBuffersMu.Unlock()
	for i, l := range b.lanes {
		if b.idx[i] < 0 {
			continue
		}
		l.beMu.RLock()
		if r, ok := l.be.(backend.Registrar); ok {
			_ = r.UnregisterBuffer(uint16(b.idx[i])) // a closed ring has dropped it
		}
		l.beMu.RUnlock()
	}
	if err := retireBuffers(b.mem); err != nil {
		return &CallError{Call: "Release", Errno: errnoOf(err), Reason: "mprotect: " + err.Error()}
	}
	return nil
}

// use counts a request on b's memory; false when b is being released.
func (b *Buffers) use() bool {
	b.inflight.Add(1)
	if b.released.Load() {
		b.inflight.Add(-1)
		return false
	}
	return true
}

// entry is b's buffer-table entry on lane l, or -1.
func (b *Buffers) entry(l *Context) int32 {
	for i, x := range b.lanes {
		if x == l {
			return b.idx[i]
		}
	}
	return -1
}

// fixedBuf is prepare's look at a read or write buffer (r.Addr, r.Len):
// inside a Buffers it needs no pin, counts as in flight on it, and on a lane
// where it is registered goes as READ_FIXED/WRITE_FIXED. It reports whether
// the buffer is Buffers memory. With mu held.
func (c *Context) fixedBuf(s *slot, r *backend.Req) bool {
	set := liveBuffers.Load()
	if set == nil {
		return false
	}
	for _, b := range *set {
		if r.Addr < b.start || r.Addr+uint64(r.Len) > b.start+uint64(len(b.mem)) {
			continue
		}
		if !b.use() {
			return true // being released: not Go memory, nothing to pin
		}
		s.bufs = b
		if idx := b.entry(c); idx >= 0 {
			r.Fixed |= backend.FixedBuf
			r.BufIndex = uint16(idx)
			c.nFixedBufs.Add(1)
		}
		return true
	}
	return false
}
