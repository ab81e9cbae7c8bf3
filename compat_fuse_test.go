//go:build linux

package uringaio_test

// FUSE files (issue 16's audit): a regular file whose data comes from a
// process, which may take as long as it likes to answer a READ. Two promises
// are at stake:
//
//   - §3.8: a read of a regular file never returns a short count mid-file,
//     whether its range is cold or partly cached, and whichever mechanism
//     (RWF_NOWAIT try, pool continuation, io-wq) moves it;
//   - §5.4 and §7.1: a read the server holds is I/O on a regular file that has
//     started. Cancel must answer at once (-ECANCELED or EAGAIN), not wait for
//     the server; the request then ends exactly once; Destroy returns once the
//     server answers, and never before the kernel has let go of the buffer.
//
// The server is this process's own (fuse_helpers_test.go). Every call that
// could wait for it runs under fuseWatch, whose timeout path answers the held
// READs (which lets a stuck call return) before failing the test, so a
// regression fails instead of hanging CI.
//
// The server runs in two modes: without FUSE_ASYNC_READ in its INIT reply
// (readahead waits for the server's answer inside the reading call) and with
// it (readahead READs go to the server in the background, as with libfuse's
// default). And it either ignores FUSE_INTERRUPT (the kernel allows it) or
// answers the interrupted READ with -EINTR.
//
// What each backend does (observed on Linux 6.18, with the kernel stacks the
// watchdog prints):
//
//   - FUSE files do not take RWF_NOWAIT: preadv2(RWF_NOWAIT) and classic AIO's
//     RWF_NOWAIT attempt answer EOPNOTSUPP, cold or cached.
//   - kaio: io_submit's RWF_NOWAIT attempt fails with EOPNOTSUPP at once, so
//     Submit diverts the read to the pool (a dup of the fd), where a worker
//     makes a blocking pread. Submit returns in microseconds; Cancel of the
//     held read answers EAGAIN at once (running on a worker); the event
//     comes with the full count once the server answers; Destroy waits for
//     the worker, i.e. for the server, and returns right after. Passes.
//   - threads: the same, minus the io_submit attempt. Passes.
//   - ReadAt (all backends): the caller's RWF_NOWAIT try gets EOPNOTSUPP, so
//     the file is never read on the caller (§8.5) and the read is a request.
//   - uring, server without FUSE_ASYNC_READ: io_uring issues the read inline
//     in io_uring_enter with IOCB_NOWAIT, and FUSE's readahead
//     (fuse_readahead -> request_wait_answer) waits for the server even so.
//     So Submit itself blocks until the server answers: FAILS
//     (sync-read/*/cancel and /destroy stop at Submit). When a signal
//     happens to reach the submitting thread the kernel sends INTERRUPT; a
//     server that answers it with EINTR then lets io_uring retry in io-wq
//     and Submit return, which is why a run without -race sometimes passes
//     sync-read/honors-interrupt; a server that ignores INTERRUPT keeps
//     Submit blocked.
//   - uring, server with FUSE_ASYNC_READ: Submit returns at once. Cancel is
//     decided by where io_uring left the read: sometimes it is stopped
//     (-ECANCELED in microseconds), but in about half the runs an io-wq
//     worker is running it, waiting for the page's lock
//     (folio_wait_bit_common, a killable wait that the cancel's notify
//     signal does not end, so no INTERRUPT reaches the server);
//     IORING_OP_ASYNC_CANCEL then cannot stop it and the library's Cancel
//     waits for the read's own completion, i.e. for the server: FAILS
//     (async-read/*/cancel, intermittently). Destroy passes: it waits for
//     the server, or returns at once having stopped the request, and the
//     buffer is never written after it returned.
//   - §3.8 (fuse/read-full): every backend returns pread(2)'s count and
//     bytes, cold and partly cached, in both server modes. Passes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("fuse/read-full", fuseReadFull)
	registerCompat("fuse/held-read", fuseHeldRead)
}

// fuseSize is the size of the served file.
const fuseSize = 1 << 20

