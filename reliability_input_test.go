//go:build linux

package uringaio_test

// Hostile and wrong input (issue 5): every refusal of docs/contract.md §3–§7,
// plus the corner cases a careless or malicious caller hits. Each case checks
// the exact errno with errors.Is, and that nothing outstanding was lost or
// leaked.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// relFile makes a regular file holding data, opened with flags, closed when the
// test ends.
func relFile(t testing.TB, dir string, data []byte, flags int) int {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, "rel-file-")
	if err != nil {
		t.Fatal(err)
	}
	name := f.Name()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fd, err := unix.Open(name, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd); os.Remove(name) })
	return fd
}

// relPattern is n bytes of a recognisable pattern.
func relPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}

// relAligned returns n bytes of Go memory whose address is a multiple of align.
func relAligned(n, align int) []byte {
	b := make([]byte, n+align)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % uintptr(align)); r != 0 {
		off = align - r
	}
	return b[off : off+n : off+n]
}

// relBadFD returns a descriptor number that is not open.
func relBadFD(t testing.TB) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	return fd + 1000
}

func relSubmit(t testing.TB, c *aio.Context, cbs ...*aio.IOCB) {
	t.Helper()
	if n, err := c.Submit(cbs...); n != len(cbs) || err != nil {
		t.Fatalf("Submit(%d) = %d, %v", len(cbs), n, err)
	}
}

// relOne waits for exactly one event, cb's, and returns it.
func relOne(t testing.TB, c *aio.Context, cb *aio.IOCB) aio.Event {
	t.Helper()
	evs := relCollect(t, c, 1, 5*time.Second)
	if evs[0].IOCB != cb || evs[0].Data != cb.Data {
		t.Fatalf("event %+v is not the request's (Data %d)", evs[0], cb.Data)
	}
	return evs[0]
}

