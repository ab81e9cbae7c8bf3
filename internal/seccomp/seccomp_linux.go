// Package seccomp installs a small seccomp-BPF filter that makes chosen system
// calls fail with a chosen errno, the way Docker's default profile or
// kernel.io_uring_disabled refuse io_uring. It exists for the reliability tests,
// which install it in a child process (a filter can never be removed).
package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Rule makes system call Nr fail with Errno.
type Rule struct {
	Nr    uintptr
	Errno unix.Errno
}

// offsets into struct seccomp_data
const (
	offNr   = 0
	offArch = 4
)

// auditArch is the AUDIT_ARCH_* value of the architecture this binary runs as.
func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("seccomp: architecture %s not supported", runtime.GOARCH)
}

// Program builds the filter: system calls of another architecture (a 32-bit
// entry, say) are killed, each rule's call returns SECCOMP_RET_ERRNO|errno, and
// everything else is allowed.
func Program(rules []Rule) ([]unix.SockFilter, error) {
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	if len(rules) > 200 {
		return nil, fmt.Errorf("seccomp: too many rules (%d)", len(rules))
	}
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	prog := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, arch, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
	}
	for _, r := range rules {
		if r.Errno == 0 || r.Errno > unix.SECCOMP_RET_DATA {
			return nil, fmt.Errorf("seccomp: bad errno %d for syscall %d", int(r.Errno), r.Nr)
		}
		prog = append(prog,
			jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(r.Nr), 0, 1),
			stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(r.Errno)),
		)
	}
	prog = append(prog, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW))
	return prog, nil
}

// Install sets PR_SET_NO_NEW_PRIVS and installs the filter for every thread of
// the process (SECCOMP_FILTER_FLAG_TSYNC). It cannot be undone.
func Install(rules []Rule) error {
	prog, err := Program(rules)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp: seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", errno)
	}
	if r != 0 {
		// With TSYNC a positive return is the id of a thread that could not be
		// synchronised.
		return fmt.Errorf("seccomp: thread %d could not be synchronised", r)
	}
	return nil
}
