//go:build linux

package aio_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// BenchmarkCancelFD measures CancelFD(fd, nil) over n requests pending on one
// empty pipe: per iteration n OpPoll POLLIN are submitted (not timed), the
// CancelFD call is timed (ns/op), and the n -ECANCELED events are then reaped
// (timed apart: reap-ns/op; and total-ns/op = cancel + reap). ns/req is the
// cancel time per request. The Context is created once per sub-benchmark:
// io_destroy on classic AIO alone costs tens of milliseconds.
func BenchmarkCancelFD(b *testing.B) {
	for _, be := range []string{"uring", "kaio", "threads"} {
		for _, n := range []int{1, 100, 1000, 10000} {
			for _, op := range []string{"poll", "read"} {
				b.Run(fmt.Sprintf("backend=%s/n=%d/op=%s", be, n, op), func(b *testing.B) {
					cfdBenchCancelFD(b, be, n, op)
				})
			}
		}
	}
}

func cfdBenchCancelFD(b *testing.B, be string, n int, op string) {
	c, p, done := benchContextPipe(b, be, n)
	defer done()

	cbs := make([]*aio.IOCB, n)
	for i := range cbs {
		cbs[i] = &aio.IOCB{FD: p[0], Data: uint64(i)}
		if op == "poll" {
			cbs[i].Op, cbs[i].PollEvents = aio.OpPoll, unix.POLLIN
		} else {
			cbs[i].Op, cbs[i].Buf = aio.OpRead, make([]byte, 8)
		}
	}
	evs := make([]aio.Event, n)
	var reap time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if k, err := c.Submit(cbs...); k != n || err != nil {
			b.Fatalf("Submit = %d, %v", k, err)
		}
		b.StartTimer()
		res, err := c.CancelFD(p[0], nil)
		b.StopTimer()
		if res != aio.Canceled || err != nil {
			b.Fatalf("CancelFD = %v, %v", res, err)
		}
		start := time.Now()
		got := 0
		for got < n {
			k, err := c.GetEvents(n-got, evs[got:], nil)
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
		reap += time.Since(start)
		for _, ev := range evs {
			if ev.Res != -int64(unix.ECANCELED) {
				b.Fatalf("event Data %d: Res %d, want -ECANCELED", ev.Data, ev.Res)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	cancelNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	reapNs := float64(reap.Nanoseconds()) / float64(b.N)
	b.ReportMetric(cancelNs/float64(n), "ns/req")
	b.ReportMetric(reapNs, "reap-ns/op")
	b.ReportMetric(cancelNs+reapNs, "total-ns/op")
}

// benchContextPipe sets up a Context of n slots on backend be (skipping the
// benchmark where it cannot start) and a pipe; done releases them. Not
// b.Cleanup: a benchmark function runs several times (for growing b.N), and
// each run's Context must be gone before the next one's is set up.
func benchContextPipe(b *testing.B, be string, n int) (c *aio.Context, p [2]int, done func()) {
	c, err := aio.SetupWithOptions(n, aio.Options{Backend: be})
	if errors.Is(err, aio.ErrNotSupported) {
		b.Skipf("%s cannot start here: %v", be, err)
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		c.Destroy()
		b.Fatal(err)
	}
	return c, p, func() {
		c.Destroy()
		unix.Close(p[0])
		unix.Close(p[1])
	}
}
