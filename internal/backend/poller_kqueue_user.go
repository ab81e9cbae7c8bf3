//go:build darwin || dragonfly || freebsd

package backend

// The kqueue poller's wake-up where the system has EVFILT_USER: a user event
// in the kqueue itself, so a wake-up costs one kevent(2) and nothing to drain
// (EV_CLEAR). A kernel that refuses it (kqUserWakeOpen false) gets the pipe.

import "golang.org/x/sys/unix"

const (
	kqUserIdent  = 0 // the user event's ident (its own name space: not a descriptor)
	kqFilterUser = unix.EVFILT_USER
)

// kqUserWakeOpen adds the user event to kq; false if the kernel refuses it.
func kqUserWakeOpen(kq int) bool {
	var ch [1]unix.Kevent_t
	unix.SetKevent(&ch[0], kqUserIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	return kqChange(kq, ch[:]) == nil
}

// kqUserWake triggers the user event; ch is the change kqChange1 made for
// it.
func kqUserWake(kq int, ch []unix.Kevent_t) {
	ch[0].Fflags = unix.NOTE_TRIGGER
	kqChange(kq, ch)
}

func kqIsUserWake(ev *unix.Kevent_t) bool { return ev.Filter == unix.EVFILT_USER }
