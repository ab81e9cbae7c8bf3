package aio

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/uringaio/uringaio/internal/backend"
)

// How a Context works
//
// Where it lives. engine.go: the Context and slot types and Setup's part
// (newContext); slots.go: taking, preparing and freeing slots, pinning;
// accept.go: Submit's checks (validate) and its hand-over in chunks;
// submit.go: Do's shared submissions (the combiner); wait.go: how waiters
// sleep and wake, the reaper role and its passes; route.go: each completion
// to its owner, and GetEvents with the ready queue; cancel.go: Cancel,
// CancelFD, Error, Destroy; chain.go: linked requests; caller.go: transfers
// on the caller's goroutine.
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

// slot is one request's bookkeeping. The fields every request touches on its
// way in and out (prepare, complete, freeSlot) come first and fill the first
// cache line; with 128 requests in flight the slots, their IOCBs and the
// event ring no longer fit the L1 cache, and a slot that spread them over
// four lines cost the batch path 10-20 % (BenchmarkSubmitGetEvents, NOP).
type slot struct {
	// The first cache line (64 bytes).
	cb      *IOCB
	data    uint64
	order   uint64   // submission order: CancelFD cancels oldest first
	bufs    *Buffers // the Buffers its Buf lies in (buffers.go), else nil
	gen     uint32
	fd      int32
	freeAt  int32 // its index in Context.free while free, else -1
	sleepAt int32 // its place in Context.sleepers while its Do sleeps, else -1
	// chainNext is the next member of its chain (its gen in chainNextGen),
	// chainPrev the one before, -1 when none (chain.go).
	chainNext, chainPrev int32
	private              bool // started by Do: its result goes to Do, never to GetEvents
	pinned               bool
	queued               bool // Do's request waits in pend for the combiner (submit.go)
	canceling            bool // see Cancellation below
	done                 bool // the kernel's completion arrived (parked, or Do's result)
	chainCanceled        bool // chainEnded asked the kernel to stop it (chain.go)
	held, chainStop      bool // see Chains below

	res  int64
	freg *fileReg // the File registration its request uses (fixedfile.go), else nil
	// wake is the Do waiter's own wake-up (one token): its completion, or
	// the reaper role handed to it.
	wake chan struct{}
	pin  runtime.Pinner
	iov  []iovec

	// Cancellation. While canceling, the slot's completion is parked here and
	// its canceler decides where it goes.
	cancelKind uint8 // who cancels: cancelOne, cancelNotify
	answer     backend.CancelAnswer
	answered   bool  // the async answer arrived
	answerRes  int64 // its value: 0 found, -ENOENT, -EALREADY
	doneEarly  bool  // the completion had arrived when the async answer did

	// Chains (chain.go): held: behind an earlier member that has not ended
	// (heldReq is its request when the library, not the kernel, hands it
	// over); want: the result that lets the next start; chainStop:
	// DoChain's context or Destroy wants the chain stopped.
	chainNextGen uint32
	kernelChain  bool // its chain is ordered by the kernel (IOSQE_IO_LINK)
	want         int64
	heldReq      backend.Req
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

	nReqs, nSubmits uint64 // Stats, under mu (a plain add in a section that holds mu anyway: atomic adds cost the batch path ~10 ns per Submit)

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
	workers := opts.Workers
	if workers == 0 {
		workers = backend.DefaultWorkers()
	}
	c.cs.setBlocking(be.Name(), workers)
	c.cs.poolReads = opts.ColdReadsToPool
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