func relWantErr(t testing.TB, what string, err error, want unix.Errno) {
	t.Helper()
	if !relIsErrno(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// TestRelInputSubmitRefusals: every malformed IOCB of docs/contract.md §3.2 is
// refused with EINVAL, alone (0, EINVAL) and after an accepted one (the
// accepted prefix counts, no error); the refused IOCB never becomes outstanding
// and can be fixed and submitted; the boundaries (MaxIOV buffers, MaxRW bytes)
// are accepted.
func TestRelInputSubmitRefusals(t *testing.T) {
	// One MaxRW+1-byte buffer: an anonymous MAP_NORESERVE mapping, of which
	// only the bytes a read really moves are ever touched (so it costs no
	// memory, where a Go slice of that length is zeroed by the heap).
	huge, err := unix.Mmap(-1, 0, aio.MaxRW+1, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatalf("mmap %d bytes: %v", aio.MaxRW+1, err)
	}
	// Registered before any Context: cleanups run in reverse, so every
	// Context is destroyed (the kernel has let go) before the unmap.
	t.Cleanup(func() {
		if err := unix.Munmap(huge); err != nil {
			t.Errorf("munmap: %v", err)
		}
	})
	relEachBackend(t, func(t *testing.T, be string) {
		data := relPattern(8192, 3)
		file := relFile(t, "", data, unix.O_RDWR)
		p := relNewPipe(t, false)
		iov1025 := make([][]byte, aio.MaxIOV+1)
		for i := range iov1025 {
			iov1025[i] = make([]byte, 1)
		}
		beyond, fdRange := intFrom(1 << 40)
		cases := []struct {
			name string
			cb   *aio.IOCB
		}{
			{"nil IOCB", nil},
			{"zero Op", &aio.IOCB{FD: file, Buf: make([]byte, 8)}},
			{"unknown Op past the last", &aio.IOCB{Op: aio.OpFadvise + 1, FD: file, Buf: make([]byte, 8)}},
			{"unknown Op 255", &aio.IOCB{Op: 255, FD: file, Buf: make([]byte, 8)}},
			{"negative Offset read", &aio.IOCB{Op: aio.OpRead, FD: file, Buf: make([]byte, 8), Offset: -1}},
			{"negative Offset writev", &aio.IOCB{Op: aio.OpWritev, FD: file, Bufs: [][]byte{{1}}, Offset: -4096}},
			{"negative Offset fsync", &aio.IOCB{Op: aio.OpFsync, FD: file, Offset: -1}},
			{"poll with PollEvents 0", &aio.IOCB{Op: aio.OpPoll, FD: p.r}},
			{"read with Buf and Bufs", &aio.IOCB{Op: aio.OpRead, FD: file, Buf: make([]byte, 8), Bufs: [][]byte{make([]byte, 8)}}},
			{"readv with Buf and Bufs", &aio.IOCB{Op: aio.OpReadv, FD: file, Buf: make([]byte, 8), Bufs: [][]byte{make([]byte, 8)}}},
			{"write with Buf and Bufs", &aio.IOCB{Op: aio.OpWrite, FD: file, Buf: make([]byte, 8), Bufs: [][]byte{make([]byte, 8)}}},
			{"writev with Buf and empty Bufs", &aio.IOCB{Op: aio.OpWritev, FD: file, Buf: make([]byte, 8), Bufs: [][]byte{}}},
			{"read with Bufs only", &aio.IOCB{Op: aio.OpRead, FD: file, Bufs: [][]byte{make([]byte, 8)}}},
			{"readv with Buf only", &aio.IOCB{Op: aio.OpReadv, FD: file, Buf: make([]byte, 8)}},
			{"nop with Buf and Bufs", &aio.IOCB{Op: aio.OpNop, Buf: make([]byte, 1), Bufs: [][]byte{{1}}}},
			{"read with Len", &aio.IOCB{Op: aio.OpRead, FD: file, Buf: make([]byte, 8), Len: 8}},
			{"fsync with Flags", &aio.IOCB{Op: aio.OpFsync, FD: file, Flags: 1}},
			{"nop with Len and Flags", &aio.IOCB{Op: aio.OpNop, Len: 1, Flags: 1}},
			{"fallocate with Len 0", &aio.IOCB{Op: aio.OpFallocate, FD: file}},
			{"fallocate with negative Len", &aio.IOCB{Op: aio.OpFallocate, FD: file, Len: -4096}},
			{"sync_file_range with Flags 8", &aio.IOCB{Op: aio.OpSyncFileRange, FD: file, Flags: 8}},
			{"fadvise with negative Len", &aio.IOCB{Op: aio.OpFadvise, FD: file, Len: -1}},
			{"fadvise with negative Offset", &aio.IOCB{Op: aio.OpFadvise, FD: file, Offset: -1}},
			{"readv with 1025 iovecs", &aio.IOCB{Op: aio.OpReadv, FD: file, Bufs: iov1025}},
			{"writev with 1025 iovecs", &aio.IOCB{Op: aio.OpWritev, FD: file, Bufs: iov1025}},
			{"read of MaxRW+1 bytes", &aio.IOCB{Op: aio.OpRead, FD: file, Buf: huge}},
			{"write of MaxRW+1 bytes", &aio.IOCB{Op: aio.OpWrite, FD: file, Buf: huge}},
			{"readv totalling MaxRW+1", &aio.IOCB{Op: aio.OpReadv, FD: file, Bufs: [][]byte{huge[:aio.MaxRW], huge[:1]}}},
			{"writev totalling 2*MaxRW", &aio.IOCB{Op: aio.OpWritev, FD: file, Bufs: [][]byte{huge[:aio.MaxRW], huge[:aio.MaxRW]}}},
			// the last two: dropped below where int is 32 bits
			{"FD beyond int32", &aio.IOCB{Op: aio.OpRead, FD: beyond, Buf: make([]byte, 8)}},
			{"FD below int32", &aio.IOCB{Op: aio.OpRead, FD: -beyond, Buf: make([]byte, 8)}},
		}
		if !fdRange {
			t.Logf("no FD-beyond-int32 rows: %s", int32Note)
			cases = cases[:len(cases)-2]
		}
		c := relCtx(t, be, 8)
		for _, tc := range cases {
			// alone
			n, err := c.Submit(tc.cb)
			if n != 0 || !relIsErrno(err, unix.EINVAL) {
				t.Fatalf("%s: Submit = %d, %v; want 0, EINVAL", tc.name, n, err)
			}
			if tc.cb != nil {
				relWantErr(t, tc.name+": Error after refusal", c.Error(tc.cb), unix.EINVAL)
				relWantErr(t, tc.name+": Cancel after refusal", errOf(c.Cancel(tc.cb)), unix.EINVAL)
			}
			// after an accepted NOP: 1, nil; the NOP's event comes once
			nop := &aio.IOCB{Op: aio.OpNop, Data: 77}
			n, err = c.Submit(nop, tc.cb, &aio.IOCB{Op: aio.OpNop})
			if n != 1 || err != nil {
				t.Fatalf("%s: Submit(nop, bad, nop) = %d, %v; want 1, nil", tc.name, n, err)
			}
			relOne(t, c, nop)
		}
		relNoEvents(t, c, 10*time.Millisecond)

		// Submit of nothing.
		if n, err := c.Submit(); n != 0 || err != nil {
			t.Fatalf("Submit() = %d, %v", n, err)
		}
		// A refused IOCB, fixed, is accepted.
		cb := &aio.IOCB{Op: aio.OpRead, FD: file, Buf: make([]byte, 16), Offset: -1, Data: 5}
		if n, err := c.Submit(cb); n != 0 || !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("Submit = %d, %v", n, err)
		}
		cb.Offset = 100
		relSubmit(t, c, cb)
		if ev := relOne(t, c, cb); ev.Res != 16 || !bytes.Equal(cb.Buf, data[100:116]) {
			t.Fatalf("fixed IOCB: %+v", ev)
		}

		// Boundaries: exactly MaxIOV buffers and exactly MaxRW bytes are accepted.
		iov := iov1025[:aio.MaxIOV]
		rv := &aio.IOCB{Op: aio.OpReadv, FD: file, Bufs: iov, Offset: 7, Data: 6}
		relSubmit(t, c, rv)
		if ev := relOne(t, c, rv); ev.Res != aio.MaxIOV {
			t.Fatalf("readv of %d one-byte buffers: %+v (%v)", aio.MaxIOV, ev, ev.Err())
		}
		for i, b := range iov {
			if b[0] != data[7+i] {
				t.Fatalf("readv buffer %d = %d, want %d", i, b[0], data[7+i])
			}
		}
		big := &aio.IOCB{Op: aio.OpRead, FD: file, Buf: huge[:aio.MaxRW], Offset: 4096, Data: 7}
		relSubmit(t, c, big)
		if ev := relOne(t, c, big); ev.Res != 4096 || !bytes.Equal(huge[:4096], data[4096:]) {
			t.Fatalf("read of MaxRW bytes from a 8192-byte file at 4096: %+v (%v)", ev, ev.Err())
		}
		clear(huge[:4096])
	})
}

func errOf(_ aio.Event, err error) error { return err }

// TestRelInputBusyAndFull: an outstanding IOCB submitted again (to its own
// Context or another one, of either backend) is refused with EBUSY; more
// outstanding requests than maxEvents: accept what fits, then 0, EAGAIN.
func TestRelInputBusyAndFull(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		c := relCtx(t, be, 3)
		p := relNewPipe(t, false)
		poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: 1}
		relSubmit(t, c, poll)
		n, err := c.Submit(poll)
		if n != 0 || !relIsErrno(err, unix.EBUSY) {
			t.Fatalf("resubmit outstanding: %d, %v; want 0, EBUSY", n, err)
		}
		nop := &aio.IOCB{Op: aio.OpNop, Data: 2}
		if n, err := c.Submit(nop, poll); n != 1 || err != nil {
			t.Fatalf("Submit(nop, outstanding) = %d, %v; want 1, nil", n, err)
		}
		relOne(t, c, nop)

		// Another Context, on every backend available.
		for _, be2 := range relBackends {
			if relUnavailable(be2) != nil {
				continue
			}
			c2 := relCtx(t, be2, 4)
			if n, err := c2.Submit(poll); n != 0 || !relIsErrno(err, unix.EBUSY) {
				t.Fatalf("submit to a second %s Context: %d, %v; want 0, EBUSY", be2, n, err)
			}
			relWantErr(t, "Cancel with another Context's IOCB", errOf(c2.Cancel(poll)), unix.EINVAL)
			if _, err := c2.CancelFD(p.r, poll); !relIsErrno(err, unix.EINVAL) {
				t.Fatalf("CancelFD with another Context's IOCB: %v; want EINVAL", err)
			}
			if r, err := c2.CancelFD(p.r, nil); r != aio.AllDone || err != nil {
				t.Fatalf("CancelFD(fd, nil) on a Context with nothing on fd: %v, %v; want AllDone", r, err)
			}
			relWantErr(t, "Error with another Context's IOCB", c2.Error(poll), unix.EINVAL)
			relNoEvents(t, c2, time.Millisecond)
		}
		// Still c's, still waiting, still cancelable there.
		relWantErr(t, "Error on its own Context", c.Error(poll), unix.EINPROGRESS)
		ev, err := c.Cancel(poll)
		if err != nil || ev.Res != -int64(unix.ECANCELED) || ev.IOCB != poll {
			t.Fatalf("Cancel = %+v, %v", ev, err)
		}
		// Reusable on another Context; then the first no longer knows it.
		c2 := relCtx(t, be, 4)
		relSubmit(t, c2, poll)
		relWantErr(t, "Cancel on the old Context", errOf(c.Cancel(poll)), unix.EINVAL)
		relWantErr(t, "Error on the old Context", c.Error(poll), unix.EINVAL)
		if _, err := c2.Cancel(poll); err != nil {
			t.Fatal(err)
		}

		// maxEvents 3: five polls, three fit.
		polls := make([]*aio.IOCB, 5)
		for i := range polls {
			polls[i] = &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: uint64(10 + i)}
		}
		if n, err := c.Submit(polls...); n != 3 || err != nil {
			t.Fatalf("Submit(5) with maxEvents 3 = %d, %v; want 3, nil", n, err)
		}
		if n, err := c.Submit(polls[3]); n != 0 || !relIsErrno(err, unix.EAGAIN) {
			t.Fatalf("Submit when full = %d, %v; want 0, EAGAIN", n, err)
		}
		relWantErr(t, "Error of the IOCB that did not fit", c.Error(polls[3]), unix.EINVAL)
		if _, err := c.Cancel(polls[0]); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Submit(polls[3], polls[4]); n != 1 || err != nil {
			t.Fatalf("Submit(2) with one free = %d, %v; want 1, nil", n, err)
		}
		// A completed event not yet delivered still counts.
		if r, err := c.CancelFD(p.r, nil); r != aio.Canceled || err != nil {
			t.Fatalf("CancelFD = %v, %v", r, err)
		}
		if n, err := c.Submit(&aio.IOCB{Op: aio.OpNop}); n != 0 || !relIsErrno(err, unix.EAGAIN) {
			t.Fatalf("Submit with 3 undelivered events = %d, %v; want 0, EAGAIN", n, err)
		}
		evs := relCollect(t, c, 3, 5*time.Second)
		for _, ev := range evs {
			if ev.Res != -int64(unix.ECANCELED) {
				t.Fatalf("CancelFD'd poll: %+v", ev)
			}
		}
		relSubmit(t, c, &aio.IOCB{Op: aio.OpNop}, &aio.IOCB{Op: aio.OpNop}, &aio.IOCB{Op: aio.OpNop})
		relCollect(t, c, 3, 5*time.Second)
	})
}

