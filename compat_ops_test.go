//go:build linux

package uringaio_test

// The range operations of GitHub issue 12 (docs/contract.md §1.2, §3.2, §3.4,
// §5.4, §10.8): OpSyncFileRange, OpFallocate and OpFadvise, on every backend,
// through Submit and GetEvents and through Do. Each case checks what the
// operation did to the file — allocated blocks and size (fstat), dirty and
// cached pages (cachestat(2)) — not only that Res is 0, so a backend that
// dropped the request, or sent the wrong offset or length, fails. Every errno
// a request ends with is first asked of the system call itself on the same
// descriptor, so the expectation is the kernel's, and every backend must give
// it.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("ops/fallocate-keep-size", opsFallocateKeepSize)
	registerCompat("ops/fallocate-extends", opsFallocateExtends)
	registerCompat("ops/fallocate-refusals", opsFallocateRefusals)
	registerCompat("ops/sync-file-range", opsSyncFileRange)
	registerCompat("ops/sync-file-range-refusals", opsSyncFileRangeRefusals)
	registerCompat("ops/fadvise", opsFadvise)
	registerCompat("ops/fadvise-refusals", opsFadviseRefusals)
	registerCompat("ops/args-on-other-ops", opsArgsOnOtherOps)
	registerCompat("ops/closed-fd", opsClosedFD)
	registerCompat("ops/not-a-file", opsNotAFile)
	registerCompat("ops/long-range", opsLongRange)
	registerCompat("ops/cancel-queued", opsCancelQueued)
	registerCompat("ops/mixed-batch", opsMixedBatch)
}

// opsVia are the two ways every case makes a request: Submit then GetEvents,
// and Do.
var opsVia = []string{"submit", "do"}

// syncAll is sync_file_range's "write the range and wait until it is on
// disk": wait for writeback already running, start it, wait for it.
const syncAll = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER

// opsRun makes cb's request via "submit" or "do" and returns its Res. The
// event must be cb's; for "submit", Error must agree with it afterwards; for
// "do", Do's error must be nil exactly when Res is not negative, and otherwise
// match the errno under the name of the op ("aio: fallocate: …").
func opsRun(t *testing.T, c *aio.Context, via string, cb *aio.IOCB) int64 {
	t.Helper()
	var ev aio.Event
	switch via {
	case "submit":
		mustSubmit(t, c, cb)
		ev = reapOne(t, c, cb)
		err := c.Error(cb)
		if (ev.Res >= 0) != (err == nil) || ev.Res < 0 && !errors.Is(err, unix.Errno(-ev.Res)) {
			t.Fatalf("%s: Error = %v after an event with Res %s", cb.Op, err, fmtRes(ev.Res))
		}
	case "do":
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		defer cancel()
		var err error
		ev, err = c.Do(ctx, cb)
		if ev.IOCB != cb || ev.Data != cb.Data {
			t.Fatalf("%s: Do returned the event of IOCB %p (Data %d), want %p (Data %d)", cb.Op, ev.IOCB, ev.Data, cb, cb.Data)
		}
		switch {
		case ev.Res >= 0 && err != nil:
			t.Fatalf("%s: Do: Res %d with error %v", cb.Op, ev.Res, err)
		case ev.Res < 0:
			wantErrno(t, err, unix.Errno(-ev.Res), "Do("+cb.Op.String()+")")
			if prefix := "aio: " + cb.Op.String() + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("%s: Do error %q does not start with %q", cb.Op, err, prefix)
			}
		}
	default:
		t.Fatalf("unknown way %q", via)
	}
	if ev.Res2 != 0 {
		t.Fatalf("%s: Res2 = %d, want 0", cb.Op, ev.Res2)
	}
	return ev.Res
}

// opsWant is opsRun that requires Res to be want.
func opsWant(t *testing.T, c *aio.Context, via string, cb *aio.IOCB, want int64, what string) {
	t.Helper()
	if res := opsRun(t, c, via, cb); res != want {
		t.Fatalf("%s (%s, %s): Res %s, want %s", what, cb.Op, via, fmtRes(res), fmtRes(want))
	}
}

// opsRefused checks that Submit and Do refuse cb with EINVAL and that it never
// became outstanding (Error answers EINVAL for an IOCB never submitted here).
// cb must be fresh.
func opsRefused(t *testing.T, c *aio.Context, cb *aio.IOCB, what string) {
	t.Helper()
	n, err := c.Submit(cb)
	if n != 0 {
		t.Fatalf("%s: Submit accepted it", what)
	}
	wantCallError(t, err, "Submit", unix.EINVAL, what+": Submit")
	ev, err := c.Do(context.Background(), cb)
	wantCallError(t, err, "Do", unix.EINVAL, what+": Do")
	if ev != (aio.Event{}) {
		t.Fatalf("%s: Do returned an event %s with its refusal", what, fmtEvent(ev))
	}
	wantErrno(t, c.Error(cb), unix.EINVAL, what+": Error after the refusals")
}

