package aio

import (
	"syscall"
	"time"

	"github.com/uringaio/uringaio/internal/backend"
)

// Routing: each completion to its owner (GetEvents, a Do, a canceler), and
// GetEvents with its ready queue.

// ---- routing ----

// normalize maps kernel-internal restart codes to -EINTR.
func normalize(res int64) int64 {
	switch res {
	case -512, -513, -514, -516: // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK
		return -int64(syscall.EINTR)
	}
	return res
}

// route delivers completions. With mu held.
func (c *Context) route(cs []backend.Completion, sk *sink) {
	changed := false
	for i := range cs {
		cp := &cs[i]
		idx := int32(uint32(cp.Tag))
		if int(idx) >= len(c.slots) {
			continue
		}
		s := &c.slots[idx]
		if s.cb == nil || uint64(s.gen) != cp.Tag>>32 {
			continue // stale
		}
		if cp.Kind == backend.KindCancel {
			// io_uring posts a target's completion before the answer to a
			// cancel that did not find it, so done here means the request
			// had finished before the cancel was tried.
			s.answered, s.answerRes, s.doneEarly = true, cp.Res, s.done
			changed = true
			if s.chainCanceled && !s.canceling {
				c.chainCancelAnswer(idx, cp.Res) // chain.go
			}
			continue
		}
		res := normalize(cp.Res)
		if s.canceling {
			s.done, s.res = true, res
			changed = true
			continue
		}
		if c.complete(idx, res, sk) {
			changed = true
		}
	}
	if changed {
		c.notifyLocked()
	}
	c.kickChains() // chain.go
}

// complete ends slot idx's request with res and sends the event its way. It
// reports whether anyone else may need to know (a notify is due). With mu held.
func (c *Context) complete(idx int32, res int64, sk *sink) bool {
	s := &c.slots[idx]
	cb := s.cb
	c.unpin(s)
	if cb.Op == OpPoll && res > 0 {
		// Only what was asked for, plus the conditions poll(2) always
		// reports, on every backend: io_uring adds POLLRDHUP and classic
		// AIO POLLRDNORM when the wake-up carries them.
		res &= int64(cb.PollEvents | pollAlways)
	}
	if cb.RWFlags != 0 {
		res = rwResult(cb, res) // rwflags.go
	}
	if s.chainCanceled && res == -int64(syscall.EINTR) {
		res = -int64(syscall.ECANCELED) // chain.go: io-wq's answer to our cancel
	}
	if s.chainNext >= 0 {
		c.chainEnded(idx, res) // chain.go: the next member starts, or ends
	}
	if s.private {
		s.done, s.res = true, res
		cb.state.finish(cbCompleted, res)
		// Only its Do needs to know. If that Do is the reaper, blocked in
		// the kernel while someone else routes this, wake the kernel wait.
		c.wakeDo(idx)
		if idx == c.reaperSlot {
			c.kickReaper()
		}
		return false
	}
	ev := Event{Data: s.data, IOCB: cb, Res: res}
	c.freeSlot(idx)
	if sk != nil && c.ready.n == 0 && sk.n < len(sk.events) {
		sk.events[sk.n] = ev
		sk.n++
		c.delivered(cb, res)
		return false
	}
	cb.state.finish(cbCompleted, res)
	c.ready.push(ev)
	return true
}

// delivered marks cb's event, whose result is res, as handed to the caller:
// the state and the result in one store (cbWord.finish). With mu held.
func (c *Context) delivered(cb *IOCB, res int64) {
	cb.state.finish(cbIdle, res)
	c.outstanding--
	c.roomFreed()
}

// roomFreed says that one request fewer is outstanding: the oldest Do waiting
// for room is woken (one, not all: a thousand goroutines waiting on a Context
// of 256 must not all wake for every completion), and Destroy if it waits.
// With mu held.
func (c *Context) roomFreed() {
	if c.roomWaiters > 0 || len(c.roomQ) > 0 { // inlined: nobody waits, usually
		c.wakeRoom()
	}
}

func (c *Context) wakeRoom() {
	if c.roomWaiters > 0 {
		c.notifyLocked()
	}
	if n := len(c.roomQ); n > 0 {
		ch := c.roomQ[0]
		copy(c.roomQ, c.roomQ[1:])
		c.roomQ = c.roomQ[:n-1]
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// ---- GetEvents ----

func (c *Context) getEvents(minNr int, events []Event, timeout *time.Duration) (int, error) {
	if minNr < 0 || minNr > len(events) {
		return 0, errGetArgs
	}
	var deadline time.Time
	hasDeadline := timeout != nil
	if hasDeadline {
		deadline = time.Now().Add(*timeout)
	}
	sk := sink{events: events}
	w := waiter{kind: waitEvents, sk: &sk, min: minNr}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return 0, errGetDestroyed
	}
	w.satisfied(c)
	// Collect what the kernel already has, up to len(events), without waiting.
	if sk.n < len(events) && c.reapMu.TryLock() {
		c.mu.Unlock()
		n, _ := c.be.Reap(c.comps[:min(len(c.comps), len(events)-sk.n)], 0, 0)
		c.mu.Lock()
		if n > 0 {
			c.route(c.comps[:n], &sk)
		}
		c.reapMu.Unlock()
		c.handOff()
	}
	c.await(&w, deadline, hasDeadline, true)
	if c.closing || c.dead {
		// Destroy interrupted the wait. What it gathered meanwhile may be
		// Destroy's own cancellations (routed to this reaper's sink): they
		// are dropped, as io_destroy drops undelivered events.
		c.mu.Unlock()
		return 0, errGetDestroyed
	}
	c.mu.Unlock()
	return sk.n, nil
}

// ---- the ready queue ----

// evQueue is a ring of events completed and not yet delivered. It never holds
// more than maxEvents (one per outstanding request), so it never grows.
type evQueue struct {
	buf  []Event
	head int
	n    int
}

func (q *evQueue) push(ev Event) {
	q.buf[(q.head+q.n)%len(q.buf)] = ev
	q.n++
}

func (q *evQueue) pop() Event {
	ev := q.buf[q.head]
	q.buf[q.head] = Event{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return ev
}
