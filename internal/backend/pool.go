//go:build unix

package backend

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pool is the user-space request engine: what the threads backend is made of,
// and what kaio and uring use for the stages their kernel mechanism cannot do
// (readiness waits on files IOCB_CMD_POLL refuses, transfers on files without
// read_iter/write_iter, continuing a short read, waits on O_NONBLOCK pipes).
//
// Two kinds of goroutine do the work:
//
//   - Workers (at most p.max, started on demand, kept until close) each make
//     one blocking system call at a time: pread/pwrite/preadv/pwritev, fsync,
//     fdatasync, sync_file_range, fallocate, posix_fadvise, or the plain
//     transfer on a file that refuses RWF_NOWAIT. A blocked worker holds one
//     OS thread; an idle one holds none.
//   - One poller waits for every request that waits for readiness, however
//     many there are (a thousand pending pipe reads hold one thread, not a
//     thousand): with epoll on Linux (poller_linux.go), kqueue on the BSDs
//     and darwin (poller_kqueue.go, its decisions in kqstate.go; compiled
//     and vetted for each of them, but never run on their kernels in this
//     repository's tests or CI, which run on Linux), and poll(2) where
//     neither exists (poller_other.go: solaris, illumos, aix; Linux with
//     -tags uringaio_poll). It watches descriptors (dfile, pool_fd.go), each
//     with the list of requests waiting on it, so with epoll and kqueue an
//     event costs the waiters of the descriptor that became ready and a
//     cancel O(1), whatever the size of the waiting set (poll(2): an event
//     costs a scan of the descriptors with waiters). When a file is ready the poller itself moves
//     the data with preadv2/pwritev2 and RWF_NOWAIT: that call cannot block,
//     so doing it here saves a hand-off to a worker and its wake-up (one thread switch per
//     request), and it keeps working when every worker is stuck in a slow
//     fsync. The poller also delivers the completions of canceled requests,
//     so that done runs on a pool goroutine, never inside cancel's caller
//     (kaio's and uring's done wakes their Reap, which may need a lock that
//     Cancel's caller holds); threads, whose done only queues the completion,
//     lets cancel deliver them itself (cancelDone), which spares a wake-up of
//     the poller's thread per Cancel.
//
// Files that refuse RWF_NOWAIT (ttys, named pipes, eventfd writes, inotify,
// and every file on systems without RWF_NOWAIT). Readiness does not promise
// the data: another reader may take it between poll(2) and the transfer, and
// a plain read(2) would then block until new data came, uncancelable, with
// Destroy waiting for it (docs/contract.md §3.11). So:
//
//   - Where it is safe, the poller opens the file once more with O_NONBLOCK
//     (privateNonblock, plain_linux.go: FIFOs and terminals other than pty
//     masters), and transfers on that description of its own: EAGAIN means
//     wait again, as with RWF_NOWAIT. The caller's own description, whose
//     flags others share, is never changed.
//   - Elsewhere (pty masters, eventfd, inotify, other devices, every file off
//     Linux) a worker makes a guarded plain transfer (plainTransfer): one at
//     a time per file in this pool, and only while poll(2) with no wait says
//     the file is still ready, and for an eventfd write only while its value
//     fits under the counter. Requests of the pool never race each other
//     for the data; a reader outside the library that takes it in the
//     instant between that check and the call is the one case that leaves a
//     worker blocked (written down in the contract).
//
// The pool therefore holds at most max+1 OS threads blocked in system calls
// (max workers, one poller).
//
// The descriptors are the pool's own (a duplicate shared by the requests on
// one open file, or a number the caller holds for the request's life:
// pool_fd.go), so a registration can never outlive its file's number: epoll
// keys on the open file and the number together, close(2) removes a
// descriptor's kqueue knotes, and the pool removes a registration (epoll)
// or the knotes (kqueue) before it closes the descriptor in any case.
//
// Request states (preq.state), all changes under p.mu:
//
//	queued  ──worker takes it──▶ running ──▶ ended (done called)
//	waiting ──poller: ready──▶ trying ──EAGAIN──▶ waiting
//	                                  ├─refuses RWF_NOWAIT──▶ queued (plain)
//	                                  └─data, EOF, error──▶ ended
//	queued (plain) ──its file's turn is taken──▶ parked ──turn free──▶ waiting
//	queued (plain) ──its turn──▶ checking ──ready──▶ running
//	                                         ├─no longer ready──▶ waiting
//	                                         ├─eventfd value does not fit──▶ snoozed ──tick──▶ waiting
//	                                         └─canceled meanwhile──▶ ended
//	queued/waiting/parked/snoozed ──cancel or close──▶ ended (the poller calls done, or cancel: cancelDone)
//
// cancel succeeds in the states queued, waiting, parked and snoozed, and in
// checking (the worker then does not start the plain transfer);
// it waits out the poller's trying (a non-blocking call), and refuses
// running. A continuation of a
// storage transfer that already moved bytes (moved > 0) is running in that
// sense even while queued: canceling it would turn the bytes it moved into a
// short count, which reads as the end of the file (§3.8). Whoever moves a
// request out of a state under p.mu owns its completion, which is how done
// runs exactly once under any race of cancel, readiness and close.
//
// Lock order: p.mu is a leaf. done is called with no pool lock held and may
// call start or cancel.
type pool struct {
	onDone func(Completion)
	max    int

	mu            sync.Mutex
	cond          sync.Cond // workers wait here for queue
	settled       sync.Cond // cancels wait here for a psTrying request's outcome
	cancelWaiters int
	cancelDone    bool // done may run on cancel's caller (threads: it only queues the completion); set before any start
	reqs          map[uint64]*preq
	queue         []*preq  // for workers, FIFO; canceled entries are skipped
	active        []*dfile // descriptors with waiting requests; dfile.aidx indexes it
	nwaiting      int      // requests waiting for readiness, over every dfile
	ended         []*preq  // canceled: the poller closes and delivers them
	snoozed       []*preq  // eventfd writes waiting for room; preq.widx indexes it
	plainFiles    map[fileKey]*plainFile
	files         map[int32]*dfile  // shared duplicates, by the caller's number (acquire)
	held          map[int]*dfile    // descriptors the pool does not own, by number
	watch         map[uint64]*dfile // every dfile, by id (the poller's key)
	nextID        uint64
	nworkers      int
	idle          int  // workers waiting on cond and not yet signaled
	wakeSent      bool // the poller has been woken and has not yet looked
	closed        bool

	pollerState                // the readiness mechanism's own (poller_*.go)
	wg          sync.WaitGroup // the poller and every worker
}

