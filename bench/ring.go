//go:build unix

package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// ringRes is what --fixedbufs and --registerfiles give a disk case.
type ringRes struct {
	bufs *aio.Buffers // n blocks of bs bytes, registered with the ring on uring
	file *aio.File    // the data file, registered in the fixed-file table
}

// ringResources makes them on ctx for n requests of bs bytes on fd: with
// FixedBufs, aio.Buffers (plain aligned memory on kaio and threads) holding a
// copy of region, which the caller's IOCBs then use block by block; with
// RegisterFiles, a registered aio.File over a duplicate of fd, which the
// caller's IOCBs name with SetFile. close destroys ctx first, then releases
// them.
func ringResources(cs Case, ctx *aio.Context, fd, n, bs int, region []byte) (*ringRes, error) {
	rr := &ringRes{}
	if cs.Ring.RegisterFiles {
		// dup and FD_CLOEXEC, not F_DUPFD_CLOEXEC: AIX has no such
		// constant, and the bench builds on every Unix.
		d, err := unix.Dup(fd)
		if err != nil {
			return nil, fmt.Errorf("dup of the data file: %w", err)
		}
		unix.CloseOnExec(d)
		rr.file = aio.NewFile(ctx, os.NewFile(uintptr(d), "data"))
		if err := rr.file.Register(); err != nil {
			rr.file.Close()
			return nil, fmt.Errorf("File.Register: %w", err)
		}
	}
	if cs.Ring.FixedBufs && bs > 0 {
		b, err := aio.NewBuffers(ctx, bs, n)
		if err != nil {
			rr.close(ctx)
			return nil, fmt.Errorf("aio.NewBuffers(%d, %d): %w", bs, n, err)
		}
		rr.bufs = b
		for i := 0; i < n; i++ {
			copy(b.Block(i), region[i*bs:(i+1)*bs])
		}
	}
	return rr, nil
}

// block is the buffer of request i: a block of the Buffers, or of region.
func (rr *ringRes) block(i, bs int, region []byte) []byte {
	if rr.bufs != nil {
		return rr.bufs.Block(i)
	}
	return region[i*bs : (i+1)*bs : (i+1)*bs]
}

// close destroys ctx (every request ends), then releases the Buffers and
// closes the File.
func (rr *ringRes) close(ctx *aio.Context) {
	_ = ctx.Destroy()
	if rr.bufs != nil {
		_ = rr.bufs.Release()
	}
	if rr.file != nil {
		_ = rr.file.Close()
	}
}
