package backend

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// dupCloexec duplicates fd with F_DUPFD, then sets FD_CLOEXEC: AIX has no
// F_DUPFD_CLOEXEC. ForkLock keeps a concurrent fork from inheriting the
// duplicate in between, as package syscall does where it must.
func dupCloexec(fd int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	for {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD, 0)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			unix.CloseOnExec(d)
		}
		return d, err
	}
}
