//go:build linux

package uringaio_test

// Contract §8.5: reads and buffered writes of a regular file whose data is in
// the page cache are made on the caller's goroutine, by every API that moves
// data (File.ReadAt, Context.ReadAt on a descriptor, Do with OpRead), on every
// backend; what would wait goes to the backend, or, where the backend would
// make it a blocking call on a worker of its pool (threads; classic AIO's
// buffered reads), is that blocking call on the caller, under the pool's
// bound. These cases check the safeguards: a file that turns cold while
// marked hot holds at most GOMAXPROCS threads in a plain read and at most
// Workers in a blocking one, a file that goes hot, cold and hot again is read
// correctly throughout, and O_DIRECT is never read by a plain read (which
// keeps its P): on uring and kaio it is a request, on threads a blocking call.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("caller/cold-file-bounded-threads", callerColdBoundedThreads)
	registerCompat("caller/hot-cold-hot", callerHotColdHot)
	registerCompat("caller/odirect-never-plain", callerDirectNever)
	registerCompat("caller/fd-reuse-odirect", callerFDReuseDirect)
	registerCompat("caller/fd-reuse-pipe-after-blocking", callerFDReusePipe)
	registerCompat("caller/blocking-bound", callerBlockingBound)
	registerCompat("caller/many-writers-no-request", callerManyWriters)
	registerCompat("caller/raw-buffered-write-no-submit", callerRawWriteNoSubmit)
}

const callerBlock = 4096

// callerAPI is one way a program reads a block: File.ReadAt, Context.ReadAt on
// the descriptor, or Do with an IOCB of its own.
type callerAPI struct {
	name string
	read func(c *aio.Context, af *aio.File, fd int, cb *aio.IOCB, p []byte, off int64) (int, error)
}

var callerAPIs = []callerAPI{
	{"file", func(_ *aio.Context, af *aio.File, _ int, _ *aio.IOCB, p []byte, off int64) (int, error) {
		return af.ReadAt(p, off)
	}},
	{"readat", func(c *aio.Context, _ *aio.File, fd int, _ *aio.IOCB, p []byte, off int64) (int, error) {
		return c.ReadAt(context.Background(), fd, p, off)
	}},
	{"do", func(c *aio.Context, _ *aio.File, fd int, cb *aio.IOCB, p []byte, off int64) (int, error) {
		cb.Op, cb.FD, cb.Buf, cb.Offset = aio.OpRead, fd, p, off
		ev, err := c.Do(context.Background(), cb)
		if err != nil {
			return 0, err
		}
		return int(ev.Res), nil
	}},
}

// callerFile is a file of size bytes of pattern(…, seed) on a real filesystem,
// open twice: as an *os.File (for File) and as a raw descriptor.
func callerFile(t *testing.T, size int, seed byte) (path string, f *os.File, fd int) {
	t.Helper()
	path = filepath.Join(tempDir(t), "data")
	if err := os.WriteFile(path, pattern(size, seed), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f, openFD(t, path, unix.O_RDONLY)
}

// callerEvict writes the file back and drops it from the page cache.
func callerEvict(t *testing.T, fd int) {
	t.Helper()
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("fadvise(DONTNEED): %v", err)
	}
}

// threadsInRead counts the threads of this process that are inside a read
// of descriptor fd now (/proc/self/task/*/syscall: the number and the
// arguments of the system call a thread is in): pread64 (plain: a hot read,
// which keeps its P), preadv2 with RWF_NOWAIT (tries, which do not wait for
// the disk), preadv2 with no flags (blocking: the caller making the call a
// pool worker would make, §8.5); a pool worker's preadv is none of these.
func threadsInRead(fd int) (plain, tries, blocking int) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, 0, 0
	}
	want := "0x" + strconv.FormatInt(int64(fd), 16)
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 || f[1] != want {
			continue
		}
		switch nr, _ := strconv.Atoi(f[0]); nr {
		case unix.SYS_PREAD64:
			plain++
		case unix.SYS_PREADV2:
			if len(f) > 6 && f[6] == "0x0" {
				blocking++
			} else {
				tries++
			}
		}
	}
	return plain, tries, blocking
}

