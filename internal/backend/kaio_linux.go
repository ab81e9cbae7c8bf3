package backend

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/abi"
)

// kaio is the classic kernel AIO backend: io_setup(2), io_submit(2),
// io_getevents(2) (or the mapped ring, read directly), io_cancel(2),
// io_destroy(2).
//
// What it hides from package aio (the kernel facts of docs/contract.md):
//   - io_submit of a read on an empty pipe blocks inside io_submit and cannot be
//     canceled. So every read and write is submitted with RWF_NOWAIT first;
//     one that would wait comes back with -EAGAIN having moved nothing, and
//     one on a partly cached file stops short at the first uncached page.
//     Such results are posted to the ring during io_submit itself, so Submit
//     looks at the part of the ring its io_submit filled (scanSubmitted) and
//     hands each such request to the pool (stage_linux.go) on a duplicate of
//     its descriptor, while the caller's number still names the caller's file:
//     a pipe or socket waits for readiness on the pool's poller (cancelable),
//     a regular file finishes the transfer on a worker (no goroutine or lock
//     of ours waits for the disk, and it progresses with nobody reaping).
//   - io_submit refuses reads and writes on files without read_iter or
//     write_iter (eventfd writes, /proc files, directories: EINVAL), RWF_NOWAIT
//     on files that cannot honour it (ttys: EOPNOTSUPP), and IOCB_CMD_POLL on
//     files whose poll uses two wait queues (ttys: EINVAL). Those go to the
//     pool too, whose results are what io_uring gives.
//   - io_cancel stops only polls. It returns -1/EINPROGRESS and the canceled
//     poll's event arrives through the ring with res 0, which becomes
//     -ECANCELED. For file I/O and fsync it can only say EINVAL, so Cancel does
//     not even ask.
//   - IOCB_CMD_NOOP is rejected with EINVAL: NOP is completed here, at once.
//   - There is no command for sync_file_range, fallocate or fadvise: each goes
//     to the pool from Submit, on a duplicate of its descriptor, and a worker
//     makes the system call (cancelable while it waits in the pool's queue).
//   - A per-request failure makes io_submit stop at that iocb (returning the
//     count before it, or -1 with its errno if it was first). That iocb's
//     failure becomes its completion, and the rest of the batch is submitted.
//   - io_getevents with min_nr 0 never waits: waiting is done with min_nr 1 and
//     a loop, since the events the kernel returns may all be the backend's own.
type kaio struct {
	ctx      uint64
	ring     aioRingView
	userReap bool

	// mu guards iocbs, st, ptrs and every io_submit and io_cancel.
	mu     sync.Mutex
	iocbs  []abi.IOCB // one per slot, plus the wake poll's at the end
	st     []kstate
	ptrs   []*abi.IOCB
	ptrReq []int32

	wakeFD      int
	wakePending atomic.Bool

	stage stager // requests the pool finishes

	// Used only by the reaper.
	evs    []abi.IOEvent
	waitTS unix.Timespec
}

type kstate struct {
	req      Req
	phase    uint8
	canceled bool
	fresh    bool  // submitted by the Submit call now running
	failRes  int64 // phFail: the result its event is replaced with
}

const (
	phDone     uint8 = iota // not in the kernel
	phTry                   // a read or write sent with RWF_NOWAIT: moving data, or about to say it would wait
	phDirect                // a file read/write/fsync in the kernel: cannot be canceled
	phUserPoll              // an OpPoll
	phPool                  // handed to the pool: its completion comes from there
	phFail                  // its stage could not start (no descriptor left): ends with failRes
)

