package aio

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/uringaio/uringaio/internal/backend"
)

// Transfers on the caller's goroutine (contract §8.5)
//
// A read of data in the page cache costs one pread(2); a request of any
// backend costs more (a submission, a completion, a wake-up). So a read or a
// buffered write of a file whose data is cached is made on the calling
// goroutine, and only what would wait for the disk becomes a request.
//
// What the library has learned about one file is a heat word (below): for a
// File it lives in the File, which holds its descriptor open; for a raw
// descriptor (Context.ReadAt, WriteAt, Do) in the Context's table indexed by
// descriptor number (fdTable), where the number may since have been closed
// and reused, so what it says is a hint that is checked again (see
// checkFlags).
//
// Reads. A file starts cold: each read first tries preadv2(2) with
// RWF_NOWAIT, which copies cached data or answers EAGAIN (or a short count)
// without waiting; what would wait goes to the backend. After hotAfter tries
// in a row that found everything cached the file is hot, and its reads are a
// plain pread(2) — 4–10 % cheaper than preadv2 — with these safeguards:
//
//   - A plain pread keeps its P (hotPread, RawSyscall), so at most
//     GOMAXPROCS run at once in the process: a file that has gone cold while
//     it is still marked hot blocks at most that many OS threads in pread
//     (and those Ps, and a stop-the-world, wait for one device read each).
//     A shared counter as the gate cost 15 % of a cached read at 32
//     goroutines on 2 cores; writes, which may wait longer, keep one.
//   - One read in sampleEvery, and every read over the bound, is an
//     RWF_NOWAIT try: one that would wait marks the file cold again.
//   - A hot file found cold raises the Context's alarm (callerSide.alarm):
//     the page cache is losing files, and the other hot ones are likely
//     next (a cache dropped, memory reclaimed). While it is up, hot files
//     try one read in alarmSampleEvery, so each notices within a read or
//     two instead of sampleEvery, each of those reads holding a P for a
//     device read meanwhile. Every sampled try that finds its data cached
//     lowers it by one, and alarmTries of them put it down; a warm working
//     set never raises it, and then costs one shared load per read.
//   - O_DIRECT is never read on the caller: a File checks its flags when it
//     is made, a raw descriptor when the table first sees its number and
//     again on every sampled read (F_GETFL costs a quarter of a cached pread
//     here, too much for every call).
//
// On threads and kaio, whose reads that would wait are a blocking call on the
// caller (blocking), a file whose last try would have waited (hMissing) skips
// the try on all but one read in sampleEvery: the blocking read reads cached
// data as cheaply, so a cold file costs one system call per read, not two.
//
// Writes follow §8.3c: RWF_NOWAIT first; a filesystem that refuses it for
// buffered writes (ext4) is remembered, and its writes are a plain pwrite(2)
// under the same gate.

// The heat word's bits.
const (
	hChecked    uint32 = 1 << iota // flags read: not O_DIRECT (fd table: entry valid)
	hNoRead                        // reads never on the caller (O_DIRECT, no offset, RWF_NOWAIT refused)
	hNoWrite                       // writes never on the caller
	hHot                           // recent reads found the data cached: plain pread
	hPlainW                        // RWF_NOWAIT writes refused: plain pwrite
	hNotStorage                    // fd table: not a regular file or block device (no blocking call)
	hStorage                       // fd table: fstat found a regular file or block device (blocking)
	hMissing                       // the last try would have waited: cold reads skip the try (sampled)
	hHitShift   = 8                // bits 8..11: RWF_NOWAIT hits in a row while cold
	hHitMask    = 0xf << hHitShift
)

