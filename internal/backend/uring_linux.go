package backend

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/abi"
)

// uring is the io_uring backend: io_uring_setup(2), the three mappings,
// io_uring_enter(2) to submit and to wait, IORING_OP_ASYNC_CANCEL to cancel.
//
// What it hides from package aio:
//   - A read or write on a pollable file opened O_NONBLOCK (os.Pipe's files, for
//     one) ends at once with -EAGAIN on io_uring, where classic AIO's poll-first
//     path would wait. On -EAGAIN from such a file the backend arms
//     IORING_OP_POLL_ADD (tag|tagPoll) and reissues the transfer when it fires,
//     so both backends wait for data and both can cancel the wait.
//   - io_uring ties a request to the thread that submitted it and cancels it
//     with -ECANCELED when that thread exits (io_uring_cancel_generic on task
//     exit). A Go thread exits when a goroutine that locked it returns without
//     unlocking. A -ECANCELED the backend did not ask for is therefore such an
//     exit, and the request is submitted again, from the reaping thread; nothing
//     had moved (a canceled request moved no data).
type uring struct {
	fd       int
	m        *uringMaps
	features uint32

	// sqMu guards the SQ tail, pending, and st.
	sqMu    sync.Mutex
	sqTail  uint32
	pending uint32
	st      []ustate

	wakePending atomic.Bool

	// Used only by the reaper (one goroutine at a time).
	cqHead  uint32
	waitArg abi.GeteventsArg
	waitTS  unix.Timespec
}

type ustate struct {
	req      Req
	canceled bool   // Cancel was asked for this tag
	polling  bool   // the readiness poll (tag|tagPoll) is in flight
	id       fileID // the file a request waiting for readiness is on
}