// How a request is carried out (start's how).
const (
	poolRun  uint8 = iota + 1 // one blocking system call on a worker
	poolWait                  // wait for readiness, then transfer at the current position
	poolPoll                  // OpPoll: wait for PollEvents
)

const (
	psQueued   uint8 = iota
	psWaiting        // in its dfile's waiters
	psTrying         // the poller is making its non-blocking transfer
	psChecking       // a worker checks whether a plain transfer may start (plainCheck)
	psRunning        // a worker is making its system call
	psParked         // a plain transfer waiting for its file's turn (plainFile.parked)
	psSnoozed        // an eventfd write waiting for room (p.snoozed)
	psEnded
)

// snoozeTick is how often an eventfd write whose value does not fit under
// the counter looks again: no poll(2) event says that a given value fits.
const snoozeTick = 2 * time.Millisecond

// fileKey names the file of a plain transfer (plainKey).
type fileKey struct {
	dev, ino, rdev, sub uint64
	eventfd             bool
}

// plainFile is one file's turn for plain transfers: at most one runs at a
// time; the others wait parked, cancelable, until it ends.
type plainFile struct {
	key    fileKey
	busy   bool
	refs   int // requests that use it
	parked []*preq
}

type preq struct {
	r     Req
	fd    int    // df.fd
	df    *dfile // the descriptor it works on, shared with other requests
	how   uint8
	state uint8
	plain bool       // after readiness, a guarded plain transfer on a worker
	nbTry bool       // privateNonblock was tried
	stop  bool       // canceled while its plain transfer's check ran (psChecking)
	nb    int        // a non-blocking description of the file of our own, or -1
	pf    *plainFile // the file's turn, for a plain transfer
	moved int64      // bytes moved before this stage (start's done)
	res   int64      // when ended by a failure of the poller rather than a cancel: the result (else 0)
	widx  int        // index in df.waiters (psWaiting), p.snoozed (psSnoozed) or pf.parked (psParked)
}

// newPool starts a pool with at most workers worker goroutines (0:
// DefaultWorkers). done is called exactly once per started request, from a
// pool goroutine and without any pool lock held, with its final Completion
// (Kind KindDone).
func newPool(workers int, done func(Completion)) (*pool, error) {
	if workers <= 0 {
		workers = DefaultWorkers()
	}
	p := &pool{onDone: done, max: workers, reqs: make(map[uint64]*preq),
		files: make(map[int32]*dfile), held: make(map[int]*dfile), watch: make(map[uint64]*dfile)}
	if err := p.openPoller(); err != nil {
		return nil, err
	}
	p.cond.L = &p.mu
	p.settled.L = &p.mu
	p.wg.Add(1)
	go p.poller()
	return p, nil
}

