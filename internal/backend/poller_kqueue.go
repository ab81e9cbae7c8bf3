//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package backend

// The pool's readiness mechanism on the BSDs and darwin: kqueue.
//
// NOT RUN HERE: this file is compiled and vetted for darwin, dragonfly,
// freebsd, netbsd and openbsd, but this repository's tests and CI run on
// Linux only, so it has never run on a BSD or darwin kernel. What runs here
// is its decisions (kqstate.go, tested against a model of kqueue and poll(2)
// in kqstate_test.go); the system calls below are untested.
//
// Each descriptor of the pool (dfile) with requests waiting on it has one
// knote per filter (EVFILT_READ, EVFILT_WRITE) that its waiters need, added
// with EV_CLEAR and identified by the descriptor's number (p.kqFiles maps it
// back). When a knote reports, the poller asks poll(2) without waiting for
// the union of the events of that descriptor's waiters and collects those
// that are ready: the cost of an event is the waiters of that descriptor,
// not the waiting set. A cancel takes its request out of its descriptor's
// list in O(1) and makes no system call; a knote nobody needs any more is
// deleted when it next reports. kqstate.go says why EV_CLEAR and poll(2)
// (kqueue's filters only approximate poll(2)'s events) and when a new waiter
// looks for itself.
//
// kqueue keys a knote on the descriptor number in the kqueue, and close(2)
// removes the knotes of a descriptor, so none can outlive its file. The
// descriptors are the pool's own (pool_fd.go), and the pool deletes a
// descriptor's knotes before it closes it (forgetLocked) all the same.
//
// Descriptors kqueue does not watch faithfully are watched by poll(2)
// instead (kqState.polled): one whose knote kqueue refuses (a device with no
// kqueue filter: darwin's ttys and /dev/null give EINVAL), and on darwin
// every FIFO, whose last writer's close no knote reports (golang/go#24164;
// fstat cannot tell a named FIFO from a pipe(2) there, so pipes go too).
// While any such descriptor has waiters, the poller waits in poll(2) on the
// kqueue descriptor (readable when a knote has reported) and on those
// descriptors, and then takes the knotes' reports without waiting: that
// array is rebuilt when its set changes, O(polled descriptors).
//
// kevent(2) may be called while the poller waits in kevent or poll(2): a new
// waiter adds its knotes from the goroutine that starts it, with no wake-up
// of the poller. An EVFILT_USER event (darwin, dragonfly, freebsd; else a
// pipe: netbsd, openbsd, or a kernel that refuses EVFILT_USER) wakes it for
// everything else: cancels and close, whose completions the poller delivers,
// and a descriptor found ready or polled when it was armed.

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

type pollerState struct {
	kq           int
	wakeR, wakeW int              // the wake pipe, where EVFILT_USER is not used; else -1
	kqFiles      map[int]*dfile   // descriptors with knotes, by number (the knotes' ident)
	alwaysReady  []*dfile         // found ready when armed: the poller looks at them
	kqPolled     []*dfile         // descriptors watched by poll(2) (kqState.polled); pollerFile.pidx indexes it
	kqPollDirty  bool             // kqPolled or its waiters changed since the poller built its poll(2) array
	kqRound      uint64           // the poller's rounds, to look at a descriptor once per round
	kqChanges    [1]unix.Kevent_t // one change at a time (kqChange), under p.mu
}

type pollerFile struct {
	kq      kqState
	pidx    int    // index in p.kqPolled + 1; 0: not there
	kqRound uint64 // the poller round that last looked at it
	failing bool   // its waiters are being ended (failLocked): no knote is added meanwhile
}

// kqPollEvents is which poll(2) events each filter stands for here.
var kqPollEvents = kqEvents{
	read:  unix.POLLIN | unix.POLLRDNORM | unix.POLLRDBAND | unix.POLLPRI,
	write: unix.POLLOUT | unix.POLLWRNORM | unix.POLLWRBAND,
}

// kqFilterOf is kevent's filter for one kqSet element.
func kqFilterOf(f kqSet) int {
	if f == kqWrite {
		return unix.EVFILT_WRITE
	}
	return unix.EVFILT_READ
}

// kqChange applies changes with no event list and no wait: kevent(2) then
// returns the error of a failing change as its own (kqueue(2): with no room
// for an EV_ERROR event, -1 and errno).
func kqChange(kq int, changes []unix.Kevent_t) error {
	zero := unix.Timespec{}
	for {
		_, err := unix.Kevent(kq, changes, nil, &zero)
		if err != unix.EINTR {
			return err
		}
	}
}