// uringOps are the opcodes the library needs; IORING_REGISTER_PROBE must report
// each as supported.
var uringOps = []struct {
	op   uint8
	name string
}{
	{abi.IORING_OP_NOP, "NOP"}, {abi.IORING_OP_READV, "READV"}, {abi.IORING_OP_WRITEV, "WRITEV"},
	{abi.IORING_OP_FSYNC, "FSYNC"}, {abi.IORING_OP_POLL_ADD, "POLL_ADD"},
	{abi.IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {abi.IORING_OP_READ, "READ"}, {abi.IORING_OP_WRITE, "WRITE"},
}

func pow2(n uint32) uint32 {
	p := uint32(1)
	for p < n {
		p <<= 1
	}
	return p
}

// newUring sets up a ring able to hold slots outstanding requests.
func newUring(slots int) (*uring, error) {
	sq := pow2(uint32(min(slots, 4096)))
	if sq < 8 {
		sq = 8
	}
	// Every slot may have two CQEs alive at once (its own and its cancel's),
	// plus the wake NOP; the ring never overflows.
	cq := pow2(uint32(2*slots + 16))
	if cq > 2*abi.IORING_MAX_ENTRIES {
		cq = 2 * abi.IORING_MAX_ENTRIES
	}
	p := abi.UringParams{Flags: abi.IORING_SETUP_CQSIZE | abi.IORING_SETUP_SUBMIT_ALL, CQEntries: cq}
	fd, err := uringSetup(sq, &p)
	if err == unix.EINVAL {
		// IORING_SETUP_SUBMIT_ALL is 5.18; without it a failing SQE stops the
		// batch, which flush handles by resubmitting the rest.
		p = abi.UringParams{Flags: abi.IORING_SETUP_CQSIZE, CQEntries: cq}
		fd, err = uringSetup(sq, &p)
	}
	if err != nil {
		return nil, setupErr("io_uring_setup", err)
	}
	u := &uring{fd: fd, features: p.Features, st: make([]ustate, slots)}
	fail := func(err error) (*uring, error) {
		if u.m != nil {
			u.m.unmap()
		}
		unix.Close(fd)
		return nil, err
	}
	if p.Features&abi.IORING_FEAT_EXT_ARG == 0 {
		return fail(fmt.Errorf("io_uring lacks IORING_FEAT_EXT_ARG (needs Linux 5.11): %w", ErrNotSupported))
	}
	if p.Features&abi.IORING_FEAT_NODROP == 0 {
		return fail(fmt.Errorf("io_uring lacks IORING_FEAT_NODROP (needs Linux 5.5): %w", ErrNotSupported))
	}
	var pr abi.Probe
	if err := uringProbe(fd, &pr); err != nil {
		return fail(setupErr("IORING_REGISTER_PROBE", err))
	}
	for _, o := range uringOps {
		if o.op > pr.LastOp || pr.Ops[o.op].Flags&abi.IO_URING_OP_SUPPORTED == 0 {
			return fail(fmt.Errorf("io_uring does not support IORING_OP_%s: %w", o.name, ErrNotSupported))
		}
	}
	if u.m, err = mapUring(fd, &p); err != nil {
		return fail(setupErr("mmap io_uring rings", err))
	}
	return u, nil
}

// setupErr wraps a refusal so that it matches both ErrNotSupported and errno.
func setupErr(call string, err error) error {
	var hint string
	switch {
	case errors.Is(err, unix.EPERM):
		hint = " (io_uring disabled by kernel.io_uring_disabled or a seccomp filter)"
	case errors.Is(err, unix.ENOSYS):
		hint = " (the kernel or a seccomp filter does not provide the system call)"
	case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
		hint = " (out of file descriptors: raise RLIMIT_NOFILE)"
	case errors.Is(err, unix.ENOMEM):
		hint = " (out of memory for the rings, or RLIMIT_MEMLOCK too low on kernels before 5.12)"
	}
	return fmt.Errorf("%s: %w%s: %w", call, err, hint, ErrNotSupported)
}

func (u *uring) Name() string { return "uring" }

// sqe returns the next free SQE, zeroed, flushing first when the ring is full.
// Called with sqMu held.
func (u *uring) sqe() (*abi.SQE, error) {
	if u.sqTail-u.m.sqHead.Load() >= u.m.sqEntries {
		if _, err := u.flush(); err != nil {
			return nil, err
		}
	}
	return u.next(), nil
}

// flush publishes the tail and has the kernel consume every pending SQE. It
// returns how many were consumed. On an error that retrying does not cure, the
// SQEs not consumed are taken back (the tail is rewound: the kernel only reads
// between head and tail, and only inside io_uring_enter, which only we call).
// Called with sqMu held.
func (u *uring) flush() (int, error) {
	consumed := 0
	for tries := 0; u.pending > 0; {
		u.m.sqTail.Store(u.sqTail)
		n, err := uringEnter(u.fd, u.pending, 0, 0)
		if n > 0 {
			u.pending -= uint32(n)
			consumed += n
			continue
		}
		if err == nil || err == unix.EINTR || err == unix.EAGAIN || err == unix.EBUSY {
			if tries++; tries < 1000 {
				if tries > 10 {
					time.Sleep(time.Duration(tries) * time.Microsecond)
				}
				continue
			}
			if err == nil {
				err = unix.EAGAIN
			}
		}
		u.sqTail -= u.pending
		u.m.sqTail.Store(u.sqTail)
		u.pending = 0
		return consumed, err
	}
	return consumed, nil
}

// prep fills e for r under tag.
func prep(e *abi.SQE, r *Req, tag uint64) {
	e.Fd = r.FD
	e.UserData = tag
	e.Off = uint64(r.Off)
	switch r.Op {
	case OpRead:
		e.Opcode = abi.IORING_OP_READ
		e.Addr, e.Len = r.Addr, r.Len
	case OpWrite:
		e.Opcode = abi.IORING_OP_WRITE
		e.Addr, e.Len = r.Addr, r.Len
	case OpReadv:
		e.Opcode = abi.IORING_OP_READV
		e.Addr, e.Len = r.Addr, r.Len
	case OpWritev:
		e.Opcode = abi.IORING_OP_WRITEV
		e.Addr, e.Len = r.Addr, r.Len
	case OpFsync:
		e.Opcode = abi.IORING_OP_FSYNC
	case OpFdsync:
		e.Opcode = abi.IORING_OP_FSYNC
		e.OpFlags = abi.IORING_FSYNC_DATASYNC
	case OpPoll:
		e.Opcode = abi.IORING_OP_POLL_ADD
		e.Off = 0
		e.OpFlags = r.PollEvents // poll32_events; on little endian poll_events is its low half
	case OpNop:
		e.Opcode = abi.IORING_OP_NOP
		e.Fd = -1
	}
}

func (u *uring) Submit(reqs []Req, _ []Completion) (int, int, error) {
	u.sqMu.Lock()
	defer u.sqMu.Unlock()
	taken := 0
	for i := range reqs {
		if u.sqTail-u.m.sqHead.Load() >= u.m.sqEntries {
			n, err := u.flush()
			if taken += n; err != nil {
				return taken, 0, err
			}
		}
		r := &reqs[i]
		s := &u.st[uint32(r.Tag)]
		s.req, s.canceled, s.polling = *r, false, false
		e := u.next()
		prep(e, r, r.Tag)
	}
	n, err := u.flush()
	return taken + n, 0, err
}

// next returns the next SQE, zeroed; the caller made sure there is room.
func (u *uring) next() *abi.SQE {
	e := &u.m.sqes[u.sqTail&u.m.sqMask]
	u.sqTail++
	u.pending++
	*e = abi.SQE{}
	return e
}

// resubmit puts the request of s in flight again (after a readiness poll fired,
// or after the kernel canceled it because its thread exited). With sqMu held.
func (u *uring) resubmit(s *ustate) error {
	e, err := u.sqe()
	if err != nil {
		return err
	}
	prep(e, &s.req, s.req.Tag)
	_, err = u.flush()
	return err
}

// armPoll arms the readiness poll in front of s's transfer. With sqMu held.
func (u *uring) armPoll(s *ustate) error {
	e, err := u.sqe()
	if err != nil {
		return err
	}
	e.Opcode = abi.IORING_OP_POLL_ADD
	e.Fd = s.req.FD
	e.UserData = s.req.Tag | tagPoll
	e.OpFlags = unix.POLLIN
	if s.req.Op == OpWrite || s.req.Op == OpWritev {
		e.OpFlags = unix.POLLOUT
	}
	s.polling = true
	_, err = u.flush()
	return err
}

func (u *uring) Reap(cs []Completion, wait int, timeout time.Duration) (int, error) {
	var deadline time.Time
	if wait > 0 && timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		n, woke := u.drain(cs)
		if n > 0 || woke || wait <= 0 || len(cs) == 0 {
			return n, nil
		}
		minc := uint32(min(wait, len(cs), int(u.m.cqEntries)))
		var err error
		if timeout < 0 {
			_, err = uringEnter(u.fd, 0, minc, abi.IORING_ENTER_GETEVENTS)
		} else {
			rem := time.Until(deadline)
			if rem <= 0 {
				n, _ := u.drain(cs)
				return n, nil
			}
			u.waitTS = unix.NsecToTimespec(int64(rem))
			_, err = uringEnterArg(u.fd, minc, abi.IORING_ENTER_GETEVENTS, &u.waitArg, &u.waitTS)
		}
		switch err {
		case nil, unix.EINTR, unix.ETIME, unix.EAGAIN, unix.EBUSY:
		default:
			return 0, fmt.Errorf("io_uring_enter wait: %w", err)
		}
	}
}

