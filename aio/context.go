package aio

import (
	"context"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/uringaio/uringaio/internal/backend"
)

// How Do and GetEvents share a Context
//
// A request started by Do is Do's alone: its completion is routed to the Do call
// that waits for it and never appears in GetEvents, and GetEvents' events never
// reach Do. Whoever waits — a Do or a GetEvents caller — may be the one that
// takes completions from the kernel for everybody (see engine.go), so neither
// style can starve the other: each completion is routed to its owner the moment
// it is reaped, and the owner is woken. Do's requests count against maxEvents
// like any other.

// CanceledError is returned by Do and the calls built on it when the context
// ended and the request was stopped before any data moved. It matches both
// the context's error (context.Canceled or context.DeadlineExceeded) and
// syscall.ECANCELED with errors.Is.
type CanceledError struct {
	Op     Op    // the canceled request's operation
	CtxErr error // the context's error, ctx.Err() when it ended
}

func (e *CanceledError) Error() string {
	return "aio: " + e.Op.String() + ": canceled: " + e.CtxErr.Error()
}

// Unwrap returns the context's error and ECANCELED.
func (e *CanceledError) Unwrap() []error { return []error{e.CtxErr, syscall.ECANCELED} }

// Do submits cb, waits for it, and returns its event. When ctx ends first, Do
// cancels the request: if that succeeds the error is a *CanceledError (matching
// ctx.Err() and syscall.ECANCELED); if the request cannot be stopped Do waits for
// its real completion and returns that. Do never returns while the kernel may
// still use cb's buffers. A request that failed in the kernel returns its event
// and ev.Err().
//
// Do's request is private to Do: GetEvents never sees it.
//
// An OpRead or OpWrite of a regular file whose data is in the page cache is
// made on the calling goroutine (docs/contract.md §8.5), as File's are: it
// is complete when Do returns, counts in Stats.Inline, and cannot be
// stopped once started.
func (c *Context) Do(ctx context.Context, cb *IOCB) (Event, error) {
	if cb == nil {
		return Event{}, errDoNil
	}
	if cb.Link {
		return Event{}, errDoLink // chain.go: one request ends no chain; DoChain runs one
	}
	if err := ctx.Err(); err != nil {
		return Event{}, &CanceledError{Op: cb.Op, CtxErr: err}
	}
	if (cb.Op == OpRead || cb.Op == OpWrite) && !c.cs.off && cb.RWFlags == 0 {
		if ev, ok := c.doOnCaller(cb); ok {
			return ev, ev.Err()
		}
	}
	if (cb.Op == OpFsync || cb.Op == OpFdsync) && c.cs.syncBlocks() {
		if ev, ok := c.syncOnCaller(cb); ok { // caller_sync.go
			return ev, ev.Err()
		}
	}
	if cb.Op == OpWrite && cb.RWFlags != 0 && cb.RWFlags&^durableFlags == 0 && rwfLinux && c.cs.syncBlocks() {
		if ev, ok := c.flaggedOnCaller(cb); ok { // caller_sync.go
			return ev, ev.Err()
		}
	}
	return c.do(ctx, cb)
}

// do is Do once the caller's goroutine has not taken the request.
func (c *Context) do(ctx context.Context, cb *IOCB) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, &CanceledError{Op: cb.Op, CtxErr: err}
	}
	for {
		err := c.submitDo(cb)
		if err == nil {
			break
		}
		switch err {
		case errDestroyed:
			return Event{}, errDoDestroyed
		case errSubmitFull:
			// An io.ReaderAt must not fail because many goroutines read at
			// once: wait for room, as long as ctx allows.
			if err := c.waitRoom(ctx); err != nil {
				return Event{}, &CanceledError{Op: cb.Op, CtxErr: err}
			}
			continue
		}
		// Submit's checks refused cb: the refusal is Do's.
		return Event{}, asCall(err, "Do")
	}
	c.mu.Lock()
	idx := cb.slot.Load()
	gen := c.slots[idx].gen
	c.mu.Unlock()

	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.cancelFor(idx, gen) })
	}
	c.mu.Lock()
	c.await(&waiter{kind: waitDo, idx: idx, gen: gen}, time.Time{}, false, false)
	s := &c.slots[idx]
	ev := Event{Data: s.data, IOCB: cb, Res: s.res}
	c.freeSlot(idx)
	c.delivered(cb, s.res)
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if ev.Res == -int64(syscall.ECANCELED) {
		if err := ctx.Err(); err != nil {
			return ev, &CanceledError{Op: cb.Op, CtxErr: err}
		}
	}
	return ev, ev.Err()
}

// waitRoom waits until a request may fit (fewer than maxEvents outstanding and
// a free slot), ctx ends (its error is returned), or the Context is being
// destroyed (nil: the next Submit reports it).
func (c *Context) waitRoom(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.outstanding >= c.max || len(c.free) == 0 {
		if c.closing {
			return nil
		}
		var ch chan struct{}
		if n := len(c.roomChs); n > 0 {
			ch, c.roomChs = c.roomChs[n-1], c.roomChs[:n-1]
		} else {
			ch = make(chan struct{}, 1)
		}
		c.roomQ = append(c.roomQ, ch)
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		c.mu.Lock()
		woken := true
		for i, q := range c.roomQ {
			if q == ch {
				// Not woken (ctx ended): leave the queue.
				c.roomQ = append(c.roomQ[:i], c.roomQ[i+1:]...)
				woken = false
				break
			}
		}
		select {
		case <-ch:
		default:
		}
		c.roomChs = append(c.roomChs, ch)
		if err := ctx.Err(); err != nil {
			if woken {
				c.roomFreed() // the room we were given goes to the next
			}
			return err
		}
	}
	return nil
}