// callerColdBoundedThreads: the file is made hot through the API (its reads
// then run as plain preads on the callers), then dropped from the page cache
// and read by 64 goroutines at once. However many of them find the policy
// still saying hot, at most GOMAXPROCS threads may sit in a plain read of it
// (pread64, the call that waits for the disk): the threads inside one are
// counted all along. Where the backend would make a read that waits a
// blocking call on a worker (threads, kaio), the caller makes it instead, and
// at most Workers (the pool's bound) may sit in such a call at once: counted
// here only in the log (a scan of /proc/self/task is not one instant, and a
// goroutine that moves to another thread mid-scan is counted twice;
// caller/blocking-bound counts them exactly, with every read held). The
// RWF_NOWAIT tries (preadv2, the cold path's, and the threads backend's own
// at Submit) do not wait for the disk and are only logged: on a loaded
// machine many can be caught in flight at once. Every read must still return
// the file's bytes.
func callerColdBoundedThreads(t *testing.T, be string) {
	const size, g, per, rounds = 16 << 20, 64, 6, 4
	want := pattern(size, 5)
	procs := runtime.GOMAXPROCS(0)
	for _, api := range callerAPIs {
		t.Run(api.name, func(t *testing.T) {
			_, f, fd := callerFile(t, size, 5)
			c := newContext(t, be, 64)
			af := aio.NewFile(c, f)
			// The descriptor the caller-side reads use: File's own, or fd.
			rfd := fd
			if api.name == "file" {
				rfd = af.Fd()
			}
			most, seen, tries, blocking := 0, 0, 0, 0
			for round := 0; round < rounds; round++ {
				var cb aio.IOCB
				p := make([]byte, callerBlock)
				for i := 0; i < 64; i++ { // hot: every read finds its data cached
					if n, err := api.read(c, af, fd, &cb, p, 0); n != callerBlock || err != nil {
						t.Fatalf("warm read = %d, %v", n, err)
					}
				}
				callerEvict(t, rfd)
				var stop atomic.Bool
				sampled := make(chan [4]int)
				go func() {
					mx, hits, tries, blocking := 0, 0, 0, 0
					for !stop.Load() {
						n, nt, nb := threadsInRead(rfd)
						mx, tries, blocking = max(mx, n), max(tries, nt), max(blocking, nb)
						if n > 0 {
							hits++
						}
					}
					sampled <- [4]int{mx, hits, tries, blocking}
				}()
				errs := goEach(g, func(w int) error {
					var cb aio.IOCB
					p := make([]byte, callerBlock)
					for i := 0; i < per; i++ {
						off := int64((w*per+i)*997%(size/callerBlock)) * callerBlock
						n, err := api.read(c, af, fd, &cb, p, off)
						if n != callerBlock || err != nil {
							return fmt.Errorf("read at %d = %d, %v", off, n, err)
						}
						if string(p) != string(want[off:off+callerBlock]) {
							return fmt.Errorf("read at %d: wrong bytes", off)
						}
					}
					return nil
				})()
				stop.Store(true)
				s := <-sampled
				for _, err := range errs {
					t.Fatal(err)
				}
				most, seen, tries, blocking = max(most, s[0]), seen+s[1], max(tries, s[2]), max(blocking, s[3])
			}
			t.Logf("%s/%s: at most %d threads in a plain read of the file at once (GOMAXPROCS %d), %d samples saw one; at most %d in an RWF_NOWAIT try, %d in a blocking one",
				be, api.name, most, procs, seen, tries, blocking)
			if most > procs {
				t.Fatalf("%d threads were inside a plain read of the cold file at once; at most GOMAXPROCS = %d may be (contract §8.5)", most, procs)
			}
			if be == "uring" && blocking > 0 {
				t.Fatalf("%d callers made a blocking read on uring, whose kernel makes every read that waits (contract §8.5)", blocking)
			}
		})
	}
}

