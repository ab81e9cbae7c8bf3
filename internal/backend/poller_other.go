//go:build unix && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd && (!linux || uringaio_poll)

package backend

// The pool's readiness mechanism where there is neither epoll nor kqueue
// (solaris, illumos, aix): poll(2), which every Unix has. Linux uses epoll
// (poller_linux.go), and the BSDs and darwin kqueue (poller_kqueue.go), so
// that an event's cost does not grow with the waiting set; built with the
// tag uringaio_poll, Linux uses this file instead, which is how it is tested.
//
// The poll array holds one entry per descriptor with waiters (not one per
// request), for the union of their events, and is rebuilt when that set
// changes: O(descriptors with waiters) per change. A wake pipe in the array
// lets start, cancel and close change the set. poll(2) has no registrations,
// so none can go stale; the descriptors are the pool's own in any case.

import (
	"time"

	"golang.org/x/sys/unix"
)

type pollerState struct {
	wakeR, wakeW int
	changed      bool // the set of waiters changed since the poller built its array
}

// pollerFile: poll(2) keeps nothing per descriptor.
//
//lint:ignore U1000 dfile embeds it, as it embeds epoll's and kqueue's
type pollerFile struct{}

func (p *pool) openPoller() error {
	r, w, err := wakePipe()
	if err != nil {
		return err
	}
	p.wakeR, p.wakeW, p.changed = r, w, true
	return nil
}

func (p *pool) closePoller() {
	unix.Close(p.wakeR)
	unix.Close(p.wakeW)
}

func (p *pool) armLocked(df *dfile, grew bool) {
	p.changed = true
	p.wakeLocked()
}

func (p *pool) disarmLocked(df *dfile) { p.changed = true }

func (p *pool) forgetLocked(df *dfile) {}

// wakeLocked makes the poller's poll(2) return. One byte at a time is enough:
// the poller looks at everything once it runs.
func (p *pool) wakeLocked() {
	if p.wakeSent {
		return
	}
	p.wakeSent = true
	writeWake(p.wakeW, []byte{1})
}

// poller waits for readiness for every waiting request, moves the data of
// those that are ready, and delivers ended requests.
func (p *pool) poller() {
	defer p.wg.Done()
	var (
		fds     []unix.PollFd
		polled  []*dfile // polled[i] waits on fds[i+1]; fds[0] is the wake pipe
		ready   []*preq
		results []int64
		keys    []fileKey
		ended   []*preq
		buf     [64]byte
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
		p.mu.Lock()
		if p.changed {
			p.changed = false
			fds = append(fds[:0], unix.PollFd{Fd: int32(p.wakeR), Events: unix.POLLIN})
			clear(polled)
			polled = polled[:0]
			for _, df := range p.active {
				fds = append(fds, pollFd(df.fd, int16(uint16(df.wantEvents()))))
				polled = append(polled, df)
			}
		}
		p.mu.Unlock()
		for i := range fds {
			fds[i].Revents = 0
		}
		if _, err := unix.Poll(fds, timeout); err != nil {
			if err != unix.EINTR {
				// EINVAL (more descriptors than RLIMIT_NOFILE) or ENOMEM.
				p.failAll(err)
				time.Sleep(time.Millisecond)
			}
			continue
		}
		if fds[0].Revents != 0 {
			p.mu.Lock()
			p.wakeSent = false
			for {
				n, err := unix.Read(p.wakeR, buf[:])
				if n < len(buf) && err != unix.EINTR {
					break
				}
			}
			p.mu.Unlock()
		}
		ready = ready[:0]
		p.mu.Lock()
		for i, df := range polled {
			if rev := uint32(uint16(fds[i+1].Revents)); rev != 0 {
				ready = p.collectLocked(df, rev, ready)
			}
		}
		p.mu.Unlock()
		if len(ready) > 0 {
			results, keys = p.tryReady(ready, results, keys)
		}
	}
}
