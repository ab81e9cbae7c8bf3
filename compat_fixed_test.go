//go:build linux

package uringaio_test

// Contract §12.2 (registered files) and §12.3 (Buffers): the same results on
// every backend, whether the ring uses its tables or not; no registration
// outlives File.Close, a closed descriptor or Destroy; no request reaches a
// descriptor number reused by another file.
//
// The honest observable of "no registration left" is the kernel's file
// itself: a pipe's reader sees EOF only once every reference to the write
// end's file is gone, and a fixed-file entry is such a reference.

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("fixed/file-read-write", fixedFileReadWrite)
	registerCompat("fixed/file-close-number-reuse", fixedFileCloseReuse)
	registerCompat("fixed/file-close-releases", fixedFileCloseReleases)
	registerCompat("fixed/file-closed-directly-releases", fixedFileClosedDirectly)
	registerCompat("fixed/destroy-releases", fixedDestroyReleases)
	registerCompat("fixed/table-full", fixedTableFull)
	registerCompat("buffers/read-write", buffersReadWrite)
	registerCompat("buffers/release", buffersRelease)
	registerCompat("buffers/args", buffersArgs)
}

// directFile makes a file of data and opens it O_RDWR|O_DIRECT.
func directFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	path := tempFileWith(t, data)
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		t.Skipf("O_DIRECT open of %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readBack reads n bytes at off through af, O_DIRECT-aligned.
func readBack(t *testing.T, af *aio.File, n int, off int64) []byte {
	t.Helper()
	buf := alignedBuf(t, n)
	if m, err := af.ReadAt(buf, off); m != n || err != nil {
		t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, m, err)
	}
	return append([]byte(nil), buf...)
}

// wantFixed checks the growth of Stats.FixedFiles: want on uring, 0 elsewhere.
func wantFixed(t *testing.T, be string, before, after aio.Stats, want uint64, what string) {
	t.Helper()
	got := after.FixedFiles - before.FixedFiles
	if be != "uring" {
		want = 0
	}
	if got != want {
		t.Errorf("%s: Stats.FixedFiles grew by %d, want %d on %s", what, got, want, be)
	}
}

func fixedFileReadWrite(t *testing.T, be string) {
	c := setupOpts(t, 32, aio.Options{Backend: be})
	f := directFile(t, make([]byte, 16*directAlign))
	af := aio.NewFile(c, f)
	if err := af.Register(); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if err := af.Register(); err != nil {
		t.Fatalf("Register again: %v", err)
	}
	before := c.Stats()
	for i := 0; i < 16; i++ {
		buf := alignedBuf(t, directAlign)
		copy(buf, pattern(directAlign, byte(i)))
		if n, err := af.WriteAt(buf, int64(i)*directAlign); n != directAlign || err != nil {
			t.Fatalf("WriteAt #%d = %d, %v", i, n, err)
		}
	}
	for i := 0; i < 16; i++ {
		wantBytes(t, readBack(t, af, directAlign, int64(i)*directAlign), pattern(directAlign, byte(i)), "read back")
		wantBytes(t, preadAll(t, rawFD(t, f), directAlign, int64(i)*directAlign), pattern(directAlign, byte(i)), "pread")
	}
	wantFixed(t, be, before, c.Stats(), 32, "16 writes and 16 reads of a registered File")
	if err := af.Close(); err != nil {
		t.Fatalf("File.Close: %v", err)
	}
}