func newKaio(slots int) (*kaio, error) {
	nr := uint32(slots + 1) // + the wake poll
	var ctx uint64
	if err := ioSetup(nr, &ctx); err != nil {
		return nil, kaioSetupErr(nr, err)
	}
	k := &kaio{
		ctx:    ctx,
		iocbs:  make([]abi.IOCB, slots+1),
		st:     make([]kstate, slots),
		ptrs:   make([]*abi.IOCB, 0, min(slots, 1024)),
		ptrReq: make([]int32, 0, min(slots, 1024)),
		evs:    make([]abi.IOEvent, min(slots+1, 1024)),
	}
	k.ring, k.userReap = viewAioRing(ctx)
	k.stage.wake = k.Wake
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = ioDestroy(ctx)
		return nil, setupErr("eventfd", err)
	}
	k.wakeFD = fd
	if err := k.armWake(); err != nil {
		unix.Close(fd)
		_ = ioDestroy(ctx)
		return nil, setupErr("io_submit wake poll", err)
	}
	return k, nil
}

// kaioSetupErr explains io_setup's refusals: EAGAIN is the fs.aio-max-nr limit.
func kaioSetupErr(nr uint32, err error) error {
	if err == unix.EAGAIN {
		used := strings.TrimSpace(readFile("/proc/sys/fs/aio-nr"))
		limit := strings.TrimSpace(readFile("/proc/sys/fs/aio-max-nr"))
		return fmt.Errorf("io_setup(%d): %w: fs.aio-max-nr exhausted (%s of %s events in use system-wide; "+
			"raise it with sysctl -w fs.aio-max-nr=N, or use fewer or smaller contexts): %w",
			nr, err, used, limit, ErrNotSupported)
	}
	return setupErr(fmt.Sprintf("io_setup(%d)", nr), err)
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "?"
	}
	return string(b)
}

func (k *kaio) Name() string { return "kaio" }

// armWake submits the wake poll (POLLIN on the eventfd). With mu held, or
// before the backend is shared.
func (k *kaio) armWake() error {
	cb := &k.iocbs[len(k.iocbs)-1]
	*cb = abi.IOCB{Data: tagWake, Opcode: abi.IOCB_CMD_POLL, Fildes: uint32(k.wakeFD), Buf: unix.POLLIN}
	for {
		_, err := ioSubmit(k.ctx, []*abi.IOCB{cb})
		if err != unix.EINTR {
			return err
		}
	}
}

