package aio

import (
	"context"
	"sync/atomic"
	"syscall"

	"github.com/uringaio/uringaio/internal/backend"
)

// Syncs and chains on the caller's goroutine (docs/contract.md §8.5, §13.8).
//
// threads' pool makes fsync and fdatasync as one blocking system call on a
// worker, and classic AIO's IOCB_CMD_FSYNC/FDSYNC run vfs_fsync on a kernel
// work queue: the same call, on a thread that is not the caller's. Do, which
// waits for the sync anyway, makes that call itself there, as it does for
// the blocking transfers (caller.go: blocking): the hand-off to a worker and
// back cost a write-ahead log's commit (write then fdatasync, DoChain) 1.25×
// (threads) and 1.5× (kaio) the p50 latency of pwrite+fdatasync from one
// goroutine. A chain whose every member is such a call runs the same way,
// member after member, keeping §13's order and its -ECANCELED for the rest.
// io_uring keeps its syncs and chains: its kernel runs them (io-wq), and a
// linked write+fdatasync there measured below pwrite+fdatasync.

// syncBlocks reports whether the backend makes fsync and fdatasync with one
// blocking call on a worker: threads and kaio.
func (cs *callerSide) syncBlocks() bool {
	return !cs.off && (cs.block == blockAll || cs.block == blockBuffered)
}

// blockingSync makes fsync(2), or fdatasync(2) when data, of fd on the
// caller's goroutine where the backend would make it on a worker
// (syncBlocks), within blocking's bound. ok is false when it is not made
// here.
func (cs *callerSide) blockingSync(fd int, data bool) (res int64, ok bool) {
	if !cs.syncBlocks() {
		return 0, false
	}
	if !cs.takeBlock() {
		return 0, false
	}
	res = syncCall(fd, data)
	cs.blockN.Add(-1)
	cs.count()
	cs.nBlocking.Add(1)
	return res, true
}

// syncOnCaller is Do of an OpFsync or OpFdsync on the caller's goroutine
// (blockingSync); ok is false when Do must submit it. While it runs, cb is
// in use as a caller-side transfer is (§8.5).
func (c *Context) syncOnCaller(cb *IOCB) (ev Event, ok bool) {
	if c.validate(cb) != nil || c.shut.Load() || !cb.state.CompareAndSwap(cbIdle, cbInline) {
		return Event{}, false
	}
	if cb.ctx.Load() != c {
		cb.ctx.Store(c)
	}
	res, ok := c.cs.blockingSync(cb.FD, cb.Op == OpFdsync)
	if ok {
		cb.state.finish(cbIdle, res)
	} else {
		cb.state.Store(cbIdle)
	}
	return Event{Data: cb.Data, IOCB: cb, Res: res}, ok
}

// durableFlags are the RWF_* bits of a write that Do makes on the caller on
// threads and kaio (flaggedOnCaller): the worker's pwritev2 would carry them,
// and they change nothing but when the call returns.
const durableFlags = backend.RWFDsync | backend.RWFSync

// flaggedOnCaller is Do of an OpWrite whose RWFlags are RWF_DSYNC and/or
// RWF_SYNC, on threads and kaio, on Linux: the one pwritev2(2) with those
// flags that the backend's worker would make (threads' pool; classic AIO's,
// which gets every buffered write ext4 refuses under RWF_NOWAIT), made here
// under blocking's rules and bound. Its count, short or not, is the result,
// as the worker's is. ok is false when Do must submit it.
func (c *Context) flaggedOnCaller(cb *IOCB) (ev Event, ok bool) {
	if c.validate(cb) != nil || len(cb.Buf) == 0 || len(cb.Buf) > MaxRW || c.shut.Load() {
		return Event{}, false
	}
	h := c.cs.fds.get(cb.FD)
	if h == nil || !c.cs.blockable(h, true, 0, cb.FD) || !cb.state.CompareAndSwap(cbIdle, cbInline) {
		return Event{}, false
	}
	if !c.cs.takeBlock() {
		cb.state.Store(cbIdle)
		return Event{}, false
	}
	if cb.ctx.Load() != c {
		cb.ctx.Store(c)
	}
	n, errno := blockingRWFlags(true, cb.FD, cb.Buf, cb.Offset, cb.RWFlags)
	c.cs.blockN.Add(-1)
	if errno == syscall.ESPIPE {
		// The number names a pipe now: the backend writes it (blocking).
		noCaller(h, 0)
		cb.state.Store(cbIdle)
		return Event{}, false
	}
	c.cs.count()
	c.cs.nBlocking.Add(1)
	res := int64(n)
	if errno != 0 {
		res = -int64(errno)
	}
	cb.state.finish(cbIdle, res)
	return Event{Data: cb.Data, IOCB: cb, Res: res}, true
}