// start begins r. r.Addr/Len point at memory the caller keeps pinned until
// done (for Readv/Writev, Addr is the address of Len iovecs). fd is the
// descriptor to use (it may differ from r.FD); if own, the pool closes fd once
// the request has ended, before done.
//
// how: poolRun does the operation with one blocking system call on a worker
// (preadv/pwritev at r.Off, fsync, fdatasync, sync_file_range, fallocate,
// posix_fadvise (rangeop_linux.go); a Nop completes with 0).
// poolWait waits until fd is readable (reads) or writable (writes), then
// transfers without blocking at the current position, waiting again on
// EAGAIN. poolPoll waits for r.PollEvents and completes with the ready mask
// limited to r.PollEvents|POLLERR|POLLHUP|POLLNVAL.
//
// done is the count of bytes already moved for this request: the pool moves
// the rest (skipping that many bytes of the buffer or iovecs, and adding it to
// the offset for poolRun). The result is the total; if the continuation fails
// or is canceled with nothing more moved, it is done when done > 0 (a short
// count), else the negated errno (-ECANCELED for a cancel).
//
// A start after close ends the request at once with -ECANCELED, on the
// caller's goroutine (callers must not do that; it keeps the count exact).
func (p *pool) start(r *Req, fd int, own bool, how uint8, done int64) {
	p.mu.Lock()
	var df *dfile
	if own {
		df = p.newDfileLocked(fd, true, -1)
	} else {
		df = p.heldLocked(fd)
	}
	p.mu.Unlock()
	p.startOn(r, df, how, done)
}

// startOn is start on a descriptor of the pool's (acquire, heldLocked): the
// request takes over the caller's reference to df, which finish releases.
func (p *pool) startOn(r *Req, df *dfile, how uint8, done int64) {
	p.startMany([]poolStart{{r: r, df: df, how: how, moved: done}})
}

// poolStart is one request for startMany.
type poolStart struct {
	r      *Req
	df     *dfile // nil: r.FD is held by the caller (Req.Hint HintHeld); heldLocked finds its dfile
	how    uint8
	moved  int64
	addRef bool // take a reference to df here (else the caller's is taken over)
}

// startMany is startOn for each of reqs, under one lock round: a Submit of
// N requests costs one, not N.
func (p *pool) startMany(reqs []poolStart) {
	prs := make([]preq, len(reqs))
	p.mu.Lock()
	for i := range reqs {
		s := &reqs[i]
		switch {
		case s.df == nil:
			s.df = p.heldLocked(int(s.r.FD))
		case s.addRef:
			s.df.refs++
		}
	}
	if p.closed {
		p.mu.Unlock()
		for i, s := range reqs {
			pr := &prs[i]
			*pr = preq{r: *s.r, fd: s.df.fd, df: s.df, how: s.how, moved: s.moved, nb: -1}
			p.finish(pr, canceledRes(pr))
		}
		return
	}
	for i, s := range reqs {
		pr := &prs[i]
		*pr = preq{r: *s.r, fd: s.df.fd, df: s.df, how: s.how, moved: s.moved, nb: -1}
		p.startLocked(pr)
	}
	p.mu.Unlock()
}

func (p *pool) startLocked(pr *preq) {
	how, r := pr.how, &pr.r
	if how == poolWait && !haveNowait {
		p.makePlainLocked(pr, plainKeyOf(pr))
	}
	p.reqs[r.Tag] = pr
	if how == poolRun {
		p.enqueueLocked(pr)
	} else {
		p.addWaitLocked(pr)
	}
}

// cancel stops tag's request if it has not started moving data: queued for a
// worker, waiting for readiness, or (plain transfers) for its file's turn or
// for room. The answer is then CancelPending and its
// Completion follows through done, exactly once, with -ECANCELED (or the
// bytes moved before this stage, for a continuation). A running transfer, a
// finished request or an unknown tag gives CancelRefused.
//
// A request whose readiness fired and whose non-blocking transfer the poller
// is making right now is neither: cancel waits for that call's outcome (it
// cannot block, and the poller calls no done before publishing it), then
// answers CancelRefused if it moved data and CancelPending if it found
// nothing and would wait again. Without that wait, a read on a pipe that
// another reader had just drained would be refused and then wait forever.
func (p *pool) cancel(tag uint64) CancelAnswer {
	tags, answers := [1]uint64{tag}, [1]CancelAnswer{}
	p.cancelMany(tags[:], answers[:])
	return answers[0]
}