const (
	// hotAfter RWF_NOWAIT reads in a row that found every byte cached make
	// a file hot.
	hotAfter = 8
	// sampleEvery: one plain read in this many (at random) is an RWF_NOWAIT
	// try instead, and on a raw descriptor also checks its flags.
	sampleEvery = 16
	// alarmSampleEvery is sampleEvery while the alarm is up, and
	// alarmTries sampled tries that find their data cached put it down.
	alarmSampleEvery = 2
	alarmTries       = 64
	// reprobeEvery: a raw descriptor marked "never on the caller" is looked
	// at again once in this many calls: its number may now name another file.
	reprobeEvery = 64
	// maxFDTable bounds the table of raw descriptors; higher numbers always
	// go to the backend.
	maxFDTable = 1 << 20
)

// callerSide is the state a Context and its lanes share for transfers on the
// caller's goroutine.
type callerSide struct {
	off bool // Options.NoInline
	// poolReads (Options.ColdReadsToPool): a buffered read that would wait
	// is the backend's request, never a blocking call on the caller.
	poolReads bool
	fds       fdTable
	// alarm: a hot file was found cold, and hot files sample more often
	// until it counts down to 0 (written only then: a shared load per hot
	// read otherwise).
	alarm atomic.Int32
	// plainW counts callers in a plain pwrite(2) now, at most maxW
	// (GOMAXPROCS at Setup). A plain pread needs no count: it holds its P
	// (hotPread), so GOMAXPROCS bounds it already.
	plainW atomic.Int32
	maxW   int32
	// Blocking transfers (blocking): which storage transfers the backend
	// would make with a blocking call on a pool worker, and how many
	// callers make one now, at most maxB (blockPerWorker per worker).
	block  blockKind
	blockN atomic.Int32
	maxB   int32
	// Stats.Blocking: one shared counter is cheap beside the device
	// read each such transfer waits for.
	nBlocking atomic.Uint64
	// Stats.Inline, counted per P: one shared counter cost 15 % of a cached
	// read at 32 goroutines on 2 cores (its cache line moves between the
	// cores on every read). hints keeps each P on its stripe.
	stripes []stripe
	hints   sync.Pool // *stripe
	next    atomic.Uint32
}

// stripe is one P's share of Stats.Inline, alone on its cache lines.
type stripe struct {
	_ [64]byte
	n atomic.Uint64
	_ [56]byte
}

func newCallerSide(off bool, procs int) *callerSide {
	cs := &callerSide{off: off, maxW: int32(procs), stripes: make([]stripe, max(1, procs))}
	cs.hints.New = func() any { return &cs.stripes[int(cs.next.Add(1)-1)%len(cs.stripes)] }
	return cs
}

// blockKind says which storage transfers a backend makes with one blocking
// system call on a worker of its pool.
type blockKind uint8

const (
	blockNone       blockKind = iota // the kernel moves them all
	blockPlainWrite                  // uring: buffered writes the file system will not do under RWF_NOWAIT (io-wq's)
	blockBuffered                    // kaio: reads and writes that are not O_DIRECT (io_submit takes those)
	blockAll                         // threads: every read and write
)

// blockPerWorker: callers in a blocking call at once, per worker of the
// pool (Options.Workers). The bound keeps a program with thousands of
// goroutines reading the disk from taking a thread each, as os.File would;
// at the bound of one per worker (32 here) 256 and 1024 goroutines of
// O_DIRECT reads ran at 0.69-0.77x os.File on 2 cores, at four per worker
// (128) 0.84-0.87x, past which more threads bought little.
const blockPerWorker = 4

// setBlocking records what backend name's pool does with blocking calls,
// and the bound (blockPerWorker per worker of its pool).
func (cs *callerSide) setBlocking(name string, workers int) {
	switch name {
	case "threads":
		cs.block = blockAll
	case "kaio":
		cs.block = blockBuffered
	case "uring":
		// io_uring reads uncached buffered data and moves O_DIRECT
		// asynchronously; a buffered write that the file system will
		// not do under RWF_NOWAIT (ext4) goes to one of its io-wq
		// workers, which makes the blocking write.
		cs.block = blockPlainWrite
	}
	cs.maxB = int32(blockPerWorker * workers)
}

