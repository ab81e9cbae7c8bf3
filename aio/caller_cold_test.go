//go:build linux

package aio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestColdFileSkipsTries (§8.5, "Cold and hot"): on threads and kaio, once a
// read's RWF_NOWAIT try found its data uncached, the file's next reads skip
// the try, all but one in sampleEvery at random: there a read that would
// wait is a blocking call on the caller, which reads cached data too, at the
// try's cost. A sampled try that finds the data cached makes the file's
// reads try again, and it turns hot as before. uring tries every read. Every
// read returns the file's bytes.
//
// The file is ext4 (the temp directory's), its pages dropped and readahead
// off (POSIX_FADV_RANDOM), and the reads are 256 KiB apart, so each one is
// uncached. Before the rule every one of the 64 cold reads tried.
func TestColdFileSkipsTries(t *testing.T) {
	eachBackend(t, func(t *testing.T, be string, c *Context) {
		const reads, stride, bs = 64, 256 << 10, 4096
		data := make([]byte, reads*stride)
		for i := range data {
			data[i] = byte(i*7 + i>>12)
		}
		name := filepath.Join(t.TempDir(), "cold")
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Fsync(fd); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
			t.Fatal(err)
		}

		var tries atomic.Int64
		orig := tryRead
		tryRead = func(fd int, p []byte, off int64) (int, syscall.Errno) {
			tries.Add(1)
			return orig(fd, p, off)
		}
		defer func() { tryRead = orig }()

		buf := make([]byte, bs)
		read := func(off int64) {
			t.Helper()
			n, err := c.ReadAt(context.Background(), fd, buf, off)
			if n != bs || err != nil {
				t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
			}
			if string(buf) != string(data[off:off+bs]) {
				t.Fatalf("ReadAt(%d): wrong bytes", off)
			}
		}
		for i := 0; i < reads; i++ {
			read(int64(i) * stride)
		}
		// The first read tries (the file is new); then about one in
		// sampleEvery. 24 leaves a wide margin over the 1+63/16 expected,
		// and far below the 64 of a try per read. uring tries every
		// read: a request for a page that is cached after all costs
		// more than the try.
		switch n := tries.Load(); {
		case be == "uring" && n != reads:
			t.Fatalf("uring: %d RWF_NOWAIT tries for %d reads of uncached data, want one each", n, reads)
		case be != "uring" && n > 24:
			t.Fatalf("%d RWF_NOWAIT tries for %d reads of uncached data, want about %d", n, reads, 1+reads/sampleEvery)
		}
		h := c.cs.fds.get(fd)
		if s := h.Load(); s&hMissing == 0 {
			t.Fatalf("heat word %#x after uncached reads: not marked missing", s)
		}

		// Now cached: a sampled try finds it so, and the file turns hot.
		for i := 0; i < reads; i++ {
			read(int64(i) * stride)
		}
		for i := 0; i < 2000 && h.Load()&hHot == 0; i++ {
			read(int64(i%reads) * stride)
		}
		if s := h.Load(); s&hHot == 0 || s&hMissing != 0 {
			t.Fatalf("heat word %#x after 2000 cached reads: want hot and not missing", s)
		}
	})
}

// eachBackend runs f on a Context of 64 slots on each backend, in a subtest
// named after it; a backend that cannot start here is skipped with the
// reason.
func eachBackend(t *testing.T, f func(t *testing.T, be string, c *Context)) {
	for _, be := range []string{"uring", "kaio", "threads"} {
		t.Run(be, func(t *testing.T) {
			c, err := SetupWithOptions(64, Options{Backend: be})
			if errors.Is(err, ErrNotSupported) || errors.Is(err, syscall.EAGAIN) {
				t.Skipf("%s cannot start here: %v", be, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Destroy()
			f(t, be, c)
		})
	}
}