// fixedFileCloseReuse: after File.Close, the File's calls fail with
// os.ErrClosed; a new file given the same descriptor number is read as
// itself, through a File of its own, registered or not.
func fixedFileCloseReuse(t *testing.T, be string) {
	c := setupOpts(t, 32, aio.Options{Backend: be, Lanes: 2})
	f1 := directFile(t, pattern(4*directAlign, 1))
	a1 := aio.NewFile(c, f1)
	if err := a1.Register(); err != nil {
		t.Fatalf("Register: %v", err)
	}
	wantBytes(t, readBack(t, a1, directAlign, 0), pattern(4*directAlign, 1)[:directAlign], "first file")
	num := rawFD(t, f1)
	if err := a1.Close(); err != nil {
		t.Fatalf("File.Close: %v", err)
	}
	if _, err := a1.ReadAt(alignedBuf(t, directAlign), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v, want os.ErrClosed", err)
	}
	// The number is the lowest free one: the next open takes it.
	f2 := directFile(t, pattern(4*directAlign, 2))
	if got := rawFD(t, f2); got != num {
		t.Skipf("the descriptor number was not reused (%d, then %d)", num, got)
	}
	if _, err := a1.WriteAt(alignedBuf(t, directAlign), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WriteAt after Close, number reused: %v, want os.ErrClosed", err)
	}
	a2 := aio.NewFile(c, f2)
	for _, register := range []bool{false, true} {
		if register {
			if err := a2.Register(); err != nil {
				t.Fatalf("Register of the second file: %v", err)
			}
		}
		for i := 0; i < 8; i++ {
			wantBytes(t, readBack(t, a2, directAlign, directAlign), pattern(4*directAlign, 2)[directAlign:2*directAlign], "second file on the reused number")
		}
	}
	// The raw number through the Context reads the second file too.
	buf := alignedBuf(t, directAlign)
	if n, err := c.ReadAt(context.Background(), num, buf, 0); n != directAlign || err != nil {
		t.Fatalf("Context.ReadAt(reused number) = %d, %v", n, err)
	}
	wantBytes(t, buf, pattern(4*directAlign, 2)[:directAlign], "Context.ReadAt on the reused number")
	if err := a2.Close(); err != nil {
		t.Fatalf("File.Close: %v", err)
	}
}

// registeredPipe returns a pipe whose write end is a registered File that
// has written "hi" through c.
func registeredPipe(t *testing.T, c *aio.Context) (r *os.File, w *os.File, aw *aio.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	aw = aio.NewFile(c, w)
	if err := aw.Register(); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if n, err := aw.WriteAt([]byte("hi"), 0); n != 2 || err != nil {
		t.Fatalf("WriteAt(pipe) = %d, %v", n, err)
	}
	return r, w, aw
}

// wantEOF reads r to its end: "hi", then EOF, which comes only when no
// reference to the write end's file is left.
func wantEOF(t *testing.T, r *os.File, what string) {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: reading the pipe: %v after %q: the write end's file is still open (a registration left behind)", what, err, got)
	}
	if string(got) != "hi" {
		t.Fatalf("%s: read %q, want \"hi\"", what, got)
	}
}

func fixedFileCloseReleases(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be})
	r, _, aw := registeredPipe(t, c)
	if err := aw.Close(); err != nil {
		t.Fatalf("File.Close: %v", err)
	}
	wantEOF(t, r, "after File.Close")
}

// fixedFileClosedDirectly: the *os.File closed without File.Close; the
// File's next call fails with os.ErrClosed and drops the registration.
func fixedFileClosedDirectly(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be})
	r, w, aw := registeredPipe(t, c)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := aw.WriteAt([]byte("x"), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WriteAt after the *os.File closed: %v, want os.ErrClosed", err)
	}
	wantEOF(t, r, "after the *os.File closed and the File's next call")
}

func fixedDestroyReleases(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be, Lanes: 2})
	r, w, aw := registeredPipe(t, c)
	if err := c.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantEOF(t, r, "after Destroy and closing the *os.File")
	if err := aw.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("File.Close after the *os.File closed: %v, want os.ErrClosed", err)
	}
	if err := aio.NewFile(c, r).Register(); err == nil {
		t.Fatalf("Register on a destroyed Context succeeded")
	}
}