// relOutcome is one request's result on one backend, for comparison.
type relOutcome struct {
	res  int64
	data string
}

// TestRelInputKernelFailures: failures the kernel reports for one request are
// accepted by Submit and arrive as that request's event, with the same Res on
// every backend: bad descriptors, a read on a write-only descriptor, fsync of
// a pipe, EOF, short reads, zero-length transfers, O_DIRECT misalignment.
func TestRelInputKernelFailures(t *testing.T) {
	dir, noDirect := relTryDiskDir(t)
	if dir == "" {
		t.Logf("the O_DIRECT cases are skipped: no block filesystem with O_DIRECT (%s)", noDirect)
	}
	results := make(map[string]map[string]relOutcome) // case -> backend -> outcome
	var order []string
	relEachBackend(t, func(t *testing.T, be string) {
		data := relPattern(10000, 9)
		rw := relFile(t, dir, data, unix.O_RDWR)
		wo := relFile(t, dir, data, unix.O_WRONLY)
		ro := relFile(t, dir, data, unix.O_RDONLY)
		direct := -1
		if dir != "" {
			direct = relFile(t, dir, data[:8192], unix.O_RDWR|unix.O_DIRECT)
		}
		abuf := relAligned(16384, 4096)
		bad := relBadFD(t)
		type kc struct {
			name string
			cb   func() *aio.IOCB
			want int64 // exact Res; 1 << 40 means "compare across backends only"
		}
		cases := []kc{
			{"read bad fd", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: bad, Buf: make([]byte, 8)} }, -int64(unix.EBADF)},
			{"read fd -1", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: -1, Buf: make([]byte, 8)} }, -int64(unix.EBADF)},
			{"write bad fd", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpWrite, FD: bad, Buf: make([]byte, 8)} }, -int64(unix.EBADF)},
			{"readv bad fd", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpReadv, FD: bad, Bufs: [][]byte{make([]byte, 8)}} }, -int64(unix.EBADF)},
			{"poll bad fd", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpPoll, FD: bad, PollEvents: unix.POLLIN} }, -int64(unix.EBADF)},
			{"fsync bad fd", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpFsync, FD: bad} }, -int64(unix.EBADF)},
			{"fdatasync bad fd", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpFdsync, FD: bad} }, -int64(unix.EBADF)},
			{"read write-only file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: wo, Buf: make([]byte, 8)} }, -int64(unix.EBADF)},
			{"write read-only file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpWrite, FD: ro, Buf: make([]byte, 8)} }, -int64(unix.EBADF)},
			{"read at EOF", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: ro, Buf: make([]byte, 8), Offset: 10000} }, 0},
			{"read past EOF", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: ro, Buf: make([]byte, 8), Offset: 1 << 40} }, 0},
			{"short read", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: ro, Buf: make([]byte, 100), Offset: 9990} }, 10},
			{"short readv", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpReadv, FD: ro, Bufs: [][]byte{make([]byte, 6), make([]byte, 6)}, Offset: 9990}
			}, 10},
			{"zero-length read file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: ro, Buf: []byte{}} }, 0},
			{"nil-buffer read file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: ro} }, 0},
			{"zero-length write file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpWrite, FD: rw, Buf: []byte{}} }, 0},
			{"empty readv file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpReadv, FD: ro, Bufs: [][]byte{}} }, 0},
			{"readv of empty buffers", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpReadv, FD: ro, Bufs: [][]byte{{}, nil, {}}} }, 0},
			{"zero-length read empty pipe", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpRead, FD: relNewPipe(t, false).r, Buf: []byte{}}
			}, 0},
			{"zero-length read empty nonblocking pipe", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpRead, FD: relNewPipe(t, true).r, Buf: make([]byte, 0, 8)}
			}, 0},
			{"nil-buffer read empty pipe", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: relNewPipe(t, false).r} }, 0},
			{"zero-length write pipe", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpWrite, FD: relNewPipe(t, false).w, Buf: []byte{}} }, 0},
			{"read on a pipe's write end", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpRead, FD: relNewPipe(t, false).w, Buf: make([]byte, 8)}
			}, -int64(unix.EBADF)},
			{"write on a pipe's read end", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpWrite, FD: relNewPipe(t, false).r, Buf: make([]byte, 8)}
			}, -int64(unix.EBADF)},
			{"fsync a pipe", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpFsync, FD: relNewPipe(t, false).w} }, -int64(unix.EINVAL)},
			{"fsync a file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpFsync, FD: rw} }, 0},
			{"fdatasync a file", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpFdsync, FD: rw} }, 0},
			{"O_DIRECT aligned read", func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: direct, Buf: abuf[:4096], Offset: 4096} }, 4096},
			{"O_DIRECT misaligned buffer read", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpRead, FD: direct, Buf: abuf[1:4097], Offset: 0}
			}, -int64(unix.EINVAL)},
			{"O_DIRECT misaligned offset read", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpRead, FD: direct, Buf: abuf[:4096], Offset: 1}
			}, -int64(unix.EINVAL)},
			{"O_DIRECT misaligned length read", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpRead, FD: direct, Buf: abuf[:100], Offset: 0}
			}, -int64(unix.EINVAL)},
			{"O_DIRECT misaligned buffer write", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpWrite, FD: direct, Buf: abuf[3:4099], Offset: 0}
			}, -int64(unix.EINVAL)},
			{"O_DIRECT misaligned offset write", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpWrite, FD: direct, Buf: abuf[:4096], Offset: 100}
			}, -int64(unix.EINVAL)},
			{"O_DIRECT misaligned iovec readv", func() *aio.IOCB {
				return &aio.IOCB{Op: aio.OpReadv, FD: direct, Bufs: [][]byte{abuf[:4096], abuf[4097:8193]}}
			}, -int64(unix.EINVAL)},
		}
		// One at a time, each on a fresh Context (a case that never ends must
		// not disturb the next), then all in one Submit: the failures must not
		// disturb the requests around them.
		for _, tc := range cases {
			if results[tc.name] == nil {
				results[tc.name] = map[string]relOutcome{}
				order = append(order, tc.name)
			}
			t.Run(tc.name, func(t *testing.T) {
				if direct < 0 && strings.HasPrefix(tc.name, "O_DIRECT") {
					t.Skipf("no block filesystem with O_DIRECT: %s", noDirect)
				}
				c := relCtx(t, be, 4)
				cb := tc.cb()
				cb.Data = 42
				relSubmit(t, c, cb)
				ev := relOne(t, c, cb)
				if ev.Res != tc.want {
					t.Errorf("Res %d (%v), want %d", ev.Res, ev.Err(), tc.want)
				}
				if ev.Res < 0 && !relIsErrno(c.Error(cb), unix.Errno(-ev.Res)) {
					t.Errorf("Error = %v, want %v", c.Error(cb), unix.Errno(-ev.Res))
				}
				if ev.Res >= 0 && c.Error(cb) != nil {
					t.Errorf("Error = %v, want nil", c.Error(cb))
				}
				var got string
				if ev.Res > 0 && cb.Buf != nil {
					got = string(cb.Buf[:ev.Res])
				}
				results[tc.name][be] = relOutcome{ev.Res, got}
			})
		}
		if t.Failed() {
			return // the batch would only repeat the failures
		}
		c := relCtx(t, be, 16)
		var cbs []*aio.IOCB
		for i, tc := range cases {
			if direct < 0 && strings.HasPrefix(tc.name, "O_DIRECT") {
				continue
			}
			cb := tc.cb()
			cb.Data = uint64(i)
			cbs = append(cbs, cb)
		}
		for off := 0; off < len(cbs); off += 16 {
			batch := cbs[off:min(off+16, len(cbs))]
			relSubmit(t, c, batch...)
			for _, ev := range relCollect(t, c, len(batch), 5*time.Second) {
				if want := cases[ev.Data].want; ev.Res != want {
					t.Errorf("batched %s: Res %d (%v), want %d", cases[ev.Data].name, ev.Res, ev.Err(), want)
				}
			}
		}
	})
	for _, name := range order {
		if u, k := results[name]["uring"], results[name]["kaio"]; len(results[name]) == 2 && u != k {
			t.Errorf("%s: the backends differ: uring %+v, kaio %+v", name, u, k)
		}
	}
}

