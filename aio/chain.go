package aio

import (
	"context"
	"fmt"
	"io"
	"math"
	"syscall"
	"time"

	"github.com/uringaio/uringaio/internal/backend"
)

// Chains (docs/contract.md §13)
//
// IOCB.Link ties a request to the next IOCB of the same Submit: the next
// starts only after this one succeeded — a read or write that moved every
// byte, any other request that did not fail — and when one fails (or a
// transfer comes back short) every later member ends with -ECANCELED without
// having started. That is io_uring's IOSQE_IO_LINK, and on the uring backend
// the kernel keeps the order (backend/link_linux.go): the chain goes into
// one io_uring_enter. Classic AIO and the threads backend have nothing of
// the kind, so the library keeps the order for them here: a chain's members
// after its head are accepted (slots, pins, one event each) but held back
// (slot.held, their Req in slot.heldReq); when a member ends, chainEnded
// hands the next one to the backend through Do's submission queue (pend,
// submit.go), or ends the rest with -ECANCELED. Holding back is done where
// the completion is routed, so a chain moves on when the Context is reaped
// (GetEvents, Do, DoChain, Cancel, CancelFD, Error), as io_uring's own
// resubmission does (§3.6).
//
// On uring a chain with a read or write of an O_NONBLOCK file is kept by
// the library as well (chainNeedsLibrary): io_uring would end such a
// transfer with -EAGAIN and the chain with it, where the other backends
// wait for readiness.
//
// The same bookkeeping runs on uring, where held means "the kernel has it
// behind an earlier member", so that Cancel, CancelFD and Destroy answer
// alike on every backend: a held member is never sent to the backend's
// cancel (io_uring's ASYNC_CANCEL cannot find a linked request that has not
// started: -ENOENT); it ends with -ECANCELED when the member before it is
// stopped, and otherwise runs.
//
// Why a field and not a SubmitLinked call: one Submit may then carry plain
// requests and several chains together, in one system call, as one
// io_uring_enter carries SQEs with and without IOSQE_IO_LINK; GetEvents,
// Cancel and Error keep working per IOCB; and DoChain is the Do form.

var (
	errSubmitLinkLast   = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "Link set on the last IOCB: a chain must end in the same call"}
	errSubmitChainLen   = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "chain longer than MaxChain or maxEvents"}
	errSubmitChainRange = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "sync_file_range or fadvise of 4 GiB or more in a chain"}
	errDoChainLink      = &CallError{Call: "DoChain", Errno: syscall.EINVAL, Reason: "Link set on the last IOCB"}
	errDoLink           = &CallError{Call: "Do", Errno: syscall.EINVAL, Reason: "Link set: one request ends no chain (DoChain runs one)"}
	errDoChainEmpty     = &CallError{Call: "DoChain", Errno: syscall.EINVAL, Reason: "no IOCB"}
)

// MaxChain is the most requests one chain may hold (and no more than the
// Context's maxEvents).
const MaxChain = backend.MaxChain

// kernelLinks reports whether the backend orders chains itself (uring).
func (c *Context) kernelLinks() bool {
	lb, ok := c.be.(backend.LinkedBackend)
	return ok && lb.KernelLinks()
}

// hasLink reports whether any of cbs asks for a chain.
func hasLink(cbs []*IOCB) bool {
	for _, cb := range cbs {
		if cb != nil && cb.Link {
			return true
		}
	}
	return false
}

// wantOf is what a chain member must return to let the next one start: the
// byte count of a transfer, -1 (anything not negative) for the rest.
func wantOf(cb *IOCB) int64 {
	switch cb.Op {
	case OpRead, OpWrite:
		return int64(len(cb.Buf))
	case OpReadv, OpWritev:
		var n int64
		for _, b := range cb.Bufs {
			n += int64(len(b))
		}
		return n
	}
	return -1
}

// submitLinked is Submit (or DoChain, private) when some IOCB has Link: it
// goes group by group, a group being a chain or a lone request, and accepts
// each whole or stops before it. linkAll makes cbs one chain whatever their
// Link fields say (DoChain). With nothing held.
func (c *Context) submitLinked(cbs []*IOCB, private, linkAll bool) (int, error) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	total := 0
	for len(cbs) > 0 {
		n := 1
		if linkAll {
			n = len(cbs)
		} else {
			for n <= len(cbs) && cbs[n-1] != nil && cbs[n-1].Link {
				n++
			}
			n = min(n, len(cbs))
		}
		err := c.submitGroup(cbs[:n], private, linkAll)
		if err != nil {
			if total == 0 {
				return 0, err
			}
			return total, nil
		}
		total += n
		cbs = cbs[n:]
	}
	return total, nil
}

