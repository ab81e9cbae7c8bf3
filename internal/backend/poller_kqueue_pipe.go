//go:build netbsd || openbsd

package backend

// The kqueue poller's wake-up where golang.org/x/sys/unix has no EVFILT_USER
// (NetBSD has it from 10.0 only, OpenBSD not at all): the wake pipe, always.

import "golang.org/x/sys/unix"

const (
	kqUserIdent  = 0
	kqFilterUser = 0 // never used: kqUserWakeOpen is false
)

func kqUserWakeOpen(kq int) bool { return false }

func kqUserWake(kq int, ch []unix.Kevent_t) {}

func kqIsUserWake(ev *unix.Kevent_t) bool { return false }
