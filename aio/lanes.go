package aio

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Lanes: how the goroutine path is sharded
//
// A Context is one kernel instance (a ring, an aio context, a pool) and one
// lock, mu, over its slots. The calls storage engines make from many
// goroutines at once — ReadAt, WriteAt and File's — are spread over lanes so
// that on a machine with many cores they do not all queue on that one lock:
// lane 0 is the Context itself, and Options.Lanes−1 more Contexts of the same
// backend and maxEvents belong to it, unseen. Each lane has its own kernel
// instance, reaper, combiner and lock.
//
// Only requests whose IOCB is the library's own go to the other lanes (ReadAt
// and WriteAt take a pooled IOCB and give it back idle), so the calls that
// name a caller's IOCB — Submit, GetEvents, Do, Cancel, Error — use lane 0
// alone, with every guarantee as before. CancelFD, Destroy and Stats cover
// every lane.
//
// A call takes its lane from a sync.Pool of hints. The pool keeps a hint per
// P, so the goroutines a P runs keep to one lane while the Ps spread over all
// of them; a new hint takes the next lane in turn.

// laneHint names the lane a P's goroutines use.
type laneHint struct{ l *Context }

// autoLanes is Options.Lanes' default: a lane per 4 Ps, at most 8, for the
// kernel backends; the threads backend's pool is already its own queue.
func autoLanes(backend string) int {
	if backend == "threads" {
		return 1
	}
	return min(8, max(1, runtime.GOMAXPROCS(0)/4))
}

// openLanes starts the lanes beyond lane 0, of c's backend and size. With
// fewer, the default count (Options.Lanes 0), a lane that cannot be set up
// (no descriptor left, fs.aio-max-nr used up, no memory) ends the list there
// and the Context runs with the lanes it has: lanes only spread load, and a
// Setup that works with one lane must not fail for want of a second. A count
// the program asked for is all or an error.
func (c *Context) openLanes(n int, opts Options, fewer bool) error {
	c.lanes = []*Context{c}
	opts.Backend = c.be.Name()
	opts.Lanes = 1
	for len(c.lanes) < n {
		l, err := newContext(c.max, opts)
		if err != nil && fewer {
			break
		}
		if err != nil {
			for _, l := range c.lanes[1:] {
				_ = l.destroy()
			}
			c.lanes = nil
			return err
		}
		l.cs = c.cs
		c.lanes = append(c.lanes, l)
	}
	if len(c.lanes) == 1 {
		c.lanes = nil // one lane: the Context alone, as with Lanes 1
		return nil
	}
	var next atomic.Uint32
	c.hints = &sync.Pool{New: func() any {
		return &laneHint{l: c.lanes[int(next.Add(1)-1)%len(c.lanes)]}
	}}
	return nil
}

// lane is the lane for a request of the calling goroutine.
func (c *Context) lane() *Context {
	if c.hints == nil {
		return c
	}
	h := c.hints.Get().(*laneHint)
	l := h.l
	c.hints.Put(h)
	return l
}

// cancelFDLanes is CancelFD over lanes 1.. once lane 0 has answered r: the
// requests on fd there are ReadAt's and WriteAt's, notified as usual.
func (c *Context) cancelFDLanes(fd int, r CancelResult) CancelResult {
	for _, l := range c.lanes[1:] {
		lr, err := l.cancelFD(fd, nil) // the arguments are checked once, by CancelFD
		switch {
		case err != nil:
			// Only a lane being destroyed refuses; the Context's Destroy is
			// canceling its requests.
		case lr == NotCanceled || r == AllDone:
			r = lr
		}
	}
	return r
}

// destroyLanes destroys lanes 1.. after lane 0, returning the first error.
func (c *Context) destroyLanes() error {
	var err error
	for _, l := range c.lanes[1:] {
		if e := l.destroy(); e != nil && err == nil {
			err = e
		}
	}
	return err
}
