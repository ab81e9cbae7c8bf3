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
// What it hides from package aio (the kernel facts of SPEC §10):
//   - io_submit of a read on an empty pipe blocks inside io_submit and cannot be
//     canceled. So every read and write is submitted with RWF_NOWAIT first;
//     one that would wait comes back with -EAGAIN having moved nothing. On a
//     pollable file (pipe, socket, eventfd, character device) the backend then
//     waits with IOCB_CMD_POLL (tag|tagPoll); when the poll fires, the reaper
//     moves the data itself with preadv2/pwritev2 and RWF_NOWAIT, and arms the
//     poll again if that finds nothing. The wait is thus a poll, which io_cancel
//     can stop. On a regular file or block device it is submitted again
//     plainly.
//   - io_cancel stops only polls. It returns -1/EINPROGRESS and the canceled
//     poll's event arrives through the ring with res 0, which becomes
//     -ECANCELED. For file I/O and fsync it can only say EINVAL, so Cancel does
//     not even ask.
//   - IOCB_CMD_NOOP is rejected with EINVAL: NOP is completed here, at once.
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

	// Used only by the reaper.
	evs    []abi.IOEvent
	waitTS unix.Timespec
}

type kstate struct {
	req      Req
	phase    uint8
	canceled bool
	plain    bool   // the file refuses RWF_NOWAIT: after readiness, transfer plainly
	id       fileID // phPollWait: the file the request was submitted on
}

const (
	phDone     uint8 = iota // not in the kernel
	phTry                   // a read or write sent with RWF_NOWAIT: it ends without waiting
	phDirect                // a file read/write/fsync in the kernel: cannot be canceled
	phUserPoll              // an OpPoll
	phPollWait              // the readiness poll in front of a transfer
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
		s.req, s.canceled, s.plain = *r, false, false
		cb := &k.iocbs[idx]
		*cb = abi.IOCB{Data: r.Tag, Fildes: uint32(r.FD)}
		switch r.Op {
		case OpNop:
			s.phase = phDone
			inline[ninl] = Completion{Tag: r.Tag}
			ninl++
			continue
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
		default:
			// Every read and write goes in directly with RWF_NOWAIT: data in
			// the page cache, O_DIRECT I/O, data already in a pipe, EOF,
			// EBADF and zero-length transfers need nothing more, and no
			// system call is spent finding out what kind of file fd is. Only
			// a request that would have to wait comes back with -EAGAIN (or
			// -EOPNOTSUPP from a file without RWF_NOWAIT), and slowPath then
			// decides: a readiness poll for a pipe or socket, a plain
			// resubmission for storage.
			s.phase = phTry
			prepRW(cb, r, unix.RWF_NOWAIT)
		}
		k.ptrs = append(k.ptrs, cb)
		k.ptrReq = append(k.ptrReq, int32(i))
	}
	for off := 0; off < len(k.ptrs); {
		n, err := ioSubmit(k.ctx, k.ptrs[off:])
		switch {
		case err == nil:
			off += n
		case err == unix.EINTR:
		default:
			// This iocb failed (bad fd, bad request; EAGAIN, out of kernel
			// request slots, cannot happen: the context was sized for every
			// slot): that is its result, unless it was refused for
			// RWF_NOWAIT, which slowPath handles. Nothing is taken back.
			ri := k.ptrReq[off]
			r := &reqs[ri]
			st := &k.st[uint32(r.Tag)]
			res := errRes(err)
			off++
			if st.phase == phTry && (res == -int64(unix.EOPNOTSUPP) || res == -int64(unix.EAGAIN)) {
				var c Completion
				if !k.slowPath(st, res, &c) {
					continue
				}
				res = c.Res
			}
			st.phase = phDone
			inline[ninl] = Completion{Tag: r.Tag, Res: res}
			ninl++
		}
	}
	return len(reqs), ninl, nil
}

