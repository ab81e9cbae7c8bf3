//go:build linux

package aio_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// The engine's own costs, per backend, read as ratios within one run (and
// against the C loops in ../bench/c, which measure the same
// mechanisms without the library). Run with:
//
//	go test -run '^$' -bench . -benchmem ./aio
//
// Each op is one request: Submit in batches of qd, then GetEvents(qd) — the
// shape of the batch loops of ../bench/c (a batch of B requests submitted,
// then all B reaped). allocs/op must be 0.

func benchBackends(b *testing.B, fn func(b *testing.B, backend string)) {
	for _, be := range []string{"uring", "kaio"} {
		b.Run("backend="+be, func(b *testing.B) {
			c, err := aio.SetupWithOptions(1, aio.Options{Backend: be})
			if err != nil {
				if errors.Is(err, aio.ErrNotSupported) {
					b.Skipf("%s cannot start here: %v", be, err)
				}
				b.Fatal(err)
			}
			c.Destroy()
			fn(b, be)
		})
	}
}

// benchFile is a 64 MiB file, read once so that it sits in the page cache.
func benchFile(b *testing.B) *os.File {
	b.Helper()
	f, err := os.CreateTemp("", "uringaio-bench-*")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for i := 0; i < 64; i++ {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

func BenchmarkSubmitGetEvents(b *testing.B) {
	benchBackends(b, func(b *testing.B, be string) {
		for _, op := range []string{"read-4k-cached", "poll-eventfd", "nop"} {
			for _, qd := range []int{1, 32, 128} {
				b.Run(fmt.Sprintf("op=%s/qd=%d", op, qd), func(b *testing.B) {
					benchLoop(b, be, op, qd)
				})
			}
		}
	})
}

func benchLoop(b *testing.B, be, op string, qd int) {
	c, err := aio.SetupWithOptions(qd, aio.Options{Backend: be})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Destroy()
	cbs := make([]*aio.IOCB, qd)
	bufs := make([][]byte, qd)
	var fd int
	const fileBlocks = 64 << 20 / 4096
	switch op {
	case "read-4k-cached":
		f := benchFile(b)
		fd = int(f.Fd())
		buf := make([]byte, 64<<20)
		if _, err := f.ReadAt(buf, 0); err != nil {
			b.Fatal(err)
		}
	case "poll-eventfd":
		efd, err := unix.Eventfd(1, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(efd)
		fd = efd
	}
	for i := range cbs {
		cb := &aio.IOCB{FD: fd}
		switch op {
		case "read-4k-cached":
			bufs[i] = make([]byte, 4096)
			cb.Op, cb.Buf = aio.OpRead, bufs[i]
		case "poll-eventfd":
			cb.Op, cb.PollEvents = aio.OpPoll, unix.POLLIN
		default:
			cb.Op = aio.OpNop
		}
		cbs[i] = cb
	}
	evs := make([]aio.Event, qd)
	rnd := uint64(0x9E3779B97F4A7C15)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += qd {
		if op == "read-4k-cached" {
			for _, cb := range cbs {
				rnd ^= rnd << 13
				rnd ^= rnd >> 7
				rnd ^= rnd << 17
				cb.Offset = int64(rnd%fileBlocks) * 4096
			}
		}
		if n, err := c.Submit(cbs...); n != qd {
			b.Fatalf("Submit = %d, %v", n, err)
		}
		for got := 0; got < qd; {
			n, err := c.GetEvents(qd-got, evs[:qd-got], nil)
			if err != nil {
				b.Fatal(err)
			}
			for _, ev := range evs[:n] {
				if ev.Res < 0 {
					b.Fatalf("event %+v", ev)
				}
			}
			got += n
		}
	}
}

// BenchmarkCancel is the cost of canceling one pending poll on an empty pipe,
// from Cancel's call to its return (the canceled request's completion reaped),
// as cancel_lat.c measures it in C.
//
// n is how many polls are pending when the first Cancel of a round runs; the
// round then cancels them one by one, so with -benchtime=Kx (K <= n) every
// Cancel timed sees between n and n-K pending. A mechanism whose cancel scans
// the waiting set shows here as a p50 that grows with n.
func BenchmarkCancel(b *testing.B) {
	for _, be := range []string{"uring", "kaio", "threads"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("backend=%s/pending=%d", be, n), func(b *testing.B) {
				benchCancel(b, be, n)
			})
		}
	}
}

func benchCancel(b *testing.B, be string, n int) {
	c, p, done := benchContextPipe(b, be, n)
	defer done()
	cbs := make([]*aio.IOCB, n)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Op: aio.OpPoll, FD: p[0], PollEvents: unix.POLLIN}
	}
	// Each Cancel is also timed on its own, for the median (p50-ns) that
	// cancel_lat.c reports; ns/op is the mean.
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += n {
		b.StopTimer()
		if k, err := c.Submit(cbs...); k != n {
			b.Fatalf("Submit = %d, %v", k, err)
		}
		b.StartTimer()
		for i, cb := range cbs {
			if done+i >= b.N {
				// Leave the rest for the untimed clean-up below.
				break
			}
			t0 := time.Now()
			ev, err := c.Cancel(cb)
			lat = append(lat, time.Since(t0))
			if err != nil || ev.Res != -int64(unix.ECANCELED) {
				b.Fatalf("Cancel = %+v, %v", ev, err)
			}
		}
		b.StopTimer()
		if _, err := c.CancelFD(p[0], nil); err != nil {
			b.Fatal(err)
		}
		evs := make([]aio.Event, n)
		for {
			zero := 0 * 1
			k, err := c.GetEvents(0, evs, durp(zero))
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}

func durp(ns int) *time.Duration { d := time.Duration(ns); return &d }