// TestRelInputPollMask: a poll's Res is the same mask on every backend: the
// requested events that are ready (plus POLLERR/POLLHUP), whether it completes
// at once or after waiting.
func TestRelInputPollMask(t *testing.T) {
	results := map[string]map[string]int64{}
	relEachBackend(t, func(t *testing.T, be string) {
		c := relCtx(t, be, 8)
		record := func(name string, got, want int64) {
			t.Helper()
			if got != want {
				t.Errorf("%s: poll Res %#x, want %#x", name, got, want)
			}
			if results[name] == nil {
				results[name] = map[string]int64{}
			}
			results[name][be] = got
		}
		// waits, then data arrives
		p := relNewPipe(t, false)
		poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN}
		relSubmit(t, c, poll)
		relNoEvents(t, c, 10*time.Millisecond)
		p.write(t, []byte("x"))
		record("POLLIN after waiting", relOne(t, c, poll).Res, unix.POLLIN)
		// ready at once
		relSubmit(t, c, poll)
		record("POLLIN ready at once", relOne(t, c, poll).Res, unix.POLLIN)
		// POLLOUT on the write end
		pw := &aio.IOCB{Op: aio.OpPoll, FD: p.w, PollEvents: unix.POLLOUT}
		relSubmit(t, c, pw)
		record("POLLOUT ready at once", relOne(t, c, pw).Res, unix.POLLOUT)
		// POLLIN|POLLOUT on the read end, data present: only POLLIN is true
		both := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN | unix.POLLOUT}
		relSubmit(t, c, both)
		record("POLLIN|POLLOUT on a readable read end", relOne(t, c, both).Res, unix.POLLIN)
		// writer closes while waiting: POLLHUP
		q := relNewPipe(t, false)
		hup := &aio.IOCB{Op: aio.OpPoll, FD: q.r, PollEvents: unix.POLLIN}
		relSubmit(t, c, hup)
		relNoEvents(t, c, 10*time.Millisecond)
		unix.Close(q.w)
		q.w = -1
		record("POLLIN, writer closes", relOne(t, c, hup).Res, unix.POLLHUP)
	})
	for name, m := range results {
		if len(m) == 2 && m["uring"] != m["kaio"] {
			t.Errorf("%s: the backends differ: uring %#x, kaio %#x", name, m["uring"], m["kaio"])
		}
	}
}

