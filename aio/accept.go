package aio

import (
	"syscall"

	"github.com/uringaio/uringaio/internal/backend"
)

// Submit: checking each IOCB (validate) and handing accepted ones to the
// backend in chunks (submit.go is Do's shared submissions).

// ---- Submit ----

func (c *Context) validate(cb *IOCB) error {
	// The usual IOCB, settled by one look at the fields that make it
	// unusual: a NOP, a one-buffer read or write, a sync or a plain poll,
	// with no vector, File, flags or range arguments. Everything else, and
	// every refusal, is validateAll's (which says the same for these).
	if cb != nil && cb.Offset >= 0 && cb.Bufs == nil && cb.file == nil &&
		cb.RWFlags|int(cb.Flags) == 0 && cb.Len == 0 && cb.FD == int(int32(cb.FD)) {
		switch cb.Op {
		case OpNop, OpFsync, OpFdsync:
			return nil
		case OpRead, OpWrite:
			if len(cb.Buf) <= MaxRW {
				return nil
			}
		case OpPoll:
			if cb.PollEvents != 0 && cb.PollEvents < 1<<16 {
				return nil
			}
		}
	}
	return validateAll(cb)
}

// validateAll checks every rule, in the order the refusals are reported.
func validateAll(cb *IOCB) error {
	if cb == nil {
		return errSubmitNil
	}
	if !backend.ValidOp(uint8(cb.Op)) {
		return errSubmitOp
	}
	if cb.Offset < 0 {
		return errSubmitOffset
	}
	if cb.FD < -1<<31 || cb.FD > 1<<31-1 {
		return errSubmitFD
	}
	if cb.Buf != nil && cb.Bufs != nil {
		return errSubmitBoth
	}
	if cb.file != nil {
		if err := cb.file.checkIOCB(cb); err != nil { // fixedfile.go
			return err
		}
	}
	switch cb.Op {
	case OpPoll:
		if cb.PollEvents == 0 {
			return errSubmitPoll
		}
		if cb.PollEvents >= 1<<16 {
			// EPOLLET, EPOLLEXCLUSIVE and the other epoll-only bits mean
			// nothing to a one-shot poll; io_uring would take some and
			// classic AIO refuse them.
			return errSubmitPollBits
		}
	case OpRead, OpWrite:
		if cb.Bufs != nil {
			return errSubmitBoth
		}
		if len(cb.Buf) > MaxRW {
			return errSubmitLen
		}
	case OpReadv, OpWritev:
		if cb.Buf != nil {
			return errSubmitBoth
		}
		if len(cb.Bufs) > MaxIOV {
			return errSubmitIOV
		}
		total := 0
		for _, b := range cb.Bufs {
			if total += len(b); total > MaxRW {
				return errSubmitLen
			}
		}
	}
	if err := checkRWFlags(cb); err != nil { // RWFlags: rwflags.go
		return err
	}
	return checkRange(cb) // Len and Flags: ops.go
}

func (c *Context) submit(cbs []*IOCB) (int, error) {
	return c.submitAs(cbs, false)
}

func (c *Context) submitAs(cbs []*IOCB, private bool) (int, error) {
	if len(cbs) == 0 {
		return 0, nil
	}
	if hasLink(cbs) {
		return c.submitLinked(cbs, private, false) // chain.go
	}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	total := 0
	for len(cbs) > 0 {
		chunk := cbs[:min(len(cbs), len(c.reqs))]
		n, stop, err := c.submitChunk(chunk, private)
		total += n
		if stop {
			if total == 0 {
				return 0, err
			}
			return total, nil
		}
		cbs = cbs[len(chunk):]
	}
	return total, nil
}

// submitChunk submits up to len(c.reqs) IOCBs. stop reports that not all were
// accepted; err is then the first refusal. With subMu held.
func (c *Context) submitChunk(cbs []*IOCB, private bool) (n int, stop bool, err error) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return 0, true, errDestroyed
	}
	k := 0
	for _, cb := range cbs {
		// What is wrong with the IOCB itself (EINVAL, then EBUSY) is reported
		// before capacity (EAGAIN).
		if err = c.validate(cb); err != nil {
			break
		}
		if cb.state.Load() != cbIdle {
			err = errSubmitBusy
			break
		}
		if c.outstanding+k >= c.max || len(c.free) == 0 {
			err = errSubmitFull
			break
		}
		if !cb.state.CompareAndSwap(cbIdle, cbOutstanding) {
			err = errSubmitBusy
			break
		}
		idx := c.takeSlot(cb)
		c.prepare(idx, cb, private, &c.reqs[k])
		k++
	}
	c.outstanding += k
	if k > 0 {
		c.nSubmits++ // before the call, as in combine
		c.nReqs += uint64(k)
	}
	c.mu.Unlock()
	stop = k < len(cbs)
	if k == 0 {
		return 0, true, err
	}

	c.beMu.RLock()
	taken, ninl, berr := c.be.Submit(c.reqs[:k], c.inl[:k])
	c.beMu.RUnlock()

	if taken < k || ninl > 0 {
		c.mu.Lock()
		c.nReqs -= uint64(k - taken)
		for i := taken; i < k; i++ {
			// Never reached the kernel: undo.
			idx := int32(uint32(c.reqs[i].Tag))
			s := &c.slots[idx]
			cb := s.cb
			c.unpin(s)
			c.freeSlot(idx)
			cb.state.Store(cbIdle)
			c.outstanding--
			c.roomFreed()
		}
		if ninl > 0 {
			c.route(c.inl[:ninl], nil)
		}
		c.mu.Unlock()
	}
	if taken < k {
		stop = true
		if taken == 0 {
			err = &CallError{Call: "Submit", Errno: errnoOf(berr), Reason: berr.Error()}
		}
	}
	return taken, stop, err
}

func errnoOf(err error) syscall.Errno {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			return e
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return syscall.EIO
}