// fuseWatch runs fn and fails the test if it has not returned within raceWait.
// Before failing it answers the server's held READs, which must let the stuck
// call return, so that the test's own cleanup does not hang as well.
func fuseWatch(t *testing.T, what string, srv *fuseServer, fn func()) time.Duration {
	t.Helper()
	done, took, ok := runWithin(raceWait, fn)
	if ok {
		return took
	}
	reads, held, intr := srv.stats()
	stacks := fuseKernelStacks()
	srv.release()
	select {
	case <-done:
		t.Fatalf("%s did not return within %v; it returned once the FUSE server answered the %d held READ(s) (server: %d READs, %d INTERRUPTs): it waited for a transfer only the server could end. Kernel stacks while it waited:%s",
			what, raceWait, held, reads, intr, stacks)
	case <-time.After(raceWait):
		t.Fatalf("%s did not return within %v, nor after the FUSE server answered its held READs (server: %d READs, %d INTERRUPTs). Kernel stacks while it waited:%s", what, raceWait, reads, intr, stacks)
	}
	return 0
}

// fuseResidency returns, for each page of fd's first n bytes, whether it is
// in the page cache (mincore on a mapping that touches nothing).
func fuseResidency(t *testing.T, fd int, n int) []bool {
	t.Helper()
	m, err := unix.Mmap(fd, 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap the FUSE file: %v", err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (n+4095)/4096)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	res := make([]bool, len(vec))
	for i, v := range vec {
		res[i] = v&1 != 0
	}
	return res
}

// fuseOpenState opens the served file afresh and leaves its page cache in
// state: "cold" (nothing cached: an open without FOPEN_KEEP_CACHE drops the
// file's pages, and DONTNEED drops any left), or "first-page" (only the page
// at off cached). It checks the state with mincore.
func fuseOpenState(t *testing.T, srv *fuseServer, state string, off int64) int {
	t.Helper()
	fd := openFD(t, srv.path, unix.O_RDONLY)
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("fadvise(DONTNEED): %v", err)
	}
	if state == "first-page" {
		var b [4096]byte
		if n, err := unix.Pread(fd, b[:], off); n != len(b) || err != nil {
			t.Fatalf("pread to warm the page at %d: %d, %v", off, n, err)
		}
		// Readahead brought more than the page: drop the rest.
		if off > 0 {
			if err := unix.Fadvise(fd, 0, off, unix.FADV_DONTNEED); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.Fadvise(fd, off+4096, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
	}
	// With FUSE_ASYNC_READ the warming read's readahead is answered in the
	// background, and a page it brings may land after the DONTNEED above
	// (seen once in 20 rounds at GOMAXPROCS=8): drop the others again until
	// the state holds, and fail only if it never settles.
	for try := 0; ; try++ {
		bad := -1
		for i, in := range fuseResidency(t, fd, fuseSize) {
			if want := state == "first-page" && int64(i)*4096 == off; in != want {
				bad = i
				break
			}
		}
		if bad < 0 {
			return fd
		}
		if try == 50 || state == "first-page" && int64(bad)*4096 == off {
			t.Fatalf("%s: page %d cached = %v after %d tries (the file's cache is not in the state this case needs)", state, bad, state != "first-page" || int64(bad)*4096 != off, try+1)
		}
		time.Sleep(10 * time.Millisecond)
		if state == "first-page" {
			if off > 0 {
				_ = unix.Fadvise(fd, 0, off, unix.FADV_DONTNEED)
			}
			_ = unix.Fadvise(fd, off+4096, 0, unix.FADV_DONTNEED)
		} else {
			_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
		}
	}
}

// fuseReadFull: reads of a FUSE file, cold and with the first page of the
// range cached, through Submit and ReadAt, return exactly what pread(2)
// returns for the same range: all of it inside the file, up to the end when
// the range crosses it; never a short count mid-file (§3.8).
func fuseReadFull(t *testing.T, be string) {
	for _, async := range []bool{false, true} {
		t.Run(fuseReadMode(async), func(t *testing.T) { fuseReadFullOn(t, be, async) })
	}
}

// fuseReadMode names the server's INIT choice: FUSE_ASYNC_READ offered
// (readahead goes to the server in the background, as libfuse does by
// default) or not (readahead waits for the server's answer).
func fuseReadMode(async bool) string {
	if async {
		return "async-read"
	}
	return "sync-read"
}

func fuseReadFullOn(t *testing.T, be string, async bool) {
	data := pattern(fuseSize, 11)
	srv := newFuseServer(t, data, fuseOptions{asyncRead: async})
	c := newContext(t, be, 4)
	ranges := []struct {
		off int64
		n   int
	}{
		{0, 4 << 10},
		{516 << 10, 4 << 10},
		{0, 256 << 10},
		{64 << 10, 256 << 10},
		{fuseSize - 100<<10, 256 << 10}, // crosses the end: 100 KiB are left
	}
	for _, state := range []string{"cold", "first-page"} {
		for _, via := range []string{"Submit", "ReadAt"} {
			for _, r := range ranges {
				what := fmt.Sprintf("%s read of %d at %d (%s)", via, r.n, r.off, state)
				fd := fuseOpenState(t, srv, state, r.off)
				buf := make([]byte, r.n)
				var got int64
				switch via {
				case "Submit":
					rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: buf, Offset: r.off, Data: uint64(r.off)}
					fuseWatch(t, what+": Submit", srv, func() { mustSubmit(t, c, rd) })
					got = reapOne(t, c, rd).Res
				case "ReadAt":
					var n int
					var err error
					fuseWatch(t, what, srv, func() { n, err = c.ReadAt(context.Background(), fd, buf, r.off) })
					switch {
					case err == nil && n == r.n:
					case errors.Is(err, io.EOF) && n < r.n:
					default:
						t.Fatalf("%s: ReadAt = %d, %v", what, n, err)
					}
					got = int64(n)
				}
				want := preadAll(t, fd, r.n, r.off)
				if wantN := min(int64(r.n), fuseSize-r.off); int64(len(want)) != wantN {
					t.Fatalf("%s: pread(2) itself returned %d, want %d", what, len(want), wantN)
				}
				if got != int64(len(want)) {
					t.Fatalf("%s: Res = %s, pread(2) returns %d for the same range (a short count mid-file reads as the end of the file)", what, fmtRes(got), len(want))
				}
				wantBytes(t, buf[:got], want, what)
				wantBytes(t, buf[:got], data[r.off:r.off+got], what+" (against the served pattern)")
			}
		}
	}
	if _, held, _ := srv.stats(); held != 0 {
		t.Fatalf("%d READs held with holding off", held)
	}
}

// fuseHeldRead: a read whose READ the server holds is running in the kernel
// (or on a pool worker). Cancel must answer at once, with -ECANCELED or EAGAIN
// (§5.4: either, for regular-file I/O that has started); exactly one event
// follows once the server answers. Destroy returns once the server answers,
// and the buffer is not written after it returned (§7.1). Both with a server
// that ignores FUSE_INTERRUPT (as the kernel allows) and one that answers the
// interrupted READ with EINTR.
func fuseHeldRead(t *testing.T, be string) {
	for _, o := range []fuseOptions{{}, {honorInterrupt: true}, {asyncRead: true}, {asyncRead: true, honorInterrupt: true}} {
		name := fuseReadMode(o.asyncRead) + "/ignores-interrupt"
		if o.honorInterrupt {
			name = fuseReadMode(o.asyncRead) + "/honors-interrupt"
		}
		t.Run(name+"/cancel", func(t *testing.T) {
			fuseSkipUring(t, be, o, true)
			fuseHeldCancel(t, be, o)
		})
		t.Run(name+"/destroy", func(t *testing.T) {
			fuseSkipUring(t, be, o, false)
			fuseHeldDestroy(t, be, o)
		})
	}
}

// fuseSkipUring skips the held-read cases io_uring fails, the known
// exceptions of docs/contract.md §10.9 (observed as the comment at the top of
// this file says): with a server without FUSE_ASYNC_READ, Submit itself waits
// for the server; with one, Cancel waits for it whenever an io-wq worker has
// the read.
func fuseSkipUring(t *testing.T, be string, o fuseOptions, cancel bool) {
	t.Helper()
	switch {
	case be != "uring":
	case !o.asyncRead:
		t.Skip("known exception (contract §10.9): io_uring issues the read inside io_uring_enter, where FUSE's readahead waits for a server without FUSE_ASYNC_READ, so Submit blocks until the server answers")
	case cancel:
		t.Skip("known exception (contract §10.9): when an io-wq worker runs the read (waiting for the page lock), IORING_OP_ASYNC_CANCEL cannot stop it and Cancel waits for the server")
	}
}

// fuseHeldSubmit opens the served file cold, makes the server hold READs,
// submits a 4 KiB read at off and waits until the server holds its READ.
func fuseHeldSubmit(t *testing.T, c *aio.Context, srv *fuseServer, off int64) *aio.IOCB {
	t.Helper()
	fd := fuseOpenState(t, srv, "cold", 0)
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = 0xEE
	}
	rd := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: buf, Offset: off, Data: 77}
	srv.setHold(true)
	d := fuseWatch(t, "Submit of a read the server holds", srv, func() { mustSubmit(t, c, rd) })
	if !srv.waitHeld(1, eventWait) {
		srv.release()
		t.Fatalf("no READ reached the server within %v of Submit (Submit took %v)", eventWait, d)
	}
	if err := c.Error(rd); !errors.Is(err, unix.EINPROGRESS) {
		srv.release()
		t.Fatalf("Error(the held read) = %v, want EINPROGRESS", err)
	}
	t.Logf("Submit returned in %v; the server holds the READ", d.Round(time.Microsecond))
	return rd
}

