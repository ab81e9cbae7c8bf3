package aio

import (
	"time"

	"github.com/uringaio/uringaio/internal/backend"
)

// Submitting for many goroutines at once
//
// Do (and ReadAt, WriteAt, File) is called by many goroutines, one request
// each. Each Do prepares its slot under mu and queues its request in pend;
// the goroutine that finds nobody submitting becomes the combiner and hands
// everything queued to the backend in one Backend.Submit — one
// io_uring_enter or io_submit for what several goroutines queued meanwhile —
// with no lock of ours held across that system call (a page-cached read is
// copied inside it). Requests queued during the call go in the next round. A
// combiner does at most maxCombineRounds rounds for others, then hands the
// role to the owner of the oldest queued request, so that its own Do is not
// held up by everybody else's.
//
// A queued slot (slot.queued) is not yet known to the backend: whoever wants
// to cancel it — Cancel, CancelFD, Do's context, Destroy — first waits until
// the round that carries it has ended (waitQueued), so the backend is never
// asked about a request it has not seen.

const maxCombineRounds = 4

// submitDo accepts cb as Do's request and sees it handed to the backend: by
// this goroutine, or by the combiner running when it was queued. The
// refusals are Submit's, in the same order.
func (c *Context) submitDo(cb *IOCB) error {
	if err := c.validate(cb); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing:
		return errDestroyed
	case cb.state.Load() != cbIdle:
		return errSubmitBusy
	case c.outstanding >= c.max || len(c.free) == 0:
		return errSubmitFull
	case !cb.state.CompareAndSwap(cbIdle, cbOutstanding):
		return errSubmitBusy
	}
	idx := c.takeSlot(cb)
	c.outstanding++
	c.pend = append(c.pend, backend.Req{})
	c.prepare(idx, cb, true, &c.pend[len(c.pend)-1])
	c.slots[idx].queued = true
	if !c.submitting {
		c.combine()
	}
	return nil
}

// combine hands the queued requests to the backend, round after round, until
// none is left or it has done maxCombineRounds. With mu held; it is released
// during the backend call.
func (c *Context) combine() {
	c.submitting = true
	for round := 0; len(c.pend) > 0; round++ {
		if round == maxCombineRounds {
			// Enough done for others: the owner of the oldest queued
			// request takes over (its await loop calls combine).
			// Whoever reaps looks too: the owner may be the reaper, about
			// to wait in the kernel for the very request still queued.
			c.submitting = false
			c.wakeDo(int32(uint32(c.pend[0].Tag)))
			c.kickReaper()
			return
		}
		batch := c.pend
		c.pend = c.pendSpare[:0]
		inl := c.pendInl[:len(batch)]
		// Counted before the call: a request may complete, and its Do
		// return, before Submit does, and Stats read after every call has
		// returned must count it.
		c.nSubmits++
		c.nReqs += uint64(len(batch))
		c.mu.Unlock()
		if c.roundHook != nil {
			c.roundHook(true)
		}
		c.beMu.RLock()
		taken, ninl, err := c.be.Submit(batch, inl)
		c.beMu.RUnlock()
		if c.roundHook != nil {
			c.roundHook(false)
		}
		c.mu.Lock()
		c.nReqs -= uint64(len(batch) - taken)
		for i := range batch {
			// Only if the slot still holds this request: one that ended
			// while the round was in the backend may have freed its slot,
			// and a request queued for the next round may hold it now.
			idx := int32(uint32(batch[i].Tag))
			if s := &c.slots[idx]; s.tag(idx) == batch[i].Tag {
				s.queued = false
			}
		}
		for i := taken; i < len(batch); i++ {
			// It never reached the kernel (the backend's ring failed): the
			// request ends with that errno, which its Do returns.
			c.complete(int32(uint32(batch[i].Tag)), -int64(errnoOf(err)), nil)
		}
		if ninl > 0 {
			c.route(inl[:ninl], nil)
		}
		c.pendSpare = batch[:0]
		if c.queuedWaiters > 0 {
			c.notifyLocked()
		}
	}
	c.submitting = false
}

// takeOverSubmit runs the combiner if requests are queued and nobody submits
// them (a combiner handed the role over). With mu held.
func (c *Context) takeOverSubmit() {
	if !c.submitting && len(c.pend) > 0 {
		c.combine()
	}
}

// waitQueued waits until slot idx's request has been handed to the backend.
// With mu held; released while waiting.
func (c *Context) waitQueued(idx int32) {
	for c.slots[idx].queued {
		c.takeOverSubmit()
		if !c.slots[idx].queued {
			return
		}
		c.queuedWaiters++
		c.waitLocked(time.Time{}, false)
		c.queuedWaiters--
	}
}

// waitNoneQueued waits until nothing is queued and no round is running
// (Destroy, once closing stops new requests). With mu held.
func (c *Context) waitNoneQueued() {
	for c.submitting || len(c.pend) > 0 {
		c.takeOverSubmit()
		if !c.submitting && len(c.pend) == 0 {
			return
		}
		c.queuedWaiters++
		c.waitLocked(time.Time{}, false)
		c.queuedWaiters--
	}
}
