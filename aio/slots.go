package aio

import (
	"unsafe"

	"github.com/uringaio/uringaio/internal/backend"
)

// Slots: taking, preparing and freeing the slot an accepted IOCB occupies,
// and unpinning its memory.

// unpin lets go of what slot s holds for its request. The usual slot (a NOP,
// a poll, a buffer already unpinned) holds nothing: that test is inlined
// into the callers, and the work is in unpinSlow.
func (c *Context) unpin(s *slot) {
	if s.pinned || s.bufs != nil || s.freg != nil {
		c.unpinSlow(s)
	}
}

func (c *Context) unpinSlow(s *slot) {
	if s.pinned {
		s.pin.Unpin()
		s.pinned = false
	}
	if s.bufs != nil { // buffers.go: one request fewer on its memory
		s.bufs.inflight.Add(-1)
		s.bufs = nil
	}
	if s.freg != nil { // fixedfile.go: one request fewer on the File's entries
		s.freg.leave()
		s.freg = nil
	}
}

// takeSlot takes a free slot for cb: the one cb had last time on this
// Context if it is free — an IOCB reused in a loop then keeps its slot, and
// prepare's stores of its owner and slot are loads — else the one freed last.
// With mu held and c.free not empty.
func (c *Context) takeSlot(cb *IOCB) int32 {
	last := len(c.free) - 1
	idx := c.free[last]
	if prev := cb.slot.Load(); prev != idx && cb.ctx.Load() == c && prev >= 0 && int(prev) < len(c.slots) {
		if at := c.slots[prev].freeAt; at >= 0 {
			c.free[at] = idx // the last one fills prev's place
			c.slots[idx].freeAt = at
			idx = prev
		}
	}
	c.free = c.free[:last]
	c.slots[idx].freeAt = -1
	return idx
}

func (c *Context) freeSlot(idx int32) {
	s := &c.slots[idx]
	s.cb = nil
	s.private = false
	s.canceling = false
	s.done = false
	s.freeAt = int32(len(c.free))
	c.free = append(c.free, idx)
	if c.roomWaiters > 0 {
		c.notifyLocked()
	}
}

// prepare fills slot idx and req for cb. With mu held.
func (c *Context) prepare(idx int32, cb *IOCB, private bool, r *backend.Req) {
	s := &c.slots[idx]
	s.gen = (s.gen + 1) & genMask
	s.cb, s.data, s.fd, s.private = cb, cb.Data, int32(cb.FD), private
	c.subOrder++
	s.order = c.subOrder
	// Not queued (submitDo marks it after this): the slot's previous
	// request may have ended, and freed it, while the round that carried
	// it was still in the backend, before that round could clear the mark.
	s.canceling, s.done, s.answered, s.queued = false, false, false, false
	s.chainNext, s.chainPrev, s.held, s.chainStop, s.chainCanceled, s.kernelChain = -1, -1, false, false, false, false
	if s.wake != nil {
		// A token left by a hand-off its previous Do did not need.
		select {
		case <-s.wake:
		default:
		}
	}
	// Stored only when they change: an IOCB reused on the same Context (the
	// usual case) costs two plain loads, not two atomic stores with a write
	// barrier.
	if cb.ctx.Load() != c {
		cb.ctx.Store(c)
	}
	if cb.slot.Load() != idx {
		cb.slot.Store(idx)
	}
	// Zeroed in place, then filled field by field: a composite literal is
	// built on the stack with narrow stores and copied with wide loads,
	// which stall on store forwarding (measured: a quarter of a NOP's
	// Submit/GetEvents cost at qd 128 once Req had grown to 56 bytes).
	*r = backend.Req{}
	r.Tag, r.Op, r.Hint, r.FD, r.Off, r.PollEvents = s.tag(idx), uint8(cb.Op), cb.hint, int32(cb.FD), cb.Offset, cb.PollEvents
	encodeRange(cb, r) // Len and Flags: ops.go
	r.RWFlags = int32(cb.RWFlags)
	switch cb.Op {
	case OpRead, OpWrite:
		r.Len = uint32(len(cb.Buf))
		c.fixedFileOf(cb, s, r) // fixedfile.go
		if cap(cb.Buf) > 0 {
			p := unsafe.SliceData(cb.Buf)
			r.Addr = uint64(uintptr(unsafe.Pointer(p)))
			if c.fixedBuf(s, r) { // buffers.go: Buffers memory is not Go's
				break
			}
			s.pin.Pin(p)
			s.pinned = true
		}
	case OpReadv, OpWritev:
		s.iov = s.iov[:0]
		for _, b := range cb.Bufs {
			var v iovec
			v.SetLen(len(b))
			if cap(b) > 0 {
				v.Base = unsafe.SliceData(b)
				s.pin.Pin(v.Base)
				s.pinned = true
			}
			s.iov = append(s.iov, v)
		}
		r.Len = uint32(len(s.iov))
		if len(s.iov) > 0 {
			r.Addr = uint64(uintptr(unsafe.Pointer(&s.iov[0])))
			s.pin.Pin(&s.iov[0])
			s.pinned = true
		}
	}
}