// cancelMany is cancel for each of tags, under one lock round; answers[i] is
// tags[i]'s. The requests it stops are delivered by the poller (one wake-up
// for the batch), or, where the pool's done may run on the canceling
// goroutine (cancelDone), here, once the lock is released: no thread has to
// wake for them.
func (p *pool) cancelMany(tags []uint64, answers []CancelAnswer) {
	var mine []*preq
	p.mu.Lock()
	for i, tag := range tags {
		var pr *preq
		answers[i], pr = p.cancelLocked(tag)
		if pr == nil {
			continue
		}
		if p.cancelDone {
			mine = append(mine, pr)
		} else {
			p.ended = append(p.ended, pr)
			p.wakeLocked()
		}
	}
	p.mu.Unlock()
	for _, pr := range mine {
		p.finish(pr, canceledRes(pr))
	}
}

// cancelLocked is cancel's work. A request it stops is returned, ended, for
// the caller to deliver.
func (p *pool) cancelLocked(tag uint64) (CancelAnswer, *preq) {
	for {
		pr := p.reqs[tag]
		if pr == nil {
			return CancelRefused, nil
		}
		if pr.state == psChecking {
			// A worker is checking whether its plain transfer may start
			// (plainLocked): it will not start it.
			pr.stop = true
			return CancelPending, nil
		}
		if pr.state == psTrying {
			p.cancelWaiters++
			p.settled.Wait()
			p.cancelWaiters--
			continue
		}
		if pr.moved > 0 && pr.how == poolRun {
			// A storage transfer that moved bytes already has started:
			// stopping it now would report those bytes as a short count.
			return CancelRefused, nil
		}
		if !p.endLocked(pr) {
			return CancelRefused, nil
		}
		return CancelPending, pr
	}
}

// close ends every request still queued or waiting with -ECANCELED (through
// done), waits for running ones, and stops the goroutines. No start may
// follow.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, pr := range p.reqs {
		if p.endLocked(pr) {
			p.ended = append(p.ended, pr)
		}
	}
	p.idle = 0
	p.cond.Broadcast()
	p.wakeLocked()
	p.mu.Unlock()
	p.wg.Wait()
	p.closePoller()
}

// endLocked moves a queued, waiting, parked or snoozed request to ended; the
// caller delivers it (or puts it in p.ended for the poller). It reports false
// when the request is running (or already ended).
func (p *pool) endLocked(pr *preq) bool {
	switch pr.state {
	case psQueued:
		// Left in p.queue: workers skip what is no longer queued.
	case psWaiting:
		p.removeWaitLocked(pr)
	case psParked:
		removeAt(&pr.pf.parked, pr)
	case psSnoozed:
		removeAt(&p.snoozed, pr)
	default:
		return false
	}
	pr.state = psEnded
	delete(p.reqs, pr.r.Tag)
	return true
}

// canceledRes is the result of a request that close or cancel ended. On a
// stream (poolWait) the bytes a continuation moved before are reported: they
// were taken from the stream, and a short count is what a stream gives. On
// storage (poolRun) never: in the middle of a regular file they would read as
// the end of the file (§3.8), so such a request is canceled as a whole
// (cancel refuses it; only close ends it, and Destroy discards its event).
func canceledRes(pr *preq) int64 {
	if pr.moved > 0 && pr.how == poolWait {
		return pr.moved
	}
	return -int64(unix.ECANCELED)
}

// finish releases the descriptors the request holds and delivers the result.
// The request is no longer in p.reqs. No lock held.
func (p *pool) finish(pr *preq, res int64) {
	if pr.nb >= 0 {
		unix.Close(pr.nb)
	}
	p.mu.Lock()
	if pr.pf != nil {
		p.releasePlainLocked(pr)
	}
	closeFD := p.releaseLocked(pr.df)
	p.mu.Unlock()
	if closeFD >= 0 {
		unix.Close(closeFD)
	}
	p.onDone(Completion{Tag: pr.r.Tag, Res: res, Kind: KindDone})
}

// appendAt puts pr at the end of list, in state, with pr.widx its index
// there (removeAt takes it out).
func appendAt(list *[]*preq, pr *preq, state uint8) {
	pr.state = state
	pr.widx = len(*list)
	*list = append(*list, pr)
}

// removeAt removes pr from list, where pr.widx is its index.
func removeAt(list *[]*preq, pr *preq) {
	l := *list
	last := len(l) - 1
	moved := l[last]
	l[pr.widx] = moved
	moved.widx = pr.widx
	l[last] = nil
	*list = l[:last]
}

// plainKeyOf is the key of pr's file for plain transfers (a key of its own
// when fstat fails: then nothing is shared, and the transfer reports the
// error).
func plainKeyOf(pr *preq) fileKey {
	if k, ok := plainKey(pr.fd); ok {
		return k
	}
	return fileKey{dev: ^uint64(0), ino: pr.r.Tag}
}

