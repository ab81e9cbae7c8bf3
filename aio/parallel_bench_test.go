//go:build linux

package aio_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uringaio/uringaio/aio"
)

// The path storage engines take: many goroutines, each one blocking ReadAt at
// a time. Every sub-benchmark of one size runs in the same process, one after
// the other, with os.File.ReadAt (one pread(2) per call) as the baseline:
// read the ratios, not the absolute figures, and interleave runs (-count 6,
// benchstat) on a noisy machine.
//
//	go test -run '^$' -bench Parallel -benchmem ./aio
//
// g is the number of goroutines (SetParallelism × GOMAXPROCS). allocs/op
// must be 0 for every library row.
func BenchmarkParallelReadAt(b *testing.B) {
	f := benchFile(b)
	const size = 64 << 20
	warmUp(b, f, size)
	for _, par := range []int{1, 16, 128} {
		g := par * runtime.GOMAXPROCS(0)
		b.Run(fmt.Sprintf("g=%d/os", g), func(b *testing.B) {
			runParallelReads(b, par, size, func(p []byte, off int64) error {
				_, err := f.ReadAt(p, off)
				return err
			})
		})
		for _, be := range []string{"uring", "kaio", "threads"} {
			c, err := aio.SetupWithOptions(256, aio.Options{Backend: be})
			if err != nil {
				b.Logf("%s cannot start here: %v", be, err)
				continue
			}
			af := aio.NewFile(c, f)
			b.Run(fmt.Sprintf("g=%d/file/%s", g, be), func(b *testing.B) {
				runParallelReads(b, par, size, func(p []byte, off int64) error {
					_, err := af.ReadAt(p, off)
					return err
				})
			})
			fd := af.Fd()
			b.Run(fmt.Sprintf("g=%d/fd/%s", g, be), func(b *testing.B) {
				runParallelReads(b, par, size, func(p []byte, off int64) error {
					_, err := c.ReadAt(context.Background(), fd, p, off)
					return err
				})
			})
			b.Run(fmt.Sprintf("g=%d/do/%s", g, be), func(b *testing.B) {
				runParallelReads(b, par, size, doRead(c, fd))
			})
			c.Destroy()
		}
	}
}

// doRead reads with Do and an IOCB per goroutine: cbs hands each goroutine
// one (0 allocations per call once every goroutine has its own).
func doRead(c *aio.Context, fd int) func(p []byte, off int64) error {
	cbs := sync.Pool{New: func() any { return new(aio.IOCB) }}
	return func(p []byte, off int64) error {
		cb := cbs.Get().(*aio.IOCB)
		defer cbs.Put(cb)
		cb.Op, cb.FD, cb.Buf, cb.Offset = aio.OpRead, fd, p, off
		ev, err := c.Do(context.Background(), cb)
		cb.Buf = nil
		if err == nil && ev.Res != int64(len(p)) {
			err = fmt.Errorf("Do read %d of %d bytes", ev.Res, len(p))
		}
		return err
	}
}

// BenchmarkParallelWriteAt: buffered 4 KiB overwrites of a 64 MiB file from 8
// goroutines (the case), os.File.WriteAt beside File.WriteAt and
// Context.WriteAt on the descriptor. On ext4 every one is a pwrite on the
// caller (contract §8.3c, §8.5).
//
//	go test -run '^$' -bench ParallelWriteAt -benchmem ./aio
func BenchmarkParallelWriteAt(b *testing.B) {
	f := benchFile(b)
	const size = 64 << 20
	write := func(b *testing.B, w func(p []byte, off int64) (int, error)) {
		b.ReportAllocs()
		b.SetBytes(4096)
		b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 4096)
			x := seed.Add(0x9e3779b97f4a7c15) | 1
			for pb.Next() {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				if _, err := w(buf, int64(x%uint64(size/4096))*4096); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("os", func(b *testing.B) { write(b, f.WriteAt) })
	for _, be := range []string{"uring", "kaio", "threads"} {
		c, err := aio.SetupWithOptions(256, aio.Options{Backend: be})
		if err != nil {
			b.Logf("%s cannot start here: %v", be, err)
			continue
		}
		af := aio.NewFile(c, f)
		fd := af.Fd()
		b.Run("file/"+be, func(b *testing.B) { write(b, af.WriteAt) })
		b.Run("fd/"+be, func(b *testing.B) {
			write(b, func(p []byte, off int64) (int, error) { return c.WriteAt(context.Background(), fd, p, off) })
		})
		c.Destroy()
	}
}

// runParallelReads runs read on 4 KiB at random aligned offsets below size
// from par×GOMAXPROCS goroutines, each with its own buffer and generator.
func runParallelReads(b *testing.B, par int, size int64, read func(p []byte, off int64) error) {
	b.ReportAllocs()
	b.SetBytes(4096)
	b.SetParallelism(par)
	var seed atomic.Uint64
	var failed atomic.Value
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		x := seed.Add(0x9e3779b97f4a7c15) | 1
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			off := int64(x%uint64(size/4096)) * 4096
			if err := read(buf, off); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkParallelLanes: ReadAt from many goroutines with every read a
// request of the backend (NoInline, page-cache data: the fastest completions,
// so the most lock traffic per second), on 1, 2 and 4 lanes. Run one lane
// count at a time with -mutexprofile to see the contention per request:
//
//	go test -run '^$' -bench 'ParallelLanes/lanes=1/uring' -mutexprofile m1.out ./aio
func BenchmarkParallelLanes(b *testing.B) {
	f := benchFile(b)
	const size = 64 << 20
	warmUp(b, f, size)
	for _, lanes := range []int{1, 2, 4} {
		for _, be := range []string{"uring", "kaio"} {
			c, err := aio.SetupWithOptions(256, aio.Options{Backend: be, Lanes: lanes, NoInline: true})
			if err != nil {
				b.Logf("%s cannot start here: %v", be, err)
				continue
			}
			fd := int(f.Fd())
			b.Run(fmt.Sprintf("lanes=%d/%s", lanes, be), func(b *testing.B) {
				runParallelReads(b, 16, size, func(p []byte, off int64) error {
					_, err := c.ReadAt(context.Background(), fd, p, off)
					return err
				})
			})
			c.Destroy()
		}
	}
}

// warmUp reads the first size bytes of f once, so that they are in the page
// cache.
func warmUp(b *testing.B, f *os.File, size int64) {
	warm := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(warm)) {
		if _, err := f.ReadAt(warm, off); err != nil {
			b.Fatal(err)
		}
	}
}