// drain turns the CQEs that are there into completions, handling the backend's
// own (wake NOPs, readiness polls, resubmissions) on the way. woke reports a
// wake NOP among them: Reap must then return even with nothing to report.
func (u *uring) drain(cs []Completion) (n int, woke bool) {
	head := u.cqHead
	tail := u.m.cqTail.Load()
	for head != tail && n < len(cs) {
		cqe := u.m.cqes[head&u.m.cqMask]
		head++
		ud, res := cqe.UserData, int64(cqe.Res)
		switch {
		case ud == tagWake:
			u.wakePending.Store(false)
			woke = true
		case ud&tagCancel != 0:
			cs[n] = Completion{Tag: ud & tagMask, Res: res, Kind: KindCancel}
			n++
		case ud&tagPoll != 0:
			if u.afterPoll(ud&^tagPoll, res, &cs[n]) {
				n++
			}
		case res == -int64(unix.EAGAIN) || res == -int64(unix.ECANCELED):
			if u.retry(ud, res, &cs[n]) {
				n++
			}
		default:
			cs[n] = Completion{Tag: ud, Res: res}
			n++
		}
	}
	u.cqHead = head
	u.m.cqHead.Store(head)
	return n, woke
}

// afterPoll handles the readiness poll in front of a transfer: reissue the
// transfer, or end the request. It reports whether c was filled.
func (u *uring) afterPoll(tag uint64, res int64, c *Completion) bool {
	u.sqMu.Lock()
	defer u.sqMu.Unlock()
	s := &u.st[uint32(tag)]
	if s.req.Tag != tag || !s.polling {
		return false // stale
	}
	s.polling = false
	switch {
	case s.canceled:
		res = -int64(unix.ECANCELED)
	case res == -int64(unix.ECANCELED):
		// The thread that armed the poll exited; arm it again. (Nothing
		// else cancels a request we did not cancel: close(2) does not, and
		// the ring lives as long as we do. So this cannot loop unless
		// every thread that reaps exits, and each exit is progress.)
		if err := u.armPoll(s); err == nil {
			return false
		} else {
			res = errRes(err)
		}
	case res >= 0 && !sameFile(s.req.FD, s.id):
		// Closed by the caller while the request waited: it must not touch
		// whatever file has that number now.
		res = -int64(unix.EBADF)
	case res >= 0:
		if err := u.resubmit(s); err == nil {
			return false
		} else {
			res = errRes(err)
		}
	}
	*c = Completion{Tag: tag, Res: res}
	return true
}