func fuseHeldCancel(t *testing.T, be string, o fuseOptions) {
	data := pattern(fuseSize, 13)
	srv := newFuseServer(t, data, o)
	c := newContext(t, be, 4)
	const off = 8 << 10
	rd := fuseHeldSubmit(t, c, srv, off)
	var ev aio.Event
	var err error
	d := fuseWatch(t, "Cancel of a read the FUSE server holds", srv, func() { ev, err = c.Cancel(rd) })
	reads, held, intr := srv.stats()
	t.Logf("Cancel returned in %v: %v %s (server: %d READs, %d held, %d INTERRUPTs)", d.Round(time.Microsecond), err, fmtEvent(ev), reads, held, intr)
	srv.release()
	switch {
	case err == nil:
		wantCanceled(t, ev, err, rd, "Cancel of the held read")
		expectNoEventsFor(t, c, 200*time.Millisecond)
	case errors.Is(err, unix.EAGAIN):
		ev := reapOne(t, c, rd)
		wantEvent(t, ev, rd, int64(len(rd.Buf)), "the held read, after Cancel answered EAGAIN and the server answered")
		wantBytes(t, rd.Buf, data[off:off+int64(len(rd.Buf))], "the held read's data")
		expectNoEvents(t, c)
	default:
		t.Fatalf("Cancel of the held read: %v, want nil (-ECANCELED) or EAGAIN", err)
	}
	var derr error
	fuseWatch(t, "Destroy", srv, func() { derr = c.Destroy() })
	if derr != nil {
		t.Fatalf("Destroy: %v", derr)
	}
}