// TestRelInputGetEventsCancelError: the refusals of GetEvents (§4), Cancel
// (§5), CancelFD (§6) and Error.
func TestRelInputGetEventsCancelError(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		c := relCtx(t, be, 8)
		evs := make([]aio.Event, 4)
		hugeNeg, ok := intFrom(-1 << 40)
		if !ok {
			hugeNeg = math.MinInt // 32-bit int
		}
		for _, a := range []struct {
			min int
			evs []aio.Event
		}{{-1, evs}, {5, evs}, {1, nil}, {1, evs[:0]}, {hugeNeg, evs}} {
			if n, err := c.GetEvents(a.min, a.evs, relTimeout(0)); n != 0 || !relIsErrno(err, unix.EINVAL) {
				t.Fatalf("GetEvents(%d, len %d) = %d, %v; want EINVAL", a.min, len(a.evs), n, err)
			}
			if n, err := c.GetEvents(a.min, a.evs, nil); n != 0 || !relIsErrno(err, unix.EINVAL) {
				t.Fatalf("GetEvents(%d, len %d, nil) = %d, %v; want EINVAL", a.min, len(a.evs), n, err)
			}
		}
		if n, err := c.GetEvents(0, nil, nil); n != 0 || err != nil {
			t.Fatalf("GetEvents(0, nil, nil) = %d, %v; want 0, nil at once", n, err)
		}
		if n, err := c.GetEvents(0, evs, relTimeout(-time.Second)); n != 0 || err != nil {
			t.Fatalf("GetEvents with a negative timeout = %d, %v", n, err)
		}
		start := time.Now()
		if n, err := c.GetEvents(1, evs, relTimeout(30*time.Millisecond)); n != 0 || err != nil {
			t.Fatalf("GetEvents(1) with nothing outstanding = %d, %v", n, err)
		}
		if el := time.Since(start); el < 25*time.Millisecond || el > 2*time.Second {
			t.Fatalf("GetEvents(1, 30ms) returned after %v", el)
		}

		// Cancel
		relWantErr(t, "Cancel(nil)", errOf(c.Cancel(nil)), unix.EFAULT)
		never := &aio.IOCB{Op: aio.OpNop}
		relWantErr(t, "Cancel(never submitted)", errOf(c.Cancel(never)), unix.EINVAL)
		nop := &aio.IOCB{Op: aio.OpNop, Data: 3}
		relSubmit(t, c, nop)
		// finished but not delivered: EAGAIN, and the event still comes once
		relWantErr(t, "Cancel(finished nop)", errOf(c.Cancel(nop)), unix.EAGAIN)
		relOne(t, c, nop)
		relWantErr(t, "Cancel(delivered)", errOf(c.Cancel(nop)), unix.EINVAL)
		p := relNewPipe(t, false)
		poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: 4}
		relSubmit(t, c, poll)
		ev, err := c.Cancel(poll)
		if err != nil || ev.Res != -int64(unix.ECANCELED) || ev.Data != 4 || ev.IOCB != poll || !relIsErrno(ev.Err(), unix.ECANCELED) {
			t.Fatalf("Cancel(waiting poll) = %+v, %v", ev, err)
		}
		relWantErr(t, "Error(canceled)", c.Error(poll), unix.ECANCELED)
		relWantErr(t, "Cancel(canceled)", errOf(c.Cancel(poll)), unix.EINVAL)
		relNoEvents(t, c, 10*time.Millisecond)

		// CancelFD
		if _, err := c.CancelFD(-1, nil); !relIsErrno(err, unix.EBADF) {
			t.Fatalf("CancelFD(-1) = %v; want EBADF", err)
		}
		if _, err := c.CancelFD(relBadFD(t), nil); !relIsErrno(err, unix.EBADF) {
			t.Fatalf("CancelFD(closed) = %v; want EBADF", err)
		}
		q := relNewPipe(t, false)
		rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 4), Data: 5}
		rd2 := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 4), Data: 6}
		other := &aio.IOCB{Op: aio.OpPoll, FD: q.r, PollEvents: unix.POLLIN, Data: 7}
		if r, err := c.CancelFD(p.r, nil); r != aio.AllDone || err != nil {
			t.Fatalf("CancelFD with nothing outstanding = %v, %v; want AllDone", r, err)
		}
		if _, err := c.CancelFD(p.r, never); !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("CancelFD(never submitted) = %v; want EINVAL", err)
		}
		relSubmit(t, c, rd, rd2, other)
		if _, err := c.CancelFD(q.r, rd); !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("CancelFD(fd != cb.FD) = %v; want EINVAL", err)
		}
		if r, err := c.CancelFD(p.r, rd); r != aio.Canceled || err != nil {
			t.Fatalf("CancelFD(fd, waiting read) = %v, %v; want Canceled", r, err)
		}
		relWantErr(t, "Error right after CancelFD", c.Error(rd), unix.ECANCELED)
		relWantErr(t, "Error of the other read", c.Error(rd2), unix.EINPROGRESS)
		if ev := relOne(t, c, rd); ev.Res != -int64(unix.ECANCELED) {
			t.Fatalf("CancelFD'd read's event: %+v", ev)
		}
		if r, err := c.CancelFD(p.r, rd); r != aio.AllDone || err != nil {
			t.Fatalf("CancelFD(fd, delivered) = %v, %v; want AllDone", r, err)
		}
		if r, err := c.CancelFD(p.r, nil); r != aio.Canceled || err != nil {
			t.Fatalf("CancelFD(fd, nil) = %v, %v; want Canceled", r, err)
		}
		if ev := relOne(t, c, rd2); ev.Res != -int64(unix.ECANCELED) {
			t.Fatalf("CancelFD'd read's event: %+v", ev)
		}
		relWantErr(t, "Error(other fd)", c.Error(other), unix.EINPROGRESS)
		p.write(t, []byte("data")) // nothing is left to read it
		q.write(t, []byte("q"))
		if ev := relOne(t, c, other); ev.Res <= 0 || ev.Res&unix.POLLIN == 0 {
			t.Fatalf("poll on the other fd: %+v", ev)
		}
		// The data written to p is still there: canceled reads moved nothing.
		got := make([]byte, 8)
		if n, _ := unix.Read(p.r, got); n != 4 || string(got[:4]) != "data" {
			t.Fatalf("pipe after canceled reads holds %q", got[:max(n, 0)])
		}

		// Error
		relWantErr(t, "Error(nil)", c.Error(nil), unix.EINVAL)
		relWantErr(t, "Error(never submitted)", c.Error(never), unix.EINVAL)
		if err := c.Error(nop); err != nil {
			t.Fatalf("Error(delivered nop) = %v", err)
		}
	})
}

