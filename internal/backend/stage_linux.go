package backend

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Stages: what a kernel mechanism cannot do, done by the pool.
//
// Both kernel backends meet requests their mechanism refuses or cannot finish
// by itself: classic AIO refuses files without read_iter/write_iter (eventfd
// writes, many /proc files, directories) and polls on ttys, stops at the
// first uncached page under RWF_NOWAIT (a short read in the middle of a
// file), and must not let a read on an empty pipe block io_submit; io_uring
// answers -EAGAIN for a pipe or socket opened O_NONBLOCK (older kernels: 6.18
// polls those itself). Each such request is
// handed to the pool (pool.go): readiness waits on its poller, blocking
// transfers on its workers. The pool finishes it on its own, with nobody
// reaping, and its completion waits in stager.done until Reap takes it.
//
// Binding. A request must act on the file its fd named at Submit, even if the
// caller closes the fd and the number is reused before the request ends. So a
// backend diverts a request while the caller is still inside Submit, when the
// number certainly names the caller's file, and the pool works on a duplicate
// of the descriptor (F_DUPFD_CLOEXEC), shared by the requests on the same
// open file and closed when the last of them ends (pool_fd.go): the
// request completes on the original file, as io_uring's own requests do (they
// hold a reference to the file). Requests diverted later, from a completion
// that arrives after Submit returned (classic AIO's rare asynchronous -EAGAIN
// from a block device, io_uring's resubmission after a thread exit), can only
// go by number; that is written down in docs/contract.md.
type stager struct {
	wake    func()       // ends a Reap wait in the kernel (Backend.Wake)
	workers int          // the pool's size (0: DefaultWorkers); set before the first Submit
	blocked atomic.Bool  // a Reap may be waiting in the kernel
	live    atomic.Int64 // requests the pool holds for this backend (divert to finished)
	ndone   atomic.Int32 // len(done), written under mu: take skips the lock when 0

	mu   sync.Mutex
	p    *pool
	done []Completion // finished by the pool, not yet reaped
}

// how decides how the pool carries out r on fd: a poll stays a poll; a read or
// write waits for readiness on a pipe, socket, tty or other pollable file, and
// is one blocking call on a regular file, block device or directory (which
// then fails with EISDIR, as io_uring's read does).
func stageHow(r *Req, fd int) (how uint8, errno unix.Errno) {
	if r.Op == OpPoll {
		return poolPoll, 0
	}
	if !r.isTransfer() {
		return poolRun, 0
	}
	switch {
	case r.Hint&HintStorage != 0:
		return poolRun, 0
	case r.Hint&HintStream != 0:
		return poolWait, 0
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err.(unix.Errno)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFBLK, unix.S_IFDIR:
		return poolRun, 0
	}
	return poolWait, 0
}

// isStorage reports whether fd is a regular file or block device: a short
// count from one of those under RWF_NOWAIT means "not cached", not "no more".
func isStorage(fd int32) bool {
	var st unix.Stat_t
	if unix.Fstat(int(fd), &st) != nil {
		return false
	}
	m := st.Mode & unix.S_IFMT
	return m == unix.S_IFREG || m == unix.S_IFBLK
}

// divert hands r to the pool, on a duplicate of r.FD, to be done as how says
// (0: decided by stageHow), having already moved moved bytes. It returns 0 when
// the pool took the request, else the negated errno that ends it now (a bad
// descriptor; no descriptor left to duplicate, EMFILE: then the file cannot be
// held, and the request fails rather than risk another file).
func (g *stager) divert(r *Req, how uint8, moved int64) int64 {
	p, err := g.pool()
	if err != nil {
		return errRes(err)
	}
	var df *dfile
	if r.Hint&HintHeld != 0 {
		// The number is held open for the request's life (a File's
		// request): no duplicate.
		p.mu.Lock()
		df = p.heldLocked(int(r.FD))
		p.mu.Unlock()
	} else if df, err = p.acquire(r.FD); err != nil {
		return errRes(err)
	}
	if how == 0 {
		var errno unix.Errno
		if how, errno = stageHow(r, df.fd); errno != 0 {
			p.release(df)
			return -int64(errno)
		}
	}
	g.live.Add(1)
	p.startOn(r, df, how, moved)
	return 0
}

// pool returns the stager's pool, starting it on first use: most Contexts
// never need one.
func (g *stager) pool() (*pool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.p == nil {
		p, err := newPool(g.workers, g.finished)
		if err != nil {
			return nil, err
		}
		g.p = p
	}
	return g.p, nil
}

// finished is the pool's done callback.
func (g *stager) finished(c Completion) {
	g.live.Add(-1)
	g.mu.Lock()
	g.done = append(g.done, c)
	g.ndone.Store(int32(len(g.done)))
	g.mu.Unlock()
	if g.blocked.Load() {
		g.wake()
	}
}

// take moves finished completions into cs and returns how many.
//
// Every Reap calls it, and most backends' pools never finish anything: a
// count read without the lock says when there is nothing (a mutex round was
// 14 ns of a 400 ns NOP round trip on io_uring). A completion that lands just
// after that look waits for the next take; block's look under the lock sees
// it before any wait in the kernel.
func (g *stager) take(cs []Completion) int {
	if g.ndone.Load() == 0 {
		return 0
	}
	g.mu.Lock()
	n := copy(cs, g.done)
	if n > 0 {
		g.done = append(g.done[:0], g.done[n:]...)
		g.ndone.Store(int32(len(g.done)))
	}
	g.mu.Unlock()
	return n
}

// pending reports whether completions wait to be taken.
func (g *stager) pending() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.done) > 0
}

// minWait is how many completions a Reap may wait for in the kernel at once
// when its caller wants want: want itself while the pool holds none of this
// backend's requests, else 1. A pool completion ends a kernel wait through
// Wake, which posts one kernel completion: a wait for more (a cancel waiter
// expecting a thousand) would sit out its whole timeout instead (measured: a
// 1 ms floor under CancelFD of 100 pipe reads on classic AIO).
func (g *stager) minWait(want int) int {
	if want > 1 && g.live.Load() > 0 {
		return 1
	}
	return want
}

// block is called by Reap before it waits in the kernel: it reports false
// (do not wait) when completions are already waiting. After it, a pool
// completion wakes the wait. unblock ends it.
func (g *stager) block() bool {
	g.blocked.Store(true)
	if g.pending() {
		g.blocked.Store(false)
		return false
	}
	return true
}

func (g *stager) unblock() { g.blocked.Store(false) }

// cancel asks the pool to stop tag's request.
func (g *stager) cancel(tag uint64) CancelAnswer {
	g.mu.Lock()
	p := g.p
	g.mu.Unlock()
	if p == nil {
		return CancelRefused
	}
	return p.cancel(tag)
}

// close stops the pool. Every request has ended by then (Backend.Close).
func (g *stager) close() {
	g.mu.Lock()
	p := g.p
	g.p = nil
	g.mu.Unlock()
	if p != nil {
		p.close()
	}
}

// reqBytes is how many bytes r asks to move: Len for a plain read or write,
// the sum of the iovec lengths for a vectored one. Only short transfers ask,
// so the copy readIovecs makes costs nothing that matters.
func reqBytes(r *Req) int64 {
	switch r.Op {
	case OpRead, OpWrite:
		return int64(r.Len)
	case OpReadv, OpWritev:
		var n int64
		for _, v := range readIovecs(r.Addr, r.Len) {
			n += int64(v.len)
		}
		return n
	}
	return 0
}