func fuseHeldDestroy(t *testing.T, be string, o fuseOptions) {
	data := pattern(fuseSize, 17)
	srv := newFuseServer(t, data, o)
	c := newContext(t, be, 4)
	rd := fuseHeldSubmit(t, c, srv, 0)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Destroy() }()
	var early bool
	var derr error
	select {
	case derr = <-done:
		early = true
	case <-time.After(300 * time.Millisecond):
	}
	reads, held, intr := srv.stats()
	snap := append([]byte(nil), rd.Buf...)
	if early {
		t.Logf("Destroy returned in %v, before the server answered (server: %d READs, %d held, %d INTERRUPTs)",
			time.Since(start).Round(time.Microsecond), reads, held, intr)
	} else {
		t.Logf("Destroy still waiting after %v, as it should while the kernel holds the buffer (server: %d READs, %d held, %d INTERRUPTs); releasing",
			time.Since(start).Round(time.Millisecond), reads, held, intr)
	}
	srv.release()
	if !early {
		select {
		case derr = <-done:
			t.Logf("Destroy returned %v after the release", time.Since(start).Round(time.Microsecond))
		case <-time.After(raceWait):
			// Cleanup will close /dev/fuse, which aborts the connection
			// and lets Destroy's goroutine end.
			t.Fatalf("Destroy did not return within %v after the FUSE server answered the held READ", raceWait)
		}
	}
	if derr != nil {
		t.Fatalf("Destroy: %v", derr)
	}
	if early {
		// The kernel must have let go of the buffer before Destroy returned
		// (§7.1): once the server has answered, nothing may write it.
		time.Sleep(200 * time.Millisecond)
		if _, held, _ := srv.stats(); held != 0 {
			t.Fatalf("%d READs still held after release", held)
		}
		wantBytes(t, rd.Buf, snap, "the buffer after Destroy returned and the server then answered (the kernel wrote it after Destroy)")
	}
}