// checkGroup is Submit's refusals for one group, in §3.3's order: what is
// wrong with an IOCB or the chain (EINVAL), an IOCB outstanding (EBUSY),
// no room for the whole chain (EAGAIN). With mu held.
func (c *Context) checkGroup(g []*IOCB, linkAll bool) error {
	if c.closing {
		return errDestroyed
	}
	for _, cb := range g {
		if err := c.validate(cb); err != nil {
			return err
		}
	}
	last := g[len(g)-1]
	if last.Link && !linkAll {
		return errSubmitLinkLast
	}
	if len(g) > 1 {
		if len(g) > MaxChain || len(g) > c.max {
			return errSubmitChainLen
		}
		for _, cb := range g {
			if (cb.Op == OpSyncFileRange || cb.Op == OpFadvise) && cb.Len > math.MaxUint32 {
				// io_uring's SQE cannot hold it and the pool would take it
				// out of the kernel's chain.
				return errSubmitChainRange
			}
		}
	}
	for _, cb := range g {
		if cb.state.Load() != cbIdle {
			return errSubmitBusy
		}
	}
	if c.outstanding+len(g) > c.max || len(c.free) < len(g) {
		return errSubmitFull
	}
	return nil
}

// submitGroup accepts g (one chain, or one lone request) whole and hands it
// to the backend, or refuses it whole. With subMu held.
func (c *Context) submitGroup(g []*IOCB, private, linkAll bool) error {
	c.mu.Lock()
	if err := c.checkGroup(g, linkAll); err != nil {
		c.mu.Unlock()
		return err
	}
	inKernel := len(g) > 1 && c.kernelLinks() && !chainNeedsLibrary(g)
	reqs := c.reqs[:0]
	idxs := make([]int32, 0, len(g))
	for i, cb := range g {
		if !cb.state.CompareAndSwap(cbIdle, cbOutstanding) {
			// The same IOCB twice in the chain, or submitted meanwhile by
			// another goroutine: give back what this group took, before
			// anything of it was recorded (Error still says "never
			// submitted here").
			for _, u := range g[:i] {
				u.state.Store(cbIdle)
			}
			c.mu.Unlock()
			return errSubmitBusy
		}
	}
	for i, cb := range g {
		idx := c.takeSlot(cb)
		s := &c.slots[idx]
		held := i > 0 && len(g) > 1
		var r *backend.Req
		if held && !inKernel {
			r = &s.heldReq
		} else {
			reqs = append(reqs, backend.Req{})
			r = &reqs[len(reqs)-1]
		}
		c.prepare(idx, cb, private, r)
		if len(g) > 1 {
			if inKernel && i > 0 {
				r.Link |= backend.LinkPrev
			}
			if inKernel && i < len(g)-1 {
				r.Link |= backend.LinkNext
			}
			s.held, s.want, s.kernelChain = held, wantOf(cb), inKernel
			if i > 0 {
				p := &c.slots[idxs[i-1]]
				p.chainNext, p.chainNextGen = idx, s.gen
				s.chainPrev = idxs[i-1]
			}
		}
		idxs = append(idxs, idx)
		c.outstanding++
	}
	// Stats: every member is a request accepted; a held member handed
	// over later is not counted again (chainEnded takes back what combine
	// adds for it).
	c.nSubmits++
	c.nReqs += uint64(len(idxs))
	c.mu.Unlock()

	c.beMu.RLock()
	taken, ninl, berr := c.be.Submit(reqs, c.inl[:len(reqs)])
	c.beMu.RUnlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	if taken == 0 && len(reqs) > 0 {
		// Nothing reached the kernel: the group is refused whole.
		c.nReqs -= uint64(len(idxs))
		for _, idx := range idxs {
			s := &c.slots[idx]
			ucb := s.cb
			s.chainNext, s.held = -1, false
			c.unpin(s)
			c.freeSlot(idx)
			ucb.state.Store(cbIdle)
			c.outstanding--
			c.roomFreed()
		}
		return &CallError{Call: "Submit", Errno: errnoOf(berr), Reason: berr.Error()}
	}
	if ninl > 0 {
		c.route(c.inl[:ninl], nil)
	}
	for i := taken; i < len(reqs); i++ {
		// The ring failed in the middle of the chain (taken counts a
		// prefix): the kernel ended the chain at what it took, so the
		// rest never starts.
		idx := int32(uint32(reqs[i].Tag))
		if s := &c.slots[idx]; s.cb != nil && s.gen == uint32(reqs[i].Tag>>32) && !s.done {
			if c.complete(idx, -int64(syscall.ECANCELED), nil) {
				c.notifyLocked()
			}
		}
	}
	c.kickChains()
	return nil
}