// makePlainLocked makes pr a plain transfer on the file key names.
func (p *pool) makePlainLocked(pr *preq, key fileKey) {
	pr.plain = true
	if p.plainFiles == nil {
		p.plainFiles = make(map[fileKey]*plainFile)
	}
	pf := p.plainFiles[key]
	if pf == nil {
		pf = &plainFile{key: key}
		p.plainFiles[key] = pf
	}
	pf.refs++
	pr.pf = pf
}

func (p *pool) releasePlainLocked(pr *preq) {
	pf := pr.pf
	pr.pf = nil
	if pf.refs--; pf.refs == 0 {
		delete(p.plainFiles, pf.key)
	}
}

// total combines the bytes moved before this stage with this stage's result.
func total(moved, res int64) int64 {
	switch {
	case res >= 0:
		return moved + res
	case moved > 0:
		return moved
	}
	return res
}

func (p *pool) enqueueLocked(pr *preq) {
	pr.state = psQueued
	p.queue = append(p.queue, pr)
	switch {
	case p.idle > 0:
		p.idle--
		p.cond.Signal()
	case p.nworkers < p.max:
		p.nworkers++
		p.wg.Add(1)
		go p.worker()
	}
}

// addWaitLocked makes pr wait for readiness on its descriptor.
func (p *pool) addWaitLocked(pr *preq) {
	df := pr.df
	appendAt(&df.waiters, pr, psWaiting)
	p.nwaiting++
	ev := uint16(waitEvents(pr))
	grew := false
	for b := 0; b < 16; b++ {
		if ev&(1<<b) != 0 {
			if df.bits[b]++; df.bits[b] == 1 {
				grew = true
			}
		}
	}
	if len(df.waiters) == 1 {
		df.aidx = len(p.active)
		p.active = append(p.active, df)
	}
	p.armLocked(df, grew)
}

// removeWaitLocked takes pr out of its descriptor's waiters. Its readiness
// registration is left as it is: an event for nobody costs one look.
func (p *pool) removeWaitLocked(pr *preq) {
	df := pr.df
	removeAt(&df.waiters, pr)
	p.nwaiting--
	ev := uint16(waitEvents(pr))
	for b := 0; b < 16; b++ {
		if ev&(1<<b) != 0 {
			df.bits[b]--
		}
	}
	if len(df.waiters) == 0 {
		last := p.active[len(p.active)-1]
		p.active[df.aidx] = last
		last.aidx = df.aidx
		p.active[len(p.active)-1] = nil
		p.active = p.active[:len(p.active)-1]
		df.aidx = -1
	}
	p.disarmLocked(df)
}

// wantEvents is the union of the events df's waiters wait for.
func (df *dfile) wantEvents() uint32 {
	var ev uint32
	for b, n := range df.bits {
		if n > 0 {
			ev |= 1 << b
		}
	}
	return ev
}

// snoozeLocked puts an eventfd write whose value does not fit aside for a
// tick (the poller's wait is bounded while any is snoozed).
func (p *pool) snoozeLocked(pr *preq) {
	appendAt(&p.snoozed, pr, psSnoozed)
	p.wakeLocked()
}

// worker runs queued requests. A blocking call costs two lock rounds: one
// that ends it (its state and its descriptor at once), and one, after its
// done, that takes the next. (Taking the next before done would make it
// uncancelable while done runs.)
func (p *pool) worker() {
	defer p.wg.Done()
	p.mu.Lock()
	for {
		for len(p.queue) == 0 {
			if p.closed {
				p.nworkers--
				p.mu.Unlock()
				return
			}
			p.idle++
			p.cond.Wait()
		}
		pr := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if pr.state != psQueued {
			continue // canceled while queued
		}
		if pr.how != poolRun {
			p.plainLocked(pr)
			continue
		}
		pr.state = psRunning
		p.mu.Unlock()
		res := total(pr.moved, runOp(pr))
		p.mu.Lock()
		pr.state = psEnded
		if p.reqs[pr.r.Tag] == pr {
			delete(p.reqs, pr.r.Tag)
		}
		closeFD := p.releaseLocked(pr.df)
		p.mu.Unlock()
		if closeFD >= 0 {
			unix.Close(closeFD)
		}
		p.onDone(Completion{Tag: pr.r.Tag, Res: res, Kind: KindDone})
		p.mu.Lock()
	}
}

