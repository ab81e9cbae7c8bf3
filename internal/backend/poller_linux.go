//go:build linux && !uringaio_poll

package backend

// The pool's readiness mechanism on Linux: epoll. (Built with the tag
// uringaio_poll, Linux uses poller_other.go's poll(2) instead: that is how
// the poll(2) poller that other systems run is tested here.)
//
// Each descriptor of the pool (dfile) with requests waiting on it is
// registered once, EPOLLONESHOT, for the union of the events its waiters wait
// for; its id (never reused) is the registration's data. A registration fires
// once and is armed again (EPOLL_CTL_MOD) only while waiters remain. The cost
// of an event is therefore the waiters of the descriptor that became ready,
// not every waiting request; a cancel takes its request out of its
// descriptor's list in O(1) and leaves the registration as it is (an event
// for nobody costs one look, and disarms it). Registrations are made on the
// pool's own descriptors and removed (EPOLL_CTL_DEL) before the pool closes
// one, so a caller's close can never leave one behind (epoll keys on the
// open file and the number together).
//
// epoll_ctl may be called while the poller waits in epoll_wait: a new waiter
// is registered from the goroutine that starts it, with no wake-up of the
// poller. An eventfd (id 0, level-triggered) wakes it for everything else:
// cancels and close, whose completions the poller delivers.

import (
	"os"

	"golang.org/x/sys/unix"
)

type pollerState struct {
	epfd        int
	wake        int      // eventfd
	alwaysReady []*dfile // refused by epoll and ready now: the poller looks at them
}

type pollerFile struct {
	reg    bool   // registered with epfd
	armed  bool   // will report its next event (EPOLLONESHOT not yet fired)
	events uint32 // the events it is registered for
}

func (p *pool) openPoller() error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	w, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // data 0: the wake-up
	if err := epollCtl(ep, unix.EPOLL_CTL_ADD, w, &ev); err != nil {
		unix.Close(ep)
		unix.Close(w)
		return os.NewSyscallError("epoll_ctl", err)
	}
	p.epfd, p.wake = ep, w
	return nil
}

func (p *pool) closePoller() {
	unix.Close(p.epfd)
	unix.Close(p.wake)
}

func epollEvent(events uint32, id uint64) unix.EpollEvent {
	return unix.EpollEvent{Events: events | unix.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

func epollID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// armLocked makes sure df's registration reports the events its waiters
// wait for (grew: a waiter added events the registration may lack). A
// descriptor epoll refuses (EPERM: a regular file or directory, which
// poll(2) calls always ready for reading and writing and never for anything
// else) is not registered: its waiters wait for events that never come,
// until canceled, as with poll(2); one that is ready (always, for those)
// goes to the poller, which asks poll(2) with no wait. Any other failure ends its waiters with
// the errno.
func (p *pool) armLocked(df *dfile, grew bool) {
	if df.armed && !grew {
		return
	}
	want := df.wantEvents()
	if df.armed && want&^df.events == 0 {
		return
	}
	ev := epollEvent(want, df.id)
	op := unix.EPOLL_CTL_MOD
	if !df.reg {
		op = unix.EPOLL_CTL_ADD
	}
	var err error
	for {
		if err = epollCtl(p.epfd, op, df.fd, &ev); err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
		df.reg, df.armed, df.events = true, true, want
	case unix.EPERM, unix.EBADF:
		// EBADF: not open (only a descriptor the pool does not own can be
		// that); poll(2) says POLLNVAL.
		if pollNow(df.fd, want) != 0 {
			// Always ready (a regular file): say so through the poller.
			p.alwaysReady = append(p.alwaysReady, df)
			p.wakeLocked()
		}
	default:
		p.failLocked(df, errnoRes(err))
	}
}

// disarmLocked: a waiter left df. Nothing to do: see the file comment.
func (p *pool) disarmLocked(df *dfile) {}

// forgetLocked removes df's registration before its descriptor is closed.
func (p *pool) forgetLocked(df *dfile) {
	if df.reg {
		epollCtl(p.epfd, unix.EPOLL_CTL_DEL, df.fd, nil)
		df.reg, df.armed = false, false
	}
}

// wakeLocked makes the poller's epoll_wait return. One write at a time is
// enough: the poller looks at everything once it runs.
func (p *pool) wakeLocked() {
	if p.wakeSent {
		return
	}
	p.wakeSent = true
	b := [8]byte{1}
	writeWake(p.wake, b[:]) // EAGAIN: the counter is full, so the poller will wake anyway
}

// poller waits for readiness for every waiting request, moves the data of
// those that are ready, and delivers ended requests.
func (p *pool) poller() {
	defer p.wg.Done()
	var (
		evs     = make([]unix.EpollEvent, 256)
		ready   []*preq
		results []int64
		keys    []fileKey
		ended   []*preq
		always  []*dfile
		buf     [8]byte
	)
	for {
		var stop bool
		var timeout int
		ended, stop, timeout = p.takeEnded(ended)
		if p.deliverEnded(ended, stop) {
			return
		}
		if stop {
			continue
		}
		n, err := unix.EpollWait(p.epfd, evs, timeout)
		if err != nil {
			if err != unix.EINTR {
				// EBADF, EFAULT, EINVAL: the pool's own state is broken.
				p.failAll(err)
			}
			continue
		}
		ready = ready[:0]
		p.mu.Lock()
		for i := range evs[:n] {
			ev := &evs[i]
			id := epollID(ev)
			if id == 0 {
				p.wakeSent = false
				unix.Read(p.wake, buf[:])
				continue
			}
			df := p.watch[id]
			if df == nil || !df.reg {
				continue // released since epoll_wait returned
			}
			df.armed = false
			ready = p.collectLocked(df, ev.Events&0xffff, ready)
			if len(df.waiters) > 0 {
				p.armLocked(df, false)
			}
		}
		always, p.alwaysReady = p.alwaysReady, always[:0]
		for i, df := range always {
			ready = p.collectLocked(df, pollNow(df.fd, df.wantEvents()), ready)
			always[i] = nil
		}
		p.mu.Unlock()
		if len(ready) > 0 {
			results, keys = p.tryReady(ready, results, keys)
		}
	}
}
