//go:build linux

package uringaio_test

// The threads backend (issue 10, docs/contract.md §9.7) under the conditions it exists for:
// both kernel mechanisms refused by seccomp (auto must run threads and say
// why the others did not), a thousand reads waiting on pipes (one poller
// thread, not a thousand), and cancels of waiting pipe reads racing writers
// (no byte written after a successful cancel may be consumed).

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
	"github.com/uringaio/uringaio/internal/backend"
	"github.com/uringaio/uringaio/internal/seccomp"
)

// TestRelThreadsAutoFallback: io_uring_setup refused with EPERM (Docker's
// default profile) and io_setup with ENOSYS: "", "auto" and
// URINGAIO_BACKEND=auto run threads, Probes reports both refusals with their
// errnos, and the Context works; "uring" and "kaio" named explicitly still
// fail, with no fallback.
func TestRelThreadsAutoFallback(t *testing.T) {
	if relChildRole() == "threads-auto" {
		rules := append(relDenyUring(unix.EPERM), seccomp.Rule{Nr: unix.SYS_IO_SETUP, Errno: unix.ENOSYS})
		if err := seccomp.Install(rules); err != nil {
			t.Fatal(err)
		}
		for _, opt := range []string{"", "auto", "env"} {
			be := opt
			if opt == "env" {
				os.Setenv("URINGAIO_BACKEND", "auto")
				be = ""
			}
			c, err := relSetup(t, 8, be)
			os.Unsetenv("URINGAIO_BACKEND")
			if err != nil {
				t.Fatalf("Setup(Backend: %q) with both kernel backends refused: %v", opt, err)
			}
			if got := c.Backend(); got != "threads" {
				t.Fatalf("Setup(Backend: %q) ran %q, want threads", opt, got)
			}
			probes := c.Probes()
			want := []struct {
				name  string
				errno unix.Errno
			}{{"uring", unix.EPERM}, {"kaio", unix.ENOSYS}, {"threads", 0}}
			if len(probes) != len(want) {
				t.Fatalf("Probes() = %v, want uring, kaio, threads", probes)
			}
			for i, w := range want {
				p := probes[i]
				if p.Backend != w.name {
					t.Fatalf("Probes()[%d] = %q, want %q", i, p.Backend, w.name)
				}
				switch {
				case w.errno == 0 && p.Err != nil:
					t.Fatalf("Probes()[%d] (%s) = %v, want nil", i, p.Backend, p.Err)
				case w.errno != 0 && (!errors.Is(p.Err, w.errno) || !errors.Is(p.Err, aio.ErrNotSupported)):
					t.Fatalf("Probes()[%d] (%s) = %v, want %v and ErrNotSupported", i, p.Backend, p.Err, w.errno)
				}
			}
			relExercise(t, c)
			if err := c.Destroy(); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			relChildf(t, "both kernel backends refused: Setup(Backend: %q) ran threads; probes %v", opt, probes)
		}
		c, err := relSetup(t, 8, "uring")
		relWantRefused(t, c, err, "uring", unix.EPERM)
		c, err = relSetup(t, 8, "kaio")
		relWantRefused(t, c, err, "kaio", unix.ENOSYS)
		t.Log(relChildOK)
		return
	}
	relRelay(t, relRunChild(t, "TestRelThreadsAutoFallback", "threads-auto"))
}

// relOSThreads is the process's thread count (/proc/self/status Threads).
func relOSThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("/proc/self/status has no Threads line")
	return 0
}