func (k *kaio) Submit(reqs []Req, inline []Completion) (int, int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ninl := 0
	k.ptrs, k.ptrReq = k.ptrs[:0], k.ptrReq[:0]
	for i := range reqs {
		r := &reqs[i]
		idx := uint32(r.Tag)
		s := &k.st[idx]
		s.req, s.canceled, s.fresh = *r, false, true
		if r.Op == OpNop {
			// Completed here: no iocb to fill.
			s.phase = phDone
			inline[ninl] = Completion{Tag: r.Tag}
			ninl++
			continue
		}
		cb := &k.iocbs[idx]
		*cb = abi.IOCB{Data: r.Tag, Fildes: uint32(r.FD)}
		switch r.Op {
		case OpPoll:
			s.phase = phUserPoll
			cb.Opcode = abi.IOCB_CMD_POLL
			cb.Buf = uint64(r.PollEvents)
		case OpFsync, OpFdsync:
			s.phase = phDirect
			cb.Opcode = abi.IOCB_CMD_FSYNC
			if r.Op == OpFdsync {
				cb.Opcode = abi.IOCB_CMD_FDSYNC
			}
		case OpSyncFileRange, OpFallocate, OpFadvise:
			// Classic AIO has no command for these. The pool makes the
			// blocking system call on a worker, on a duplicate of the
			// descriptor taken now, while the number names the caller's
			// file; a bad descriptor (EBADF) or none left to duplicate
			// (EMFILE) ends the request at once.
			if res := k.stage.divert(&s.req, poolRun, 0); res != 0 {
				s.phase = phDone
				inline[ninl] = Completion{Tag: r.Tag, Res: res}
				ninl++
			} else {
				s.phase = phPool
			}
			continue
		default:
			// Every read and write goes in directly with RWF_NOWAIT: data in
			// the page cache, O_DIRECT I/O, data already in a pipe, EOF,
			// EBADF and zero-length transfers need nothing more, and no
			// system call is spent finding out what kind of file fd is.
			// What would have to wait, or stopped short, is seen by
			// scanSubmitted below.
			s.phase = phTry
			if r.Nowait() {
				// The caller's own RWF_NOWAIT: its -EAGAIN or short
				// count is the answer (rwflags.go).
				s.phase = phDirect
			}
			prepRW(cb, r, unix.RWF_NOWAIT|r.RWFlags)
		}
		k.ptrs = append(k.ptrs, cb)
		k.ptrReq = append(k.ptrReq, int32(i))
	}
	var tail0 uint32
	if k.userReap {
		tail0 = k.ring.tail.Load()
	}
	for off := 0; off < len(k.ptrs); {
		n, err := ioSubmit(k.ctx, k.ptrs[off:])
		switch {
		case err == nil:
			off += n
		case err == unix.EINTR:
		default:
			// This iocb was refused (bad fd, a file the mechanism cannot
			// serve; EAGAIN, out of kernel request slots, cannot happen:
			// the context was sized for every slot). A refusal the pool
			// can serve goes there; any other is the request's result.
			// Nothing is taken back; the rest of the batch goes in.
			ri := k.ptrReq[off]
			r := &reqs[ri]
			st := &k.st[uint32(r.Tag)]
			res := errRes(err)
			off++
			if refusedByMechanism(st, res) {
				if res = k.stage.divert(&st.req, 0, 0); res == 0 {
					st.phase = phPool
					continue
				}
			}
			st.phase = phDone
			inline[ninl] = Completion{Tag: r.Tag, Res: res}
			ninl++
		}
	}
	if k.userReap {
		k.scanSubmitted(tail0)
	}
	for i := range reqs {
		k.st[uint32(reqs[i].Tag)].fresh = false
	}
	return len(reqs), ninl, nil
}

// refusedByMechanism reports whether io_submit refused st's request for what
// classic AIO cannot do rather than for what is wrong with it: RWF_NOWAIT on a
// file that cannot honour it (EOPNOTSUPP), a file without read_iter/write_iter
// (EINVAL: eventfd writes, /proc files, directories), a poll on a file whose
// poll uses two wait queues (EINVAL: ttys). The pool's result for those is
// the file's own answer: data, EISDIR, or EINVAL after all.
func refusedByMechanism(st *kstate, res int64) bool {
	switch st.phase {
	case phTry:
		return res == -int64(unix.EINVAL) || res == -int64(unix.EOPNOTSUPP) || res == -int64(unix.EAGAIN)
	case phUserPoll:
		return res == -int64(unix.EINVAL)
	}
	return false
}

// scanSubmitted looks at the events io_submit posted while this Submit ran
// (ring positions tail0 up to the tail now), for requests of this Submit that
// came back having moved nothing because they would wait (-EAGAIN), or whose
// file refuses RWF_NOWAIT (-EOPNOTSUPP), or that stopped short in a regular
// file (part of the range not cached). Each is diverted to the pool while the
// caller's fd certainly names the caller's file; the reaper will skip its
// event (phPool).
//
// The scan reads ring memory without consuming it, so it sees these events
// even if a reaper blocked in io_getevents took them already (it handles them
// under mu, which Submit holds). They cannot have been overwritten: the ring
// holds at least twice the requests that can be in flight, and no request is
// submitted again while mu is held.
func (k *kaio) scanSubmitted(tail0 uint32) {
	nr := k.ring.hdr.Nr
	for pos, end := tail0, k.ring.tail.Load(); pos != end; {
		ev := k.ring.events[pos]
		if pos++; pos >= nr {
			pos = 0
		}
		if ev.Data&^tagMask != 0 {
			continue // the wake poll
		}
		s := &k.st[uint32(ev.Data)]
		if s.req.Tag != ev.Data || !s.fresh || s.phase != phTry {
			continue
		}
		var moved int64
		switch res := ev.Res; {
		case res == -int64(unix.EAGAIN) || res == -int64(unix.EOPNOTSUPP):
		case res > 0 && res < reqBytes(&s.req) && isStorage(s.req.FD):
			moved = res
		default:
			continue
		}
		if s.canceled {
			continue // Cancel ran meanwhile (it cannot: mu); the reaper ends it
		}
		if res := k.stage.divert(&s.req, 0, moved); res == 0 {
			s.phase = phPool
		} else {
			// The file cannot be held (EMFILE): end the request with that
			// errno rather than go on by number. Not with the bytes it
			// moved: in the middle of a regular file that short count
			// would read as the end of the file (§3.8).
			s.phase, s.failRes = phFail, res
		}
	}
}

