package aio

import (
	"cmp"
	"slices"
	"syscall"
	"time"

	"github.com/uringaio/uringaio/internal/backend"
)

// CancelResult is CancelFD's answer, as aio_cancel(3) gives it. Its zero
// value, NoCancelResult, is none of the three answers: it is what CancelFD
// returns with an error, where aio_cancel(3) returns -1, so a result read
// before the error is checked cannot be taken for "all canceled".
type CancelResult int

const (
	// NoCancelResult is the zero CancelResult: no answer. CancelFD returns
	// it with every error, and never without one.
	NoCancelResult CancelResult = iota
	// Canceled: every request asked about was canceled (AIO_CANCELED).
	Canceled
	// NotCanceled: at least one could not be canceled; the others were
	// (AIO_NOTCANCELED).
	NotCanceled
	// AllDone: nothing asked about was still in progress (AIO_ALLDONE).
	AllDone
)

func (r CancelResult) String() string {
	switch r {
	case NoCancelResult:
		return "NoCancelResult"
	case Canceled:
		return "Canceled"
	case NotCanceled:
		return "NotCanceled"
	case AllDone:
		return "AllDone"
	}
	return "CancelResult(" + itoa(int64(r)) + ")"
}

// Cancel tries to stop one outstanding request, like io_cancel(2). It wraps
// IORING_OP_ASYNC_CANCEL (by user_data) on io_uring and io_cancel(2) on classic
// AIO, and returns only once the outcome is decided:
//
//   - stopped before any data moved: Event{Res: -ECANCELED}, nil — and that
//     event is never delivered by GetEvents;
//   - could not be stopped (already running, or finished and not yet delivered):
//     EAGAIN, and the event will be delivered by GetEvents exactly once;
//   - nil cb: EFAULT; cb not submitted to this Context, its event already
//     delivered, or the Context destroyed: EINVAL.
//
// A request waiting for readiness (OpPoll; a read or write on a pipe, socket or
// other pollable file) can always be stopped. Regular-file and block-device I/O
// already handed to the kernel can sometimes be stopped by io_uring and never by
// classic AIO or threads. A request started by Do is canceled for Do: its
// result goes to Do, and Cancel returns EAGAIN.
func (c *Context) Cancel(cb *IOCB) (Event, error) {
	if cb == nil {
		return Event{}, errCancelNil
	}
	// A request the kernel has already finished is not running: take what is
	// ready first, so that it is answered EAGAIN (its event waits for
	// GetEvents), not canceled.
	c.mu.Lock()
	c.drainReady()
	c.mu.Unlock()
	// subMu first: a request is chosen for canceling only when no Submit is
	// half done, so that the backend has every request the slots say it has.
	c.subMu.Lock()
	c.mu.Lock()
	var idx int32
	for {
		err := c.cancelCheck(cb)
		if err != nil {
			c.mu.Unlock()
			c.subMu.Unlock()
			return Event{}, err
		}
		idx = cb.slot.Load()
		s := &c.slots[idx]
		if s.queued {
			// Not handed to the backend yet (a Do's request): wait for the
			// round that carries it, then look again.
			c.subMu.Unlock()
			c.waitQueued(idx)
			c.mu.Unlock()
			c.subMu.Lock()
			c.mu.Lock()
			continue
		}
		if !s.canceling {
			break
		}
		// Someone else is canceling it: wait for their outcome, then look again.
		c.subMu.Unlock()
		c.await(&waiter{kind: waitNotCanceling, idx: idx, gen: s.gen}, time.Time{}, false, false)
		c.mu.Unlock()
		c.subMu.Lock()
		c.mu.Lock()
	}
	s := &c.slots[idx]
	if s.held {
		// Behind an earlier member of its chain (§13): not started, and
		// not to be stopped by itself; it ends with the chain.
		c.mu.Unlock()
		c.subMu.Unlock()
		return Event{}, errCancelAgain
	}
	private := s.private
	c.startCancel(idx, cancelOne)
	tag := s.tag(idx)
	c.mu.Unlock()
	c.subMu.Unlock()
	c.beMu.RLock()
	ans, err := c.be.Cancel(tag)
	c.beMu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		ans = backend.CancelRefused
	}
	s.answer = ans
	if ans == backend.CancelRefused {
		c.drainReady()
	}
	c.await(&waiter{kind: waitCancelDecided, idx: idx}, time.Time{}, false, false)
	out, ev := c.finishCancel(idx, cancelOne)
	if out == outStopped && !private {
		return ev, nil
	}
	return Event{}, errCancelAgain
}