// TestRelThreadsThousandWaits: a thousand reads waiting on a thousand pipes
// hold at most the pool's workers plus two OS threads (the poller, and one of
// slack for the runtime), then all complete with their data.
func TestRelThreadsThousandWaits(t *testing.T) {
	if err := relUnavailable("threads"); err != nil {
		t.Skipf("threads cannot start here: %v", err)
	}
	const n = 1000
	bound := backend.DefaultWorkers() + 2
	before := relOSThreads(t)
	c := relCtx(t, "threads", n)
	pipes := make([]*relPipe, n)
	cbs := make([]*aio.IOCB, n)
	for i := range pipes {
		pipes[i] = relNewPipe(t, i%2 == 1)
		cbs[i] = &aio.IOCB{Op: aio.OpRead, FD: pipes[i].r, Buf: make([]byte, 8), Data: uint64(i)}
	}
	if got, err := c.Submit(cbs...); got != n || err != nil {
		t.Fatalf("Submit(%d reads) = %d, %v", n, got, err)
	}
	time.Sleep(200 * time.Millisecond)
	during := relOSThreads(t)
	relChildf(t, "threads: %d OS threads before Setup, %d with %d pipe reads waiting (bound: +%d)", before, during, n, bound)
	if during-before > bound {
		t.Fatalf("%d waiting reads took %d more OS threads; the pool may use %d", n, during-before, bound)
	}
	for i, p := range pipes {
		p.write(t, []byte(strconv.Itoa(i)))
	}
	evs := relCollect(t, c, n, 20*time.Second)
	for _, ev := range evs {
		i := int(ev.Data)
		if want := strconv.Itoa(i); ev.Res != int64(len(want)) || string(cbs[i].Buf[:ev.Res]) != want {
			t.Fatalf("read %d: Res %d, %q", i, ev.Res, cbs[i].Buf)
		}
	}
}

// TestRelThreadsCancelKeepsData: a pipe read canceled while it waits never
// consumes a byte written after the cancel; when a writer races the cancel,
// either the cancel wins and the byte is still in the pipe, or the read
// has it and the cancel says EAGAIN; one event either way.
func TestRelThreadsCancelKeepsData(t *testing.T) {
	if err := relUnavailable("threads"); err != nil {
		t.Skipf("threads cannot start here: %v", err)
	}
	for _, nonblock := range []bool{false, true} {
		t.Run("nonblock="+strconv.FormatBool(nonblock), func(t *testing.T) {
			c := relCtx(t, "threads", 4)
			p := relNewPipe(t, nonblock)
			rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 16), Data: 1}
			if got, err := c.Submit(rd); got != 1 || err != nil {
				t.Fatalf("Submit = %d, %v", got, err)
			}
			time.Sleep(20 * time.Millisecond)
			ev, err := c.Cancel(rd)
			if err != nil || ev.Res != -int64(unix.ECANCELED) {
				t.Fatalf("Cancel(waiting read) = %+v, %v", ev, err)
			}
			p.write(t, []byte("after-cancel"))
			time.Sleep(20 * time.Millisecond)
			buf := make([]byte, 32)
			n, err := unix.Read(p.r, buf)
			if err != nil || string(buf[:n]) != "after-cancel" {
				t.Fatalf("pipe after the cancel: %q, %v; want every byte", buf[:max(n, 0)], err)
			}
			if n, _ := c.GetEvents(0, make([]aio.Event, 4), relTimeout(20*time.Millisecond)); n != 0 {
				t.Fatalf("%d events after a successful Cancel", n)
			}

			// The race, many times.
			won, lost := 0, 0
			for round := 0; round < 300; round++ {
				rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 1), Data: uint64(round)}
				if got, err := c.Submit(rd); got != 1 || err != nil {
					t.Fatalf("round %d: Submit = %d, %v", round, got, err)
				}
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.write(t, []byte{byte(round)})
				}()
				// Vary who is first: the writer's goroutine needs a few
				// microseconds to start.
				time.Sleep(time.Duration(round%5) * 25 * time.Microsecond)
				ev, err := c.Cancel(rd)
				wg.Wait()
				var b [1]byte
				switch {
				case err == nil:
					won++
					if ev.Res != -int64(unix.ECANCELED) {
						t.Fatalf("round %d: Cancel event %+v", round, ev)
					}
					if n, err := unix.Read(p.r, b[:]); n != 1 || b[0] != byte(round) {
						t.Fatalf("round %d: canceled read, but the byte written is gone (%d, %v)", round, n, err)
					}
				case errors.Is(err, unix.EAGAIN):
					lost++
					evs := relCollect(t, c, 1, 5*time.Second)
					if evs[0].IOCB != rd || evs[0].Res != 1 || rd.Buf[0] != byte(round) {
						t.Fatalf("round %d: uncanceled read: %+v %v", round, evs[0], rd.Buf)
					}
				default:
					t.Fatalf("round %d: Cancel: %v", round, err)
				}
			}
			relChildf(t, "threads cancel vs write: cancel won %d, read won %d", won, lost)
		})
	}
}