// sysRes is a system call's error as an event's Res: 0 or the negated errno.
func sysRes(t *testing.T, err error) int64 {
	t.Helper()
	if err == nil {
		return 0
	}
	var e unix.Errno
	if !errors.As(err, &e) {
		t.Fatalf("system call error %v is not an errno", err)
	}
	return -int64(e)
}

// opsKernelSays fails unless the system call itself answers want: the
// expectation of a case is the kernel's, not the test's guess.
func opsKernelSays(t *testing.T, err error, want int64, what string) {
	t.Helper()
	if got := sysRes(t, err); got != want {
		t.Fatalf("%s: the system call itself answers %s; the case expects %s", what, fmtRes(got), fmtRes(want))
	}
}

func opsStat(t *testing.T, fd int) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat: %v", err)
	}
	return st
}

// cachestat is struct cachestat of include/uapi/linux/mman.h: page counts
// for a range of a file's page cache.
type cachestat struct {
	Cache, Dirty, Writeback, Evicted, RecentlyEvicted uint64
}

// sysCachestat is cachestat(2)'s number, the same on every architecture
// (Linux 6.5).
const sysCachestat = 451

// opsPages returns the page-cache state of [off, off+n) of fd (n 0: to the
// end), and false when the kernel has no cachestat(2): the cases then check
// results but not the pages.
func opsPages(t *testing.T, fd int, off, n uint64) (cachestat, bool) {
	t.Helper()
	rng := struct{ Off, Len uint64 }{off, n}
	var cs cachestat
	_, _, e := unix.Syscall6(sysCachestat, uintptr(fd), uintptr(unsafe.Pointer(&rng)), uintptr(unsafe.Pointer(&cs)), 0, 0, 0)
	switch e {
	case 0:
		return cs, true
	case unix.ENOSYS, unix.EPERM:
		t.Logf("cachestat(2): %v; page-cache effects not checked", e)
		return cs, false
	}
	t.Fatalf("cachestat(2): %v", e)
	return cs, false
}

// opsWritePages writes data at 0 one page per pwrite. Each page then has a
// folio of its own: ext4 puts one large write into large folios, and the
// kernel writes back and drops whole folios, so a range that ends inside one
// would reach past its end; page by page, the pages a range names are the
// pages it acts on.
func opsWritePages(t *testing.T, fd int, data []byte) {
	t.Helper()
	for off := 0; off < len(data); off += 4096 {
		p := data[off:min(off+4096, len(data))]
		if n, err := unix.Pwrite(fd, p, int64(off)); n != len(p) || err != nil {
			t.Fatalf("pwrite at %d: %d, %v", off, n, err)
		}
	}
}

// opsDirty writes data at 0 (opsWritePages) and returns once cachestat sees
// every page dirty (the kernel's flusher may clean some first on a busy
// machine: then it writes again). ok is false without cachestat.
func opsDirty(t *testing.T, fd int, data []byte) (ok bool) {
	t.Helper()
	pages := uint64(len(data)+4095) / 4096
	for try := 0; try < 5; try++ {
		opsWritePages(t, fd, data)
		cs, ok := opsPages(t, fd, 0, 0)
		if !ok || cs.Dirty == pages {
			return ok
		}
	}
	t.Fatalf("the %d pages of a file are not all dirty right after pwrite, five times", pages)
	return false
}

// opsCached leaves data at 0 in fd, every page of it cached and clean, one
// folio per page: the old pages dropped, the data written page by page,
// fsync.
func opsCached(t *testing.T, fd int, data []byte) {
	t.Helper()
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("fadvise(DONTNEED): %v", err)
	}
	opsWritePages(t, fd, data)
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync: %v", err)
	}
}

// ---- fallocate ----

// opsFallocateKeepSize: FALLOC_FL_KEEP_SIZE past the end of a file allocates
// at least the blocks asked for (st_blocks grows by Len) and leaves the size
// and the data as they were.
func opsFallocateKeepSize(t *testing.T, be string) {
	data := pattern(4096, 1)
	fd := tempFD(t, data)
	c := newContext(t, be, 4)
	const chunk = 1 << 20
	for i, via := range opsVia {
		before := opsStat(t, fd)
		cb := &aio.IOCB{Op: aio.OpFallocate, FD: fd, Offset: int64(len(data) + i*chunk), Len: chunk,
			Flags: unix.FALLOC_FL_KEEP_SIZE, Data: uint64(i + 1)}
		opsWant(t, c, via, cb, 0, "fallocate KEEP_SIZE past the end")
		after := opsStat(t, fd)
		if after.Size != int64(len(data)) {
			t.Fatalf("%s: size %d after fallocate KEEP_SIZE, want %d", via, after.Size, len(data))
		}
		if grown := (after.Blocks - before.Blocks) * 512; grown < chunk {
			t.Fatalf("%s: st_blocks grew by %d bytes, want at least %d", via, grown, chunk)
		}
	}
	wantBytes(t, preadAll(t, fd, 2*len(data), 0), data, "data after fallocate KEEP_SIZE")
}