// cancelCheck is Cancel's refusals for cb. With mu held.
func (c *Context) cancelCheck(cb *IOCB) error {
	if c.closing {
		return errCancelDestroyed
	}
	if cb.ctx.Load() != c {
		return errCancelForeign
	}
	switch cb.state.Load() {
	case cbIdle:
		return errCancelDelivered
	case cbCompleted, cbInline:
		return errCancelAgain
	}
	if c.slots[cb.slot.Load()].cb != cb {
		// Outstanding, yet not in our slot: it was handed to another Context
		// after its event was delivered here.
		return errCancelForeign
	}
	return nil
}

// startCancel marks slot idx as being canceled. With mu held.
func (c *Context) startCancel(idx int32, kind uint8) {
	s := &c.slots[idx]
	s.canceling, s.cancelKind = true, kind
	s.answer, s.answered, s.answerRes = backend.CancelAsync, false, 0
	s.done, s.res = false, 0
}

// decided reports whether the outcome of canceling s is known. With mu held.
func (s *slot) decided() bool {
	switch s.answer {
	case backend.CancelPending:
		return s.done
	case backend.CancelAsync:
		if !s.answered {
			return false
		}
		if s.answerRes == 0 || s.answerRes == -int64(syscall.EALREADY) {
			// Found (its -ECANCELED is on its way), or running in io-wq
			// where it may yet end canceled or with its data: its own
			// completion decides.
			return s.done
		}
	}
	return true
}

// stopped reports whether the canceled request ended without moving data.
// With mu held, once decided.
func (s *slot) stopped() bool {
	if !s.done {
		return false
	}
	if s.res == -int64(syscall.ECANCELED) {
		return true
	}
	// io-wq may end a found request with -EINTR (or -ERESTARTSYS, normalized);
	// nothing moved either.
	found := s.answer == backend.CancelPending ||
		(s.answer == backend.CancelAsync && (s.answerRes == 0 || s.answerRes == -int64(syscall.EALREADY)))
	return found && s.res == -int64(syscall.EINTR)
}

// cancelOutcome is what canceling one request came to.
type cancelOutcome uint8

const (
	outStopped cancelOutcome = iota // stopped before any data moved
	outDone                         // it had already finished
	outRunning                      // in progress, and it could not be stopped
)

// outcome classifies a decided, not stopped cancellation. With mu held.
//
// Completions that had arrived before the cancel were routed by drainReady,
// so a request chosen as a target was running then, unless the answer says
// otherwise: io_uring posts the completion of a request that finished before
// its cancel ahead of the "not found" answer (doneEarly), and a refusal is
// followed by another drain, which routes a request that has finished.
func (s *slot) outcome() cancelOutcome {
	switch {
	case s.answer == backend.CancelAsync && s.answerRes != 0 && s.doneEarly,
		s.answer == backend.CancelRefused && s.done:
		return outDone
	}
	return outRunning
}

// finishCancel applies a decided cancellation of slot idx. For cancelOne a
// stopped request's event is returned (and not delivered elsewhere); for
// cancelNotify it is delivered as usual with Res -ECANCELED. A request that was
// not stopped is delivered as usual if it has ended, and otherwise stays in
// flight. With mu held.
func (c *Context) finishCancel(idx int32, kind uint8) (cancelOutcome, Event) {
	defer c.kickChains() // chain.go: a chain's next member ended or may start
	defer c.notifyLocked()
	return c.finishCancelQuiet(idx, kind)
}

// finishCancels applies the decided cancellations of every slot in idxs
// (cancelNotify), as finishCancel does for one, with one notify and one
// chain kick for the whole batch. It counts the outcomes; with stopped set,
// it records which slots were stopped. With mu held.
func (c *Context) finishCancels(idxs []int32, stopped map[int32]bool) (nStopped, nRunning int) {
	defer c.kickChains()
	defer c.notifyLocked()
	for _, idx := range idxs {
		switch out, _ := c.finishCancelQuiet(idx, cancelNotify); out {
		case outStopped:
			nStopped++
			if stopped != nil {
				stopped[idx] = true
			}
		case outRunning:
			nRunning++
		}
	}
	return nStopped, nRunning
}