func (k *kaio) Reap(cs []Completion, wait int, timeout time.Duration) (int, error) {
	var deadline time.Time
	if wait > 0 && timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		n := k.stage.take(cs)
		evs := k.evs[:min(len(k.evs), len(cs)-n)]
		if len(evs) == 0 {
			return n, nil
		}
		m := k.fetch(evs)
		if m == 0 {
			if wait <= 0 || n > 0 {
				return n, nil
			}
			var ts *unix.Timespec
			if timeout >= 0 {
				rem := time.Until(deadline)
				if rem <= 0 {
					return 0, nil
				}
				k.waitTS = unix.NsecToTimespec(int64(rem))
				ts = &k.waitTS
			}
			if !k.stage.block() {
				continue
			}
			var err error
			m, err = ioGetevents(k.ctx, min(k.stage.minWait(wait), len(evs)), evs, ts)
			k.stage.unblock()
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("io_getevents: %w", err)
			}
			if m == 0 {
				continue // timed out: the deadline check above returns
			}
		}
		woke := false
		k.mu.Lock()
		for i := range evs[:m] {
			if evs[i].Data == tagWake {
				woke = true
			}
			if k.event(&evs[i], &cs[n]) {
				n++
			}
		}
		k.mu.Unlock()
		if n > 0 || woke {
			return n, nil
		}
	}
}

// fetch takes the events that are there, without waiting: from the mapped ring
// when its layout is known, else with io_getevents(min_nr 0).
func (k *kaio) fetch(evs []abi.IOEvent) int {
	if !k.userReap {
		var zero unix.Timespec
		m, err := ioGetevents(k.ctx, 0, evs, &zero)
		if err != nil {
			return 0
		}
		return m
	}
	nr := k.ring.hdr.Nr
	head := k.ring.head.Load()
	tail := k.ring.tail.Load()
	m := 0
	for head != tail && m < len(evs) {
		evs[m] = k.ring.events[head]
		m++
		if head++; head >= nr {
			head = 0
		}
	}
	if m > 0 {
		k.ring.head.Store(head)
	}
	return m
}

// event turns one io_event into a completion, or handles it as the backend's
// own. It reports whether c was filled. With mu held: st is written by Submit
// and Cancel under mu, and the kernel's hand-over is invisible to the race
// detector, so the reaper reads it under mu too.
func (k *kaio) event(ev *abi.IOEvent, c *Completion) bool {
	if ev.Data == tagWake {
		var b [8]byte
		_, _ = unix.Read(k.wakeFD, b[:])
		if err := k.armWake(); err == nil {
			k.wakePending.Store(false)
		}
		return false
	}
	tag := ev.Data
	s := &k.st[uint32(tag)]
	if s.req.Tag != tag {
		return false // stale
	}
	*c = Completion{Tag: tag, Res: ev.Res}
	switch s.phase {
	case phPool:
		return false // the pool finishes it; this was its first attempt
	case phFail:
		c.Res = s.failRes
	case phUserPoll:
		// A poll that io_cancel stopped completes with res 0.
		if ev.Res == 0 && s.canceled {
			c.Res = -int64(unix.ECANCELED)
		}
	case phTry:
		if ev.Res == -int64(unix.EAGAIN) || ev.Res == -int64(unix.EOPNOTSUPP) {
			return k.slowPath(s, c)
		}
	}
	s.phase = phDone
	return true
}