// fixedTableFull: a table of one entry; the second File falls back to its
// descriptor with the same results, and takes the entry once the first
// File is closed.
func fixedTableFull(t *testing.T, be string) {
	c := setupOpts(t, 32, aio.Options{Backend: be, Lanes: 1, FixedFiles: 1})
	fs := make([]*aio.File, 3)
	for i := range fs {
		fs[i] = aio.NewFile(c, directFile(t, pattern(2*directAlign, byte(10+i))))
	}
	for _, af := range fs[:2] {
		if err := af.Register(); err != nil {
			t.Fatalf("Register: %v", err)
		}
	}
	check := func(af *aio.File, seed int, wantFixedN uint64, what string) {
		t.Helper()
		before := c.Stats()
		for k := 0; k < 4; k++ {
			wantBytes(t, readBack(t, af, directAlign, directAlign), pattern(2*directAlign, byte(seed))[directAlign:], what)
		}
		wantFixed(t, be, before, c.Stats(), wantFixedN, what)
	}
	check(fs[0], 10, 4, "the File with the entry")
	check(fs[1], 11, 0, "the File the full table left out")
	if err := fs[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs[2].Register(); err != nil {
		t.Fatalf("Register: %v", err)
	}
	check(fs[2], 12, 4, "a File registered after the entry was freed")
	check(fs[1], 11, 0, "the File still unregistered")
}

// ---- Buffers ----

func buffersReadWrite(t *testing.T, be string) {
	c := setupOpts(t, 32, aio.Options{Backend: be, Lanes: 2})
	const blocks = 8
	bufs, err := aio.NewBuffers(c, directAlign, 2*blocks)
	if err != nil {
		t.Fatalf("NewBuffers: %v", err)
	}
	defer func() {
		if err := bufs.Release(); err != nil {
			t.Errorf("Release: %v", err)
		}
	}()
	if got := bufs.Registered(); (be == "uring") != (got > 0) {
		t.Errorf("Registered() = %d on %s", got, be)
	}
	f := directFile(t, make([]byte, blocks*directAlign))
	fd := rawFD(t, f)
	before := c.Stats()
	// Submit: writes from blocks 0..7.
	var cbs []*aio.IOCB
	for i := 0; i < blocks; i++ {
		b := bufs.Block(i)
		if len(b) != directAlign || cap(b) != directAlign || addrMod(b, directAlign) != 0 {
			t.Fatalf("Block(%d): len %d cap %d, not aligned", i, len(b), cap(b))
		}
		copy(b, pattern(directAlign, byte(30+i)))
		cbs = append(cbs, &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: b, Offset: int64(i) * directAlign})
	}
	submitWithin(t, c, 10*time.Second, cbs...)
	for _, ev := range reapNWithin(t, c, blocks, 10*time.Second) {
		wantEvent(t, ev, ev.IOCB, directAlign, "write from Buffers")
	}
	// Do, Context.ReadAt and File.ReadAt into blocks 8..15, half a block
	// too (a Buf inside a block).
	af := aio.NewFile(c, f)
	for i := 0; i < blocks; i++ {
		b := bufs.Block(blocks + i)
		clear(b)
		switch i % 3 {
		case 0:
			if ev, err := c.Do(context.Background(), &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: b, Offset: int64(i) * directAlign}); err != nil || ev.Res != directAlign {
				t.Fatalf("Do read #%d: %v, %v", i, ev.Res, err)
			}
		case 1:
			if n, err := c.ReadAt(context.Background(), fd, b, int64(i)*directAlign); n != directAlign || err != nil {
				t.Fatalf("ReadAt #%d = %d, %v", i, n, err)
			}
		case 2:
			if n, err := af.ReadAt(b[:directAlign/2], int64(i)*directAlign); n != directAlign/2 || err != nil {
				t.Fatalf("File.ReadAt #%d = %d, %v", i, n, err)
			}
			b = b[:directAlign/2]
		}
		wantBytes(t, b, pattern(directAlign, byte(30+i))[:len(b)], "read into Buffers")
		wantBytes(t, preadAll(t, fd, len(b), int64(i)*directAlign), b, "plain pread of the same range")
	}
	after := c.Stats()
	fixed := after.FixedBufs - before.FixedBufs
	if be == "uring" && fixed != 2*blocks {
		t.Errorf("Stats.FixedBufs grew by %d, want %d: every request on Buffers memory goes READ_FIXED/WRITE_FIXED", fixed, 2*blocks)
	}
	if be != "uring" && fixed != 0 {
		t.Errorf("Stats.FixedBufs grew by %d on %s, want 0", fixed, be)
	}
}

