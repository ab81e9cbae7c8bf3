package aio

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/uringaio/uringaio/internal/backend"
)

// How a Context works
//
// Slots. Every accepted IOCB occupies one slot from Submit until the kernel has
// let go of it. The kernel sees the slot's tag — index in the low 32 bits, a
// generation above — never a pointer; a completion whose generation does not
// match its slot is stale and dropped. The slot holds the IOCB (so it stays
// reachable) and the runtime.Pinner that pins its buffers.
//
// The reaper. Completions are taken from the kernel by one goroutine at a time,
// whichever waiter holds reapMu: a GetEvents caller, a Do waiting for its
// request, a Cancel waiting for its answer, Destroy. The reaper routes each
// completion under mu: into its own GetEvents result when it is one, else into
// the ready queue (public requests), or into the slot (requests of Do, and
// requests being canceled, whose fate their canceler decides). A Do that is not
// the reaper sleeps on its slot's own wake channel (one token): only its own
// completion wakes it, or the reaper role handed to it (handOff wakes one
// sleeping Do, never all). The other waiters (GetEvents, cancels, Destroy,
// Do waiting for room) sleep on a channel that notify closes; when the reaper
// blocks in the kernel, notify also wakes it (Backend.Wake), so that a
// Cancel's answer or a Destroy is never stuck behind a wait. A completion
// routed by someone other than the reaper for the reaper's own Do wakes the
// kernel wait too.
//
// The invariant. A slot's result goes exactly one way: to GetEvents (through
// the sink or the ready queue), to a successful Cancel's return, or to Do. Each
// of those clears the IOCB's state under mu, so a second delivery has nothing to
// deliver.
//
// Wake-ups. Whatever changes what a waiter waits for wakes it: a completion
// routed to a slot or to the ready queue, a cancellation decided, a slot freed
// or an event delivered while Destroy waits for every slot (roomWaiters), a
// reaper pass finished while someone waits for one (passWaiters). freeSlot and
// delivered are the only places that give room back; freeSlot notifies Destroy,
// and delivered (roomFreed) wakes the oldest Do waiting for room (roomQ) — one
// per request delivered, never all. A path that frees a slot or lowers
// outstanding without them is a bug.
//
// Lock order: reapMu, then subMu, then mu; beMu (read) is taken with none of
// them or with mu only, and never held while taking mu. Backend calls other than
// Reap hold beMu for reading; Destroy takes it for writing to Close the backend.

// tag layout: slot index in the low 32 bits, generation in bits 32..60.
const genMask = 1<<(backend.TagBits-32) - 1

type slot struct {
	cb      *IOCB
	gen     uint32
	data    uint64
	fd      int32
	order   uint64 // submission order: CancelFD cancels oldest first
	private bool   // started by Do: its result goes to Do, never to GetEvents
	pinned  bool
	// wake is the Do waiter's own wake-up (one token): its completion, or
	// the reaper role handed to it. sleepAt is its place in Context.sleepers
	// while it sleeps, else -1.
	wake    chan struct{}
	sleepAt int32
	freeAt  int32 // its index in Context.free while free, else -1
	queued  bool  // Do's request waits in pend for the combiner (submit.go)
	pin     runtime.Pinner
	iov     []iovec
	bufs    *Buffers // the Buffers its Buf lies in (buffers.go), else nil
	freg    *fileReg // the File registration its request uses (fixedfile.go), else nil

	// Cancellation. While canceling, the slot's completion is parked here and
	// its canceler decides where it goes.
	canceling  bool
	cancelKind uint8 // who cancels: cancelOne, cancelNotify
	answer     backend.CancelAnswer
	answered   bool  // the async answer arrived
	answerRes  int64 // its value: 0 found, -ENOENT, -EALREADY
	doneEarly  bool  // the completion had arrived when the async answer did
	done       bool  // the kernel's completion arrived (parked, or Do's result)
	res        int64

	// Chains (chain.go). chainNext is the next member (its gen in
	// chainNextGen), chainPrev the one before, -1 when none; held: behind
	// an earlier member that has not ended (heldReq is its request when the
	// library, not the kernel, hands it over); want: the result that lets
	// the next start; chainStop: DoChain's context or Destroy wants the
	// chain stopped.
	chainNext, chainPrev int32
	chainNextGen         uint32
	held, chainStop      bool
	chainCanceled        bool // chainEnded asked the kernel to stop it (chain.go)
	kernelChain          bool // its chain is ordered by the kernel (IOSQE_IO_LINK)
	want                 int64
	heldReq              backend.Req
}

const (
	cancelOne    uint8 = iota // Cancel: on success the event is Cancel's return value
	cancelNotify              // CancelFD, Destroy, Do's context: on success the event is delivered as usual
)