// opsFallocateExtends: mode 0 past the end allocates and extends the size to
// Offset+Len; the new range reads as zeros.
func opsFallocateExtends(t *testing.T, be string) {
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	const chunk = 64 << 10
	for i, via := range opsVia {
		off := int64(i * chunk)
		cb := &aio.IOCB{Op: aio.OpFallocate, FD: fd, Offset: off, Len: chunk, Data: uint64(i + 1)}
		opsWant(t, c, via, cb, 0, "fallocate mode 0")
		st := opsStat(t, fd)
		if st.Size != off+chunk {
			t.Fatalf("%s: size %d after fallocate of [%d, %d), want %d", via, st.Size, off, off+chunk, off+chunk)
		}
		if st.Blocks*512 < off+chunk {
			t.Fatalf("%s: %d bytes allocated, want at least %d", via, st.Blocks*512, off+chunk)
		}
	}
	wantBytes(t, preadAll(t, fd, 4*chunk, 0), make([]byte, 2*chunk), "data after fallocate")
}

// opsFallocateRefusals: Submit refuses Len 0, a negative Len and a negative
// Offset (EINVAL, §3.2); the kernel refuses a mode it does not know, and
// PUNCH_HOLE without KEEP_SIZE, with EOPNOTSUPP, and a descriptor not open
// for writing with EBADF — the same on every backend (§3.4).
func opsFallocateRefusals(t *testing.T, be string) {
	fd := tempFD(t, pattern(8192, 2))
	ro := openFD(t, fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY)
	c := newContext(t, be, 4)
	for _, tc := range []struct {
		name   string
		off, n int64
		mode   uint32
	}{
		{"Len 0", 0, 0, 0},
		{"Len -1", 0, -1, 0},
		{"Len MinInt64", 0, math.MinInt64, 0},
		{"Offset -1", -1, 4096, 0},
		{"Len 0 KEEP_SIZE", 0, 0, unix.FALLOC_FL_KEEP_SIZE},
	} {
		cb := &aio.IOCB{Op: aio.OpFallocate, FD: fd, Offset: tc.off, Len: tc.n, Flags: tc.mode}
		opsRefused(t, c, cb, "fallocate "+tc.name)
	}
	before := opsStat(t, fd)
	for _, tc := range []struct {
		name string
		fd   int
		mode uint32
		want unix.Errno
	}{
		{"unknown mode bit 0x1000", fd, 0x1000, unix.EOPNOTSUPP},
		{"mode 0x80000000", fd, 0x80000000, unix.EOPNOTSUPP},
		{"PUNCH_HOLE without KEEP_SIZE", fd, unix.FALLOC_FL_PUNCH_HOLE, unix.EOPNOTSUPP},
		{"read-only descriptor", ro, 0, unix.EBADF},
	} {
		want := -int64(tc.want)
		opsKernelSays(t, unix.Fallocate(tc.fd, tc.mode, 0, 4096), want, "fallocate "+tc.name)
		for i, via := range opsVia {
			cb := &aio.IOCB{Op: aio.OpFallocate, FD: tc.fd, Len: 4096, Flags: tc.mode, Data: uint64(i + 1)}
			opsWant(t, c, via, cb, want, "fallocate "+tc.name)
		}
	}
	if after := opsStat(t, fd); after.Size != before.Size || after.Blocks != before.Blocks {
		t.Fatalf("refused fallocates changed the file: size %d→%d, blocks %d→%d", before.Size, after.Size, before.Blocks, after.Blocks)
	}
	expectNoEvents(t, c)
}

// ---- sync_file_range ----