// blocking makes a storage transfer that would wait for the device on the
// caller's goroutine, as one blocking pread(2) or pwrite(2), where the
// backend would make that same call on a worker of its pool (block): the
// caller is going to wait for it anyway, and a hand-off to a worker and back
// costs two goroutine wake-ups and, worse, with few Ps, a wait for the P that
// a worker in pread keeps until the runtime takes it back (threads reached
// 0.4-0.6x of os.File that way on O_DIRECT reads from 32 goroutines on 2
// Ps). Unlike a hot read it gives up its P, as every Go system call does, so
// it holds a thread, not a P; at most maxB callers of the Context do so at
// once (blockPerWorker per worker of the pool), and past that the
// transfer is a request of the backend. h is the file's heat word, hint the
// File's Req.Hint, or 0 for a raw descriptor, whose kind is asked (fstat)
// and remembered in h until the number's entry is checked again (checkFlags:
// when first seen, on sampled reads and writes, on the reprobes of a number
// marked "never") or a call finds no offset or no RWF_NOWAIT there
// (noCaller): a reused number whose new file has no offset (pipe, socket,
// tty) answers the positional call with ESPIPE, and then goes to the
// backend. ok is false when the transfer is not made here.
func (cs *callerSide) blocking(h *atomic.Uint32, write bool, hint uint8, fd int, p []byte, off int64) (n int, errno syscall.Errno, ok bool) {
	if len(p) == 0 || len(p) > MaxRW || !cs.blockable(h, write, hint, fd) {
		return 0, 0, false
	}
	if !cs.takeBlock() {
		return 0, 0, false
	}
	n, errno = blockingRW(write, fd, p, off)
	cs.blockN.Add(-1)
	if errno == syscall.ESPIPE {
		// No offset: the number names a pipe, socket or tty now. The
		// backend reads it at its position; fstat is asked next time.
		noCaller(h, 0)
		return 0, 0, false
	}
	cs.count()
	cs.nBlocking.Add(1)
	return n, errno, true
}

// takeBlock takes one of the maxB places for a blocking call on a caller
// (blockN.Add(-1) gives it back); false when all are taken.
func (cs *callerSide) takeBlock() bool {
	if cs.blockN.Add(1) > cs.maxB {
		cs.blockN.Add(-1)
		return false
	}
	return true
}

// blockable reports whether a transfer of fd (write or read) is one the
// backend would make with a blocking call on a worker, so that the caller
// may make it instead (blocking), the bound aside. h, hint: as blocking's.
func (cs *callerSide) blockable(h *atomic.Uint32, write bool, hint uint8, fd int) bool {
	if cs.block == blockNone || cs.off {
		return false
	}
	s := h.Load()
	if cs.block == blockPlainWrite && (!write || s&(hPlainW|hNoWrite) != hPlainW) {
		// io_uring: only a write the file system refuses RWF_NOWAIT for
		// (hPlainW, learned by the plain-write path).
		return false
	}
	if cs.block == blockBuffered && (!write && s&hNoRead != 0 || write && s&hNoWrite != 0) {
		// Classic AIO: only a buffered transfer (its pool's); O_DIRECT,
		// which io_submit moves, is marked hNoRead|hNoWrite, as is what
		// has no offset.
		return false
	}
	storage, direct := hint&backend.HintStorage != 0, hint&backend.HintDirect != 0
	switch {
	case hint&backend.HintHeld != 0:
	case s&hNotStorage != 0:
		return false
	case s&hStorage != 0:
		// Found storage since the entry was last checked; kaio's
		// O_DIRECT is hNoRead, so direct matters no more here.
		storage = true
	default:
		if storage, direct = storageFile(fd); !storage {
			h.Or(hNotStorage)
			return false
		}
		h.Or(hStorage)
	}
	if !write && cs.poolReads && !direct && s&hNoRead == 0 {
		// Options.ColdReadsToPool: a buffered read waits in the pool.
		// (A raw O_DIRECT descriptor is marked hNoRead by checkFlags.)
		return false
	}
	return storage && !((cs.block == blockBuffered || cs.block == blockPlainWrite) && direct)
}