func (p *pool) openPoller() error {
	syscall.ForkLock.RLock()
	kq, err := unix.Kqueue()
	if err == nil {
		unix.CloseOnExec(kq)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return os.NewSyscallError("kqueue", err)
	}
	p.kq, p.wakeR, p.wakeW = kq, -1, -1
	p.kqFiles = make(map[int]*dfile)
	if kqUserWakeOpen(kq) {
		return nil
	}
	r, w, err := wakePipe()
	if err != nil {
		unix.Close(kq)
		return err
	}
	var ch [1]unix.Kevent_t
	unix.SetKevent(&ch[0], r, unix.EVFILT_READ, unix.EV_ADD)
	if err := kqChange(kq, ch[:]); err != nil {
		unix.Close(kq)
		unix.Close(r)
		unix.Close(w)
		return os.NewSyscallError("kevent", err)
	}
	p.wakeR, p.wakeW = r, w
	return nil
}

func (p *pool) closePoller() {
	unix.Close(p.kq)
	if p.wakeR >= 0 {
		unix.Close(p.wakeR)
		unix.Close(p.wakeW)
	}
}

// kqSys for the decisions of kqstate.go: the system calls, under p.mu.

func (p *pool) kqAdd(fd int, f kqSet) error {
	return kqChange(p.kq, p.kqChange1(fd, kqFilterOf(f), unix.EV_ADD|unix.EV_CLEAR))
}

// kqChange1 is the one change in p.kqChanges (every field not set here is
// zero), ready for kqChange. Under p.mu.
func (p *pool) kqChange1(ident, filter, flags int) []unix.Kevent_t {
	p.kqChanges[0] = unix.Kevent_t{}
	unix.SetKevent(&p.kqChanges[0], ident, filter, flags)
	return p.kqChanges[:]
}

// kqDel deletes one filter per call: a failing change stops kevent(2) from
// applying the ones after it.
func (p *pool) kqDel(fd int, fs kqSet) {
	for _, f := range [...]kqSet{kqRead, kqWrite} {
		if fs&f != 0 {
			kqChange(p.kq, p.kqChange1(fd, kqFilterOf(f), unix.EV_DELETE)) // ENOENT: gone already
		}
	}
}

func (p *pool) kqPoll(fd int, events uint32) uint32 { return pollNow(fd, events) }

// kqWatches: on darwin, not a FIFO (the file comment says why).
func (p *pool) kqWatches(fd int) bool {
	if runtime.GOOS != "darwin" {
		return true
	}
	var st unix.Stat_t
	for {
		err := unix.Fstat(fd, &st)
		if err == unix.EINTR {
			continue
		}
		// An fstat that fails leaves it to kevent(2) to answer.
		return err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO
	}
}

// kqNeed is the filters df's waiters need.
func kqNeed(df *dfile, want uint32) kqSet {
	return kqFilters(want, len(df.waiters), kqPollEvents)
}

// armLocked makes sure df's knotes report what its waiters wait for
// (kqArm). grew is not needed: kqState knows what poll(2) found.
func (p *pool) armLocked(df *dfile, grew bool) {
	if df.failing {
		return
	}
	want := df.wantEvents()
	mask, err := kqArm(p, &df.kq, df.fd, want, kqNeed(df, want))
	p.kqAfterLocked(df, mask, err, true)
}

// disarmLocked: a waiter left df. Usually nothing (kqDisarm).
func (p *pool) disarmLocked(df *dfile) {
	if df.failing {
		return
	}
	want := df.wantEvents()
	mask, err := kqDisarm(p, &df.kq, df.fd, want, kqNeed(df, want))
	p.kqAfterLocked(df, mask, err, false)
}

// kqAfterLocked acts on kqArm's or kqDisarm's answer (added: a waiter was
// added) for df.
func (p *pool) kqAfterLocked(df *dfile, mask uint32, err error, added bool) {
	switch {
	case err != nil:
		// ENOMEM and the like: the waiters end with the errno, as on Linux.
		df.failing = true
		p.failLocked(df, errnoRes(err))
		df.failing = false
	case df.kq.polled:
		if df.pidx == 0 {
			p.kqPolled = append(p.kqPolled, df)
			df.pidx = len(p.kqPolled)
		}
		p.kqPollDirty = true
		if added {
			p.wakeLocked() // the poller's poll(2) array must have the new waiter
		}
	case mask != 0:
		p.alwaysReady = append(p.alwaysReady, df)
		p.wakeLocked()
	}
	if df.kq.reg != 0 && p.kqFiles[df.fd] != df {
		p.kqFiles[df.fd] = df
	}
}

