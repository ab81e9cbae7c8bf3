//go:build linux

package backend

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkPollBatch32 is the backend alone (no aio layer): 32 polls on a ready
// eventfd per Submit, reaped with Reap. Compared with aio's
// BenchmarkSubmitGetEvents/op=poll-eventfd/qd=32 it gives the aio layer's cost.
func BenchmarkPollBatch32(b *testing.B) {
	for _, name := range []string{"uring", "kaio"} {
		b.Run("backend="+name, func(b *testing.B) {
			be, err := start(name, 32, Config{})
			if err != nil {
				b.Skip(err)
			}
			defer be.Close()
			efd, err := unix.Eventfd(1, unix.EFD_CLOEXEC)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(efd)
			reqs := make([]Req, 32)
			inl := make([]Completion, 32)
			cs := make([]Completion, 32)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += 32 {
				for i := range reqs {
					reqs[i] = Req{Tag: uint64(i), Op: OpPoll, FD: int32(efd), PollEvents: unix.POLLIN}
				}
				if n, _, err := be.Submit(reqs, inl); n != 32 {
					b.Fatal(n, err)
				}
				for got := 0; got < 32; {
					n, err := be.Reap(cs, 1, -1)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}

// BenchmarkReadiness is the latency of one readiness event while n other
// polls wait on an idle pipe: per op, a poll on a second, empty pipe is
// submitted, a byte written to that pipe, the poll's completion reaped and
// the byte read back. A mechanism whose cost per event grows with the
// waiting set (a poll(2) array rebuilt and scanned) shows here as ns/op that
// grows with n.
func BenchmarkReadiness(b *testing.B) {
	for _, name := range []string{"uring", "kaio", "threads"} {
		for _, n := range []int{0, 1000, 10000} {
			b.Run(fmt.Sprintf("backend=%s/pending=%d", name, n), func(b *testing.B) {
				benchReadiness(b, name, n)
			})
		}
	}
}

func benchReadiness(b *testing.B, name string, n int) {
	be, err := start(name, n+2, Config{})
	if err != nil {
		b.Skip(err)
	}
	defer be.Close()
	var idle, busy [2]int
	for _, p := range []*[2]int{&idle, &busy} {
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			b.Fatal(err)
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
	}
	reqs := make([]Req, n)
	for i := range reqs {
		reqs[i] = Req{Tag: uint64(i), Op: OpPoll, FD: int32(idle[0]), PollEvents: unix.POLLIN}
	}
	inl := make([]Completion, max(n, 1))
	if k, ni, err := be.Submit(reqs, inl); k != n || ni != 0 || err != nil {
		b.Fatalf("Submit of the idle polls = %d, %d, %v", k, ni, err)
	}
	cs := make([]Completion, n+1)
	// Tags are slot numbers on the kernel backends: the idle polls have 0 to
	// n-1, the measured poll n.
	tag := uint64(n)
	one := []Req{{Tag: tag, Op: OpPoll, FD: int32(busy[0]), PollEvents: unix.POLLIN}}
	var byte1 [1]byte
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if k, ni, err := be.Submit(one, inl); k != 1 || ni != 0 || err != nil {
			b.Fatalf("Submit = %d, %d, %v", k, ni, err)
		}
		if _, err := unix.Write(busy[1], byte1[:]); err != nil {
			b.Fatal(err)
		}
		for got := false; !got; {
			k, err := be.Reap(cs, 1, -1)
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range cs[:k] {
				if c.Tag != tag || c.Res&unix.POLLIN == 0 {
					b.Fatalf("completion %+v, want tag %d with POLLIN", c, tag)
				}
				got = true
			}
		}
		if _, err := unix.Read(busy[0], byte1[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// The idle polls end with a byte on their pipe.
	if _, err := unix.Write(idle[1], byte1[:]); err != nil {
		b.Fatal(err)
	}
	for got := 0; got < n; {
		k, err := be.Reap(cs, 1, -1)
		if err != nil {
			b.Fatal(err)
		}
		got += k
	}
}

// BenchmarkCancelMany is the backend alone (no aio layer) canceling n polls
// pending on an empty pipe with one CancelMany, as package aio's CancelFD
// does: cancel-ns/op is the CancelMany call (on kaio, n io_cancel system
// calls; on uring, one io_uring_enter carrying n IORING_OP_POLL_REMOVE),
// reap-ns/op collecting the n -ECANCELED completions after it. Compared with
// aio's BenchmarkCancelFD it gives the aio layer's share.
func BenchmarkCancelMany(b *testing.B) {
	for _, name := range []string{"uring", "kaio"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("backend=%s/n=%d", name, n), func(b *testing.B) {
				benchCancelMany(b, name, n)
			})
		}
	}
}

func benchCancelMany(b *testing.B, name string, n int) {
	be, err := start(name, n, Config{})
	if err != nil {
		b.Skip(err)
	}
	defer be.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	reqs := make([]Req, n)
	tags := make([]uint64, n)
	answers := make([]CancelAnswer, n)
	inl := make([]Completion, n)
	cs := make([]Completion, 2*n)
	var cancel, reap time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for it := range b.N {
		// Tags are slot numbers on the kernel backends; the high half only
		// tells the rounds apart.
		for i := range reqs {
			reqs[i] = Req{Tag: uint64(i) | uint64(it%1024)<<32, Op: OpPoll, FD: int32(p[0]), PollEvents: unix.POLLIN}
			tags[i] = reqs[i].Tag
		}
		if k, ni, err := be.Submit(reqs, inl); k != n || ni != 0 || err != nil {
			b.Fatalf("Submit = %d, %d, %v", k, ni, err)
		}
		t0 := time.Now()
		if err := be.CancelMany(tags, answers); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		for i, a := range answers {
			if a == CancelRefused {
				b.Fatalf("CancelMany refused pending poll %d", i)
			}
		}
		for got := 0; got < n; {
			k, err := be.Reap(cs, 1, -1)
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range cs[:k] {
				if c.Kind != KindDone {
					continue
				}
				if c.Res != -int64(unix.ECANCELED) {
					b.Fatalf("completion %+v, want -ECANCELED", c)
				}
				got++
			}
		}
		cancel += t1.Sub(t0)
		reap += time.Since(t1)
	}
	b.ReportMetric(float64(cancel.Nanoseconds())/float64(b.N), "cancel-ns/op")
	b.ReportMetric(float64(reap.Nanoseconds())/float64(b.N), "reap-ns/op")
}
