//go:build linux

package backend

import (
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// The wait contract of Backend.Reap, which package aio's reaper relies on,
// for each kernel backend: a wait for one completion ends with a completion,
// a Wake (before or during the wait) or the timeout; a longer wait ends only
// when enough arrive or at the timeout.

func openBackend(t *testing.T, name string, slots int) Backend {
	t.Helper()
	be, err := start(name, slots, Config{})
	if err != nil {
		t.Skipf("%s cannot start here: %v", name, err)
	}
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return be
}

// reapResult is what one Reap returned, and how long it took.
type reapResult struct {
	n   int
	err error
	d   time.Duration
}

// reapAsync runs Reap on another goroutine; the channel yields its result.
func reapAsync(be Backend, cs []Completion, wait int, timeout time.Duration) <-chan reapResult {
	ch := make(chan reapResult, 1)
	go func() {
		t0 := time.Now()
		n, err := be.Reap(cs, wait, timeout)
		ch <- reapResult{n, err, time.Since(t0)}
	}()
	return ch
}

// await is the result of a reapAsync, failing the test after 10s.
func await(t *testing.T, what string, ch <-chan reapResult) reapResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: Reap: %v", what, r.err)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Reap still waiting after 10s", what)
	}
	panic("unreachable")
}

func submitPoll(t *testing.T, be Backend, tag uint64, fd int) {
	t.Helper()
	reqs := []Req{{Tag: tag, Op: OpPoll, FD: int32(fd), PollEvents: unix.POLLIN}}
	inl := make([]Completion, 1)
	if n, ninl, err := be.Submit(reqs, inl); n != 1 || ninl != 0 || err != nil {
		t.Fatalf("Submit poll: taken %d, inline %d, %v", n, ninl, err)
	}
}

func TestReapWaitContract(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, name := range []string{"uring", "kaio"} {
		t.Run(name, func(t *testing.T) {
			be := openBackend(t, name, 8)
			cs := make([]Completion, 8)

			t0 := time.Now()
			if n, err := be.Reap(cs, 1, 0); n != 0 || err != nil {
				t.Fatalf("Reap(1, 0) with nothing in flight: %d, %v", n, err)
			}
			if d := time.Since(t0); d > time.Second {
				t.Fatalf("Reap(1, 0) took %v", d)
			}

			r := await(t, "timeout", reapAsync(be, cs, 1, 30*time.Millisecond))
			if r.n != 0 || r.d < 30*time.Millisecond {
				t.Fatalf("Reap(1, 30ms) with nothing in flight: %d after %v", r.n, r.d)
			}

			be.Wake()
			r = await(t, "wake before the wait", reapAsync(be, cs, 1, -1))
			if r.n != 0 {
				t.Fatalf("woken Reap returned %d", r.n)
			}

			ch := reapAsync(be, cs, 1, -1)
			time.Sleep(20 * time.Millisecond)
			be.Wake()
			await(t, "wake during the wait", ch)

			rfd, wfd := testPipe(t)
			submitPoll(t, be, 3, rfd)
			ch = reapAsync(be, cs, 1, -1)
			time.Sleep(20 * time.Millisecond)
			if _, err := unix.Write(wfd, []byte{1}); err != nil {
				t.Fatal(err)
			}
			if r = await(t, "completion during the wait", ch); r.n != 1 || cs[0].Tag != 3 || cs[0].Res&unix.POLLIN == 0 {
				t.Fatalf("Reap: %d, %+v; want the poll's POLLIN", r.n, cs[0])
			}

			// Two wanted, one arrives: the wait lasts until the timeout;
			// then the one is returned.
			var b [1]byte
			if _, err := unix.Read(rfd, b[:]); err != nil {
				t.Fatal(err)
			}
			submitPoll(t, be, 4, rfd)
			t0 = time.Now()
			ch = reapAsync(be, cs, 2, 100*time.Millisecond)
			time.Sleep(10 * time.Millisecond)
			if _, err := unix.Write(wfd, []byte{1}); err != nil {
				t.Fatal(err)
			}
			r = await(t, "wait for two, one arriving", ch)
			if d := time.Since(t0); d < 90*time.Millisecond {
				t.Fatalf("Reap(2, 100ms) with one arriving returned %d after %v", r.n, d)
			}
			if r.n == 0 {
				r = await(t, "the one", reapAsync(be, cs, 1, time.Second))
			}
			if r.n != 1 || cs[0].Tag != 4 {
				t.Fatalf("Reap: %d, %+v; want the poll", r.n, cs[0])
			}
		})
	}
}