// forgetLocked deletes df's knotes before its descriptor is closed.
func (p *pool) forgetLocked(df *dfile) {
	kqForget(p, &df.kq, df.fd)
	if p.kqFiles[df.fd] == df {
		delete(p.kqFiles, df.fd)
	}
	if df.pidx != 0 {
		last := p.kqPolled[len(p.kqPolled)-1]
		p.kqPolled[df.pidx-1] = last
		last.pidx = df.pidx
		p.kqPolled[len(p.kqPolled)-1] = nil
		p.kqPolled = p.kqPolled[:len(p.kqPolled)-1]
		df.pidx = 0
		p.kqPollDirty = true
	}
}

// wakeLocked makes the poller's kevent or poll(2) return. One wake-up at a
// time is enough: the poller looks at everything once it runs.
func (p *pool) wakeLocked() {
	if p.wakeSent {
		return
	}
	p.wakeSent = true
	if p.wakeW < 0 {
		kqUserWake(p.kq, p.kqChange1(kqUserIdent, kqFilterUser, 0))
		return
	}
	writeWake(p.wakeW, []byte{1})
}

// poller waits for readiness for every waiting request, moves the data of
// those that are ready, and delivers ended requests.
func (p *pool) poller() {
	defer p.wg.Done()
	var (
		evs     = make([]unix.Kevent_t, 256)
		fds     []unix.PollFd // fds[0] is the kqueue; fds[i+1] is polled[i]
		polled  []*dfile
		look    []*dfile // descriptors to ask poll(2) about this round
		ready   []*preq
		results []int64
		keys    []fileKey
		ended   []*preq
		always  []*dfile
		buf     [64]byte
		zero    unix.Timespec
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
		usePoll := len(p.kqPolled) > 0
		if usePoll && p.kqPollDirty {
			p.kqPollDirty = false
			fds = append(fds[:0], unix.PollFd{Fd: int32(p.kq), Events: unix.POLLIN})
			clear(polled)
			polled = polled[:0]
			for _, df := range p.kqPolled {
				if len(df.waiters) > 0 {
					fds = append(fds, pollFd(df.fd, int16(uint16(df.wantEvents()))))
					polled = append(polled, df)
				}
			}
		}
		p.mu.Unlock()
		var n int
		var err error
		if usePoll {
			for i := range fds {
				fds[i].Revents = 0
			}
			if _, err = unix.Poll(fds, timeout); err == nil {
				n, err = unix.Kevent(p.kq, nil, evs, &zero)
			}
		} else {
			var ts *unix.Timespec
			if timeout >= 0 {
				t := unix.NsecToTimespec(int64(timeout) * 1e6)
				ts = &t
			}
			n, err = unix.Kevent(p.kq, nil, evs, ts)
		}
		if err != nil {
			if err != unix.EINTR {
				// EBADF, EFAULT, EINVAL, ENOMEM.
				p.failAll(err)
			}
			continue
		}
		ready = ready[:0]
		p.mu.Lock()
		p.kqRound++
		for i := range evs[:n] {
			ev := &evs[i]
			if kqIsUserWake(ev) {
				p.wakeSent = false
				continue
			}
			fd := int(ev.Ident)
			if p.wakeR >= 0 && fd == p.wakeR && ev.Filter == unix.EVFILT_READ {
				p.wakeSent = false
				for {
					m, err := unix.Read(p.wakeR, buf[:])
					if m < len(buf) && err != unix.EINTR {
						break
					}
				}
				continue
			}
			var f kqSet
			switch ev.Filter {
			case unix.EVFILT_READ:
				f = kqRead
			case unix.EVFILT_WRITE:
				f = kqWrite
			default:
				continue
			}
			df := p.kqFiles[fd]
			if df == nil || df.kq.reg&f == 0 {
				continue // deleted since kevent returned
			}
			kqFired(p, &df.kq, df.fd, f, kqNeed(df, df.wantEvents()))
			if df.kqRound != p.kqRound {
				df.kqRound = p.kqRound
				look = append(look, df)
			}
		}
		always, p.alwaysReady = p.alwaysReady, always[:0]
		for i, df := range always {
			always[i] = nil
			if df.kqRound != p.kqRound {
				df.kqRound = p.kqRound
				look = append(look, df)
			}
		}
		for i, df := range look {
			look[i] = nil
			if len(df.waiters) == 0 {
				continue
			}
			want := df.wantEvents()
			ready = p.collectLocked(df, kqCheck(p, &df.kq, df.fd, want, kqNeed(df, want)), ready)
		}
		look = look[:0]
		if usePoll {
			for i, df := range polled {
				if rev := uint32(uint16(fds[i+1].Revents)); rev != 0 && df.kq.polled {
					ready = p.collectLocked(df, rev, ready)
				}
			}
		}
		p.mu.Unlock()
		if len(ready) > 0 {
			results, keys = p.tryReady(ready, results, keys)
		}
	}
}
