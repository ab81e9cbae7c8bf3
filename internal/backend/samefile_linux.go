package backend

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/abi"
)

// sameFileWorks: kcmp(2) answers here (it needs CONFIG_KCMP, and seccomp
// profiles may refuse it). Without it the pool shares no duplicate.
var sameFileWorks = func() bool {
	_, ok := kcmpFile(0, 0)
	return ok
}()

var pid = os.Getpid()

// sameFile reports whether descriptors a and b are the same open file
// description (kcmp(2) KCMP_FILE). Any doubt answers false.
func sameFile(a, b int) bool {
	same, ok := kcmpFile(a, b)
	return ok && same
}

// kcmpFile is kcmp(pid, pid, KCMP_FILE, a, b); ok is false when kcmp is
// refused or missing (EBADF for a closed a is an answer: not the same).
func kcmpFile(a, b int) (same, ok bool) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(pid), abi.KCMP_FILE, uintptr(a), uintptr(b), 0)
		switch e {
		case 0:
			return r == 0, true
		case unix.EINTR:
			continue
		case unix.EBADF:
			return false, true
		}
		return false, false
	}
}
