//go:build linux

package backend

import (
	"testing"

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