// count counts one transfer made on the caller's goroutine.
func (cs *callerSide) count() {
	st := cs.hints.Get().(*stripe)
	st.n.Add(1)
	cs.hints.Put(st)
}

// inlined is Stats.Inline: every transfer made on a caller's goroutine.
func (cs *callerSide) inlined() uint64 {
	var n uint64
	for i := range cs.stripes {
		n += cs.stripes[i].n.Load()
	}
	return n
}

// fdTable holds a heat word per descriptor number.
type fdTable struct {
	mu sync.Mutex
	t  atomic.Pointer[[]atomic.Uint32]
}

// get returns fd's heat word, growing the table if needed; nil for a number
// the table does not cover.
func (ft *fdTable) get(fd int) *atomic.Uint32 {
	if t := ft.t.Load(); t != nil && fd >= 0 && fd < len(*t) {
		return &(*t)[fd]
	}
	if fd < 0 || fd >= maxFDTable {
		return nil
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	old := ft.t.Load()
	if old != nil && fd < len(*old) {
		return &(*old)[fd]
	}
	n := 64
	for n <= fd {
		n *= 2
	}
	t := make([]atomic.Uint32, n)
	if old != nil {
		// A word changed during the copy loses that change: it is a hint,
		// and a lost bit is learned again (a zero word is checked anew).
		for i := range *old {
			t[i].Store((*old)[i].Load())
		}
	}
	ft.t.Store(&t)
	return &t[fd]
}

// checkFlags reads fd's status flags and records in h whether the caller may
// transfer on it (not O_DIRECT). It reports false if it may not, or if the
// descriptor cannot be read (the backend's request then reports why).
func checkFlags(h *atomic.Uint32, fd int) bool {
	_, direct, ok := fileFlags(uintptr(fd))
	if !ok {
		return false
	}
	if direct {
		h.Store(hChecked | hNoRead | hNoWrite)
		return false
	}
	switch s := h.Load(); {
	case s&hChecked == 0 || s&(hNoRead|hNoWrite) != 0:
		// Newly seen, or looked at again after "never": start cold.
		h.Store(hChecked)
	case s&(hNotStorage|hStorage) != 0:
		// The number may name another kind of file now: blocking asks
		// again.
		h.And(^(hNotStorage | hStorage))
	}
	return true
}

// What a transfer on the caller's goroutine came to.
type callerResult uint8

const (
	notTaken callerResult = iota // nothing moved: the whole transfer goes to the backend
	taken                        // finished: n bytes (fewer only at the end of the file), or errno, the file's own answer
	partial                      // n bytes moved; the rest would wait and goes to the backend
)

// callerRead reads p at off on the caller's goroutine if the policy allows.
// raw says h is a descriptor table's word, whose flags must be checked.
func (cs *callerSide) callerRead(h *atomic.Uint32, raw bool, fd int, p []byte, off int64) (n int, errno syscall.Errno, r callerResult) {
	s := h.Load()
	sample := false
	switch {
	case s&hNoRead != 0:
		if !raw || rand.Uint32()%reprobeEvery != 0 || !checkFlags(h, fd) {
			return 0, 0, notTaken
		}
		s = h.Load()
	case raw && s&hChecked == 0:
		if !checkFlags(h, fd) {
			return 0, 0, notTaken
		}
		s = h.Load()
	case s&hHot != 0:
		every := uint32(sampleEvery)
		if cs.alarm.Load() > 0 {
			every = alarmSampleEvery
		}
		sample = rand.Uint32()%every == 0
		if sample && raw && !checkFlags(h, fd) {
			return 0, 0, notTaken
		}
	}
	if s&(hHot|hMissing) == hMissing && cs.blockReads() && rand.Uint32()%sampleEvery != 0 {
		// Its last try would have waited, and so most likely would this
		// one: the blocking read that follows (blocking) reads it, cached
		// or not, at the cost of the try, which is saved. One read in
		// sampleEvery still tries, to notice the data coming into the
		// cache. Not on uring, whose request for a cached page costs more
		// than a try that finds it.
		return 0, 0, notTaken
	}
	if s&hHot != 0 && !sample {
		n, errno = hotPread(fd, p, off)
		if errno == syscall.ESPIPE || errno == syscall.ENOSYS {
			noCaller(h, hNoRead|hNoWrite)
			return 0, 0, notTaken
		}
		cs.count()
		// A plain pread of a regular file is short only at its end.
		return n, errno, taken
	}
	// Cold, or sampled: a try that cannot wait.
	n, errno = tryRead(fd, p, off)
	r = taken
	switch errno {
	case 0:
		switch {
		case n == len(p):
			if s&hHot == 0 {
				heatUp(h)
			} else if cs.alarm.Load() > 0 {
				cs.alarm.Add(-1)
			}
		case n == 0:
			// At or past the end of the file.
		default:
			// A short count stops at the first page that would wait (or
			// at the end of the file): cold.
			cs.cool(h)
			r = partial
		}
	case syscall.EAGAIN:
		cs.cool(h)
		return 0, 0, notTaken
	case syscall.EOPNOTSUPP, syscall.ESPIPE, syscall.ENOSYS:
		// No RWF_NOWAIT here, no offset (pipe, socket), or no preadv2: a
		// plain call could wait without end.
		noCaller(h, hNoRead)
		if errno != syscall.EOPNOTSUPP {
			noCaller(h, hNoWrite)
		}
		return 0, 0, notTaken
	default:
		n = 0 // the file's own answer (EBADF, EISDIR, EINVAL, ...)
	}
	cs.count()
	return n, errno, r
}

// noCaller marks h as never on the caller (bits: hNoRead, hNoWrite): the
// file has no offset or refuses RWF_NOWAIT. A number seen so may name
// another kind of file than fstat last found, so blocking asks again.
func noCaller(h *atomic.Uint32, bits uint32) {
	for {
		s := h.Load()
		if h.CompareAndSwap(s, s&^hStorage|bits) {
			return
		}
	}
}

// heatUp counts one more read that found everything cached; hotAfter in a
// row make the file hot.
func heatUp(h *atomic.Uint32) {
	for {
		s := h.Load()
		if s&(hHot|hNoRead) != 0 {
			return
		}
		hits := (s&hHitMask)>>hHitShift + 1
		t := s&^(hHitMask|hMissing) | hits<<hHitShift
		if hits >= hotAfter && hotReads {
			t = s&^(hHitMask|hMissing) | hHot
		}
		if h.CompareAndSwap(s, t) {
			return
		}
	}
}

// cool records a read that would have waited: the file is cold, and its
// reads skip the try where the blocking call reads it (hMissing). A file
// that was hot raises the alarm.
func (cs *callerSide) cool(h *atomic.Uint32) {
	for {
		s := h.Load()
		t := s&^(hHot|hHitMask) | hMissing
		if t == s || h.CompareAndSwap(s, t) {
			if s&hHot != 0 {
				cs.alarm.Store(alarmTries)
			}
			return
		}
	}
}

// blockReads reports whether a buffered read that would wait is a blocking
// call (threads, kaio): then a cold file's reads skip the try.
func (cs *callerSide) blockReads() bool {
	return cs.block == blockAll || cs.block == blockBuffered
}

// tryRead is a read's RWF_NOWAIT try (inlineRW); a variable so that the
// package's tests can count the tries.
var tryRead = func(fd int, p []byte, off int64) (int, syscall.Errno) {
	return inlineRW(false, fd, p, off)
}

// callerWrite writes p at off on the caller's goroutine if the policy allows
// (§8.3c): RWF_NOWAIT first, a plain pwrite(2) under the gate where the
// filesystem refuses RWF_NOWAIT or the write would wait.
func (cs *callerSide) callerWrite(h *atomic.Uint32, raw bool, fd int, p []byte, off int64) (n int, errno syscall.Errno, r callerResult) {
	s := h.Load()
	switch {
	case s&hNoWrite != 0:
		if !raw || rand.Uint32()%reprobeEvery != 0 || !checkFlags(h, fd) {
			return 0, 0, notTaken
		}
		s = h.Load()
	case raw && (s&hChecked == 0 || rand.Uint32()%sampleEvery == 0):
		if !checkFlags(h, fd) {
			return 0, 0, notTaken
		}
		s = h.Load()
	}
	if s&hPlainW == 0 {
		n, errno = inlineRW(true, fd, p, off)
		switch errno {
		case 0:
			cs.count()
			if n == len(p) {
				return n, 0, taken
			}
			return n, 0, partial
		case syscall.EAGAIN:
			// A buffered write that would wait (a filesystem that does
			// RWF_NOWAIT but must allocate, say) is what pwrite(2) does
			// anyway.
		case syscall.EOPNOTSUPP:
			// ext4's answer to every buffered RWF_NOWAIT write.
			h.Or(hPlainW)
		case syscall.ESPIPE, syscall.ENOSYS:
			noCaller(h, hNoRead|hNoWrite)
			return 0, 0, notTaken
		default:
			cs.count()
			return 0, errno, taken
		}
	}
	// A plain pwrite may wait (for dirty-page throttling), so it gives up
	// its P like any system call: the gate bounds how many run at once.
	if cs.plainW.Add(1) > cs.maxW {
		cs.plainW.Add(-1)
		return 0, 0, notTaken // over the bound: the backend writes it
	}
	defer cs.plainW.Add(-1)
	n, errno, r = 0, 0, taken
	for n < len(p) {
		m, e := plainPwrite(fd, p[n:min(len(p), n+MaxRW)], off+int64(n))
		if e == syscall.ESPIPE && n == 0 {
			noCaller(h, hNoRead|hNoWrite)
			return 0, 0, notTaken
		}
		if e != 0 {
			errno = e
			break
		}
		if m == 0 {
			r = partial // the backend's request reports it
			break
		}
		n += m
	}
	cs.count()
	return n, errno, r
}

// transfer moves p at off on fd: on the caller's goroutine where the policy
// allows (h is the file's heat word; raw says it is a descriptor table's),
// and whatever is left through the backend. c is the Context the call was
// made on (lane 0).
func (c *Context) transfer(ctx context.Context, op Op, h *atomic.Uint32, raw bool, hint uint8, fd int, p []byte, off int64, reg *fileReg) (int, error) {
	if h == nil || len(p) == 0 || ctx.Err() != nil || c.shut.Load() {
		return c.rwAsyncReg(ctx, op, fd, p, off, hint, reg)
	}
	q := p[:min(len(p), MaxRW)]
	var (
		n     int
		errno syscall.Errno
		r     callerResult
	)
	if op == OpRead {
		n, errno, r = c.cs.callerRead(h, raw, fd, q, off)
	} else {
		n, errno, r = c.cs.callerWrite(h, raw, fd, q, off)
	}
	if r == notTaken {
		// What would wait: on the caller too where the backend would
		// make it a blocking call on a worker.
		if n, errno, ok := c.cs.blocking(h, op == OpWrite, hint, fd, p, off); ok {
			r = taken
			if op == OpWrite && errno == 0 && n < len(p) {
				r = partial
			}
			return c.transferRest(ctx, op, h, hint, fd, p, off, reg, n, errno, r)
		}
		return c.rwAsyncReg(ctx, op, fd, p, off, hint, reg)
	}
	return c.transferRest(ctx, op, h, hint, fd, p, off, reg, n, errno, r)
}

// transferRest ends transfer once the caller's goroutine has moved n bytes
// of p (r taken or partial): a short read that was taken is the end of the
// file, and what a partial transfer left is moved by a blocking call where
// the backend would make one, else by the backend.
func (c *Context) transferRest(ctx context.Context, op Op, h *atomic.Uint32, hint uint8, fd int, p []byte, off int64, reg *fileReg, n int, errno syscall.Errno, r callerResult) (int, error) {
	switch {
	case errno != 0:
		return n, &RequestError{Op: op, Errno: errno}
	case n == len(p):
		return n, nil
	case r == taken && op == OpRead:
		return n, io.EOF
	}
	rest := p[n:]
	if m, e, ok := c.cs.blocking(h, op == OpWrite, hint, fd, rest, off+int64(n)); ok {
		switch {
		case e != 0:
			return n, &RequestError{Op: op, Errno: e}
		case m == len(rest):
			return n + m, nil
		case op == OpRead:
			return n + m, io.EOF
		}
		n += m
		rest = rest[m:]
	}
	m, err := c.rwAsyncReg(ctx, op, fd, rest, off+int64(n), hint, reg)
	return n + m, err
}

// doOnCaller is Do's read or write of a regular file on the caller's
// goroutine (§8.5), when the policy allows. While it runs cb is cbInline:
// Submit refuses it (EBUSY), Cancel cannot stop it (EAGAIN), Error reports
// EINPROGRESS. ok false: nothing moved and cb is idle again; Do goes on.
func (c *Context) doOnCaller(cb *IOCB) (ev Event, ok bool) {
	if c.validate(cb) != nil || len(cb.Buf) == 0 || c.shut.Load() {
		return Event{}, false
	}
	h := c.cs.fds.get(cb.FD)
	if h == nil || !cb.state.CompareAndSwap(cbIdle, cbInline) {
		return Event{}, false
	}
	if cb.ctx.Load() != c {
		cb.ctx.Store(c)
	}
	var (
		n     int
		errno syscall.Errno
		r     callerResult
	)
	if cb.Op == OpRead {
		n, errno, r = c.cs.callerRead(h, true, cb.FD, cb.Buf, cb.Offset)
	} else {
		n, errno, r = c.cs.callerWrite(h, true, cb.FD, cb.Buf, cb.Offset)
	}
	if r == notTaken {
		// What would wait: a blocking call here where the backend would
		// make one on a worker (blocking).
		var ok bool
		if n, errno, ok = c.cs.blocking(h, cb.Op == OpWrite, 0, cb.FD, cb.Buf, cb.Offset); !ok {
			cb.state.Store(cbIdle)
			return Event{}, false
		}
		r = taken
		if cb.Op == OpWrite && errno == 0 && n < len(cb.Buf) {
			r = partial
		}
	}
	res := int64(n)
	if r == partial {
		// The rest would wait: a request of the backend finishes it
		// (§3.8), and cannot be stopped now that data has moved, so it
		// does not take ctx.
		// A failure of the device there leaves a short count, as
		// pread(2) reports one; a failure of the mechanism (no descriptor
		// left to hold the file, the Context destroyed) fails the whole
		// request, since a short count would read as the end of the file
		// (§3.8).
		m, err := c.rwAsync(context.Background(), cb.Op, cb.FD, cb.Buf[n:], cb.Offset+int64(n), 0)
		res += int64(m)
		if e := mechanismErrno(err); e != 0 {
			res = -int64(e)
		}
	}
	if errno != 0 {
		res = -int64(errno)
	}
	cb.state.finish(cbIdle, res)
	return Event{Data: cb.Data, IOCB: cb, Res: res}, true
}

// mechanismErrno is the errno of err when it is a failure of the library's
// mechanism rather than the file's own answer: no descriptor left to hold the
// file (EMFILE, ENFILE), no memory, the request canceled or its Context
// destroyed (ECANCELED, EINVAL). 0 otherwise.
func mechanismErrno(err error) syscall.Errno {
	var re *RequestError
	switch {
	case err == nil, err == io.EOF, err == io.ErrShortWrite:
		return 0
	case errors.As(err, &re):
		switch re.Errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ECANCELED:
			return re.Errno
		}
		return 0
	case errors.Is(err, syscall.EINVAL):
		return syscall.EINVAL // the Context was destroyed meanwhile
	}
	return 0
}
