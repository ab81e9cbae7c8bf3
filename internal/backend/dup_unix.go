//go:build unix && !aix

package backend

import "golang.org/x/sys/unix"

// dupCloexec duplicates fd with F_DUPFD_CLOEXEC, retrying EINTR (dup_aix.go
// where there is no F_DUPFD_CLOEXEC).
func dupCloexec(fd int) (int, error) {
	for {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != unix.EINTR {
			return d, err
		}
	}
}
