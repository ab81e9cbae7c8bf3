//go:build linux

package aio

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRoundLeavesReusedSlotQueued (§8.1, §5.4): a submission round that
// comes back from the backend marks as handed over only its own requests. A
// slot of its batch whose request ended while the round was in the backend
// may already hold a new request queued for the next round; that one is
// still queued, so a cancel of it waits for its round instead of asking a
// backend that has never seen it (which refuses, leaving a pipe read that
// waits for ever: found by context/many-goroutines at GOMAXPROCS=8).
//
// The hook (Context.roundHook) makes the interleaving certain. Two slots:
//
//	round 1: C's nop; A's fdatasync is queued meanwhile
//	round 2: A's fdatasync; while it is in the backend A ends, frees its
//	         slot, and B's pipe read takes that slot and is queued
//	round 3: B's read; B's context ends just before it goes in
//
// B's Do must end canceled. Or B is a Submit (no round: it goes to the
// backend itself) that takes the slot the same way, and a Cancel of it must
// not wait for a round that carries nothing of B's.
func TestRoundLeavesReusedSlotQueued(t *testing.T) {
	for _, name := range []string{"uring/Do", "uring/Submit", "kaio/Do", "kaio/Submit", "threads/Do", "threads/Submit"} {
		be, viaSubmit := path.Dir(name), path.Base(name) == "Submit"
		t.Run(name, func(t *testing.T) {
			c, err := SetupWithOptions(2, Options{Backend: be, NoInline: true})
			if errors.Is(err, ErrNotSupported) {
				t.Skipf("backend %s cannot start here: %v", be, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Destroy()
			f, err := os.Create(filepath.Join(t.TempDir(), "sync"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var p [2]int
			if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(p[0])
			defer syscall.Close(p[1])

			queued := func() int {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.pend)
			}
			waitFor := func(what string, cond func() bool) bool {
				for deadline := time.Now().Add(10 * time.Second); !cond(); {
					if time.Now().After(deadline) {
						t.Errorf("%s did not happen within 10s", what)
						return false
					}
					time.Sleep(100 * time.Microsecond)
				}
				return true
			}
			var (
				round         atomic.Int32
				aDone         = make(chan error, 1)
				bStarted      = make(chan struct{})
				bCtx, bCancel = context.WithCancel(context.Background())
			)
			defer bCancel()
			aStart := make(chan struct{})
			bSubmitted := make(chan struct{}) // Submit: B is in, and Cancel has waited a while

			c.roundHook = func(before bool) {
				switch n := round.Add(1); n {
				case 1: // before round 1: let A queue behind C's round
					close(aStart)
					waitFor("A queued", func() bool { return queued() == 1 })
				case 4: // after round 2: A ended; B takes its slot
					if err := <-aDone; err != nil {
						t.Errorf("A's fdatasync: %v", err)
					}
					close(bStarted)
					if viaSubmit {
						<-bSubmitted
					} else {
						waitFor("B queued", func() bool { return queued() == 1 })
					}
				case 5: // before round 3 (Do): B's context ends now
					bCancel()
					time.Sleep(20 * time.Millisecond) // room for a wrong cancel to happen
				}
			}
			cDone := make(chan error, 1)
			go func() {
				_, err := c.Do(context.Background(), &IOCB{Op: OpNop})
				cDone <- err
			}()
			<-aStart
			go func() {
				_, err := c.Do(context.Background(), &IOCB{Op: OpFdsync, FD: int(f.Fd())})
				aDone <- err
			}()
			select {
			case <-bStarted:
			case <-time.After(20 * time.Second):
				t.Fatal("the rounds did not reach B")
			}
			type result struct {
				ev  Event
				err error
			}
			bDone := make(chan result, 1)
			if viaSubmit {
				cb := &IOCB{Op: OpRead, FD: p[0], Buf: make([]byte, 8)}
				if n, err := c.Submit(cb); n != 1 {
					t.Fatalf("Submit = %d, %v", n, err)
				}
				go func() {
					ev, err := c.Cancel(cb)
					bDone <- result{ev, err}
				}()
				// Round 2 is still in the backend: Cancel must not wait
				// for it to come back.
				select {
				case r := <-bDone:
					bDone <- r
				case <-time.After(2 * time.Second):
				}
				close(bSubmitted)
			} else {
				go func() {
					ev, err := c.Do(bCtx, &IOCB{Op: OpRead, FD: p[0], Buf: make([]byte, 8)})
					bDone <- result{ev, err}
				}()
			}
			select {
			case r := <-bDone:
				if r.ev.Res != -int64(syscall.ECANCELED) || !viaSubmit && !errors.Is(r.err, context.Canceled) || viaSubmit && r.err != nil {
					t.Fatalf("B = %d, %v; want -ECANCELED (and, for Do, context.Canceled)", r.ev.Res, r.err)
				}
			case <-time.After(10 * time.Second):
				syscall.Write(p[1], []byte("watchdog")) // free it
				select {
				case r := <-bDone:
					t.Fatalf("B, whose cancel came while it waited for data, was not canceled: it waited until data came (%d, %v)", r.ev.Res, r.err)
				case <-time.After(10 * time.Second):
					t.Fatalf("B, whose cancel came while it waited for data, was not canceled, and had not ended 10s after data came")
				}
			}
			if err := <-cDone; err != nil {
				t.Fatalf("C's nop: %v", err)
			}
			want := int32(6)
			if viaSubmit {
				want = 4 // B had no round
			}
			if n := round.Load(); n != want {
				t.Fatalf("%d round hooks ran, want %d: the interleaving was not the one tested", n, want)
			}
		})
	}
}