// opsSyncFileRange: sync_file_range with WAIT_BEFORE|WRITE|WAIT_AFTER leaves
// no dirty page in its range and leaves the pages outside it dirty (so the
// offset and the length reached the kernel as given); Len 0 reaches the end
// of the file; flags 0 and a read-only descriptor are accepted by the kernel.
func opsSyncFileRange(t *testing.T, be string) {
	const size = 1 << 20
	data := pattern(size, 3)
	fd := tempFD(t, nil)
	ro := openFD(t, fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY)
	c := newContext(t, be, 4)
	for i, via := range opsVia {
		// [256 KiB, 512 KiB): the pages before and after stay dirty.
		paged := opsDirty(t, fd, data)
		cb := &aio.IOCB{Op: aio.OpSyncFileRange, FD: fd, Offset: 256 << 10, Len: 256 << 10, Flags: syncAll, Data: uint64(10 + i)}
		opsWant(t, c, via, cb, 0, "sync_file_range of [256K, 512K)")
		if paged {
			if in, _ := opsPages(t, fd, 256<<10, 256<<10); in.Dirty != 0 || in.Writeback != 0 {
				t.Fatalf("%s: after sync_file_range of [256K, 512K): %d dirty and %d writeback pages in it", via, in.Dirty, in.Writeback)
			}
			before, _ := opsPages(t, fd, 0, 256<<10)
			after, _ := opsPages(t, fd, 512<<10, 0)
			if before.Dirty == 0 || after.Dirty == 0 {
				t.Fatalf("%s: sync_file_range of [256K, 512K) cleaned pages outside it: %d dirty before it, %d after", via, before.Dirty, after.Dirty)
			}
		}

		// Len 0: from Offset to the end of the file.
		paged = opsDirty(t, fd, data)
		cb = &aio.IOCB{Op: aio.OpSyncFileRange, FD: fd, Offset: 0, Len: 0, Flags: syncAll, Data: uint64(20 + i)}
		opsWant(t, c, via, cb, 0, "sync_file_range with Len 0")
		if cs, _ := opsPages(t, fd, 0, 0); paged && cs.Dirty != 0 {
			t.Fatalf("%s: %d pages still dirty after sync_file_range with Len 0", via, cs.Dirty)
		}

		// Flags 0 does nothing, successfully; WRITE alone starts writeback;
		// a read-only descriptor may be synced.
		for j, cb := range []*aio.IOCB{
			{Op: aio.OpSyncFileRange, FD: fd, Len: size, Flags: 0},
			{Op: aio.OpSyncFileRange, FD: fd, Len: size, Flags: unix.SYNC_FILE_RANGE_WRITE},
			{Op: aio.OpSyncFileRange, FD: ro, Offset: 4096, Len: 4096, Flags: syncAll},
		} {
			cb.Data = uint64(30 + j)
			opsWant(t, c, via, cb, 0, fmt.Sprintf("sync_file_range %d", j))
		}
	}
}

// opsSyncFileRangeRefusals: Submit refuses flags outside the three defined
// bits, a negative Offset and a negative Len (EINVAL, §3.2); a range whose end
// overflows a 64-bit offset is the kernel's EINVAL, the same on every backend
// and for both io_uring's 32-bit length field and the pool's 64-bit one.
func opsSyncFileRangeRefusals(t *testing.T, be string) {
	fd := tempFD(t, pattern(4096, 4))
	c := newContext(t, be, 4)
	for _, tc := range []struct {
		name   string
		off, n int64
		flags  uint32
	}{
		{"Flags 8", 0, 0, 8},
		{"Flags 0x80000000", 0, 0, 0x80000000},
		{"Flags all ones", 0, 0, math.MaxUint32},
		{"Offset -1", -1, 0, syncAll},
		{"Len -1", 0, -1, syncAll},
		{"Len -4096", 4096, -4096, unix.SYNC_FILE_RANGE_WRITE},
	} {
		cb := &aio.IOCB{Op: aio.OpSyncFileRange, FD: fd, Offset: tc.off, Len: tc.n, Flags: tc.flags}
		opsRefused(t, c, cb, "sync_file_range "+tc.name)
	}
	for _, tc := range []struct {
		name      string
		off, n    int64
		wantErrno unix.Errno
	}{
		{"end past 2^63, 32-bit Len", math.MaxInt64 - 10, 1 << 20, unix.EINVAL},
		{"end past 2^63, 64-bit Len", 1 << 62, 1 << 62, unix.EINVAL},
	} {
		want := -int64(tc.wantErrno)
		opsKernelSays(t, unix.SyncFileRange(fd, tc.off, tc.n, syncAll), want, "sync_file_range "+tc.name)
		for i, via := range opsVia {
			cb := &aio.IOCB{Op: aio.OpSyncFileRange, FD: fd, Offset: tc.off, Len: tc.n, Flags: syncAll, Data: uint64(i + 1)}
			opsWant(t, c, via, cb, want, "sync_file_range "+tc.name)
		}
	}
	expectNoEvents(t, c)
}

// ---- fadvise ----