// chainEnded is called when slot idx's request has its final result res:
// the next member of its chain may start, or the rest of the chain ends
// with -ECANCELED. With mu held.
func (c *Context) chainEnded(idx int32, res int64) {
	s := &c.slots[idx]
	nx := s.chainNext
	s.chainNext = -1
	n := &c.slots[nx]
	if n.cb == nil || n.gen != s.chainNextGen || !n.held {
		return // already ended (io_uring posted it first)
	}
	n.held = false
	ok := res >= 0 && (s.want < 0 || res == s.want)
	if n.kernelChain {
		// The kernel starts it, or ends it -ECANCELED, itself. A chain
		// that Destroy or DoChain's context wants stopped: ask the kernel
		// to stop the member it just started; its completion (canceled or
		// not) ends it as usual, and the answer finds nobody waiting for
		// it.
		if ok && (c.closing || n.chainStop) && !c.dead {
			// io-wq ends a request it was running when canceled with
			// -EINTR (§10.5); nothing moved: complete reports -ECANCELED.
			n.chainCanceled = true
			c.beMu.RLock()
			_, _ = c.be.Cancel(n.tag(nx))
			c.beMu.RUnlock()
		}
		return
	}
	if !ok || c.closing || n.chainStop {
		if c.complete(nx, -int64(syscall.ECANCELED), nil) {
			c.notifyLocked()
		}
		return
	}
	c.nReqs-- // combine counts it again
	c.pend = append(c.pend, n.heldReq)
	n.queued = true
	c.chainKick = true
}

// chainNeedsLibrary reports whether chain g must be kept by the library
// even where the kernel could keep it: a read or write on an O_NONBLOCK
// file, which io_uring would end with -EAGAIN (breaking the chain) where
// the other backends wait for readiness (§13.9). One fcntl per transfer.
func chainNeedsLibrary(g []*IOCB) bool {
	for _, cb := range g {
		switch cb.Op {
		case OpRead, OpWrite, OpReadv, OpWritev:
			if cb.RWFlags&backend.RWFNowait == 0 && chainNonblock(cb.FD) {
				return true
			}
		}
	}
	return false
}

// chainCancelAnswer is the kernel's answer to the cancel chainEnded sent
// for slot idx. The predecessor's completion can be posted before the kernel
// has queued the linked request, so the cancel may not find it yet
// (-ENOENT) while it has not ended: ask again, until it is found or ends
// (it is then done, or its slot freed, and the answer is stale). With mu
// held.
func (c *Context) chainCancelAnswer(idx int32, res int64) {
	s := &c.slots[idx]
	if res != -int64(syscall.ENOENT) || s.done || c.dead {
		return
	}
	c.beMu.RLock()
	_, _ = c.be.Cancel(s.tag(idx))
	c.beMu.RUnlock()
}

// kickChains hands over the chain members chainEnded queued, if nobody is
// doing so already. With mu held; released while submitting.
func (c *Context) kickChains() {
	if c.chainKick {
		c.chainKick = false
		c.takeOverSubmit()
	}
}

// chainRoot is the member of held slot idx's chain that runs now (the last
// one not held before it), or -1. With mu held.
func (c *Context) chainRoot(idx int32) int32 {
	for i := 0; i <= MaxChain; i++ {
		s := &c.slots[idx]
		if !s.held {
			return idx
		}
		p := s.chainPrev
		if p < 0 || c.slots[p].cb == nil || c.slots[p].chainNext != idx {
			return -1
		}
		idx = p
	}
	return -1
}