// finishCancelQuiet is finishCancel without its notify and chain kick, which
// the caller owes. With mu held.
func (c *Context) finishCancelQuiet(idx int32, kind uint8) (cancelOutcome, Event) {
	s := &c.slots[idx]
	s.canceling = false
	if s.stopped() {
		if kind == cancelOne && !s.private {
			cb := s.cb
			if s.chainNext >= 0 {
				c.chainEnded(idx, -int64(syscall.ECANCELED)) // chain.go
			}
			c.unpin(s)
			ev := Event{Data: s.data, IOCB: cb, Res: -int64(syscall.ECANCELED)}
			c.freeSlot(idx)
			c.delivered(cb, ev.Res)
			return outStopped, ev
		}
		c.complete(idx, -int64(syscall.ECANCELED), nil)
		return outStopped, Event{}
	}
	out := s.outcome()
	if s.done {
		c.complete(idx, s.res, nil)
	}
	return out, Event{}
}

// CancelFD cancels outstanding requests on fd, like aio_cancel(3): all of them
// when cb is nil, else cb alone. It answers Canceled when every request asked
// about was canceled, NotCanceled when at least one could not be (the others
// were), and AllDone when none was in progress. EBADF: fd is not an open
// descriptor; EINVAL: cb.FD != fd, cb not submitted to this Context, or the
// Context destroyed. With an error the result is always NoCancelResult.
//
// fd is a number, looked up when CancelFD runs, as aio_cancel(3)'s is. Once
// the program has closed the descriptor its requests were submitted on,
// CancelFD answers EBADF and does not reach them (they go on waiting on
// their file); once the number names another file (an open, dup or socket
// since), CancelFD cancels every request submitted with that number, the
// old file's and the new file's alike. POSIX has the same hazard. Cancel(cb)
// reaches a request whatever became of its descriptor, and Destroy ends them
// all: use those when descriptors may have been closed.
//
// Unlike Cancel, the requests it cancels are notified as usual: each one's event,
// with Res == -ECANCELED, is delivered by GetEvents (or to Do). It returns once
// every outcome is decided, so Error reports ECANCELED for them at once.
//
// On io_uring it sends one cancel per request, all in one io_uring_enter:
// IORING_OP_POLL_REMOVE for a poll, IORING_OP_ASYNC_CANCEL for the rest,
// newest first; measured on Linux 6.18 that is several times faster than
// IORING_ASYNC_CANCEL_FD|ALL, whose cost grows with the square of the number
// pending. On classic AIO it calls io_cancel(2) for each, oldest first; only
// requests waiting for readiness can be stopped there.
func (c *Context) CancelFD(fd int, cb *IOCB) (CancelResult, error) {
	if fd < 0 || fd > 1<<31-1 {
		// Never truncated: fd+1<<32 must not name fd.
		return NoCancelResult, errCancelFDBad
	}
	if !fdOpen(fd) {
		return NoCancelResult, errCancelFDBad
	}
	if cb != nil && cb.FD != fd {
		return NoCancelResult, errCancelFDMismatch
	}
	r, err := c.cancelFD(fd, cb)
	if err != nil || cb != nil || c.lanes == nil {
		return r, err
	}
	return c.cancelFDLanes(fd, r), nil
}