// opsFadvise: POSIX_FADV_DONTNEED drops the clean pages of its range and only
// those (the offset and length reached the kernel as given); Len 0 reaches
// the end of the file; POSIX_FADV_WILLNEED brings the range it names into
// the page cache. The other advices succeed.
func opsFadvise(t *testing.T, be string) {
	const size = 1 << 20
	data := pattern(size, 5)
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	for i, via := range opsVia {
		opsCached(t, fd, data) // clean pages: DONTNEED drops them
		cb := &aio.IOCB{Op: aio.OpFadvise, FD: fd, Offset: 512 << 10, Len: 256 << 10, Flags: unix.FADV_DONTNEED, Data: uint64(10 + i)}
		opsWant(t, c, via, cb, 0, "fadvise DONTNEED of [512K, 768K)")
		if in, ok := opsPages(t, fd, 512<<10, 256<<10); ok {
			if in.Cache != 0 {
				t.Fatalf("%s: %d pages of [512K, 768K) still cached after DONTNEED", via, in.Cache)
			}
			if out, _ := opsPages(t, fd, 0, 512<<10); out.Cache == 0 {
				t.Fatalf("%s: fadvise DONTNEED of [512K, 768K) dropped [0, 512K) too", via)
			}
		}

		cb = &aio.IOCB{Op: aio.OpFadvise, FD: fd, Offset: 0, Len: 0, Flags: unix.FADV_DONTNEED, Data: uint64(20 + i)}
		opsWant(t, c, via, cb, 0, "fadvise DONTNEED with Len 0")
		if cs, ok := opsPages(t, fd, 0, 0); ok && cs.Cache != 0 {
			t.Fatalf("%s: %d pages still cached after DONTNEED with Len 0", via, cs.Cache)
		}

		// WILLNEED of [768K, 1M): pages there enter the cache (readahead
		// is started before the call returns), none before 512K does.
		cb = &aio.IOCB{Op: aio.OpFadvise, FD: fd, Offset: 768 << 10, Len: 256 << 10, Flags: unix.FADV_WILLNEED, Data: uint64(30 + i)}
		opsWant(t, c, via, cb, 0, "fadvise WILLNEED of [768K, 1M)")
		if in, ok := opsPages(t, fd, 768<<10, 256<<10); ok {
			if in.Cache == 0 {
				t.Fatalf("%s: no page of [768K, 1M) cached after WILLNEED", via)
			}
			if out, _ := opsPages(t, fd, 0, 512<<10); out.Cache != 0 {
				t.Fatalf("%s: fadvise WILLNEED of [768K, 1M) read %d pages of [0, 512K)", via, out.Cache)
			}
		}

		for j, advice := range []int{unix.FADV_NORMAL, unix.FADV_RANDOM, unix.FADV_SEQUENTIAL, unix.FADV_NOREUSE} {
			cb := &aio.IOCB{Op: aio.OpFadvise, FD: fd, Len: size, Flags: uint32(advice), Data: uint64(40 + j)}
			opsWant(t, c, via, cb, 0, fmt.Sprintf("fadvise advice %d", advice))
		}
	}
}

// opsFadviseRefusals: Submit refuses a negative Len, and a negative Offset,
// which the kernel would take (§3.2: no Op may have one); an advice the
// kernel does not know is its EINVAL on every backend, both for the advices
// io_uring runs at once and for those it hands to its workers.
func opsFadviseRefusals(t *testing.T, be string) {
	fd := tempFD(t, pattern(4096, 6))
	c := newContext(t, be, 4)
	opsRefused(t, c, &aio.IOCB{Op: aio.OpFadvise, FD: fd, Len: -1, Flags: unix.FADV_WILLNEED}, "fadvise Len -1")
	opsRefused(t, c, &aio.IOCB{Op: aio.OpFadvise, FD: fd, Offset: -1, Flags: unix.FADV_WILLNEED}, "fadvise Offset -1")
	for _, advice := range []uint32{99, 0x80000000, math.MaxUint32} {
		want := -int64(unix.EINVAL)
		opsKernelSays(t, unix.Fadvise(fd, 0, 0, int(int32(advice))), want, fmt.Sprintf("fadvise advice %#x", advice))
		for i, via := range opsVia {
			cb := &aio.IOCB{Op: aio.OpFadvise, FD: fd, Flags: advice, Data: uint64(i + 1)}
			opsWant(t, c, via, cb, want, fmt.Sprintf("fadvise advice %#x", advice))
		}
	}
	expectNoEvents(t, c)
}

// ---- everything else ----

// opsArgsOnOtherOps: a nonzero Len or Flags on any Op other than the range
// operations is refused with EINVAL (§3.2), alone and in a batch, and the
// same IOCB without it is accepted.
func opsArgsOnOtherOps(t *testing.T, be string) {
	fd := tempFD(t, pattern(64, 7))
	_, w := newPipe(t, unix.O_NONBLOCK)
	c := newContext(t, be, 4)
	base := []func() *aio.IOCB{
		func() *aio.IOCB { return &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 8)} },
		func() *aio.IOCB { return &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: make([]byte, 8), Offset: 64} },
		func() *aio.IOCB { return &aio.IOCB{Op: aio.OpReadv, FD: fd, Bufs: [][]byte{make([]byte, 8)}} },
		func() *aio.IOCB {
			return &aio.IOCB{Op: aio.OpWritev, FD: fd, Bufs: [][]byte{make([]byte, 8)}, Offset: 72}
		},
		func() *aio.IOCB { return &aio.IOCB{Op: aio.OpFsync, FD: fd} },
		func() *aio.IOCB { return &aio.IOCB{Op: aio.OpFdsync, FD: fd} },
		func() *aio.IOCB { return &aio.IOCB{Op: aio.OpPoll, FD: w, PollEvents: unix.POLLOUT} },
		func() *aio.IOCB { return &aio.IOCB{Op: aio.OpNop} },
	}
	for _, mk := range base {
		for _, bad := range []struct {
			name       string
			len, flags int64
		}{
			{"Len 1", 1, 0}, {"Len -1", -1, 0}, {"Len 2^40", 1 << 40, 0},
			{"Flags 1", 0, 1}, {"Flags 0x80000000", 0, 0x80000000},
		} {
			cb := mk()
			cb.Len, cb.Flags = bad.len, uint32(bad.flags)
			what := cb.Op.String() + " with " + bad.name
			opsRefused(t, c, cb, what)
			good := &aio.IOCB{Op: aio.OpNop, Data: 5}
			if n, err := c.Submit(good, cb); n != 1 || err != nil {
				t.Fatalf("%s: Submit(nop, it) = %d, %v; want 1, nil", what, n, err)
			}
			wantEvent(t, reapOne(t, c, good), good, 0, what+": the nop before it")
		}
		// Without them it is a request like any other.
		cb := mk()
		cb.Data = 9
		if res := opsRun(t, c, "submit", cb); res < 0 {
			t.Fatalf("%s without Len and Flags: Res %s", cb.Op, fmtRes(res))
		}
	}
	expectNoEvents(t, c)
}