// chainOnCaller runs DoChain's chain on the caller's goroutine when every
// member is a call the backend would make blocking on a worker: a read or
// write that blocking would take (a regular file or block device; not
// O_DIRECT on kaio, whose io_submit moves it) and fsync or fdatasync. The
// chain holds one of blocking's calls (the bound) from its first member to
// its last. Each member starts only after the one before it moved every
// byte or, for a sync, did not fail; otherwise, or once ctx has ended, the
// rest end with -ECANCELED without starting (§13.1, §13.8). A member cannot
// be stopped once started (§8.5). Every member is in use until the chain
// ends: Submit refuses it (EBUSY) and Error reports EINPROGRESS. ok is false
// when the chain is not run here (DoChain then submits it).
func (c *Context) chainOnCaller(ctx context.Context, cbs []*IOCB) (evs []Event, ok bool) {
	cs := c.cs
	if !cs.syncBlocks() || c.shut.Load() {
		return nil, false
	}
	var small [4]*atomic.Uint32
	hs := small[:0]
	for _, cb := range cbs {
		if c.validate(cb) != nil {
			return nil, false
		}
		var h *atomic.Uint32
		switch cb.Op {
		case OpFsync, OpFdsync:
		case OpRead, OpWrite:
			if len(cb.Buf) == 0 || len(cb.Buf) > MaxRW || cb.RWFlags != 0 {
				return nil, false
			}
			if h = cs.fds.get(cb.FD); h == nil || !cs.blockable(h, cb.Op == OpWrite, 0, cb.FD) {
				return nil, false
			}
		default:
			return nil, false
		}
		hs = append(hs, h)
	}
	for i, cb := range cbs {
		if !cb.state.CompareAndSwap(cbIdle, cbInline) {
			// Outstanding, in use elsewhere, or twice in this chain:
			// DoChain's Submit gives the refusal (EBUSY).
			idleAll(cbs[:i])
			return nil, false
		}
	}
	for _, cb := range cbs {
		if cb.ctx.Load() != c {
			cb.ctx.Store(c) // Error reports EINPROGRESS for every member from now
		}
	}
	if !cs.takeBlock() {
		idleAll(cbs)
		return nil, false
	}
	evs = make([]Event, len(cbs))
	broken := false
	for i, cb := range cbs {
		res := -int64(syscall.ECANCELED)
		if !broken && ctx.Err() == nil {
			res = c.memberOnCaller(cb, hs[i])
			want := wantOf(cb)
			broken = res < 0 || want >= 0 && res != want
		} else {
			broken = true
		}
		evs[i] = Event{Data: cb.Data, IOCB: cb, Res: res}
	}
	cs.blockN.Add(-1)
	for i, cb := range cbs {
		cb.state.finish(cbIdle, evs[i].Res)
	}
	return evs, true
}

// memberOnCaller makes cb's one blocking call (chainOnCaller): a transfer is
// continued until every byte moved, the end of the file, or an error after
// some bytes (a short count, as a worker's would be).
func (c *Context) memberOnCaller(cb *IOCB, h *atomic.Uint32) int64 {
	cs := c.cs
	cs.count()
	cs.nBlocking.Add(1)
	if cb.Op == OpFsync || cb.Op == OpFdsync {
		return syncCall(cb.FD, cb.Op == OpFdsync)
	}
	write, n := cb.Op == OpWrite, 0
	for n < len(cb.Buf) {
		m, errno := blockingRW(write, cb.FD, cb.Buf[n:], cb.Offset+int64(n))
		if errno != 0 {
			if n > 0 {
				break
			}
			if errno == syscall.ESPIPE {
				noCaller(h, 0) // the number names a pipe now: not here again
			}
			return -int64(errno)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return int64(n)
}

// idleAll puts every IOCB of cbs back in the idle state.
func idleAll(cbs []*IOCB) {
	for _, cb := range cbs {
		cb.state.Store(cbIdle)
	}
}