// cancelFD is CancelFD on this Context (one lane) once the arguments are
// checked.
func (c *Context) cancelFD(fd int, cb *IOCB) (CancelResult, error) {
	// As in Cancel: what has finished is done, not running; and the targets
	// are chosen with no Submit half done.
	c.mu.Lock()
	c.drainReady()
	c.mu.Unlock()
	c.subMu.Lock()
	c.mu.Lock()
	defer c.mu.Unlock()
	var targets, held []int32
	for {
		if c.closing {
			c.subMu.Unlock()
			return NoCancelResult, errCancelFDDead
		}
		if cb != nil {
			if cb.ctx.Load() != c {
				c.subMu.Unlock()
				return NoCancelResult, errCancelFDForeign
			}
			if cb.state.Load() == cbInline {
				// Do is moving its data on its caller's goroutine:
				// running, and not to be stopped.
				c.subMu.Unlock()
				return NotCanceled, nil
			}
			if cb.state.Load() != cbOutstanding {
				c.subMu.Unlock()
				return AllDone, nil
			}
		}
		targets, held = targets[:0], held[:0]
		if targets == nil {
			// Sized once, by a first pass: no growing slice on a large batch.
			targets = make([]int32, 0, c.countOnFD(fd, cb))
		}
		busy := int32(-1)
		for i := range c.slots {
			s := &c.slots[i]
			if s.cb == nil || s.fd != int32(fd) || (cb != nil && s.cb != cb) || s.done {
				continue
			}
			if s.canceling || s.queued {
				busy = int32(i)
				break
			}
			if s.held {
				held = append(held, int32(i)) // chain.go: not sent to the backend
				continue
			}
			targets = append(targets, int32(i))
		}
		if busy < 0 {
			break
		}
		c.subMu.Unlock()
		if c.slots[busy].queued {
			c.waitQueued(busy)
		} else {
			c.await(&waiter{kind: waitNotCanceling, idx: busy, gen: c.slots[busy].gen}, time.Time{}, false, false)
		}
		c.mu.Unlock()
		c.subMu.Lock()
		c.mu.Lock()
	}
	if len(targets) == 0 && len(held) == 0 {
		c.subMu.Unlock()
		return AllDone, nil
	}
	// A held member counts as canceled when the member of its chain that
	// runs is among the targets and is stopped (it then ends -ECANCELED
	// with the chain), else as not canceled (§13).
	roots := make([]int32, len(held))
	for i, idx := range held {
		roots[i] = c.chainRoot(idx)
	}
	c.startCancels(targets, cancelNotify)
	c.subMu.Unlock()
	if len(targets) > 0 {
		if err := c.cancelSlots(targets); err != nil {
			return NoCancelResult, &CallError{Call: "CancelFD", Errno: errnoOf(err), Reason: err.Error()}
		}
	}
	var stoppedRoots map[int32]bool
	if len(roots) > 0 {
		stoppedRoots = make(map[int32]bool)
	}
	stopped, running := c.finishCancels(targets, stoppedRoots)
	for _, r := range roots {
		if r >= 0 && stoppedRoots[r] {
			stopped++
		} else {
			running++
		}
	}
	switch {
	case running > 0:
		return NotCanceled, nil
	case stopped == 0:
		return AllDone, nil
	}
	return Canceled, nil
}

// countOnFD is how many slots hold an outstanding request on fd (cb's alone
// when cb is not nil): a bound on what cancelFD's scan collects. With mu held.
func (c *Context) countOnFD(fd int, cb *IOCB) int {
	n := 0
	for i := range c.slots {
		s := &c.slots[i]
		if s.cb != nil && s.fd == int32(fd) && (cb == nil || s.cb == cb) && !s.done {
			n++
		}
	}
	return n
}

// startCancels marks the slots in idxs as being canceled, oldest first.
// With mu held, and with no Submit half done (subMu held, or closing).
func (c *Context) startCancels(idxs []int32, kind uint8) {
	// Oldest first: classic AIO's io_cancel looks the request up by walking the
	// context's list of active requests from its oldest, so canceling in
	// submission order keeps a thousand cancels linear instead of quadratic.
	slices.SortFunc(idxs, func(a, b int32) int { return cmp.Compare(c.slots[a].order, c.slots[b].order) })
	for _, idx := range idxs {
		c.startCancel(idx, kind)
	}
}