// callerHotColdHot: a file read hot (on the caller), rewritten and dropped
// from the cache (cold: the backend), read hot again, rewritten in the cache
// only: every read returns what the file holds at that moment, and the hot
// phases are read on the caller (Stats.Inline) while the cold one leaves the
// plain read: it reaches the backend (Stats.Requests), or, where the backend
// would make it a blocking call on a worker, is that call on the caller
// (Stats.Blocking).
func callerHotColdHot(t *testing.T, be string) {
	const size, n = 1 << 20, 64
	for _, api := range callerAPIs {
		t.Run(api.name, func(t *testing.T) {
			path, f, fd := callerFile(t, size, 1)
			wfd := openFD(t, path, unix.O_WRONLY)
			c := newContext(t, be, 16)
			af := aio.NewFile(c, f)
			var cb aio.IOCB
			p := make([]byte, callerBlock)
			readAll := func(phase string, seed byte, n int) aio.Stats {
				t.Helper()
				before := c.Stats()
				want := pattern(size, seed)
				for i := 0; i < n; i++ {
					off := int64(i*37%(size/callerBlock)) * callerBlock // not sequential: little readahead
					m, err := api.read(c, af, fd, &cb, p, off)
					if m != callerBlock || err != nil {
						t.Fatalf("%s: read at %d = %d, %v", phase, off, m, err)
					}
					wantBytes(t, p, want[off:off+callerBlock], phase)
				}
				after := c.Stats()
				return aio.Stats{Requests: after.Requests - before.Requests, Inline: after.Inline - before.Inline,
					Blocking: after.Blocking - before.Blocking}
			}
			hot := readAll("hot", 1, n)
			if hot.Inline < n/2 {
				t.Errorf("hot: %d of %d reads on the caller; want most", hot.Inline, n)
			}
			if _, err := unix.Pwrite(wfd, pattern(size, 2), 0); err != nil {
				t.Fatal(err)
			}
			callerEvict(t, wfd)
			cold := readAll("cold", 2, size/callerBlock) // every block once
			// While marked hot, plain reads may block and bring data in
			// (os.File's way); a sampled try that would wait hands the
			// rest to the backend: one in sampleEvery (16), so 256 reads
			// reach it but with odds of 1 in 10^7.
			if cold.Requests+cold.Blocking == 0 {
				t.Errorf("cold: no read of %d reached the backend or a blocking call (%d on the caller)", size/callerBlock, cold.Inline)
			}
			if be == "uring" && cold.Blocking != 0 {
				t.Errorf("cold: %d blocking calls on the caller on uring; want none (§8.5)", cold.Blocking)
			}
			readAll("warming", 2, n)
			hot2 := readAll("hot again", 2, n)
			if hot2.Inline < n/2 {
				t.Errorf("hot again: %d of %d reads on the caller; want most", hot2.Inline, n)
			}
			if _, err := unix.Pwrite(wfd, pattern(size, 3), 0); err != nil {
				t.Fatal(err)
			}
			readAll("rewritten in the cache", 3, n)
		})
	}
}

// callerDirectNever: an O_DIRECT file is never read (nor written) by a
// plain transfer on the caller, whichever API. On uring and kaio every
// transfer is a request of the backend; on threads, whose pool would make it
// one blocking call on a worker, it is that call on the caller
// (Stats.Blocking), and no request (contract §8.5).
func callerDirectNever(t *testing.T, be string) {
	const size = 1 << 20
	path := tempFileWith(t, pattern(size, 7))
	p := alignedBuf(t, callerBlock)
	dfd := openFD(t, path, unix.O_RDWR|unix.O_DIRECT)
	df, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { df.Close() })
	c := newContext(t, be, 16)
	af := aio.NewFile(c, df)
	want := pattern(size, 7)
	var cb aio.IOCB
	for _, api := range callerAPIs {
		before := c.Stats()
		const n = 40
		for i := 0; i < n; i++ {
			off := int64(i%(size/callerBlock)) * callerBlock
			m, err := api.read(c, af, dfd, &cb, p, off)
			if m != callerBlock || err != nil {
				t.Fatalf("%s: read at %d = %d, %v", api.name, off, m, err)
			}
			wantBytes(t, p, want[off:off+callerBlock], api.name)
		}
		after := c.Stats()
		wantReqs, wantBlocking := uint64(n), uint64(0)
		if be == "threads" {
			wantReqs, wantBlocking = 0, n
		}
		if d := after.Inline - before.Inline - (after.Blocking - before.Blocking); d != 0 {
			t.Errorf("%s: %d of %d O_DIRECT reads ran on the caller as plain reads; want 0 (contract §8.5)", api.name, d, n)
		}
		if d := after.Blocking - before.Blocking; d != wantBlocking {
			t.Errorf("%s: %d of %d O_DIRECT reads were blocking calls on the caller; want %d on %s", api.name, d, n, wantBlocking, be)
		}
		if d := after.Requests - before.Requests; d != wantReqs {
			t.Errorf("%s: %d backend requests for %d O_DIRECT reads; want %d on %s", api.name, d, n, wantReqs, be)
		}
	}
	before := c.Stats()
	copy(p, pattern(callerBlock, 9))
	if m, err := c.WriteAt(context.Background(), dfd, p, 0); m != callerBlock || err != nil {
		t.Fatalf("WriteAt(O_DIRECT fd) = %d, %v", m, err)
	}
	if m, err := af.WriteAt(p, callerBlock); m != callerBlock || err != nil {
		t.Fatalf("File.WriteAt(O_DIRECT) = %d, %v", m, err)
	}
	after := c.Stats()
	if d := after.Inline - before.Inline - (after.Blocking - before.Blocking); d != 0 {
		t.Errorf("%d O_DIRECT writes ran on the caller as plain writes; want 0", d)
	}
	wantBlocking := uint64(0)
	if be == "threads" {
		wantBlocking = 2
	}
	if d := after.Blocking - before.Blocking; d != wantBlocking {
		t.Errorf("%d of 2 O_DIRECT writes were blocking calls on the caller; want %d on %s", d, wantBlocking, be)
	}
}

