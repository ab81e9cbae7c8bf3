package seccomp

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProgramShape(t *testing.T) {
	prog, err := Program([]Rule{{unix.SYS_IO_URING_SETUP, unix.EPERM}, {unix.SYS_IO_SETUP, unix.ENOSYS}})
	if err != nil {
		t.Fatal(err)
	}
	// 4 (arch check, load nr) + 2 per rule + allow
	if len(prog) != 4+2*2+1 {
		t.Fatalf("len(prog) = %d, want 9", len(prog))
	}
	if got := prog[len(prog)-1].K; got != unix.SECCOMP_RET_ALLOW {
		t.Fatalf("last instruction returns %#x, want SECCOMP_RET_ALLOW", got)
	}
	if got := prog[5].K; got != unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM) {
		t.Fatalf("first rule returns %#x, want ERRNO|EPERM", got)
	}
	if _, err := Program([]Rule{{unix.SYS_IO_SETUP, 0}}); err == nil {
		t.Fatal("Program accepted errno 0")
	}
}

// TestInstall installs a filter in a child process (it cannot be removed) and
// checks that the refused call fails with the chosen errno and that other
// calls still work.
func TestInstall(t *testing.T) {
	if os.Getenv("SECCOMP_TEST_CHILD") == "1" {
		// Before: a NULL params pointer is refused by the kernel itself.
		if _, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 0, 0, 0); e != unix.EFAULT {
			t.Fatalf("io_uring_setup(0, NULL) before the filter: %v, want EFAULT", e)
		}
		if err := Install([]Rule{{unix.SYS_IO_URING_SETUP, unix.EPERM}}); err != nil {
			t.Fatal(err)
		}
		if _, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 0, 0, 0); e != unix.EPERM {
			t.Fatalf("io_uring_setup after the filter: %v, want EPERM", e)
		}
		// Every thread has it (TSYNC): try from a locked, fresh thread too.
		done := make(chan unix.Errno)
		go func() {
			_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 0, 0, 0)
			done <- e
		}()
		if e := <-done; e != unix.EPERM {
			t.Fatalf("io_uring_setup on another goroutine: %v, want EPERM", e)
		}
		if _, err := os.Getwd(); err != nil {
			t.Fatalf("other calls broken: %v", err)
		}
		t.Log("SECCOMP_CHILD_OK")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInstall$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SECCOMP_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SECCOMP_CHILD_OK") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