// TestRelInputAfterDestroy: after Destroy every call on the Context is EINVAL,
// a blocked GetEvents is woken with EINVAL, and the requests Destroy dropped
// are idle (Error ECANCELED) and reusable on another Context.
func TestRelInputAfterDestroy(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		c, err := setupRetry(t, 8, be)
		if err != nil {
			t.Fatal(err)
		}
		p := relNewPipe(t, false)
		rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 8), Data: 1}
		poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: 2}
		nop := &aio.IOCB{Op: aio.OpNop, Data: 3}
		relSubmit(t, c, rd, poll, nop)
		woke := make(chan error, 3)
		for range 3 {
			go func() {
				_, err := c.GetEvents(8, make([]aio.Event, 8), nil)
				woke <- err
			}()
		}
		time.Sleep(20 * time.Millisecond)
		if err := c.Destroy(); err != nil {
			t.Fatalf("Destroy = %v", err)
		}
		for range 3 {
			select {
			case err := <-woke:
				relWantErr(t, "GetEvents blocked across Destroy", err, unix.EINVAL)
			case <-time.After(5 * time.Second):
				t.Fatal("GetEvents blocked across Destroy never returned")
			}
		}
		relWantErr(t, "second Destroy", c.Destroy(), unix.EINVAL)
		fresh := &aio.IOCB{Op: aio.OpNop}
		if n, err := c.Submit(fresh); n != 0 || !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("Submit after Destroy = %d, %v", n, err)
		}
		if n, err := c.GetEvents(0, make([]aio.Event, 1), relTimeout(0)); n != 0 || !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("GetEvents after Destroy = %d, %v", n, err)
		}
		relWantErr(t, "Cancel after Destroy", errOf(c.Cancel(rd)), unix.EINVAL)
		relWantErr(t, "Cancel(never) after Destroy", errOf(c.Cancel(fresh)), unix.EINVAL)
		if _, err := c.CancelFD(p.r, nil); !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("CancelFD after Destroy = %v", err)
		}
		if _, err := c.Do(context.Background(), fresh); !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("Do after Destroy = %v", err)
		}
		if _, err := c.ReadAt(context.Background(), p.r, make([]byte, 4), 0); !relIsErrno(err, unix.EINVAL) {
			t.Fatalf("ReadAt after Destroy = %v", err)
		}
		if c.Backend() != be {
			t.Fatalf("Backend() after Destroy = %q", c.Backend())
		}
		for _, cb := range []*aio.IOCB{rd, poll} {
			if err := c.Error(cb); !relIsErrno(err, unix.ECANCELED) {
				t.Fatalf("Error(dropped request) = %v; want ECANCELED", err)
			}
		}
		// Reusable: a new Context takes them, and the read gets data.
		c2 := relCtx(t, be, 8)
		relSubmit(t, c2, rd, poll, nop)
		p.write(t, []byte("after"))
		for _, ev := range relCollect(t, c2, 3, 5*time.Second) {
			if ev.IOCB == rd && (ev.Res != 5 || string(rd.Buf[:5]) != "after") {
				t.Fatalf("read after reuse: %+v", ev)
			}
		}
	})
}