// plainLocked makes pr's guarded plain transfer, with p.mu held on entry and
// on return (released around the system calls). One transfer per file at a
// time: if its file's turn is taken, pr parks until it is free.
func (p *pool) plainLocked(pr *preq) {
	pf := pr.pf
	if pf.busy {
		appendAt(&pf.parked, pr, psParked)
		return
	}
	pf.busy = true
	// The check before the transfer cannot block: a cancel meanwhile marks
	// the request (stop) and is answered at once, and the request ends
	// canceled here instead of transferring.
	pr.state = psChecking
	p.mu.Unlock()
	again := plainCheck(pr)
	p.mu.Lock()
	var res int64
	if again == 0 && !pr.stop && !p.closed {
		pr.state = psRunning
		p.mu.Unlock()
		res = transfer(pr, false)
		p.mu.Lock()
	}
	pf.busy = false
	for _, q := range pf.parked {
		p.addWaitLocked(q) // they look at readiness again
	}
	clear(pf.parked)
	pf.parked = pf.parked[:0]
	switch {
	case pr.state == psChecking && (pr.stop || p.closed):
		res = canceledRes(pr)
	case again == plainWait:
		p.addWaitLocked(pr)
		return
	case again == plainSnooze:
		p.snoozeLocked(pr)
		return
	default:
		res = total(pr.moved, res)
	}
	pr.state = psEnded
	if p.reqs[pr.r.Tag] == pr {
		delete(p.reqs, pr.r.Tag)
	}
	p.mu.Unlock()
	p.finish(pr, res)
	p.mu.Lock()
}

// plainTransfer's answers besides a result.
const (
	plainWait   = 1 // the file is no longer ready: wait for readiness again
	plainSnooze = 2 // an eventfd write whose value does not fit: look again in a tick
)

// plainCheck is the guard in front of a plain transfer on a file that
// refuses RWF_NOWAIT and has no non-blocking description of ours: poll(2)
// without waiting, and the transfer only if the file is still ready (or
// reports an error or hang-up, which the transfer then returns at once), and
// for an eventfd write only if its value fits. Its caller holds the file's
// turn, so no other request of this pool can take the data or the room
// between the check and the transfer. 0 means transfer now.
func plainCheck(pr *preq) (again int) {
	ev := uint32(uint16(waitEvents(pr)))
	mask := pollNow(pr.fd, ev)
	if mask == 0 {
		return plainWait
	}
	if mask&ev != 0 && isWrite(pr.r.Op) && pr.pf.key.eventfd && !eventfdFits(pr) {
		return plainSnooze
	}
	return 0
}

// eventfdFits reports whether an eventfd write's value fits under the
// counter now (a write that does not, blocks until a read lowers it). A
// write that is not 8 bytes fails at once (EINVAL), so it fits.
func eventfdFits(pr *preq) bool {
	v, ok := eventfdValue(&pr.r)
	if !ok {
		return true
	}
	room, ok := eventfdRoom(pr.fd)
	return !ok || v <= room
}

// collectLocked takes from df's waiters those that rev (the events the
// mechanism reported ready on df) lets go on: a poll whose events came ends
// with the mask, a plain transfer goes to a worker, and the rest are put in
// ready (psTrying) for the poller's non-blocking transfer (tryReady).
func (p *pool) collectLocked(df *dfile, rev uint32, ready []*preq) []*preq {
	if rev == 0 {
		return ready
	}
	// Backwards: removeAt moves the last waiter, already looked at, into the
	// place of the one removed.
	for i := len(df.waiters) - 1; i >= 0; i-- {
		if i >= len(df.waiters) {
			continue
		}
		pr := df.waiters[i]
		if pr.how == poolPoll {
			mask := rev & (pr.r.PollEvents | unix.POLLERR | unix.POLLHUP | unix.POLLNVAL)
			if mask == 0 {
				continue
			}
			pr.r.PollEvents = mask // the result, from here on
		} else if rev&(uint32(uint16(waitEvents(pr)))|unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) == 0 {
			continue
		}
		p.removeWaitLocked(pr)
		if pr.plain {
			p.enqueueLocked(pr)
			continue
		}
		pr.state = psTrying
		ready = append(ready, pr)
	}
	return ready
}

