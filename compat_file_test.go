//go:build linux

package uringaio_test

// Contract §8.5: File's writes to a buffered file cost what pwrite(2) costs.
// Where the filesystem refuses RWF_NOWAIT for buffered writes (ext4 answers
// EOPNOTSUPP to every one), File remembers it and writes on the caller's
// goroutine with pwrite; no request reaches the backend, whichever it is.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("file/buffered-write-no-submit", fileBufferedWriteNoSubmit)
	registerCompat("file/buffered-write-parallel", fileBufferedWriteParallel)
	registerCompat("file/buffered-write-canceled-ctx", fileBufferedWriteCanceledCtx)
}

func fileBufferedWriteNoSubmit(t *testing.T, be string) {
	c, f, _, af := newWriteFile(t, be, 8)
	const n, size = 64, 4096
	before := c.Stats()
	for i := 0; i < n; i++ {
		if m, err := af.WriteAt(pattern(size, byte(i)), int64(i)*size); m != size || err != nil {
			t.Fatalf("WriteAt #%d = %d, %v", i, m, err)
		}
	}
	after := c.Stats()
	if d := after.Requests - before.Requests; d != 0 {
		t.Errorf("%d buffered writes made %d backend requests (%d submits); want 0: each should be one pwritev2/pwrite on the caller",
			n, d, after.Submits-before.Submits)
	}
	if d := after.Inline - before.Inline; d != n {
		t.Errorf("Stats().Inline grew by %d; want %d", d, n)
	}
	for i := 0; i < n; i++ {
		wantBytes(t, preadAll(t, rawFD(t, f), size, int64(i)*size), pattern(size, byte(i)), "written data")
	}
}

// fileBufferedWriteParallel: more goroutines than the caller-side writes
// allowed at once — GOMAXPROCS plain writes plus 4 × Workers blocking ones
// (§8.3c, §8.5), with Workers 1 here so that 32 writers can overflow — so
// the rest go through the backend, 4 slots of it, and nothing is lost.
// (caller/many-writers-no-request checks the other side: within the bounds,
// no write becomes a request.)
func fileBufferedWriteParallel(t *testing.T, be string) {
	_, _, path, af := newWriteFileOpts(t, 4, aio.Options{Backend: be, Workers: 1})
	const g, per, size = 32, 20, 8192
	errs := goEach(g, func(w int) error {
		for i := 0; i < per; i++ {
			off := int64(w*per+i) * size
			if m, err := af.WriteAt(pattern(size, byte(w*per+i)), off); m != size || err != nil {
				return fmt.Errorf("write at %d = %d, %v", off, m, err)
			}
		}
		return nil
	})()
	for _, err := range errs {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < g*per; k++ {
		if !bytes.Equal(got[k*size:(k+1)*size], pattern(size, byte(k))) {
			t.Fatalf("block %d has the wrong data", k)
		}
	}
}

// fileBufferedWriteCanceledCtx: a write whose context has ended moves nothing,
// on the caller-side path too.
func fileBufferedWriteCanceledCtx(t *testing.T, be string) {
	_, f, _, af := newWriteFile(t, be, 4)
	if _, err := af.WriteAt([]byte("x"), 0); err != nil { // learn the file
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := af.WriteAtContext(ctx, []byte("yyyy"), 100)
	if n != 0 || !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.ECANCELED) {
		t.Fatalf("WriteAtContext(canceled) = %d, %v; want 0, context.Canceled and ECANCELED", n, err)
	}
	if st, _ := f.Stat(); st.Size() != 1 {
		t.Fatalf("size %d after a canceled write; want 1", st.Size())
	}
}

// newWriteFile is an empty buffered file opened read-write, and a File over
// it on a new Context of maxEvents for be; both go at the end of the test.
func newWriteFile(t *testing.T, be string, maxEvents int) (*aio.Context, *os.File, string, *aio.File) {
	return newWriteFileOpts(t, maxEvents, aio.Options{Backend: be})
}

// newWriteFileOpts is newWriteFile with Options.
func newWriteFileOpts(t *testing.T, maxEvents int, opts aio.Options) (*aio.Context, *os.File, string, *aio.File) {
	c, err := aio.SetupWithOptions(maxEvents, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Destroy() })
	path := tempFileWith(t, nil)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return c, f, path, aio.NewFile(c, f)
}
