package aio

import (
	"runtime"
	"time"
)

// Waiting and reaping: how waiters sleep and wake, and the reaper role
// (engine.go says how a Context works).

// ---- notify and wait ----

// notifyLocked says that state changed: waiters re-check, and a reaper blocked
// in the kernel is woken. With mu held.
func (c *Context) notifyLocked() {
	c.seq.Add(1)
	if c.waiters > 0 && c.waitCh != nil {
		close(c.waitCh)
		c.waitCh = nil
	}
	if c.kwait.Load() != 0 && !c.dead {
		c.beMu.RLock()
		c.be.Wake()
		c.beMu.RUnlock()
	}
}

// kickReaper makes a reaper that is blocked in the kernel, or about to block,
// look again. seq is bumped before kwait is read: a reaper about to block
// sets kwait and then compares seq, so either it sees the bump and does not
// block, or we see kwait and wake the kernel wait. With mu held.
func (c *Context) kickReaper() {
	c.seq.Add(1)
	if c.kwait.Load() != 0 && !c.dead {
		c.beMu.RLock()
		c.be.Wake()
		c.beMu.RUnlock()
	}
}

// waitLocked sleeps until the next notify or the deadline. With mu held; it is
// released while sleeping.
func (c *Context) waitLocked(deadline time.Time, hasDeadline bool) {
	if c.waitCh == nil {
		c.waitCh = make(chan struct{})
	}
	ch := c.waitCh
	c.waiters++
	c.mu.Unlock()
	if hasDeadline {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	} else {
		<-ch
	}
	c.mu.Lock()
	c.waiters--
}

// waiter is one goroutine's reason to wait, checked under mu. It is a plain
// struct, not an interface, so that it stays on the waiting goroutine's stack:
// GetEvents must not allocate.
type waiter struct {
	kind waitKind
	idx  int32    // waitNotCanceling, waitCancelDecided, waitDo
	gen  uint32   // waitNotCanceling, waitDo
	idxs []int32  // waitAllDecided, waitChain
	gens []uint32 // waitChain
	sk   *sink    // waitEvents
	min  int      // waitEvents
}

type waitKind uint8

const (
	waitEvents        waitKind = iota // GetEvents: min events in sk
	waitNotCanceling                  // nobody is canceling slot idx (or it was reused)
	waitCancelDecided                 // the outcome of canceling slot idx is known
	waitAllDecided                    // ... of every slot in idxs
	waitAllFree                       // every slot is free (Destroy)
	waitDo                            // Do's request in slot idx has its final result
	waitChain                         // every request of DoChain's kernel chain (idxs, gens) has its final result
)

func (w *waiter) satisfied(c *Context) bool {
	switch w.kind {
	case waitEvents:
		// Take what is ready first, in order.
		sk := w.sk
		for sk.n < len(sk.events) && c.ready.n > 0 {
			ev := c.ready.pop()
			sk.events[sk.n] = ev
			sk.n++
			c.delivered(ev.IOCB, ev.Res)
		}
		return sk.n >= w.min
	case waitNotCanceling:
		s := &c.slots[w.idx]
		return s.cb == nil || s.gen != w.gen || !s.canceling
	case waitCancelDecided:
		return c.slots[w.idx].decided()
	case waitAllDecided:
		for _, idx := range w.idxs {
			if !c.slots[idx].decided() {
				return false
			}
		}
		return true
	case waitAllFree:
		return len(c.free) == c.max
	case waitDo:
		s := &c.slots[w.idx]
		return s.gen == w.gen && s.done && !s.canceling
	case waitChain:
		return c.chainDone(w) // chain.go
	}
	panic("aio: unknown waiter")
}

// maxBatchWait bounds a reaper's wait for several completions at once.
const maxBatchWait = time.Millisecond

// expect is how many kernel completions w certainly still needs: the
// undecided cancellations it waits for. Other waiters wait for one at a time.
// With mu held.
func (w *waiter) expect(c *Context) int {
	switch w.kind {
	case waitCancelDecided:
		return 1
	case waitAllDecided:
		n := 0
		for _, idx := range w.idxs {
			if !c.slots[idx].decided() {
				n++
			}
		}
		return max(n, 1)
	case waitChain:
		return c.chainLeft(w) // chain.go
	}
	return 1
}

// sink is where a GetEvents reaper receives public events directly.
type sink struct {
	events []Event
	n      int
}

// await makes progress until w is satisfied, reaping when it can take the
// reaper role and sleeping otherwise. With mu held on entry and on return.
// It returns false when the deadline passed, or when interruptible and
// the Context is being destroyed, before w was satisfied.
func (c *Context) await(w *waiter, deadline time.Time, hasDeadline, interruptible bool) bool {
	for {
		c.takeOverSubmit()
		if w.satisfied(c) {
			// The role may have been handed to us in the same token as our
			// completion (one token per channel): pass it on, or a sleeper
			// could wait for a completion nobody reaps.
			if len(c.sleepers) > 0 && c.reapMu.TryLock() {
				c.reapMu.Unlock()
				c.handOff()
			}
			return true
		}
		if (interruptible && c.closing) || c.dead {
			return false
		}
		if hasDeadline && !time.Now().Before(deadline) {
			return false
		}
		if c.reapMu.TryLock() {
			if w.kind == waitDo {
				c.reaperSlot = w.idx
			}
			ok := c.reap(w, deadline, hasDeadline, interruptible)
			c.reaperSlot = -1
			c.reapMu.Unlock()
			c.handOff()
			if ok {
				return true
			}
			continue
		}
		if w.kind == waitDo || w.kind == waitChain {
			// waitChain: w.idx is its first member not ended (chainDone).
			c.sleepDo(w.idx)
			continue
		}
		c.waitLocked(deadline, hasDeadline)
	}
}