// callerFDReuseDirect: a descriptor number the Context has seen hot is
// closed and made to name an O_DIRECT file (dup3). Reads of the number read
// the new file; the table's entry is checked again (F_GETFL) on sampled reads,
// so within a bounded number of reads none runs on the caller as a plain read
// any more (contract §8.5 states the bound). A blocking call on the caller
// (threads) asks the file's kind and flags each time, and is not counted.
func callerFDReuseDirect(t *testing.T, be string) {
	const size, n = 1 << 20, 400
	_, _, fd := callerFile(t, size, 4)
	dpath := tempFileWith(t, pattern(size, 8))
	p := alignedBuf(t, callerBlock)
	c := newContext(t, be, 16)
	for i := 0; i < 64; i++ {
		if m, err := c.ReadAt(context.Background(), fd, p, 0); m != callerBlock || err != nil {
			t.Fatalf("warm read = %d, %v", m, err)
		}
	}
	dfd := openFD(t, dpath, unix.O_RDONLY|unix.O_DIRECT)
	if err := unix.Dup3(dfd, fd, unix.O_CLOEXEC); err != nil { // fd now names the O_DIRECT file
		t.Fatal(err)
	}
	want := pattern(size, 8)
	inline := make([]uint64, n)
	for i := 0; i < n; i++ {
		before := c.Stats()
		off := int64(i%(size/callerBlock)) * callerBlock
		if m, err := c.ReadAt(context.Background(), fd, p, off); m != callerBlock || err != nil {
			t.Fatalf("read %d = %d, %v", i, m, err)
		}
		wantBytes(t, p, want[off:off+callerBlock], "read of the reused number")
		after := c.Stats()
		inline[i] = after.Inline - before.Inline - (after.Blocking - before.Blocking)
	}
	first, last := 0, -1
	for i, d := range inline {
		if d != 0 {
			first++
			last = i
		}
	}
	t.Logf("%s: %d of %d reads of the reused number ran on the caller as plain reads, the last at #%d", be, first, n, last)
	if last >= n/2 {
		t.Fatalf("read #%d of the O_DIRECT file that reused a hot number ran on the caller; the entry must be corrected well before %d reads", last, n/2)
	}
}

// callerRawWriteNoSubmit: Context.WriteAt on a buffered descriptor writes on
// the caller (pwritev2, or pwrite where the filesystem refuses RWF_NOWAIT
// writes), as File.WriteAt does: no backend request.
func callerRawWriteNoSubmit(t *testing.T, be string) {
	const n, size = 64, 4096
	fd := tempFD(t, nil)
	c := newContext(t, be, 8)
	before := c.Stats()
	for i := 0; i < n; i++ {
		if m, err := c.WriteAt(context.Background(), fd, pattern(size, byte(i)), int64(i)*size); m != size || err != nil {
			t.Fatalf("WriteAt #%d = %d, %v", i, m, err)
		}
	}
	after := c.Stats()
	if d := after.Requests - before.Requests; d != 0 {
		t.Errorf("%d buffered writes made %d backend requests; want 0", n, d)
	}
	if d := after.Inline - before.Inline; d != n {
		t.Errorf("Stats().Inline grew by %d; want %d", d, n)
	}
	for i := 0; i < n; i++ {
		wantBytes(t, preadAll(t, fd, size, int64(i)*size), pattern(size, byte(i)), "written data")
	}
}