// tryReady makes the non-blocking transfers of the requests collectLocked
// found ready, and ends or re-queues each. No lock held.
func (p *pool) tryReady(ready []*preq, results []int64, keys []fileKey) ([]int64, []fileKey) {
	// Every transfer of the batch first, then their outcomes at once,
	// and only then any done: a cancel waiting for a psTrying request
	// (cancel) must never wait behind a done callback, which may need
	// a lock that cancel's caller holds.
	results, keys = results[:0], keys[:0]
	for _, pr := range ready {
		var res int64
		var key fileKey
		if pr.how == poolPoll {
			res = int64(pr.r.PollEvents)
		} else if res = tryTransfer(pr); res == -int64(unix.EOPNOTSUPP) {
			key = plainKeyOf(pr)
		}
		results = append(results, res)
		keys = append(keys, key)
	}
	p.mu.Lock()
	for i, pr := range ready {
		res := results[i]
		switch {
		case pr.how != poolPoll && (res == -int64(unix.EAGAIN) || res == -int64(unix.EOPNOTSUPP)) && p.closed:
			results[i] = canceledRes(pr)
		case pr.how != poolPoll && res == -int64(unix.EAGAIN):
			// Nothing there after all (another reader took it): wait again.
			p.addWaitLocked(pr)
			ready[i] = nil
			continue
		case pr.how != poolPoll && res == -int64(unix.EOPNOTSUPP):
			// The file refuses RWF_NOWAIT and cannot be opened again
			// without blocking (a pty master, an eventfd write): from
			// now on a worker makes guarded plain transfers.
			p.makePlainLocked(pr, keys[i])
			p.enqueueLocked(pr)
			ready[i] = nil
			continue
		case pr.how != poolPoll:
			results[i] = total(pr.moved, res)
		}
		pr.state = psEnded
		if p.reqs[pr.r.Tag] == pr {
			delete(p.reqs, pr.r.Tag)
		}
	}
	if p.cancelWaiters > 0 {
		p.settled.Broadcast()
	}
	p.mu.Unlock()
	for i, pr := range ready {
		if pr != nil {
			ready[i] = nil
			p.finish(pr, results[i])
		}
	}
	return results, keys
}

// takeEnded is the poller's turn at the start of each round: the requests
// that cancel, close or a failure ended, whether the poller may stop (closed
// and nothing waits), and the wait's timeout (bounded while an eventfd
// write is snoozed, whose requests go back to waiting now).
func (p *pool) takeEnded(ended []*preq) (_ []*preq, stop bool, timeout int) {
	p.mu.Lock()
	ended, p.ended = p.ended, ended[:0]
	stop = p.closed && p.nwaiting == 0
	timeout = -1
	if len(p.snoozed) > 0 && !stop {
		timeout = int(snoozeTick / time.Millisecond)
		wake := p.snoozed
		p.snoozed = nil
		for _, pr := range wake {
			p.addWaitLocked(pr) // the mechanism sees them this round
		}
	}
	p.mu.Unlock()
	return ended, stop, timeout
}

// deliverEnded finishes what takeEnded took. It reports whether the poller
// may return (stop, and nothing ended since).
func (p *pool) deliverEnded(ended []*preq, stop bool) bool {
	for i, pr := range ended {
		res := pr.res
		if res == 0 {
			res = canceledRes(pr)
		}
		p.finish(pr, res)
		ended[i] = nil
	}
	if !stop {
		return false
	}
	p.mu.Lock()
	done := len(p.ended) == 0
	p.mu.Unlock()
	return done
}

// failLocked ends every request waiting on df with res (the readiness
// mechanism cannot watch it), for the poller to deliver.
func (p *pool) failLocked(df *dfile, res int64) {
	for len(df.waiters) > 0 {
		pr := df.waiters[len(df.waiters)-1]
		p.removeWaitLocked(pr)
		pr.res = res // a wait moved nothing before (moved is 0)
		pr.state = psEnded
		delete(p.reqs, pr.r.Tag)
		p.ended = append(p.ended, pr)
	}
	p.wakeLocked()
}

func errnoRes(err error) int64 {
	if e, ok := err.(unix.Errno); ok {
		return -int64(e)
	}
	return -int64(unix.EIO)
}

// pollNow is poll(2) on fd for events without waiting: the ready mask,
// limited to events|POLLERR|POLLHUP|POLLNVAL, or 0.
func pollNow(fd int, events uint32) uint32 {
	fds := []unix.PollFd{pollFd(fd, int16(uint16(events)))}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return 0
		}
		return uint32(uint16(fds[0].Revents)) & (events | unix.POLLERR | unix.POLLHUP | unix.POLLNVAL)
	}
}

// pollFd is a unix.PollFd asking for events. Its Events field is an int16
// on most systems and a uint16 on AIX; setEvents converts to either.
func pollFd(fd int, events int16) unix.PollFd {
	p := unix.PollFd{Fd: int32(fd)}
	setEvents(&p.Events, events)
	return p
}

func setEvents[T int16 | uint16](p *T, events int16) { *p = T(events) }

func waitEvents(pr *preq) int16 {
	switch {
	case pr.how == poolPoll:
		return int16(uint16(pr.r.PollEvents))
	case isWrite(pr.r.Op):
		return unix.POLLOUT
	}
	return unix.POLLIN
}

func isWrite(op uint8) bool { return op == OpWrite || op == OpWritev }

