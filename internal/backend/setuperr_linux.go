package backend

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Why a kernel backend could not start. Each refusal names the switches of
// its own backend: io_uring's hint names kernel.io_uring_disabled and
// seccomp, classic AIO's names seccomp (its one switch besides
// fs.aio-max-nr, whose EAGAIN kaioSetupErr explains); neither names the
// other's.

// setupErr wraps a refusal of one of classic AIO's setup calls (and any
// call no sysctl switches off) so that it matches both ErrNotSupported and
// errno, with a hint at the usual cause.
func setupErr(call string, err error) error {
	var hint string
	switch {
	case errors.Is(err, unix.EPERM):
		hint = " (refused by a seccomp filter)"
	case errors.Is(err, unix.ENOSYS):
		hint = " (the kernel lacks the system call, or a seccomp filter refuses it)"
	case errors.Is(err, unix.ENOMEM):
		hint = " (out of kernel memory)"
	default:
		hint = fdHint(err)
	}
	return fmt.Errorf("%s: %w%s: %w", call, err, hint, ErrNotSupported)
}

// uringSetupErr is setupErr for io_uring's setup calls, which
// kernel.io_uring_disabled can also refuse.
func uringSetupErr(call string, err error) error {
	var hint string
	switch {
	case errors.Is(err, unix.EPERM):
		hint = " (io_uring disabled by kernel.io_uring_disabled or a seccomp filter)"
	case errors.Is(err, unix.ENOSYS):
		hint = " (a kernel built without io_uring, or a seccomp filter refuses it)"
	case errors.Is(err, unix.ENOMEM):
		hint = " (out of memory for the rings, or RLIMIT_MEMLOCK too low on kernels before 5.12)"
	default:
		hint = fdHint(err)
	}
	return fmt.Errorf("%s: %w%s: %w", call, err, hint, ErrNotSupported)
}

// fdHint explains a refusal for lack of descriptors.
func fdHint(err error) string {
	if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
		return " (out of file descriptors: raise RLIMIT_NOFILE)"
	}
	return ""
}
