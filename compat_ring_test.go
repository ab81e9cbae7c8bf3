//go:build linux

package uringaio_test

// Contract §12.1: the ring's optional set-up features. Features (and Probes'
// last entry) say which are on; a feature that is off says why; nothing a
// program does through the API can tell whether one is on: the same requests
// give the same results with Options.SQPoll on every backend.

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("ring/features", ringFeatures)
	registerCompat("ring/sqpoll-requests", ringSQPollRequests)
}

func setupOpts(t *testing.T, maxEvents int, opts aio.Options) *aio.Context {
	t.Helper()
	c, err := aio.SetupWithOptions(maxEvents, opts)
	if err != nil {
		t.Fatalf("SetupWithOptions(%d, %+v): %v", maxEvents, opts, err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	return c
}

func featureNamed(fs []aio.Feature, name string) (aio.Feature, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f, true
		}
	}
	return aio.Feature{}, false
}

func ringFeatures(t *testing.T, be string) {
	for _, sqpoll := range []bool{false, true} {
		c := setupOpts(t, 8, aio.Options{Backend: be, SQPoll: sqpoll})
		fs := c.Features()
		ps := c.Probes()
		last := ps[len(ps)-1]
		if len(last.Features) != len(fs) {
			t.Fatalf("Probes()' last entry has %v, Features() %v", last.Features, fs)
		}
		if be != "uring" {
			if fs != nil {
				t.Fatalf("%s: Features() = %v, want none", be, fs)
			}
			continue
		}
		want := []string{"coop_taskrun", "sqpoll", "registered_ring", "registered_files", "registered_buffers"}
		if len(fs) != len(want) {
			t.Fatalf("Features() = %v, want %v", fs, want)
		}
		for i, f := range fs {
			if f.Name != want[i] {
				t.Errorf("Features()[%d] = %v, want %s", i, f, want[i])
			}
			if f.On == (f.Why != nil) {
				t.Errorf("%v: a feature is on with no reason, or off with one", f)
			}
			t.Logf("SQPoll %v: %v", sqpoll, f)
		}
		if f, _ := featureNamed(fs, "registered_ring"); f.On {
			t.Errorf("%v: the registered ring descriptor is per thread; it must not be used", f)
		}
		sq, _ := featureNamed(fs, "sqpoll")
		if !sqpoll && sq.On {
			t.Errorf("%v without Options.SQPoll", sq)
		}
		coop, _ := featureNamed(fs, "coop_taskrun")
		if sq.On && coop.On {
			t.Errorf("%v with %v: the kernel refuses the pair", coop, sq)
		}
	}
}

// ringSQPollRequests: with Options.SQPoll, writes, reads, a canceled poll, Do
// and Destroy behave as without it.
func ringSQPollRequests(t *testing.T, be string) {
	c := setupOpts(t, 64, aio.Options{Backend: be, SQPoll: true})
	fd := tempFD(t, make([]byte, 64*512))
	var cbs []*aio.IOCB
	for i := 0; i < 64; i++ {
		cbs = append(cbs, &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: pattern(512, byte(i)), Offset: int64(i) * 512})
	}
	submitWithin(t, c, 10*time.Second, cbs...)
	for _, ev := range reapNWithin(t, c, 64, 10*time.Second) {
		wantEvent(t, ev, ev.IOCB, 512, "write")
	}
	for i := 0; i < 64; i++ {
		buf := make([]byte, 512)
		if n, err := c.ReadAt(context.Background(), fd, buf, int64(i)*512); n != 512 || err != nil {
			t.Fatalf("ReadAt #%d = %d, %v", i, n, err)
		}
		wantBytes(t, buf, pattern(512, byte(i)), "read back")
	}
	r, _ := newPipe(t, 0)
	poll := &aio.IOCB{Op: aio.OpPoll, FD: r, PollEvents: unix.POLLIN}
	mustSubmit(t, c, poll)
	cancelIt(t, c, poll)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rd := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 1)}
	if _, err := c.Do(ctx, rd); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do on an empty pipe until the deadline: %v, want DeadlineExceeded", err)
	}
	finishes(t, 10*time.Second, "Destroy", func() {
		if err := c.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	_ = os.Getpagesize
}