// opsClosedFD: every range operation on a descriptor that is not open ends
// with Res -EBADF on every backend, through io_uring's SQE and through the
// pool (a range of 4 GiB or more).
func opsClosedFD(t *testing.T, be string) {
	bad := unusedFD(t)
	c := newContext(t, be, 4)
	want := -int64(unix.EBADF)
	for _, tc := range []struct {
		op    aio.Op
		n     int64
		flags uint32
	}{
		{aio.OpSyncFileRange, 4096, syncAll},
		{aio.OpSyncFileRange, 1 << 33, syncAll},
		{aio.OpFallocate, 4096, 0},
		{aio.OpFallocate, 4096, unix.FALLOC_FL_KEEP_SIZE},
		{aio.OpFadvise, 0, unix.FADV_WILLNEED},
		{aio.OpFadvise, 1 << 33, unix.FADV_DONTNEED},
	} {
		what := fmt.Sprintf("%s of %d bytes on a closed fd", tc.op, tc.n)
		for i, via := range opsVia {
			cb := &aio.IOCB{Op: tc.op, FD: bad, Len: tc.n, Flags: tc.flags, Data: uint64(i + 1)}
			opsWant(t, c, via, cb, want, what)
		}
	}
}

// opsNotAFile: on a pipe sync_file_range and fadvise say ESPIPE, and so does
// fallocate on the write end (the read end is not open for writing: EBADF);
// on an eventfd sync_file_range says ESPIPE, fallocate ENODEV, and fadvise
// succeeds. Whatever the kernel says, every backend says (§3.4).
func opsNotAFile(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	efd := newEventfd(t)
	c := newContext(t, be, 4)
	type req struct {
		op    aio.Op
		fd    int
		n     int64
		flags uint32
	}
	cases := []struct {
		name string
		req  req
		sys  error
		want unix.Errno
	}{
		{"sync_file_range on a pipe's read end", req{aio.OpSyncFileRange, r, 0, syncAll},
			unix.SyncFileRange(r, 0, 0, syncAll), unix.ESPIPE},
		{"sync_file_range on a pipe's write end", req{aio.OpSyncFileRange, w, 1 << 33, unix.SYNC_FILE_RANGE_WRITE},
			unix.SyncFileRange(w, 0, 1<<33, unix.SYNC_FILE_RANGE_WRITE), unix.ESPIPE},
		{"fadvise on a pipe's read end", req{aio.OpFadvise, r, 0, unix.FADV_WILLNEED},
			unix.Fadvise(r, 0, 0, unix.FADV_WILLNEED), unix.ESPIPE},
		{"fadvise on a pipe's write end", req{aio.OpFadvise, w, 1 << 33, unix.FADV_DONTNEED},
			unix.Fadvise(w, 0, 1<<33, unix.FADV_DONTNEED), unix.ESPIPE},
		{"fallocate on a pipe's write end", req{aio.OpFallocate, w, 4096, 0},
			unix.Fallocate(w, 0, 0, 4096), unix.ESPIPE},
		{"fallocate on a pipe's read end", req{aio.OpFallocate, r, 4096, 0},
			unix.Fallocate(r, 0, 0, 4096), unix.EBADF},
		{"sync_file_range on an eventfd", req{aio.OpSyncFileRange, efd, 0, syncAll},
			unix.SyncFileRange(efd, 0, 0, syncAll), unix.ESPIPE},
		{"fallocate on an eventfd", req{aio.OpFallocate, efd, 4096, 0},
			unix.Fallocate(efd, 0, 0, 4096), unix.ENODEV},
		{"fadvise on an eventfd", req{aio.OpFadvise, efd, 0, unix.FADV_WILLNEED},
			unix.Fadvise(efd, 0, 0, unix.FADV_WILLNEED), 0},
	}
	for _, tc := range cases {
		want := -int64(tc.want)
		opsKernelSays(t, tc.sys, want, tc.name)
		for i, via := range opsVia {
			cb := &aio.IOCB{Op: tc.req.op, FD: tc.req.fd, Len: tc.req.n, Flags: tc.req.flags, Data: uint64(i + 1)}
			opsWant(t, c, via, cb, want, tc.name)
		}
	}
	// Nothing was written to or taken from the pipe.
	if got := drainNow(t, r); len(got) != 0 {
		t.Fatalf("the pipe holds %d bytes", len(got))
	}
}