// sleepDo puts the Do waiting for slot idx to sleep until its own wake-up:
// its request's completion, or the reaper role handed to it. Nobody else's
// completion wakes it. With mu held; released while sleeping.
func (c *Context) sleepDo(idx int32) {
	s := &c.slots[idx]
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	s.sleepAt = int32(len(c.sleepers))
	c.sleepers = append(c.sleepers, idx)
	ch := s.wake
	c.mu.Unlock()
	<-ch
	c.mu.Lock()
	if at := s.sleepAt; at >= 0 {
		// Take ourselves out (swap with the last sleeper).
		last := c.sleepers[len(c.sleepers)-1]
		c.sleepers[at] = last
		c.slots[last].sleepAt = at
		c.sleepers = c.sleepers[:len(c.sleepers)-1]
		s.sleepAt = -1
	}
}

// wakeDo wakes the Do waiting for slot idx, if it sleeps, or leaves a token
// it will find. With mu held.
func (c *Context) wakeDo(idx int32) {
	s := &c.slots[idx]
	if s.wake != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// handOff is called by a reaper that is leaving: somebody else who waits must
// take the role. Exactly one sleeping Do is woken (the last to sleep) — not
// all of them — and the other waiters, which are few (GetEvents, cancels,
// Destroy), through notify. With mu held.
func (c *Context) handOff() {
	if n := len(c.sleepers); n > 0 {
		c.wakeDo(c.sleepers[n-1])
	}
	if c.waiters > 0 {
		c.notifyLocked()
	}
}

// reap runs the reaper loop until w is satisfied. With mu and reapMu held; mu
// is released during backend calls.
func (c *Context) reap(w *waiter, deadline time.Time, hasDeadline, interruptible bool) bool {
	routed := false // the last pass readied goroutines
	for {
		c.takeOverSubmit()
		if w.satisfied(c) {
			return true
		}
		if (interruptible && c.closing) || c.dead {
			return false
		}
		timeout := time.Duration(-1)
		if hasDeadline {
			if timeout = time.Until(deadline); timeout <= 0 {
				// One last look without waiting.
				timeout = 0
			}
		}
		// A cancel waiter knows how many completions it needs and waits for
		// them at once, as one io_getevents(min_nr=N) / io_uring_enter
		// (min_complete=N) — a thousand canceled polls do not wake it a
		// thousand times. Such a wait cannot be cut short by Wake, so it is
		// bounded by maxBatchWait and repeated.
		want := w.expect(c)
		if want > 1 && (timeout < 0 || timeout > maxBatchWait) {
			timeout = maxBatchWait
		}
		seq := c.seq.Load()
		c.mu.Unlock()
		var n int
		var err error
		if timeout == 0 {
			n, err = c.be.Reap(c.comps, 0, 0)
		} else {
			if routed {
				// The Do calls the last pass completed are runnable on
				// this goroutine's P, and a wait in the kernel would keep
				// that P until sysmon takes it back (20 µs to 10 ms):
				// let them run first. Measured with 32 goroutines of
				// O_DIRECT reads on io_uring: 1.2-1.3x the IOPS at 0.8x
				// the CPU per request; neutral at 1-4 goroutines.
				runtime.Gosched()
			}
			c.kwait.Store(1)
			if c.seq.Load() != seq {
				// Something changed after we looked: look again first.
				n, err = c.be.Reap(c.comps, 0, 0)
			} else {
				n, err = c.be.Reap(c.comps, want, timeout)
			}
			c.kwait.Store(0)
		}
		c.mu.Lock()
		routed = n > 0
		if routed {
			c.route(c.comps[:n], w.sk)
		}
		c.passDone()
		if err != nil {
			// The backend cannot wait (it should not happen); do not spin.
			c.mu.Unlock()
			time.Sleep(time.Millisecond)
			c.mu.Lock()
		}
		if timeout == 0 {
			return w.satisfied(c)
		}
	}
}

// poll takes what the kernel has finished, without waiting, if no other
// goroutine holds the reaper role (if one does, it is making progress). With mu
// held.
func (c *Context) poll() {
	if c.dead || !c.reapMu.TryLock() {
		return
	}
	c.drainLocked(nil)
	c.reapMu.Unlock()
	c.handOff()
}

// drainLocked takes everything the backend has without waiting and routes it.
// With mu and reapMu held; mu is released during the backend calls.
func (c *Context) drainLocked(sk *sink) {
	for {
		c.mu.Unlock()
		n, _ := c.be.Reap(c.comps, 0, 0)
		c.mu.Lock()
		if n > 0 {
			c.route(c.comps[:n], sk)
		}
		c.passDone()
		if n < len(c.comps) {
			return
		}
	}
}

// passDone records that a reaper pass (one Backend.Reap and its routing) has
// finished. With mu held.
func (c *Context) passDone() {
	c.passes++
	if c.passWaiters > 0 {
		c.notifyLocked()
	}
}

// drainReady makes sure every completion the backend had when it was called
// has been routed: it reaps without waiting, or, when another goroutine holds
// the reaper role, wakes that reaper and waits until a pass that began after
// the call has finished. Cancel and CancelFD call it before deciding, so that a
// request that has finished counts as done, never as running. With mu held.
func (c *Context) drainReady() {
	start := c.passes
	for !c.dead {
		if c.reapMu.TryLock() {
			c.drainLocked(nil)
			c.reapMu.Unlock()
			c.handOff()
			return
		}
		// The pass under way may have looked before the call; the one
		// after it did not.
		if c.passes >= start+2 {
			return
		}
		c.passWaiters++
		c.kickReaper()
		c.waitLocked(time.Time{}, false)
		c.passWaiters--
	}
}