// runOp is poolRun's one blocking system call, at r.Off+moved, skipping the
// bytes already moved. It returns the count or a negated errno.
func runOp(pr *preq) int64 {
	r := &pr.r
	switch r.Op {
	case OpNop:
		return 0
	case OpFsync, OpFdsync:
		return SyncFD(pr.fd, r.Op == OpFdsync)
	case OpSyncFileRange, OpFallocate, OpFadvise:
		return runRange(r, pr.fd)
	case OpRead, OpWrite, OpReadv, OpWritev:
		b := pr.bufs()
		return rwAt(isWrite(r.Op), pr.fd, &b, r.Off+pr.moved, r.RWFlags)
	}
	return -int64(unix.EINVAL)
}

// transfer moves data at the current position, skipping the bytes already
// moved: with RWF_NOWAIT (nowait) on the poller, or plainly on a worker. On
// a non-blocking description of our own (pr.nb) it is a plain call, which
// that description's O_NONBLOCK keeps from waiting.
func transfer(pr *preq, nowait bool) int64 {
	b := pr.bufs()
	if pr.nb >= 0 {
		return rwCur(isWrite(pr.r.Op), pr.nb, &b, false, pr.r.RWFlags)
	}
	return rwCur(isWrite(pr.r.Op), pr.fd, &b, nowait, pr.r.RWFlags)
}

// tryTransfer is the poller's transfer after readiness, which must not
// block: with RWF_NOWAIT, or on a non-blocking description of the file of
// our own when the file refuses RWF_NOWAIT (made here, once per request,
// where privateNonblock finds that safe). -EOPNOTSUPP means neither is
// possible.
func tryTransfer(pr *preq) int64 {
	res := transfer(pr, true)
	if res == -int64(unix.EOPNOTSUPP) && pr.nb < 0 && !pr.nbTry {
		pr.nbTry = true
		if pr.nb = privateNonblock(pr.fd); pr.nb >= 0 {
			res = transfer(pr, true)
		}
	}
	return res
}

// SyncFD is fsync(2), or fdatasync(2) when data (fsync where the system has
// no fdatasync), retried on EINTR: 0 or a negated errno. A worker's sync, and
// package aio's where its caller makes the call a worker would (§8.5).
func SyncFD(fd int, data bool) int64 {
	if data {
		return retryErr(func() error { return fdatasync(fd) })
	}
	return retryErr(func() error { return unix.Fsync(fd) })
}

func retryErr(f func() error) int64 {
	for {
		err := f()
		if err == nil {
			return 0
		}
		if err != unix.EINTR {
			return errnoRes(err)
		}
	}
}

// iovec is struct iovec with the base as an integer: every address here is
// memory the caller keeps pinned, which Req already holds as an integer.
type iovec struct{ base, len uintptr }

// bufs is a request's memory as the iovec array a system call takes: the
// caller's own array (addr, n) when it can be passed as it is, else one
// built here (own).
type bufs struct {
	own  []iovec
	addr uint64
	n    uint32
}

// bufs is the request's buffer without the bytes already moved.
func (pr *preq) bufs() bufs { return reqBufs(&pr.r, pr.moved) }

// reqBufs is r's buffer without its first skip bytes.
func reqBufs(r *Req, skip int64) bufs {
	if r.Op == OpRead || r.Op == OpWrite {
		n := uint64(r.Len)
		if skip > 0 {
			n -= min(uint64(skip), n)
		}
		return bufs{own: []iovec{{uintptr(r.Addr + uint64(r.Len) - n), uintptr(n)}}}
	}
	if skip <= 0 {
		return bufs{addr: r.Addr, n: r.Len}
	}
	iov := readIovecs(r.Addr, r.Len)
	for len(iov) > 0 && skip > 0 {
		if uint64(skip) < uint64(iov[0].len) {
			iov[0].base += uintptr(skip)
			iov[0].len -= uintptr(skip)
			break
		}
		skip -= int64(iov[0].len)
		iov = iov[1:]
	}
	return bufs{own: iov}
}

// writeWake writes b to the poller's wake descriptor (eventfd or pipe),
// retrying EINTR. Any other failure is EAGAIN, a full counter or pipe: the
// poller will wake anyway.
func writeWake(fd int, b []byte) {
	for {
		if _, err := unix.Write(fd, b); err != unix.EINTR {
			return
		}
	}
}

// failAll ends every waiting request with err's errno: the poller's own wait
// failed, so none can proceed, and each ends with the error rather than the
// poller spinning.
func (p *pool) failAll(err error) {
	p.mu.Lock()
	for len(p.active) > 0 {
		p.failLocked(p.active[0], errnoRes(err))
	}
	p.mu.Unlock()
}