// prepRW fills cb for a direct read or write of r.
func prepRW(cb *abi.IOCB, r *Req, rwFlags int32) {
	cb.Data = r.Tag
	cb.Fildes = uint32(r.FD)
	cb.Opcode = [...]uint16{OpRead: abi.IOCB_CMD_PREAD, OpWrite: abi.IOCB_CMD_PWRITE,
		OpReadv: abi.IOCB_CMD_PREADV, OpWritev: abi.IOCB_CMD_PWRITEV}[r.Op]
	cb.Buf = r.Addr
	cb.Nbytes = uint64(r.Len)
	cb.Offset = r.Off
	cb.RwFlags = rwFlags
}

// slowPath handles a read or write whose RWF_NOWAIT attempt said it would
// wait after its Submit had returned: asynchronously, which only I/O on a
// block device or O_DIRECT file does (the device was busy). Nothing has moved.
// It is submitted again without RWF_NOWAIT, by number: Submit is over, so this
// is the one stage that cannot be bound to the file, and it only arises for
// storage. A request canceled meanwhile ends -ECANCELED. It reports whether c
// was filled. With mu held.
func (k *kaio) slowPath(s *kstate, c *Completion) bool {
	r := &s.req
	*c = Completion{Tag: r.Tag}
	if s.canceled {
		c.Res = -int64(unix.ECANCELED)
		s.phase = phDone
		return true
	}
	cb := &k.iocbs[uint32(r.Tag)]
	s.phase = phDirect
	prepRW(cb, r, r.RWFlags)
	for {
		_, err := ioSubmit(k.ctx, []*abi.IOCB{cb})
		if err == nil {
			return false
		}
		if err != unix.EINTR {
			c.Res = errRes(err)
			s.phase = phDone
			return true
		}
	}
}

// Cancel wraps io_cancel(2). Only polls can be stopped; for them the answer is
// CancelPending and the poll's event (res 0) follows. Requests the pool has are
// canceled there (queued or waiting for readiness: always).
func (k *kaio) Cancel(tag uint64) (CancelAnswer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cancelLocked(tag), nil
}

func (k *kaio) cancelLocked(tag uint64) CancelAnswer {
	idx := uint32(tag)
	s := &k.st[idx]
	if s.req.Tag != tag {
		return CancelRefused
	}
	switch s.phase {
	case phTry:
		// Its RWF_NOWAIT attempt is moving data (O_DIRECT in flight) or
		// has ended: if it would have had to wait (-EAGAIN), the reaper
		// ends it canceled instead of submitting it again.
		s.canceled = true
		return CancelPending
	case phUserPoll:
		s.canceled = true
		var ev abi.IOEvent
		err := ioCancel(k.ctx, &k.iocbs[idx], &ev)
		if err == unix.EINPROGRESS || err == nil {
			return CancelPending
		}
	case phPool:
		return k.stage.cancel(tag)
	}
	return CancelRefused
}

// CancelMany is io_cancel(2) for each: the kernel has no batch form.
func (k *kaio) CancelMany(tags []uint64, answers []CancelAnswer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, t := range tags {
		answers[i] = k.cancelLocked(t)
	}
	return nil
}

// Wake makes the wake poll fire by writing to its eventfd.
func (k *kaio) Wake() {
	if !k.wakePending.CompareAndSwap(false, true) {
		return
	}
	one := [8]byte{1}
	if _, err := unix.Write(k.wakeFD, one[:]); err != nil {
		k.wakePending.Store(false)
	}
}

// Close wraps io_destroy(2), which also waits for every request (the wake poll
// it cancels) and an RCU grace period.
func (k *kaio) Close() error {
	k.stage.close()
	err := ioDestroy(k.ctx)
	unix.Close(k.wakeFD)
	return err
}