func (k *kaio) Reap(cs []Completion, wait int, timeout time.Duration) (int, error) {
	var deadline time.Time
	if wait > 0 && timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		evs := k.evs[:min(len(k.evs), len(cs))]
		if len(evs) == 0 {
			return 0, nil
		}
		m := k.fetch(evs)
		if m == 0 {
			if wait <= 0 {
				return 0, nil
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
			var err error
			m, err = ioGetevents(k.ctx, min(wait, len(evs)), evs, ts)
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
		n, woke := 0, false
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
	tag := ev.Data &^ tagPoll
	s := &k.st[uint32(tag)]
	if s.req.Tag != tag {
		return false // stale
	}
	*c = Completion{Tag: tag, Res: ev.Res}
	switch s.phase {
	case phUserPoll:
		// A poll that io_cancel stopped completes with res 0.
		if ev.Res == 0 && s.canceled {
			c.Res = -int64(unix.ECANCELED)
		}
		// The kernel's wake-up fast path (aio_poll_wake) reports the whole
		// mask, POLLRDNORM and all; io_uring masks it with the events asked
		// for plus POLLERR and POLLHUP, and so do we.
		if c.Res > 0 {
			c.Res &= int64(s.req.PollEvents | unix.POLLERR | unix.POLLHUP)
		}
		s.phase = phDone
		return true
	case phPollWait:
		return k.afterPoll(s, ev.Res, c)
	case phTry:
		if ev.Res == -int64(unix.EAGAIN) || ev.Res == -int64(unix.EOPNOTSUPP) {
			return k.slowPath(s, ev.Res, c)
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

// slowPath handles a read or write that RWF_NOWAIT sent back (-EAGAIN: it
// would wait; -EOPNOTSUPP: the file has no RWF_NOWAIT). Nothing has moved. A
// pipe, socket or other pollable file waits for readiness with IOCB_CMD_POLL
// (which io_cancel can stop); a regular file or block device is submitted
// again plainly (uncached buffered data: classic AIO then does the I/O inside
// io_submit). It reports whether c was filled. With mu held.
func (k *kaio) slowPath(s *kstate, res int64, c *Completion) bool {
	r := &s.req
	*c = Completion{Tag: r.Tag}
	if s.canceled {
		c.Res = -int64(unix.ECANCELED)
		s.phase = phDone
		return true
	}
	isPollable, id, errno := fileKind(r.FD)
	cb := &k.iocbs[uint32(r.Tag)]
	switch {
	case errno != 0:
		c.Res = -int64(errno)
		s.phase = phDone
		return true
	case isPollable:
		// The poll holds the file itself; the transfer after it goes by
		// number, so it first checks that the number still names this file
		// (the caller may close it and reuse the number meanwhile) and ends
		// with -EBADF if not. (A duplicate descriptor per waiting request
		// would close even the microseconds between check and transfer, but
		// would double a server's descriptors and fail with EMFILE where
		// io_uring does not.)
		s.id = id
		s.plain = res == -int64(unix.EOPNOTSUPP)
		s.phase = phPollWait
		*cb = abi.IOCB{Data: r.Tag | tagPoll, Opcode: abi.IOCB_CMD_POLL, Fildes: uint32(r.FD), Buf: unix.POLLIN}
		if r.Op == OpWrite || r.Op == OpWritev {
			cb.Buf = unix.POLLOUT
		}
	default:
		s.phase = phDirect
		prepRW(cb, r, 0)
	}
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

// afterPoll moves the data once the readiness poll fired, or re-arms the poll.
// With mu held.
func (k *kaio) afterPoll(s *kstate, res int64, c *Completion) bool {
	if s.phase != phPollWait {
		return false
	}
	switch {
	case s.canceled || res == 0:
		c.Res = -int64(unix.ECANCELED)
	case res < 0:
	case !sameFile(s.req.FD, s.id):
		// Closed by the caller (and the number perhaps reused) while the
		// request waited: it must not touch whatever file has it now.
		c.Res = -int64(unix.EBADF)
	default:
		got, done := k.transfer(s, s.req.FD)
		if !done {
			// Someone else took the data; wait again.
			cb := &k.iocbs[uint32(s.req.Tag)]
			for {
				_, err := ioSubmit(k.ctx, []*abi.IOCB{cb})
				if err == nil {
					return false
				}
				if err != unix.EINTR {
					got = errRes(err)
					break
				}
			}
		}
		c.Res = got
	}
	s.phase = phDone
	return true
}

// transfer moves s's data on fd without waiting. done is false when it must
// wait for readiness (-EAGAIN, or a file that refuses RWF_NOWAIT before any
// readiness poll said it was ready).
func (k *kaio) transfer(s *kstate, fd int32) (got int64, done bool) {
	r := &s.req
	write := r.Op == OpWrite || r.Op == OpWritev
	for {
		flags := unix.RWF_NOWAIT
		if s.plain {
			flags = 0
		}
		if r.Op == OpRead || r.Op == OpWrite {
			got = rw1(write, fd, r.Addr, r.Len, flags)
		} else {
			got = rwv2(write, fd, r.Addr, r.Len, flags)
		}
		switch got {
		case -int64(unix.EINTR):
			continue
		case -int64(unix.EAGAIN):
			return got, false
		case -int64(unix.EOPNOTSUPP):
			if s.plain {
				return got, true
			}
			// RWF_NOWAIT refused (a tty, some character devices): transfer
			// plainly, but only once a readiness poll said the file is ready.
			s.plain = true
			if s.phase != phPollWait {
				return got, false
			}
			continue
		}
		return got, true
	}
}

// Cancel wraps io_cancel(2). Only polls can be stopped; for them the answer is
// CancelPending and the poll's event (res 0) follows. A readiness poll whose
// event is already in the ring is stopped too: the reaper sees the cancel and
// moves no data.
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
		// It ends without waiting, and its event may be in the ring: if it
		// would have had to wait (-EAGAIN), the reaper ends it canceled
		// instead of waiting; if it moved data, it was not canceled.
		s.canceled = true
		return CancelPending
	case phUserPoll, phPollWait:
		s.canceled = true
		var ev abi.IOEvent
		err := ioCancel(k.ctx, &k.iocbs[idx], &ev)
		if err == unix.EINPROGRESS || err == nil || s.phase == phPollWait {
			return CancelPending
		}
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
	err := ioDestroy(k.ctx)
	unix.Close(k.wakeFD)
	return err
}