// TestRelInputDestroyRace: Destroy races Submit, GetEvents, Cancel, CancelFD
// and Error from many goroutines. No panic; every call after Destroy is EINVAL;
// every accepted request is delivered at most once (once if delivered at all:
// the rest were dropped by Destroy); and every IOCB is idle afterwards,
// reusable on a new Context.
//
// It runs in a child process with a time limit, so that a hang fails the test
// (with the child's goroutine dump) instead of stopping the suite.
func TestRelInputDestroyRace(t *testing.T) {
	if relChildRole() != "destroy-race" {
		relRelay(t, relRunChildTimeout(t, "TestRelInputDestroyRace", "destroy-race", 60*time.Second))
		return
	}
	relEachBackend(t, func(t *testing.T, be string) {
		rounds := 25
		var totalAcc, totalDel int
		for round := range rounds {
			acc, del := relDestroyRaceRound(t, be, round)
			totalAcc += acc
			totalDel += del
		}
		relChildf(t, "Destroy race, %s: %d rounds x 8 goroutines, %d requests accepted, %d delivered exactly once, %d dropped by Destroy, none twice",
			be, rounds, totalAcc, totalDel, totalAcc-totalDel)
	})
	t.Log(relChildOK)
}

// TestRelInputCancelRacesSubmit: Cancel and CancelFD from other goroutines
// while requests on the same descriptor are being submitted. Every call must
// return (within the child's time limit) with an answer of docs/contract.md
// §5.1 or §6.2, every waiting request it targets must be canceled (a poll
// waiting for data can always be stopped), and every request must end exactly
// once.
func TestRelInputCancelRacesSubmit(t *testing.T) {
	if relChildRole() != "cancel-race" {
		relRelay(t, relRunChildTimeout(t, "TestRelInputCancelRacesSubmit", "cancel-race", 30*time.Second))
		return
	}
	relEachBackend(t, func(t *testing.T, be string) {
		c := relCtx(t, be, 256)
		p := relNewPipe(t, false)
		var (
			wg                      sync.WaitGroup
			stop                    atomic.Bool
			mu                      sync.Mutex
			ended                   = map[uint64]int{}
			nextID                  atomic.Uint64
			submitted, notCanceled  atomic.Int64
			cancelFDCalls, canceled atomic.Int64
			bad                     = make(chan string, 8)
		)
		end := func(ev aio.Event) {
			mu.Lock()
			ended[ev.Data]++
			mu.Unlock()
			if ev.Res != -int64(unix.ECANCELED) {
				select {
				case bad <- fmt.Sprintf("a poll nobody fed ended with %d", ev.Res):
				default:
				}
			}
		}
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cbs := make([]*aio.IOCB, 8)
				for i := range cbs {
					cbs[i] = &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN}
				}
				evs := make([]aio.Event, 64)
				for !stop.Load() {
					for _, cb := range cbs {
						cb.Data = nextID.Add(1)
					}
					n, err := c.Submit(cbs...)
					if err != nil && !relIsErrno(err, unix.EAGAIN) {
						bad <- fmt.Sprintf("worker %d: Submit: %v", w, err)
						return
					}
					submitted.Add(int64(n))
					for _, cb := range cbs[:n] {
						ev, err := c.Cancel(cb)
						switch {
						case err == nil:
							end(ev)
						case relIsErrno(err, unix.EAGAIN), relIsErrno(err, unix.EINVAL):
							// CancelFD got it first: its event comes by GetEvents
							// (EINVAL: another worker's GetEvents already took it)
						default:
							bad <- fmt.Sprintf("worker %d: Cancel: %v", w, err)
							return
						}
					}
					// collect the ones CancelFD canceled
					for pending := true; pending; {
						pending = false
						for _, cb := range cbs[:n] {
							if errors.Is(c.Error(cb), unix.EINPROGRESS) {
								pending = true
							}
						}
						k, err := c.GetEvents(0, evs, relTimeout(time.Millisecond))
						if err != nil {
							bad <- fmt.Sprintf("worker %d: GetEvents: %v", w, err)
							return
						}
						for _, ev := range evs[:k] {
							end(ev)
						}
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r, err := c.CancelFD(p.r, nil)
				cancelFDCalls.Add(1)
				if err != nil {
					bad <- fmt.Sprintf("CancelFD: %v", err)
					return
				}
				switch r {
				case aio.NotCanceled:
					notCanceled.Add(1)
				case aio.Canceled:
					canceled.Add(1)
				}
			}
		}()
		time.Sleep(2 * time.Second)
		stop.Store(true)
		wg.Wait()
		// drain what is left
		evs := make([]aio.Event, 256)
		for {
			k, err := c.GetEvents(0, evs, relTimeout(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				break
			}
			for _, ev := range evs[:k] {
				end(ev)
			}
		}
		select {
		case s := <-bad:
			t.Fatal(s)
		default:
		}
		for id, n := range ended {
			if n != 1 {
				t.Fatalf("request %d ended %d times", id, n)
			}
		}
		if int64(len(ended)) != submitted.Load() {
			t.Fatalf("%d requests accepted, %d ended", submitted.Load(), len(ended))
		}
		if notCanceled.Load() != 0 {
			t.Errorf("CancelFD answered NotCanceled %d times, though every request was a poll nobody fed", notCanceled.Load())
		}
		relChildf(t, "Cancel/CancelFD racing Submit, %s: %d polls accepted and ended once; %d CancelFD calls (%d Canceled, %d NotCanceled)",
			be, submitted.Load(), cancelFDCalls.Load(), canceled.Load(), notCanceled.Load())
	})
	t.Log(relChildOK)
}

