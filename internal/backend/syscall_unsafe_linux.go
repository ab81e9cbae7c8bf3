package backend

// The raw system calls of both mechanisms. Each passes Go memory to the kernel
// only for the duration of the call (the uintptr conversions sit in the call
// expression, which keeps the memory alive and in place); memory the kernel
// keeps after a call returns is pinned by package aio, never here.
//
// All of them go through unix.Syscall, not RawSyscall: io_uring_enter and
// io_submit may do buffered file I/O inline, and the waits block, so the
// runtime must be told that the thread is in the kernel. (io_cancel never
// sleeps, but measured as a raw call it was no faster: CancelFD's thousand
// io_cancel calls cost the same either way, within this machine's noise.)

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/abi"
)

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// io_uring_setup(2)
func uringSetup(entries uint32, p *abi.UringParams) (int, error) {
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	return int(fd), errnoErr(e)
}

// io_uring_enter(2) without an argument.
func uringEnter(fd int, toSubmit, minComplete, flags uint32) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	return int(n), errnoErr(e)
}

// io_uring_enter(2) with IORING_ENTER_EXT_ARG: arg carries the timeout.
func uringEnterArg(fd int, minComplete, flags uint32, arg *abi.GeteventsArg, ts *unix.Timespec) (int, error) {
	arg.Ts = uint64(uintptr(unsafe.Pointer(ts)))
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), 0, uintptr(minComplete),
		uintptr(flags|abi.IORING_ENTER_EXT_ARG), uintptr(unsafe.Pointer(arg)), unsafe.Sizeof(*arg))
	return int(n), errnoErr(e)
}

// io_uring_register(2) IORING_REGISTER_PROBE.
func uringProbe(fd int, p *abi.Probe) error {
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), abi.IORING_REGISTER_PROBE,
		uintptr(unsafe.Pointer(p)), uintptr(len(p.Ops)), 0, 0)
	return errnoErr(e)
}

// io_setup(2)
func ioSetup(nr uint32, ctx *uint64) error {
	_, _, e := unix.Syscall(unix.SYS_IO_SETUP, uintptr(nr), uintptr(unsafe.Pointer(ctx)), 0)
	return errnoErr(e)
}

// io_destroy(2)
func ioDestroy(ctx uint64) error {
	_, _, e := unix.Syscall(unix.SYS_IO_DESTROY, uintptr(ctx), 0, 0)
	return errnoErr(e)
}

// io_submit(2)
func ioSubmit(ctx uint64, cbs []*abi.IOCB) (int, error) {
	n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, uintptr(ctx), uintptr(len(cbs)), uintptr(unsafe.Pointer(&cbs[0])))
	return int(n), errnoErr(e)
}

// io_getevents(2); a nil ts waits without limit.
func ioGetevents(ctx uint64, minNr int, evs []abi.IOEvent, ts *unix.Timespec) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, uintptr(ctx), uintptr(minNr), uintptr(len(evs)),
		uintptr(unsafe.Pointer(&evs[0])), uintptr(unsafe.Pointer(ts)), 0)
	return int(n), errnoErr(e)
}

// io_cancel(2)
func ioCancel(ctx uint64, cb *abi.IOCB, res *abi.IOEvent) error {
	_, _, e := unix.Syscall(unix.SYS_IO_CANCEL, uintptr(ctx), uintptr(unsafe.Pointer(cb)), uintptr(unsafe.Pointer(res)))
	return errnoErr(e)
}

// epoll_ctl(2) made as a system call that may block, which it is:
// EPOLL_CTL_ADD and MOD call the file's poll method, and a FUSE file's sends
// FUSE_POLL to its server and waits for the answer. unix.EpollCtl makes it a
// raw call, which keeps the P for as long: with the server a goroutine of the
// same program (or any goroutine it needs) waiting for a P, that is a
// deadlock (seen with GOMAXPROCS=2 in compat caller/blocking-bound).
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.Syscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}