// retry handles -EAGAIN (a pollable file opened O_NONBLOCK: wait for readiness)
// and -ECANCELED (ours, or the submitting thread's exit). It reports whether c
// was filled.
func (u *uring) retry(tag uint64, res int64, c *Completion) bool {
	*c = Completion{Tag: tag, Res: res}
	u.sqMu.Lock()
	defer u.sqMu.Unlock()
	s := &u.st[uint32(tag)]
	if s.req.Tag != tag {
		return true
	}
	if s.canceled {
		if res == -int64(unix.EAGAIN) && s.req.isTransfer() {
			c.Res = -int64(unix.ECANCELED)
		}
		return true
	}
	var err error
	switch {
	case res == -int64(unix.EAGAIN):
		if !s.req.isTransfer() || !pollable(s.req.FD) {
			return true
		}
		// Remember the file: the transfer is reissued by number once the
		// poll fires, and the caller may have closed it (and reused the
		// number) meanwhile. See afterPoll.
		s.id, _ = identify(s.req.FD)
		err = u.armPoll(s)
	default:
		// -ECANCELED we did not ask for: the submitting thread exited
		// before the request ended. Nothing moved; submit it again, from
		// this thread, however many times that happens.
		err = u.resubmit(s)
	}
	if err != nil {
		c.Res = errRes(err)
		return true
	}
	return false
}

func (r *Req) isTransfer() bool { return r.Op >= OpRead && r.Op <= OpWritev }

func (u *uring) cancelLocked(tag uint64) (sent bool, err error) {
	s := &u.st[uint32(tag)]
	if s.req.Tag != tag {
		return false, nil
	}
	s.canceled = true
	target := tag
	if s.polling {
		target |= tagPoll
	}
	e, err := u.sqe()
	if err != nil {
		return false, err
	}
	e.Opcode = abi.IORING_OP_ASYNC_CANCEL
	e.Fd = -1
	e.Addr = target
	e.UserData = tag | tagCancel
	return true, nil
}

// Cancel submits IORING_OP_ASYNC_CANCEL keyed by the target's user_data; the
// answer comes as a KindCancel completion.
func (u *uring) Cancel(tag uint64) (CancelAnswer, error) {
	u.sqMu.Lock()
	defer u.sqMu.Unlock()
	sent, err := u.cancelLocked(tag)
	if err != nil || !sent {
		return CancelRefused, err
	}
	if _, err := u.flush(); err != nil {
		return CancelRefused, err
	}
	return CancelAsync, nil
}

// CancelMany puts one ASYNC_CANCEL per target into the ring and submits them
// with one io_uring_enter (more only when they outnumber the SQ). Measured on
// 6.18 this beats IORING_ASYNC_CANCEL_FD|ALL, whose cost grows with the square
// of the number pending.
func (u *uring) CancelMany(tags []uint64, answers []CancelAnswer) error {
	u.sqMu.Lock()
	defer u.sqMu.Unlock()
	// sent[k] is the index in tags of the k-th ASYNC_CANCEL queued.
	var sent []int
	for i, t := range tags {
		answers[i] = CancelRefused
		ok, err := u.cancelLocked(t)
		if err != nil {
			// sqe's flush failed (the ring is unusable): which cancels went
			// in is unknown, so nobody waits for an answer; an answer that
			// does come finds no cancel waiting and is ignored.
			for j := range answers {
				answers[j] = CancelRefused
			}
			return err
		}
		if ok {
			answers[i] = CancelAsync
			sent = append(sent, i)
		}
	}
	before := int(u.pending)
	n, err := u.flush()
	if err != nil {
		// The last before-n were taken back: their answers will not come.
		for _, i := range sent[len(sent)-(before-n):] {
			answers[i] = CancelRefused
		}
	}
	return err
}

// Wake submits a NOP whose completion ends a wait in Reap. At most one is in
// flight.
func (u *uring) Wake() {
	if !u.wakePending.CompareAndSwap(false, true) {
		return
	}
	u.sqMu.Lock()
	defer u.sqMu.Unlock()
	e, err := u.sqe()
	if err != nil {
		u.wakePending.Store(false)
		return
	}
	e.Opcode = abi.IORING_OP_NOP
	e.Fd = -1
	e.UserData = tagWake
	if _, err := u.flush(); err != nil {
		u.wakePending.Store(false)
	}
}

func (u *uring) Close() error {
	u.m.unmap()
	return unix.Close(u.fd)
}

// errRes is err as a negated errno, for a Completion.
func errRes(err error) int64 {
	var e unix.Errno
	if errors.As(err, &e) {
		return -int64(e)
	}
	return -int64(unix.EIO)
}