func relDestroyRaceRound(t *testing.T, be string, round int) (accepted, delivered int) {
	fdsBefore := relCountFDs(t)
	c, err := setupRetry(t, 64, be)
	if err != nil {
		t.Fatal(err)
	}
	pipes := []*relPipe{relNewPipe(t, false), relNewPipe(t, true)}
	file := relFile(t, "", relPattern(4096, 1), unix.O_RDONLY)
	const workers = 8
	var (
		mu     sync.Mutex
		acc    = map[uint64]bool{}    // submission id -> accepted
		got    = map[uint64]int{}     // submission id -> deliveries
		idle   = map[*aio.IOCB]bool{} // may be submitted by its owner
		nextID atomic.Uint64
		badErr = make(chan error, 64)
		cbsAll [][]*aio.IOCB
		wg     sync.WaitGroup
	)
	report := func(format string, args ...any) {
		select {
		case badErr <- fmt.Errorf(format, args...):
		default:
		}
	}
	deliver := func(evs []aio.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			if ev.IOCB == nil || ev.IOCB.Data != ev.Data {
				report("event %+v does not match its IOCB", ev)
				continue
			}
			got[ev.Data]++
			idle[ev.IOCB] = true
		}
	}
	// check accepts nil, EINVAL (the Context is, or is being, destroyed; or
	// the request was delivered to another goroutine) and the errnos in ok.
	check := func(what string, err error, ok ...unix.Errno) {
		if err == nil || relIsErrno(err, unix.EINVAL) {
			return
		}
		for _, e := range ok {
			if relIsErrno(err, e) {
				return
			}
		}
		report("%s: unexpected error %v", what, err)
	}
	for range workers {
		cbs := make([]*aio.IOCB, 6)
		for i := range cbs {
			cbs[i] = &aio.IOCB{}
			idle[cbs[i]] = true
		}
		cbsAll = append(cbsAll, cbs)
	}
	for w, cbs := range cbsAll {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
			evs := make([]aio.Event, 8)
			for iter := 0; iter < 300; iter++ {
				switch op := rng.IntN(10); {
				case op < 4:
					var batch []*aio.IOCB
					mu.Lock()
					for _, cb := range cbs {
						if !idle[cb] || rng.IntN(2) == 0 {
							continue
						}
						idle[cb] = false
						p := pipes[rng.IntN(len(pipes))]
						cb.Data = nextID.Add(1)
						cb.Buf, cb.Offset, cb.PollEvents = nil, 0, 0
						switch rng.IntN(4) {
						case 0:
							cb.Op, cb.FD, cb.PollEvents = aio.OpPoll, p.r, unix.POLLIN
						case 1:
							cb.Op, cb.FD, cb.Buf = aio.OpRead, p.r, make([]byte, 1+rng.IntN(8))
						case 2:
							cb.Op, cb.FD, cb.Buf, cb.Offset = aio.OpRead, file, make([]byte, 64), int64(rng.IntN(4096))
						default:
							cb.Op, cb.FD = aio.OpNop, -1
						}
						batch = append(batch, cb)
					}
					mu.Unlock()
					if len(batch) == 0 {
						continue
					}
					n, err := c.Submit(batch...)
					mu.Lock()
					for _, cb := range batch[:n] {
						acc[cb.Data] = true
					}
					for _, cb := range batch[n:] {
						idle[cb] = true
					}
					mu.Unlock()
					check("Submit", err, unix.EAGAIN)
				case op < 7:
					n, err := c.GetEvents(0, evs, relTimeout(time.Duration(rng.IntN(2))*time.Millisecond))
					check("GetEvents", err)
					deliver(evs[:n])
				case op < 9:
					cb := cbs[rng.IntN(len(cbs))]
					ev, err := c.Cancel(cb)
					if err == nil {
						if ev.IOCB != cb || ev.Res != -int64(unix.ECANCELED) {
							report("Cancel returned %+v", ev)
						}
						deliver([]aio.Event{ev})
						continue
					}
					check("Cancel", err, unix.EAGAIN)
				default:
					_, err := c.CancelFD(pipes[rng.IntN(len(pipes))].r, nil)
					check("CancelFD", err)
				}
			}
		}()
	}
	// the feeder makes pipe requests complete now and then
	feedDone := make(chan struct{})
	stopFeed := make(chan struct{})
	go func() {
		defer close(feedDone)
		for i := 0; ; i++ {
			select {
			case <-stopFeed:
				return
			case <-time.After(200 * time.Microsecond):
			}
			_, _ = unix.Write(pipes[i%len(pipes)].w, []byte{byte(i)})
		}
	}()
	time.Sleep(time.Duration(1+rand.IntN(15)) * time.Millisecond)
	if err := c.Destroy(); err != nil {
		t.Fatalf("round %d: Destroy = %v", round, err)
	}
	// After Destroy has returned, everything is EINVAL.
	if n, err := c.Submit(&aio.IOCB{Op: aio.OpNop}); n != 0 || !relIsErrno(err, unix.EINVAL) {
		t.Fatalf("round %d: Submit after Destroy = %d, %v", round, n, err)
	}
	if _, err := c.GetEvents(0, make([]aio.Event, 1), nil); !relIsErrno(err, unix.EINVAL) {
		t.Fatalf("round %d: GetEvents after Destroy = %v", round, err)
	}
	wg.Wait()
	close(stopFeed)
	<-feedDone
	select {
	case err := <-badErr:
		t.Fatalf("round %d: %v", round, err)
	default:
	}
	for id, n := range got {
		if !acc[id] {
			t.Fatalf("round %d: event for submission %d, which was never accepted", round, id)
		}
		if n != 1 {
			t.Fatalf("round %d: submission %d delivered %d times", round, id, n)
		}
	}
	// Every IOCB is idle: Error is no longer EINPROGRESS, and a new Context
	// takes them all.
	c2 := relCtx(t, be, 64)
	var all []*aio.IOCB
	for _, cbs := range cbsAll {
		for _, cb := range cbs {
			if err := c.Error(cb); errors.Is(err, unix.EINPROGRESS) {
				t.Fatalf("round %d: IOCB still in progress after Destroy", round)
			}
			cb.Op, cb.FD, cb.Buf, cb.PollEvents = aio.OpNop, -1, nil, 0
			all = append(all, cb)
		}
	}
	relSubmit(t, c2, all...)
	relCollect(t, c2, len(all), 5*time.Second)
	if err := c2.Destroy(); err != nil {
		t.Fatal(err)
	}
	// Nothing leaked: only the round's two pipes and file are still open.
	if after := relCountFDs(t); after != fdsBefore+5 {
		t.Fatalf("round %d: %d descriptors open before, %d after (want +5: the round's pipes and file)", round, fdsBefore, after)
	}
	return len(acc), len(got)
}