// buffersRelease: Release refuses while a request on the memory is
// outstanding, then works once; after it a request on a stale block ends
// with EFAULT on every backend, and Block panics.
func buffersRelease(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be})
	bufs, err := aio.NewBuffers(c, directAlign, 2)
	if err != nil {
		t.Fatalf("NewBuffers: %v", err)
	}
	r, _ := newPipe(t, 0)
	stale := bufs.Block(1)
	rd := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: stale[:1]}
	mustSubmit(t, c, rd)
	wantCallError(t, bufs.Release(), "Release", unix.EBUSY, "Release with a read into it outstanding")
	cancelIt(t, c, rd)
	if err := bufs.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantCallError(t, bufs.Release(), "Release", unix.EINVAL, "second Release")
	fd := tempFD(t, pattern(directAlign, 5))
	cb := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: stale}
	mustSubmit(t, c, cb)
	ev := reapOne(t, c, cb)
	if !errors.Is(ev.Err(), syscall.EFAULT) {
		t.Fatalf("read into a released block: %s, want EFAULT", fmtEvent(ev))
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("Block after Release did not panic")
			}
		}()
		bufs.Block(0)
	}()
}

func buffersArgs(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be})
	for _, a := range [][2]int{{0, 1}, {100, 1}, {4096, 0}, {-512, 1}, {1 << 20, 2048}} {
		_, err := aio.NewBuffers(c, a[0], a[1])
		wantCallError(t, err, "NewBuffers", unix.EINVAL, "NewBuffers bad arguments")
	}
	b, err := aio.NewBuffers(nil, 512, 3)
	if err != nil {
		t.Fatalf("NewBuffers(nil Context): %v", err)
	}
	if b.Registered() != 0 || b.BlockSize() != 512 || b.Count() != 3 {
		t.Errorf("NewBuffers(nil, 512, 3): Registered %d BlockSize %d Count %d", b.Registered(), b.BlockSize(), b.Count())
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	_, err = aio.NewBuffers(c, 512, 1)
	wantCallError(t, err, "NewBuffers", unix.EINVAL, "NewBuffers on a destroyed Context")
}

func addrMod(b []byte, n int) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % uintptr(n))
}

func init() {
	registerCompat("fixed/setfile-submit", fixedSetFileSubmit)
	registerCompat("fixed/close-waits-for-requests", fixedCloseWaits)
}

// fixedSetFileSubmit: IOCBs on a registered File through Submit and Do.
func fixedSetFileSubmit(t *testing.T, be string) {
	c := setupOpts(t, 32, aio.Options{Backend: be})
	f := directFile(t, make([]byte, 8*directAlign))
	af := aio.NewFile(c, f)
	if err := af.Register(); err != nil {
		t.Fatal(err)
	}
	before := c.Stats()
	cbs := make([]*aio.IOCB, 8)
	for i := range cbs {
		buf := alignedBuf(t, directAlign)
		copy(buf, pattern(directAlign, byte(50+i)))
		cbs[i] = &aio.IOCB{Op: aio.OpWrite, Buf: buf, Offset: int64(i) * directAlign}
		cbs[i].SetFile(af)
		if cbs[i].FD != rawFD(t, f) {
			t.Fatalf("SetFile left FD %d, want %d", cbs[i].FD, rawFD(t, f))
		}
	}
	submitWithin(t, c, 10*time.Second, cbs...)
	for _, ev := range reapNWithin(t, c, len(cbs), 10*time.Second) {
		wantEvent(t, ev, ev.IOCB, directAlign, "write on a SetFile IOCB")
	}
	for i := range cbs {
		rd := &aio.IOCB{Op: aio.OpRead, Buf: alignedBuf(t, directAlign), Offset: int64(i) * directAlign}
		rd.SetFile(af)
		if ev, err := c.Do(context.Background(), rd); err != nil || ev.Res != directAlign {
			t.Fatalf("Do read: %d, %v", ev.Res, err)
		}
		wantBytes(t, rd.Buf, pattern(directAlign, byte(50+i)), "read back")
	}
	wantFixed(t, be, before, c.Stats(), 16, "8 Submit writes and 8 Do reads on a registered File")
	bad := &aio.IOCB{Op: aio.OpRead, Buf: alignedBuf(t, directAlign)}
	bad.SetFile(af)
	bad.FD++
	_, err := c.Submit(bad)
	wantCallError(t, err, "Submit", unix.EINVAL, "Submit of a SetFile IOCB whose FD was changed")
	bad.SetFile(nil)
	if err := af.Close(); err != nil {
		t.Fatal(err)
	}
}