// opsLongRange: lengths of 4 GiB and more, which io_uring's 32-bit len field
// cannot carry for sync_file_range and fadvise (the library then makes the
// system call on its pool): they act on the whole range, where the length
// cut to 32 bits would name one or two pages; MaxUint32 itself still fits. fallocate's 64-bit length reaches the kernel whole: a range
// past the file system's limit is its EFBIG.
func opsLongRange(t *testing.T, be string) {
	const size = 256 << 10
	data := pattern(size, 8)
	fd := tempFD(t, nil)
	c := newContext(t, be, 4)
	for i, via := range opsVia {
		// Cut to 32 bits, 2^32+4096 would be one page, not the whole file.
		for j, n := range []int64{math.MaxUint32, 1<<32 + 4096, 1<<33 + 8192, math.MaxInt64} {
			paged := opsDirty(t, fd, data)
			cb := &aio.IOCB{Op: aio.OpSyncFileRange, FD: fd, Len: n, Flags: syncAll, Data: uint64(10*i + j)}
			opsWant(t, c, via, cb, 0, fmt.Sprintf("sync_file_range of %d bytes", n))
			if cs, _ := opsPages(t, fd, 0, 0); paged && cs.Dirty != 0 {
				t.Fatalf("%s: %d pages dirty after sync_file_range of %d bytes", via, cs.Dirty, n)
			}

			cb = &aio.IOCB{Op: aio.OpFadvise, FD: fd, Len: n, Flags: unix.FADV_DONTNEED, Data: uint64(10*i + j)}
			opsWant(t, c, via, cb, 0, fmt.Sprintf("fadvise DONTNEED of %d bytes", n))
			if cs, ok := opsPages(t, fd, 0, 0); ok && cs.Cache != 0 {
				t.Fatalf("%s: %d pages cached after fadvise DONTNEED of %d bytes", via, cs.Cache, n)
			}
			cb = &aio.IOCB{Op: aio.OpFadvise, FD: fd, Len: n, Flags: unix.FADV_WILLNEED, Data: uint64(10*i + j)}
			opsWant(t, c, via, cb, 0, fmt.Sprintf("fadvise WILLNEED of %d bytes", n))
			if cs, ok := opsPages(t, fd, 0, 0); ok && cs.Cache == 0 {
				t.Fatalf("%s: nothing cached after fadvise WILLNEED of %d bytes", via, n)
			}
		}
		want := -int64(unix.EFBIG)
		opsKernelSays(t, unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 1<<62, 1<<62), want, "fallocate of [2^62, 2^63)")
		cb := &aio.IOCB{Op: aio.OpFallocate, FD: fd, Offset: 1 << 62, Len: 1 << 62, Flags: unix.FALLOC_FL_KEEP_SIZE, Data: 99}
		opsWant(t, c, via, cb, want, "fallocate of [2^62, 2^63)")
	}
}

