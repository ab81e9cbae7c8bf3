//go:build linux

package backend

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The SQEs of registered files and buffers really name the table entries:
// a read that gives no usable descriptor (-1) succeeds only through its
// fixed-file entry, and a read naming an empty buffer entry fails (EFAULT)
// where a plain READ of the same address would succeed. Contract §12.2, §12.3.

// oneResult submits r on u and waits for its completion.
func oneResult(t *testing.T, u *uring, r Req) int64 {
	t.Helper()
	inl := make([]Completion, 1)
	if n, ninl, err := u.Submit([]Req{r}, inl); n != 1 || err != nil {
		t.Fatalf("Submit = %d, %v", n, err)
	} else if ninl == 1 {
		return inl[0].Res
	}
	cs := make([]Completion, 4)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := u.Reap(cs, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs[:n] {
			if c.Tag == r.Tag && c.Kind == KindDone {
				return c.Res
			}
		}
	}
	t.Fatalf("no completion for tag %d", r.Tag)
	return 0
}

func newTestUring(t *testing.T, cfg Config) *uring {
	t.Helper()
	u, err := newUring(8, cfg)
	if err != nil {
		t.Skipf("io_uring cannot start here: %v", err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func TestUringFixedFile(t *testing.T) {
	u := newTestUring(t, Config{FixedFiles: 2})
	fd := tempFileFD(t)
	if _, err := unix.Pwrite(fd, []byte("fixed file"), 0); err != nil {
		t.Fatal(err)
	}
	idx, err := u.RegisterFile(fd)
	if err != nil {
		t.Fatalf("RegisterFile: %v", err)
	}
	buf := make([]byte, 10)
	r := Req{Tag: 1, Op: OpRead, FD: -1, Addr: addr(buf), Len: 10, Fixed: FixedFile, FileIndex: idx}
	if res := oneResult(t, u, r); res != 10 || string(buf) != "fixed file" {
		t.Fatalf("read through entry %d with FD -1: %d, %q", idx, res, buf)
	}
	w := Req{Tag: 2, Op: OpWrite, FD: -1, Addr: addr([]byte("FIXED")), Len: 5, Fixed: FixedFile, FileIndex: idx}
	if res := oneResult(t, u, w); res != 5 {
		t.Fatalf("write through entry %d: %d", idx, res)
	}
	// The table has two entries: the third registration is refused.
	if _, err := u.RegisterFile(fd); err != nil {
		t.Fatalf("second RegisterFile: %v", err)
	}
	if _, err := u.RegisterFile(fd); !errors.Is(err, ErrTableFull) {
		t.Fatalf("third RegisterFile on a table of 2: %v, want ErrTableFull", err)
	}
	if err := u.UnregisterFile(idx); err != nil {
		t.Fatalf("UnregisterFile: %v", err)
	}
	r.Tag = 3
	if res := oneResult(t, u, r); res != -int64(unix.EBADF) {
		t.Fatalf("read through the emptied entry: %d, want -EBADF", res)
	}
	if got, err := u.RegisterFile(fd); err != nil || got != idx {
		t.Fatalf("RegisterFile after UnregisterFile = %d, %v; want the freed entry %d", got, err, idx)
	}
}

func TestUringFixedBuffer(t *testing.T) {
	u := newTestUring(t, Config{})
	mem, err := unix.Mmap(-1, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	fd := tempFileFD(t)
	if _, err := unix.Pwrite(fd, []byte("registered buffer"), 0); err != nil {
		t.Fatal(err)
	}
	idx, err := u.RegisterBuffer(uintptr(addr(mem)), len(mem))
	if err != nil {
		t.Fatalf("RegisterBuffer: %v", err)
	}
	r := Req{Tag: 1, Op: OpRead, FD: int32(fd), Addr: addr(mem[4096:]), Len: 17, Fixed: FixedBuf, BufIndex: idx}
	if res := oneResult(t, u, r); res != 17 || string(mem[4096:4096+17]) != "registered buffer" {
		t.Fatalf("READ_FIXED: %d, %q", res, mem[4096:4096+17])
	}
	// Outside the registered range: the kernel refuses a fixed read.
	r.Tag, r.Addr, r.Len = 2, addr(mem[4096:]), 8192
	if res := oneResult(t, u, r); res != -int64(unix.EFAULT) {
		t.Fatalf("READ_FIXED past the buffer's end: %d, want -EFAULT", res)
	}
	if err := u.UnregisterBuffer(idx); err != nil {
		t.Fatalf("UnregisterBuffer: %v", err)
	}
	r.Tag, r.Len = 3, 17
	if res := oneResult(t, u, r); res != -int64(unix.EFAULT) {
		t.Fatalf("READ_FIXED on the emptied entry: %d, want -EFAULT", res)
	}
}
