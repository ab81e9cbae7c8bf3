package aio

import "golang.org/x/sys/unix"

// chainNonblock reports whether fd's open file is O_NONBLOCK (or cannot be
// asked): io_uring then ends a transfer that would wait with -EAGAIN, which
// breaks an IOSQE_IO_LINK chain, where kaio and threads wait for readiness
// (§3.10). Such a chain is kept by the library on uring too (chain.go).
func chainNonblock(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err != nil || fl&unix.O_NONBLOCK != 0
}
