//go:build linux

package uringaio_test

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("caller/cold-reads-to-pool", callerColdReadsToPool)
}

// callerColdReadsToPool (contract §8.5, "Cold reads in the pool"): with
// Options.ColdReadsToPool a buffered read that would wait is a request of
// the backend on every backend, never a blocking call on the caller
// (Stats.Blocking stays 0), through File, Context.ReadAt and Do, and every
// read returns the file's bytes. Without it, on threads and kaio the same
// reads are blocking calls on the caller (the control: the option is what
// changed it). O_DIRECT reads on threads stay blocking calls either way.
func callerColdReadsToPool(t *testing.T, be string) {
	const size, n = 4 << 20, 24
	want := pattern(size, 11)
	path, f, fd := callerFile(t, size, 11)
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, callerBlock)
	var cb aio.IOCB
	for _, pool := range []bool{false, true} {
		c, err := setupRetryOpts(t, 16, aio.Options{Backend: be, ColdReadsToPool: pool})
		if err != nil {
			t.Fatal(err)
		}
		af := aio.NewFile(c, f)
		for ai, api := range callerAPIs {
			callerEvict(t, fd)
			before := c.Stats()
			for i := 0; i < n; i++ {
				// 160 KiB apart, each in its own uncached stretch.
				off := int64(ai*n+i) * 40 * callerBlock % size
				m, err := api.read(c, af, fd, &cb, p, off)
				if m != callerBlock || err != nil {
					t.Fatalf("ColdReadsToPool=%v %s: read at %d = %d, %v", pool, api.name, off, m, err)
				}
				wantBytes(t, p, want[off:off+callerBlock], api.name)
			}
			after := c.Stats()
			blocking, reqs := after.Blocking-before.Blocking, after.Requests-before.Requests
			switch {
			case pool && blocking != 0:
				t.Errorf("ColdReadsToPool %s: %d of %d uncached reads were blocking calls on the caller; want 0", api.name, blocking, n)
			case pool && reqs == 0:
				t.Errorf("ColdReadsToPool %s: no request for %d uncached reads", api.name, n)
			case !pool && be != "uring" && blocking == 0:
				t.Errorf("default %s: none of %d uncached reads was a blocking call on the caller on %s", api.name, n, be)
			}
		}
		c.Destroy()
	}
	if be != "threads" {
		return
	}
	// O_DIRECT on threads: a blocking call on the caller even with the option.
	dfd := openFD(t, path, unix.O_RDONLY|unix.O_DIRECT)
	dp := alignedBuf(t, callerBlock)
	c, err := setupRetryOpts(t, 16, aio.Options{Backend: be, ColdReadsToPool: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	before := c.Stats()
	for i := 0; i < n; i++ {
		off := int64(i) * callerBlock
		if m, err := c.ReadAt(context.Background(), dfd, dp, off); m != callerBlock || err != nil {
			t.Fatalf("O_DIRECT read at %d = %d, %v", off, m, err)
		}
		wantBytes(t, dp, want[off:off+callerBlock], "O_DIRECT")
	}
	if d := c.Stats().Blocking - before.Blocking; d != n {
		t.Errorf("ColdReadsToPool: %d of %d O_DIRECT reads were blocking calls on the caller; want all", d, n)
	}
}