// cancelFor cancels Do's request in slot idx, if it is still that request and
// still running. It runs in the goroutine context.AfterFunc starts.
func (c *Context) cancelFor(idx int32, gen uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[idx]
	if s.cb == nil || s.gen != gen || s.done || s.canceling || c.dead {
		return
	}
	if s.queued {
		// The backend has not seen it yet: wait for the round that carries
		// it, then look again.
		c.waitQueued(idx)
		if s.cb == nil || s.gen != gen || s.done || s.canceling || c.dead {
			return
		}
	}
	c.startCancel(idx, cancelNotify)
	tag := s.tag(idx)
	c.mu.Unlock()
	c.beMu.RLock()
	ans, err := c.be.Cancel(tag)
	c.beMu.RUnlock()
	c.mu.Lock()
	if err != nil {
		ans = backend.CancelRefused
	}
	s.answer = ans
	c.await(&waiter{kind: waitCancelDecided, idx: idx}, time.Time{}, false, false)
	c.finishCancel(idx, cancelNotify)
}

// ReadAt reads len(p) bytes from fd at off, like io.ReaderAt: it issues reads
// until p is full, the file ends (io.EOF, with the bytes read so far) or an
// error occurs. Each read honours ctx as Do does; on cancellation n counts the
// bytes read before it.
// Page-cached data of a regular file is read on the calling goroutine
// (docs/contract.md §8.5).
func (c *Context) ReadAt(ctx context.Context, fd int, p []byte, off int64) (int, error) {
	return c.rwAt(ctx, OpRead, fd, p, off)
}

// WriteAt writes len(p) bytes to fd at off, like io.WriterAt: it issues writes
// until all of p is written or an error occurs. Each write honours ctx as Do
// does.
func (c *Context) WriteAt(ctx context.Context, fd int, p []byte, off int64) (int, error) {
	return c.rwAt(ctx, OpWrite, fd, p, off)
}

func (c *Context) rwAt(ctx context.Context, op Op, fd int, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &CallError{Call: rwCall(op), Errno: syscall.EINVAL, Reason: "negative offset"}
	}
	if !c.cs.off {
		// On the caller's goroutine where the policy allows (§8.5).
		return c.transfer(ctx, op, c.cs.fds.get(fd), true, 0, fd, p, off, nil)
	}
	return c.rwAsync(ctx, op, fd, p, off, 0)
}

// rwAsync is ReadAt or WriteAt through the backend: a request per MaxRW
// bytes, on the calling P's lane.
//
// hint is what the caller knows of fd (backend.Req.Hint; 0 for a raw
// descriptor).
func (c *Context) rwAsync(ctx context.Context, op Op, fd int, p []byte, off int64, hint uint8) (int, error) {
	return c.rwAsyncReg(ctx, op, fd, p, off, hint, nil)
}

// rwAsyncReg is rwAsync for a File, whose registration (reg, nil when it
// has none) gives the lane's fixed-file entry (fixedfile.go); it is entered
// here, for as long as the requests run.
func (c *Context) rwAsyncReg(ctx context.Context, op Op, fd int, p []byte, off int64, hint uint8, reg *fileReg) (int, error) {
	// The IOCB outlives this frame in a slot while the request runs, so it
	// would escape to the heap; a pooled one costs no allocation. It is idle
	// again when Do returns.
	l := c.lane()
	if l != c && c.shut.Load() {
		return 0, rwDestroyed(op)
	}
	cb := iocbs.Get().(*IOCB)
	defer func() {
		cb.Buf, cb.hint = nil, 0
		cb.fixedFile = 0
		iocbs.Put(cb)
	}()
	// While a request may use the File's fixed-file entries, Close and the
	// finalizer wait before emptying them (fixedfile.go).
	if reg != nil && reg.enter() {
		defer reg.leave()
		cb.fixedFile = reg.entry(l)
	}
	done := 0
	cb.hint = hint
	for {
		cb.Op, cb.FD, cb.Buf, cb.Offset = op, fd, p[done:min(len(p), done+MaxRW)], off+int64(done)
		ev, err := l.do(ctx, cb)
		if err != nil {
			// A refusal names the call the program made, not the Do
			// underneath; a request's own failure names its operation.
			if err == errDoDestroyed {
				return done, rwDestroyed(op)
			}
			return done, asCall(err, rwCall(op))
		}
		if ev.Res == 0 && len(cb.Buf) > 0 {
			if op == OpRead {
				return done, io.EOF
			}
			return done, io.ErrShortWrite
		}
		done += int(ev.Res)
		if done >= len(p) {
			return done, nil
		}
	}
}

// iocbs holds the IOCBs of ReadAt and WriteAt between calls.
var iocbs = sync.Pool{New: func() any { return new(IOCB) }}