// Context is one AIO context: an io_uring instance or an aio_context_t, and the
// library's bookkeeping around it. All methods are safe for concurrent use.
type Context struct {
	be     backend.Backend
	probes []Probe
	max    int
	shut   atomic.Bool // closing, readable without mu (the caller-side path)
	cs     *callerSide // transfers on the caller's goroutine (caller.go), shared by the lanes

	reapMu sync.Mutex   // the reaper role
	subMu  sync.Mutex   // Submit's scratch and order
	beMu   sync.RWMutex // backend calls vs Close

	reqs  []backend.Req        // Submit scratch (under subMu)
	inl   []backend.Completion // Submit scratch (under subMu)
	comps []backend.Completion // reaper scratch (under reapMu)

	mu          sync.Mutex
	slots       []slot
	free        []int32
	outstanding int // submitted and not yet delivered
	ready       evQueue
	closing     bool // Destroy has begun
	dead        bool // the backend is closed
	waiters     int
	waitCh      chan struct{}
	roomWaiters int             // Destroy waiting for every slot to be free
	roomQ       []chan struct{} // Do calls waiting for room, oldest first: one is woken per request delivered
	roomChs     []chan struct{} // their spare channels
	sleepers    []int32         // slots whose Do waiter sleeps on its own wake channel
	reaperSlot  int32           // the slot of the Do holding the reaper role, else -1

	// Do's submissions (submit.go), under mu.
	pend          []backend.Req        // queued, not yet handed to the backend
	pendSpare     []backend.Req        // the other buffer
	pendInl       []backend.Completion // the combiner's inline completions
	submitting    bool                 // a combiner is handing requests over
	queuedWaiters int                  // waiting for a queued request to be handed over
	roundHook     func(before bool)    // tests only: called around each round's Backend.Submit, without mu
	passes        uint64               // reaper passes finished (drainReady waits for one)
	passWaiters   int

	subOrder  uint64 // counts submissions (under mu)
	chainKick bool   // chainEnded queued a chain's next member in pend (chain.go)

	seq   atomic.Uint64 // bumped by every notify
	kwait atomic.Int32  // 1 while the reaper may be blocked in the kernel

	nReqs, nSubmits atomic.Uint64 // Stats

	nFixedFiles, nFixedBufs atomic.Uint64 // Stats: registered files and buffers used

	// lanes holds the Context itself and the Contexts that share its
	// ReadAt/WriteAt calls (lanes.go); nil with one lane. hints picks one.
	lanes []*Context
	hints *sync.Pool
}

// live keeps every Context that has not been destroyed reachable, as the kernel
// keeps its ring: a Context dropped without Destroy must not let the garbage
// collector free (or the Pinner finalizer complain about) memory the kernel may
// still write.
var live sync.Map

const maxSubmitBatch = 256

func newContext(maxEvents int, opts Options) (*Context, error) {
	if maxEvents < 1 || maxEvents > 32768 {
		return nil, errSetupMax
	}
	be, probes, err := backend.OpenConfig(opts.Backend, maxEvents,
		backend.Config{Workers: opts.Workers, SQPoll: opts.SQPoll, FixedFiles: opts.FixedFiles})
	if err != nil {
		return nil, err
	}
	b := min(maxEvents, maxSubmitBatch)
	c := &Context{
		be:        be,
		probes:    probesOf(probes, be),
		max:       maxEvents,
		cs:        newCallerSide(opts.NoInline, runtime.GOMAXPROCS(0)),
		reqs:      make([]backend.Req, b),
		inl:       make([]backend.Completion, b),
		comps:     make([]backend.Completion, min(maxEvents*2+1, 1024)),
		slots:     make([]slot, maxEvents),
		pend:      make([]backend.Req, 0, maxEvents),
		pendSpare: make([]backend.Req, 0, maxEvents),
		pendInl:   make([]backend.Completion, maxEvents),
		free:      make([]int32, maxEvents),
		ready:     evQueue{buf: make([]Event, maxEvents)},
	}
	for i := range c.free {
		c.free[i] = int32(maxEvents - 1 - i)
		c.slots[maxEvents-1-i].freeAt = int32(i)
	}
	for i := range c.slots {
		c.slots[i].sleepAt = -1
	}
	c.reaperSlot = -1
	live.Store(c, struct{}{})
	return c, nil
}

func (s *slot) tag(idx int32) uint64 { return uint64(s.gen)<<32 | uint64(uint32(idx)) }

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
			c.delivered(ev.IOCB)
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
	cb.res.Store(res)
	if s.private {
		s.done, s.res = true, res
		cb.state.Store(cbCompleted)
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
		c.delivered(cb)
		return false
	}
	cb.state.Store(cbCompleted)
	c.ready.push(ev)
	return true
}

// delivered marks cb's event as handed to the caller. With mu held.
func (c *Context) delivered(cb *IOCB) {
	cb.state.Store(cbIdle)
	c.outstanding--
	c.roomFreed()
}

// roomFreed says that one request fewer is outstanding: the oldest Do waiting
// for room is woken (one, not all: a thousand goroutines waiting on a Context
// of 256 must not all wake for every completion), and Destroy if it waits.
// With mu held.
func (c *Context) roomFreed() {
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

func (c *Context) unpin(s *slot) {
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

// ---- Submit ----

func (c *Context) validate(cb *IOCB) error {
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
	c.mu.Unlock()
	stop = k < len(cbs)
	if k == 0 {
		return 0, true, err
	}

	c.nSubmits.Add(1) // before the call, as in combine
	c.nReqs.Add(uint64(k))
	c.beMu.RLock()
	taken, ninl, berr := c.be.Submit(c.reqs[:k], c.inl[:k])
	c.beMu.RUnlock()
	if taken < k {
		c.nReqs.Add(-uint64(k - taken))
	}

	if taken < k || ninl > 0 {
		c.mu.Lock()
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