// cancelSlots asks the backend to cancel every slot in idxs (marked by
// startCancels), as one batch, and waits until each outcome is decided
// (finishCancel applies them). With mu held.
func (c *Context) cancelSlots(idxs []int32) error {
	tags := make([]uint64, len(idxs))
	answers := make([]backend.CancelAnswer, len(idxs))
	for i, idx := range idxs {
		tags[i] = c.slots[idx].tag(idx)
	}
	c.mu.Unlock()
	c.beMu.RLock()
	err := c.be.CancelMany(tags, answers)
	c.beMu.RUnlock()
	c.mu.Lock()
	refused := false
	for i, idx := range idxs {
		c.slots[idx].answer = answers[i]
		refused = refused || answers[i] == backend.CancelRefused
	}
	if refused {
		// A refused request may have finished just now; see it done.
		c.drainReady()
	}
	// In chunks: a waiter looks at every slot of its list after each reap
	// pass, so one waiter over 10,000 slots cost O(n) per pass (a sixth of
	// CancelFD of 10,000 on uring). While the first chunk waits, the
	// passes decide the others too, and their waits then return at once.
	for lo := 0; lo < len(idxs); lo += cancelWaitChunk {
		chunk := idxs[lo:min(lo+cancelWaitChunk, len(idxs))]
		c.await(&waiter{kind: waitAllDecided, idxs: chunk}, time.Time{}, false, false)
	}
	return err
}

// cancelWaitChunk is how many slots one waiter of cancelSlots watches: about
// what one reap pass can decide (c.comps holds up to 1024 completions).
const cancelWaitChunk = 512

// Error reports the state of cb, like aio_error(3): EINPROGRESS while it is
// outstanding, then nil, ECANCELED or the request's errno — also after its event
// was delivered, until cb is submitted again. EINVAL for a nil cb or one never
// submitted to this Context.
func (c *Context) Error(cb *IOCB) error {
	if cb == nil {
		return errErrorNil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cb.ctx.Load() != c {
		return errErrorForeign
	}
	if cb.state.Load() == cbInline {
		return errInProgress
	}
	if cb.state.Load() == cbOutstanding {
		// It may have finished in the kernel with nobody reaping: look, so
		// that polling Error alone sees it end (the aio_error idiom).
		c.poll()
		if cb.ctx.Load() != c || cb.state.Load() == cbOutstanding {
			return errInProgress
		}
	}
	if res := cb.state.result(); res < 0 {
		return syscall.Errno(-res)
	}
	return nil
}

// ---- Destroy ----

func (c *Context) destroy() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return errDestroyTwice
	}
	c.closing = true
	c.shut.Store(true)
	for _, ch := range c.roomQ {
		select { // Do waiting for room: the Context is going
		case ch <- struct{}{}:
		default:
		}
	}
	c.roomQ = c.roomQ[:0]
	c.notifyLocked() // GetEvents waiters return EINVAL; a blocked reaper wakes
	c.mu.Unlock()

	// No Submit is running after this, and none can start (closing is checked
	// under mu inside subMu).
	c.subMu.Lock()
	//lint:ignore SA2001 a barrier, not a critical section
	c.subMu.Unlock()

	c.mu.Lock()
	// And no Do's request waits to be handed over (closing stops new ones).
	c.waitNoneQueued()
	var idxs []int32
	for i := range c.slots {
		s := &c.slots[i]
		if s.cb != nil && !s.canceling && !s.done && !s.held {
			// A held chain member ends with its chain (chain.go).
			idxs = append(idxs, int32(i))
		}
	}
	var err error
	if len(idxs) > 0 {
		c.startCancels(idxs, cancelNotify)
		err = c.cancelSlots(idxs)
		c.finishCancels(idxs, nil)
	}
	// Wait for everything the kernel still holds (requests that could not be
	// canceled, and those other goroutines are canceling or collecting).
	c.roomWaiters++
	c.await(&waiter{kind: waitAllFree}, time.Time{}, false, false)
	c.roomWaiters--
	for c.ready.n > 0 {
		ev := c.ready.pop()
		c.delivered(ev.IOCB, ev.Res)
	}
	c.dead = true
	c.notifyLocked()
	c.mu.Unlock()

	// Take the reaper role for good; a reaper still blocked in the kernel is
	// woken until it lets go.
	for !c.reapMu.TryLock() {
		c.be.Wake()
		time.Sleep(50 * time.Microsecond)
	}
	c.beMu.Lock()
	cerr := c.be.Close()
	c.beMu.Unlock()
	c.reapMu.Unlock()
	live.Delete(c)
	if err == nil {
		err = cerr
	}
	if err != nil {
		return &CallError{Call: "Destroy", Errno: errnoOf(err), Reason: err.Error()}
	}
	return nil
}