// opsCancelQueued: a range operation still queued in the library's pool is
// canceled by Cancel (§5.4: "still queued inside the library: always"), and
// does nothing. Deterministic where the operation goes to the pool — every
// one on threads and kaio: a Context with one worker, which a write to a
// pty master keeps busy (a pty master refuses RWF_NOWAIT and cannot be opened
// again, so after readiness the pool writes to it plainly on that worker,
// §3.11; with the slave not reading, the write blocks once the terminal's
// buffer is full). The first byte reaching the slave proves the worker has it. io_uring runs these operations in
// its own workers, where Cancel's answer depends on timing (§5.4, §10.5):
// other cases cover it.
func opsCancelQueued(t *testing.T, be string) {
	if be == "uring" {
		t.Skip("io_uring queues these in its own io-wq, where a cancel's outcome depends on timing; nothing of the library's pool to hold")
	}
	m, s := contractPty(t)
	fd := tempFD(t, pattern(4096, 9))
	c, err := aio.SetupWithOptions(4, aio.Options{Backend: be, Workers: 1})
	if err != nil {
		t.Fatalf("SetupWithOptions(4, %s, Workers 1): %v", be, err)
	}
	t.Cleanup(func() { _ = c.Destroy() })

	const big = 1 << 20
	wr := &aio.IOCB{Op: aio.OpWrite, FD: m, Buf: make([]byte, big), Data: 1}
	mustSubmit(t, c, wr)
	// Whatever happens below, let the write end before Destroy waits for it.
	got := 0
	drain := func() {
		buf := make([]byte, 64<<10)
		for deadline := time.Now().Add(eventWait); got < big && time.Now().Before(deadline); {
			p := []unix.PollFd{{Fd: int32(s), Events: unix.POLLIN}}
			if n, _ := unix.Poll(p, 10); n <= 0 {
				continue
			}
			n, err := unix.Read(s, buf)
			if err != nil && err != unix.EINTR && err != unix.EAGAIN {
				t.Errorf("read pty slave: %v", err)
				return
			}
			got += max(n, 0)
		}
	}
	t.Cleanup(drain)
	waitReady(t, s, unix.POLLIN) // the worker is in the write

	before := opsStat(t, fd)
	ops := []*aio.IOCB{
		{Op: aio.OpFallocate, FD: fd, Offset: 4096, Len: 1 << 20, Flags: unix.FALLOC_FL_KEEP_SIZE, Data: 2},
		{Op: aio.OpSyncFileRange, FD: fd, Flags: syncAll, Data: 3},
		{Op: aio.OpFadvise, FD: fd, Flags: unix.FADV_DONTNEED, Data: 4},
	}
	mustSubmit(t, c, ops...)
	for _, cb := range ops {
		ev, err := c.Cancel(cb)
		wantCanceled(t, ev, err, cb, "Cancel of a queued "+cb.Op.String())
		wantErrno(t, c.Error(cb), unix.ECANCELED, "Error after the cancel of "+cb.Op.String())
	}
	if after := opsStat(t, fd); after.Blocks != before.Blocks {
		t.Fatalf("the canceled fallocate allocated: st_blocks %d→%d", before.Blocks, after.Blocks)
	}

	drain()
	if got != big {
		t.Fatalf("the pty slave received %d of %d bytes", got, big)
	}
	wantEvent(t, reapOne(t, c, wr), wr, big, "the write that held the worker")
	expectNoEvents(t, c)

	// The same requests, submitted again with the worker free, run.
	for i, cb := range ops {
		opsWant(t, c, opsVia[i%2], cb, 0, "after the cancel: "+cb.Op.String())
	}
	if after := opsStat(t, fd); (after.Blocks-before.Blocks)*512 < 1<<20 {
		t.Fatalf("fallocate after the cancel: st_blocks %d→%d", before.Blocks, after.Blocks)
	}
}

// opsMixedBatch: one Submit of reads, range operations that fit io_uring's
// SQE, ranges of 4 GiB and more (which go to the pool on io_uring), and one
// on a closed descriptor: all accepted, each event once, each with its own
// result, whatever route each took.
func opsMixedBatch(t *testing.T, be string) {
	const size = 64 << 10
	data := pattern(size, 10)
	fd := tempFD(t, data)
	bad := unusedFD(t)
	c := newContext(t, be, 16)
	buf1, buf2 := make([]byte, size), make([]byte, size)
	cbs := []*aio.IOCB{
		{Op: aio.OpRead, FD: fd, Buf: buf1, Data: 1},
		{Op: aio.OpSyncFileRange, FD: fd, Len: 1<<33 + 4096, Flags: syncAll, Data: 2},
		{Op: aio.OpFallocate, FD: fd, Offset: size, Len: size, Flags: unix.FALLOC_FL_KEEP_SIZE, Data: 3},
		{Op: aio.OpFadvise, FD: bad, Len: 1 << 33, Flags: unix.FADV_WILLNEED, Data: 4},
		{Op: aio.OpNop, Data: 5},
		{Op: aio.OpFadvise, FD: fd, Len: 1 << 32, Flags: unix.FADV_WILLNEED, Data: 6},
		{Op: aio.OpSyncFileRange, FD: fd, Len: size, Flags: syncAll, Data: 7},
		{Op: aio.OpRead, FD: fd, Buf: buf2, Data: 8},
	}
	want := map[uint64]int64{1: size, 2: 0, 3: 0, 4: -int64(unix.EBADF), 5: 0, 6: 0, 7: 0, 8: size}
	for round := range 3 {
		clear(buf1)
		clear(buf2)
		mustSubmit(t, c, cbs...)
		got := byIOCB(t, reapN(t, c, len(cbs)))
		for _, cb := range cbs {
			wantEvent(t, got[cb], cb, want[cb.Data], fmt.Sprintf("round %d: %s (Data %d) in a mixed batch", round, cb.Op, cb.Data))
		}
		wantBytes(t, buf1, data, "first read")
		wantBytes(t, buf2, data, "last read")
		expectNoEvents(t, c)
	}
	if st := opsStat(t, fd); st.Size != size || st.Blocks*512 < 2*size {
		t.Fatalf("after fallocate KEEP_SIZE of [64K, 128K): size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
}