// callerFDReusePipe: a descriptor number whose reads were blocking calls on
// the caller (threads: O_DIRECT; §8.5 "Blocking transfers") is made to name
// the read end of an empty pipe (dup3). ReadAt and Do on the number must not
// become a blocking read on the caller, which could wait for ever and could
// not be canceled: with the pipe empty they honour ctx's deadline (ECANCELED
// matching the ctx error), and once data is written they return it. Every
// backend must behave alike.
func callerFDReusePipe(t *testing.T, be string) {
	const size = 1 << 20
	path := tempFileWith(t, pattern(size, 6))
	p := alignedBuf(t, callerBlock)
	for _, api := range callerAPIs[1:] { // readat, do: the raw descriptor's paths
		t.Run(api.name, func(t *testing.T) {
			// A Context of its own: the number may be the one the last
			// subtest made a pipe, whose entry would keep it off the
			// caller until a reprobe.
			c := newContext(t, be, 16)
			fd := openFD(t, path, unix.O_RDONLY|unix.O_DIRECT)
			var cb aio.IOCB
			before := c.Stats()
			for i := 0; i < 8; i++ {
				off := int64(i) * callerBlock
				if m, err := api.read(c, nil, fd, &cb, p, off); m != callerBlock || err != nil {
					t.Fatalf("read %d = %d, %v", i, m, err)
				}
			}
			if be == "threads" && c.Stats().Blocking == before.Blocking {
				t.Fatalf("threads: no O_DIRECT read of the number was a blocking call on the caller; the case tests nothing")
			}
			var pfd [2]int
			if err := unix.Pipe2(pfd[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			defer unix.Close(pfd[1])
			if err := unix.Dup3(pfd[0], fd, unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			unix.Close(pfd[0])
			q := make([]byte, 5)
			finishes(t, 10*time.Second, "a read of the empty pipe under a 50 ms deadline", func() {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				var err error
				if api.name == "do" {
					cb = aio.IOCB{Op: aio.OpRead, FD: fd, Buf: q}
					_, err = c.Do(ctx, &cb)
				} else {
					_, err = c.ReadAt(ctx, fd, q, 0)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("read of the empty pipe = %v; want the deadline", err)
				}
			})
			if _, err := unix.Write(pfd[1], []byte("hello")); err != nil {
				t.Fatal(err)
			}
			finishes(t, 10*time.Second, "a read of the pipe with data", func() {
				m, err := api.read(c, nil, fd, &cb, q, 0)
				if m != 5 || err != nil || string(q) != "hello" {
					t.Errorf("read of the pipe = %d, %v, %q; want 5 bytes \"hello\"", m, err, q)
				}
			})
		})
	}
}

// callerBlockingBound: with Options.Workers = 2, 16 goroutines read distinct
// blocks of a FUSE file whose server holds every READ, so each read stays in
// its system call until the server answers and the threads inside one can be
// counted exactly (no goroutine moves while they wait). FUSE files refuse
// RWF_NOWAIT, so on threads each read is one the pool would make with a
// blocking call: exactly 8 (4 × Workers) must be blocking calls on the
// callers (preadv2 with no flags, §8.5's bound), the rest requests of the
// backend. On
// kaio (FUSE reads are not tried on the caller: the file refuses RWF_NOWAIT)
// and uring no caller makes one. Once the server answers, every read returns
// the file's bytes.
func callerBlockingBound(t *testing.T, be string) {
	const workers, g, stride = 2, 16, 16 * callerBlock
	const bound = 4 * workers
	for _, api := range callerAPIs[:2] { // file, readat
		t.Run(api.name, func(t *testing.T) {
			srv := newFuseServer(t, pattern(fuseSize, 3), fuseOptions{asyncRead: true})
			c, err := setupRetryOpts(t, 64, aio.Options{Backend: be, Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Destroy() })
			// Not os.Open: it adds the descriptor to the runtime's poller
			// with an epoll_ctl that keeps its P while FUSE asks this
			// process's server (FUSE_POLL), and a garbage collection
			// waiting for that P then keeps the server from answering.
			ffd, err := unix.Open(srv.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := os.NewFile(uintptr(ffd), srv.path)
			t.Cleanup(func() { f.Close() })
			af := aio.NewFile(c, f)
			fd := openFD(t, srv.path, unix.O_RDONLY)
			rfd := fd
			if api.name == "file" {
				rfd = af.Fd()
			}
			if err := unix.Fadvise(rfd, 0, 0, unix.FADV_DONTNEED); err != nil {
				t.Fatal(err)
			}
			defer srv.release() // a failing check must not leave readers held
			srv.setHold(true)
			want := pattern(fuseSize, 3)
			wait := goEach(g, func(w int) error {
				var cb aio.IOCB
				p := make([]byte, callerBlock)
				off := int64(w * stride)
				n, err := api.read(c, af, fd, &cb, p, off)
				switch {
				case n != callerBlock || err != nil:
					return fmt.Errorf("read at %d = %d, %v", off, n, err)
				case string(p) != string(want[off:off+callerBlock]):
					return fmt.Errorf("read at %d: wrong bytes", off)
				}
				return nil
			})
			// Wait until the count settles: on threads, all the blocking
			// calls the bound allows are in; elsewhere, a while.
			wantBlocking := 0
			if be == "threads" {
				wantBlocking = bound
			}
			most, last := 0, 0
			deadline := time.Now().Add(5 * time.Second)
			settled := time.Now().Add(300 * time.Millisecond)
			for time.Now().Before(deadline) {
				_, _, nb := threadsInRead(rfd)
				most, last = max(most, nb), nb
				if nb == wantBlocking && time.Now().After(settled) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			st := c.Stats()
			t.Logf("%s/%s: %d threads in a blocking read on callers (most seen %d; Workers %d); Stats: Blocking %d, Requests %d",
				be, api.name, last, most, workers, st.Blocking, st.Requests)
			if most > bound {
				t.Errorf("%d callers were in a blocking read at once; 4 × Options.Workers = %d bounds them (contract §8.5)", most, bound)
			}
			if last != wantBlocking {
				t.Errorf("%d callers are in a blocking read with every READ held; want %d on %s", last, wantBlocking, be)
			}
			srv.release()
			var errs []error
			finishes(t, 10*time.Second, "the reads once the server answers", func() { errs = wait() })
			for _, err := range errs {
				t.Error(err)
			}
			if st := c.Stats(); be == "threads" && st.Blocking != bound {
				t.Errorf("Stats.Blocking = %d after the reads; want %d", st.Blocking, bound)
			}
		})
	}
}

// callerManyWriters: 16 goroutines write a file with File.WriteAt and
// WriteAt on its descriptor at once. On a file system that refuses
// RWF_NOWAIT for buffered writes (ext4), each write is a pwrite on the
// caller: a plain one while fewer than GOMAXPROCS run, past that the blocking
// call the backend would otherwise make on a worker (io-wq on uring, the pool
// on kaio and threads), up to 4 × Workers at once (§8.3c, §8.5). With 16
// writers none may become a request of the backend, on any backend; every
// byte must land.
func callerManyWriters(t *testing.T, be string) {
	const g, per, size = 16, 64, 16 << 10
	fd := tempFD(t, nil)
	probe := make([]byte, 1)
	if _, err := unix.Pwritev2(fd, [][]byte{probe}, 0, unix.RWF_NOWAIT); err != unix.EOPNOTSUPP {
		t.Skipf("the test file system takes RWF_NOWAIT buffered writes (pwritev2: %v): writes that would wait are not ext4's refusals", err)
	}
	dfd, err := unix.Dup(fd) // the File's own: os.File closes it
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(dfd), "many-writers")
	t.Cleanup(func() { f.Close() })
	c := newContext(t, be, 64)
	af := aio.NewFile(c, f)
	before := c.Stats()
	wait := goEach(g, func(w int) error {
		for i := 0; i < per; i++ {
			off := int64(w*per+i) * size
			p := pattern(size, byte(w*per+i))
			var m int
			var err error
			if w%2 == 0 {
				m, err = af.WriteAt(p, off)
			} else {
				m, err = c.WriteAt(context.Background(), fd, p, off)
			}
			if m != size || err != nil {
				return fmt.Errorf("writer %d: write at %d = %d, %v", w, off, m, err)
			}
		}
		return nil
	})
	var errs []error
	finishes(t, 60*time.Second, "16 writers", func() { errs = wait() })
	for _, err := range errs {
		t.Fatal(err)
	}
	after := c.Stats()
	t.Logf("%s: %d writes, Inline %d, Blocking %d, Requests %d", be, g*per,
		after.Inline-before.Inline, after.Blocking-before.Blocking, after.Requests-before.Requests)
	if d := after.Requests - before.Requests; d != 0 {
		t.Errorf("%d of %d buffered writes from %d goroutines became backend requests; want none (the caller makes the blocking call, §8.5)", d, g*per, g)
	}
	for i := 0; i < g*per; i++ {
		wantBytes(t, preadAll(t, fd, size, int64(i)*size), pattern(size, byte(i)), "written data")
	}
}