// TestReapPoolEndsLongWait: a wait for several completions, while the pool
// holds one of the backend's requests (a read on an empty pipe: classic AIO
// gives it to the pool), ends when that request completes. The pool's
// completion reaches the kernel wait only as the one completion of Wake; a
// wait in the kernel for more sat out its whole timeout (CancelFD's waits
// for a hundred pool requests: 1 ms each). Here the timeout is infinite, so
// the old wait never ended. io_uring has the same rule (minWait), but on
// Linux 6.18 it polls even O_NONBLOCK pipes and sockets itself, so no
// request of a test's reaches its pool and waits there.
func TestReapPoolEndsLongWait(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, name := range []string{"kaio"} {
		t.Run(name, func(t *testing.T) {
			be := openBackend(t, name, 8)
			rfd, wfd := testPipe(t)
			buf := make([]byte, 8)
			reqs := []Req{{Tag: 5, Op: OpRead, FD: int32(rfd), Addr: addr(buf), Len: uint32(len(buf)), Off: -1}}
			inl := make([]Completion, 1)
			if n, ninl, err := be.Submit(reqs, inl); n != 1 || ninl != 0 || err != nil {
				t.Fatalf("Submit read: taken %d, inline %d, %v", n, ninl, err)
			}
			cs := make([]Completion, 8)
			// Nothing has arrived: a wait for one times out.
			if n, err := be.Reap(cs, 1, 20*time.Millisecond); n != 0 || err != nil {
				t.Fatalf("Reap(1, 20ms) before any data: %d, %v", n, err)
			}
			ch := reapAsync(be, cs, 4, -1)
			time.Sleep(20 * time.Millisecond)
			if _, err := unix.Write(wfd, []byte("abc")); err != nil {
				t.Fatal(err)
			}
			r := await(t, "wait for four, the pool's one arriving", ch)
			if r.n == 0 {
				// The wait ended at the pool's Wake: the completion is there.
				r = await(t, "the read", reapAsync(be, cs, 1, time.Second))
			}
			if r.n != 1 || cs[0].Tag != 5 || cs[0].Res != 3 || string(buf[:3]) != "abc" {
				t.Fatalf("Reap: %d, %+v, buf %q; want the read's 3 bytes", r.n, cs[0], buf[:3])
			}
		})
	}
}

// TestReapNoLostWakeups has a completion arrive at every moment around the
// reaper's decision to wait, many times: none may be missed.
func TestReapNoLostWakeups(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, name := range []string{"uring", "kaio"} {
		t.Run(name, func(t *testing.T) {
			be := openBackend(t, name, 4)
			rfd, wfd := testPipe(t)
			cs := make([]Completion, 4)
			var b [1]byte
			deadline := time.Now().Add(20 * time.Second)
			for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
				submitPoll(t, be, uint64(i%4)|uint64(i)<<32, rfd)
				spin := i % 64
				go func() {
					for j := 0; j < spin*50; j++ {
						_ = j
					}
					unix.Write(wfd, []byte{1})
				}()
				for got := false; !got; {
					r := await(t, "poll", reapAsync(be, cs, 1, -1))
					for _, c := range cs[:r.n] {
						got = got || c.Tag == uint64(i%4)|uint64(i)<<32
					}
				}
				if _, err := unix.Read(rfd, b[:]); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
