//go:build unix

package main

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// pipe's ends are close-on-exec and non-blocking, as pipe2(O_CLOEXEC|
// O_NONBLOCK) would make them where it exists.
func TestPipeFlags(t *testing.T) {
	r, w, err := pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(r)
	defer unix.Close(w)
	for _, fd := range []int{r, w} {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("fd %d: F_GETFL = %#x, %v; want O_NONBLOCK", fd, fl, err)
		}
		fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || fdfl&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: F_GETFD = %#x, %v; want FD_CLOEXEC", fd, fdfl, err)
		}
	}
}

// readyPipe, the poll workload's descriptor where there is no eventfd, stays
// readable however often it is polled, on every backend that runs here.
func TestReadyPipe(t *testing.T) {
	fd, done, err := readyPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	for _, be := range []string{"uring", "kaio", "threads"} {
		c, err := aio.SetupWithOptions(8, aio.Options{Backend: be})
		if errors.Is(err, aio.ErrNotSupported) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		cbs := make([]*aio.IOCB, 8)
		for i := range cbs {
			cbs[i] = &aio.IOCB{Op: aio.OpPoll, FD: fd, PollEvents: unix.POLLIN}
		}
		evs := make([]aio.Event, len(cbs))
		timeout := 5 * time.Second
		for round := 0; round < 50; round++ {
			if n, err := c.Submit(cbs...); n != len(cbs) || err != nil {
				t.Fatalf("%s: Submit = %d, %v", be, n, err)
			}
			for got := 0; got < len(cbs); {
				n, err := c.GetEvents(len(cbs)-got, evs[:len(cbs)-got], &timeout)
				if err != nil || n == 0 {
					t.Fatalf("%s: GetEvents = %d, %v; the pipe is not readable", be, n, err)
				}
				for _, ev := range evs[:n] {
					if ev.Res < 0 || ev.Res&unix.POLLIN == 0 {
						t.Fatalf("%s: poll ended with res %d", be, ev.Res)
					}
				}
				got += n
			}
		}
		c.Destroy()
	}
}