// DoChain runs cbs as one chain (§13) and waits for its end: each request
// starts only after the one before it succeeded, and once one fails, or a
// read or write moves fewer bytes than asked, the rest end with -ECANCELED.
// DoChain links them itself, whatever their Link fields say, except that
// the last must not have Link (EINVAL). The write-ahead log's commit is
// DoChain(ctx, write, fdatasync).
//
// It returns one event per IOCB, in order, once every one has ended, and
// an error that is nil when every request succeeded: otherwise the first
// failure's (ev.Err(); a short read or write wraps io.ErrUnexpectedEOF or
// io.ErrShortWrite). When ctx ends first, DoChain stops the request that
// runs, if it can, and the rest never start; the error then matches
// ctx.Err() and ECANCELED. It waits for room for the whole chain, as Do
// waits for room. Submit's refusals are DoChain's, named "DoChain". On
// threads and classic AIO a chain whose every member is a blocking call of
// the backend's worker (a regular file's read or write, fsync, fdatasync)
// runs on the calling goroutine instead, member after member, with the same
// order and results (caller_sync.go, docs/contract.md §8.5).
func (c *Context) DoChain(ctx context.Context, cbs ...*IOCB) ([]Event, error) {
	if len(cbs) == 0 {
		return nil, errDoChainEmpty
	}
	for _, cb := range cbs {
		if cb == nil {
			return nil, asCall(errSubmitNil, "DoChain")
		}
	}
	if cbs[len(cbs)-1].Link {
		return nil, errDoChainLink
	}
	if err := ctx.Err(); err != nil {
		return nil, &CanceledError{Op: cbs[0].Op, CtxErr: err}
	}
	if evs, ok := c.chainOnCaller(ctx, cbs); ok { // caller_sync.go
		return evs, chainErr(ctx, cbs, evs)
	}
	for {
		_, err := c.submitLinked(cbs, true, true)
		if err == nil {
			break
		}
		switch err {
		case errDestroyed:
			return nil, destroyedRefusal("DoChain", "context destroyed")
		case errSubmitFull:
			if len(cbs) > c.max {
				return nil, asCall(errSubmitChainLen, "DoChain")
			}
			if err := c.waitRoom(ctx); err != nil {
				return nil, &CanceledError{Op: cbs[0].Op, CtxErr: err}
			}
			continue
		}
		return nil, asCall(err, "DoChain")
	}
	idxs := make([]int32, len(cbs))
	gens := make([]uint32, len(cbs))
	c.mu.Lock()
	for i, cb := range cbs {
		idxs[i] = cb.slot.Load()
		gens[i] = c.slots[idxs[i]].gen
	}
	c.mu.Unlock()
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.stopChain(idxs, gens) })
	}
	evs := make([]Event, len(cbs))
	c.mu.Lock()
	if c.slots[idxs[0]].kernelChain {
		// The kernel runs the whole chain: one wait for all of it (the
		// reaper asks io_uring_enter for len(cbs) completions at once)
		// rather than a wake-up per member.
		c.await(&waiter{kind: waitChain, idx: idxs[0], idxs: idxs, gens: gens}, time.Time{}, false, false)
	}
	c.mu.Unlock()
	for i, cb := range cbs {
		c.mu.Lock()
		c.await(&waiter{kind: waitDo, idx: idxs[i], gen: gens[i]}, time.Time{}, false, false)
		s := &c.slots[idxs[i]]
		evs[i] = Event{Data: s.data, IOCB: cb, Res: s.res}
		c.freeSlot(idxs[i])
		c.delivered(cb, s.res)
		c.mu.Unlock()
	}
	if stop != nil {
		stop()
	}
	return evs, chainErr(ctx, cbs, evs)
}

// chainErr is DoChain's error for a chain whose members ended with evs: nil
// when every one succeeded, else the first failure's.
func chainErr(ctx context.Context, cbs []*IOCB, evs []Event) error {
	for i, ev := range evs {
		switch want := wantOf(cbs[i]); {
		case ev.Res == -int64(syscall.ECANCELED) && ctx.Err() != nil:
			return &CanceledError{Op: cbs[i].Op, CtxErr: ctx.Err()}
		case ev.Res < 0:
			return ev.Err()
		case want >= 0 && ev.Res != want:
			short := io.ErrShortWrite
			if cbs[i].Op == OpRead || cbs[i].Op == OpReadv {
				short = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("aio: %s: moved %d of %d bytes: %w", cbs[i].Op, ev.Res, want, short)
		}
	}
	return nil
}

// chainDone is waitChain's test: every member of the chain has its final
// result. w.idx becomes the first member that has not, whose completion
// wakes a DoChain that sleeps (sleepDo). With mu held.
func (c *Context) chainDone(w *waiter) bool {
	for i, idx := range w.idxs {
		s := &c.slots[idx]
		if !(s.gen == w.gens[i] && s.done && !s.canceling) {
			w.idx = idx
			return false
		}
	}
	return true
}

// chainLeft is how many members of w's chain have not ended: the
// completions a reaper waiting for the chain asks the kernel for at once.
// With mu held.
func (c *Context) chainLeft(w *waiter) int {
	n := 0
	for i, idx := range w.idxs {
		if s := &c.slots[idx]; !(s.gen == w.gens[i] && s.done) {
			n++
		}
	}
	return max(n, 1)
}

// stopChain is DoChain's context ending: the members not started yet are
// marked so that they never start, and the one running is canceled as Do's
// request is (cancelFor). It runs in the goroutine context.AfterFunc
// starts.
func (c *Context) stopChain(idxs []int32, gens []uint32) {
	c.mu.Lock()
	run := int32(-1)
	var runGen uint32
	for i, idx := range idxs {
		s := &c.slots[idx]
		if s.cb == nil || s.gen != gens[i] || s.done {
			continue
		}
		s.chainStop = true
		if !s.held && run < 0 {
			run, runGen = idx, gens[i]
		}
	}
	c.mu.Unlock()
	if run >= 0 {
		c.cancelFor(run, runGen)
	}
}