// fixedCloseWaits: File.Close of a registered File waits for a request on
// it (its entry on uring), on every backend, and returns once it ends
// (canceled here).
func fixedCloseWaits(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ar := aio.NewFile(c, r)
	if err := ar.Register(); err != nil {
		t.Fatal(err)
	}
	rd := &aio.IOCB{Op: aio.OpRead, Buf: make([]byte, 4)}
	rd.SetFile(ar)
	mustSubmit(t, c, rd)
	closed := make(chan error, 1)
	go func() { closed <- ar.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("File.Close returned (%v) while a request on the File was outstanding", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancelIt(t, c, rd)
	finishes(t, 10*time.Second, "File.Close after the request ended", func() {
		if err := <-closed; err != nil {
			t.Errorf("File.Close: %v", err)
		}
	})
}

func init() {
	registerCompat("fixed/setfile-closed-refused", fixedSetFileClosed)
}

// fixedSetFileClosed: an IOCB whose File was closed is refused (EBADF), on
// every backend, registered or not; even once the number names another file.
func fixedSetFileClosed(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be})
	for _, register := range []bool{false, true} {
		f := directFile(t, pattern(directAlign, 1))
		af := aio.NewFile(c, f)
		if register {
			if err := af.Register(); err != nil {
				t.Fatal(err)
			}
		}
		cb := &aio.IOCB{Op: aio.OpRead, Buf: alignedBuf(t, directAlign)}
		cb.SetFile(af)
		num := cb.FD
		if err := f.Close(); err != nil { // directly, not File.Close
			t.Fatal(err)
		}
		other := directFile(t, pattern(directAlign, 2))
		if rawFD(t, other) != num {
			t.Logf("number %d not reused (%d)", num, rawFD(t, other))
		}
		_, err := c.Submit(cb)
		wantCallError(t, err, "Submit", unix.EBADF, "Submit of a SetFile IOCB whose File was closed")
		_, err = c.Do(context.Background(), cb)
		wantCallError(t, err, "Do", unix.EBADF, "Do of a SetFile IOCB whose File was closed")
		other.Close()
	}
}

func init() {
	registerCompat("fixed/file-finalizer-releases", fixedFinalizerReleases)
}

// fixedFinalizerReleases: a registered File dropped without Close, its
// *os.File closed directly: once the garbage collector finds the File, its
// finalizer empties the entry and the pipe's reader sees EOF.
func fixedFinalizerReleases(t *testing.T, be string) {
	c := setupOpts(t, 8, aio.Options{Backend: be})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	func() {
		aw := aio.NewFile(c, w)
		if err := aw.Register(); err != nil {
			t.Fatal(err)
		}
		if n, err := aw.WriteAt([]byte("hi"), 0); n != 2 || err != nil {
			t.Fatalf("WriteAt(pipe) = %d, %v", n, err)
		}
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 8)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		_ = r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			if string(got) != "hi" {
				t.Fatalf("read %q, want \"hi\"", got)
			}
			return
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	t.Fatalf("no EOF within 10s of GCs after %q: the dropped File's entry still holds the write end", got)
}
