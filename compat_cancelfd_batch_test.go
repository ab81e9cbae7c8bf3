//go:build linux

package uringaio_test

// CancelFD over many requests at once (docs/contract.md §6): the per-request
// answers stay exact when the backend cancels them as one batch (io_uring:
// IORING_OP_POLL_REMOVE for polls, IORING_OP_ASYNC_CANCEL for the rest, all in
// one io_uring_enter; classic AIO: io_cancel for each), with polls and reads
// mixed on one descriptor, with data arriving meanwhile, with other goroutines
// submitting on the same descriptor, and for polls whose submitting thread has
// exited (§10.6).

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("cancelfd/batch-polls-and-reads", cfdTestBatchMixed)
	registerCompat("cancelfd/batch-race-readiness", cfdTestBatchRace)
	registerCompat("cancelfd/batch-concurrent-submit", cfdTestBatchConcurrentSubmit)
	registerCompat("cancelfd/batch-dead-thread", cfdTestBatchDeadThread)
}

// cfdCancelFD is c.CancelFD(fd, nil) under a watchdog: a CancelFD that never
// decides fails the test instead of hanging it.
func cfdCancelFD(t *testing.T, c *aio.Context, fd int) (res aio.CancelResult, err error) {
	t.Helper()
	finishes(t, eventWait, "CancelFD", func() { res, err = c.CancelFD(fd, nil) })
	return res, err
}

// cfdPolls returns k POLLIN polls on fd with Data = base+i.
func cfdPolls(fd, k int, base uint64) []*aio.IOCB {
	cbs := make([]*aio.IOCB, k)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Op: aio.OpPoll, FD: fd, PollEvents: unix.POLLIN, Data: base + uint64(i)}
	}
	return cbs
}

// cfdTestBatchMixed: on one pipe's read end, many pending polls and reads,
// interleaved, and one read that has finished but whose event was not
// delivered. CancelFD(r, nil) answers Canceled (the finished one counts as
// done, §6.4); each pending request gets exactly one -ECANCELED event (§6.3),
// Error says ECANCELED at once (§6.5), the finished read keeps its data,
// and a poll on another descriptor is untouched.
func cfdTestBatchMixed(t *testing.T, be string) {
	const npoll, nread = 300, 60
	r, w := newPipe(t, 0)
	other, _ := newPipe(t, 0)
	c := newContext(t, be, npoll+nread+4)

	writeFull(t, w, []byte("finished"))
	done := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 8), Data: 9999}
	mustSubmit(t, c, done)
	cfdSettle(t, c, done)

	polls := cfdPolls(r, npoll, 0)
	reads := cfdReads(r, nread, 8, 1000)
	var pending []*aio.IOCB
	for i := range max(npoll, nread) {
		if i < npoll {
			pending = append(pending, polls[i])
		}
		if i < nread {
			pending = append(pending, reads[i])
		}
	}
	// In several Submit calls, so that their order in the kernel is mixed too.
	for i := 0; i < len(pending); i += 37 {
		mustSubmit(t, c, pending[i:min(i+37, len(pending))]...)
	}
	elsewhere := &aio.IOCB{Op: aio.OpPoll, FD: other, PollEvents: unix.POLLIN, Data: 7777}
	mustSubmit(t, c, elsewhere)

	res, err := cfdCancelFD(t, c, r)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r, nil)")
	for _, cb := range pending {
		cfdWantError(t, c, cb, unix.ECANCELED, fmt.Sprintf("Data %d right after CancelFD", cb.Data))
	}
	cfdWantError(t, c, done, nil, "the finished read")
	cfdWantError(t, c, elsewhere, unix.EINPROGRESS, "the poll on another pipe")

	evs := byIOCB(t, reapN(t, c, len(pending)+1))
	wantEvent(t, evs[done], done, 8, "the finished read")
	wantBytes(t, done.Buf, []byte("finished"), "the finished read's data")
	for _, cb := range pending {
		ev, ok := evs[cb]
		if !ok {
			t.Fatalf("no event for Data %d", cb.Data)
		}
		wantEvent(t, ev, cb, cfdECANCELED, fmt.Sprintf("Data %d", cb.Data))
	}
	expectNoEvents(t, c)
	res, err = cfdCancelFD(t, c, r)
	cfdWantResult(t, res, err, aio.AllDone, "CancelFD(r, nil) again")
	// Nothing of the pipe was eaten by a canceled read.
	writeFull(t, w, []byte("after"))
	wantBytes(t, readExactly(t, r, 5), []byte("after"), "pipe data after CancelFD")
	res, err = c.CancelFD(other, elsewhere)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(other, poll)")
	wantEvent(t, reapN(t, c, 1)[0], elsewhere, cfdECANCELED, "the poll on another pipe")
}

// cfdTestBatchRace: many polls and some reads wait on a pipe while a writer
// sends 8-byte messages during CancelFD(r, nil). Every request ends exactly
// once: a poll with POLLIN or -ECANCELED, a read with one whole message or
// -ECANCELED; Error agrees with each event; the answer agrees with the
// events (§6.2, §6.4); and no message is lost or read twice.
func cfdTestBatchRace(t *testing.T, be string) {
	const npoll, nread, rounds = 200, 8, 12
	r, w := newPipe(t, 0)
	c := newContext(t, be, npoll+nread)
	seen := map[aio.CancelResult]int{}
	for round := range rounds {
		polls := cfdPolls(r, npoll, 0)
		reads := cfdReads(r, nread, 8, 1000)
		all := append(append([]*aio.IOCB{}, polls...), reads...)
		mustSubmit(t, c, all...)
		nmsg := round % (nread + 3) // sometimes none, sometimes more than the reads
		var wg sync.WaitGroup
		var werr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round%4) * 30 * time.Microsecond)
			for i := range nmsg {
				var m [8]byte
				binary.LittleEndian.PutUint32(m[:4], uint32(round))
				binary.LittleEndian.PutUint32(m[4:], uint32(i))
				if _, err := unix.Write(w, m[:]); err != nil {
					werr = err
					return
				}
			}
		}()
		res, err := cfdCancelFD(t, c, r)
		if err != nil {
			t.Fatalf("round %d: CancelFD: %v", round, err)
		}
		seen[res]++
		wg.Wait()
		if werr != nil {
			t.Fatalf("writer: %v", werr)
		}
		evs := byIOCB(t, reapN(t, c, len(all)))
		nCan, nData := 0, 0
		got := map[uint32]int{}
		for _, cb := range all {
			ev, ok := evs[cb]
			if !ok {
				t.Fatalf("round %d: no event for Data %d", round, cb.Data)
			}
			switch {
			case ev.Res == cfdECANCELED:
				nCan++
			case cb.Op == aio.OpPoll && ev.Res > 0 && ev.Res&unix.POLLIN != 0:
				nData++
			case cb.Op == aio.OpRead && ev.Res == 8:
				if rr := binary.LittleEndian.Uint32(cb.Buf[:4]); rr != uint32(round) {
					t.Fatalf("round %d: read %d got a message of round %d", round, cb.Data, rr)
				}
				got[binary.LittleEndian.Uint32(cb.Buf[4:])]++
				nData++
			default:
				t.Fatalf("round %d: Data %d (op %d): Res = %s", round, cb.Data, cb.Op, fmtRes(ev.Res))
			}
			if e := c.Error(cb); !cfdErrorMatches(e, ev.Res) {
				t.Fatalf("round %d: Data %d: Error() = %v for Res %s", round, cb.Data, e, fmtRes(ev.Res))
			}
		}
		cfdAnswerAgrees(t, round, res, nCan, nData)
		if nmsg == 0 && (res != aio.Canceled || nCan != len(all)) {
			t.Fatalf("round %d: no data was written, yet CancelFD = %v with %d of %d canceled", round, res, nCan, len(all))
		}
		rest := drainNow(t, r)
		if len(rest)%8 != 0 {
			t.Fatalf("round %d: %d bytes left in the pipe, not whole messages", round, len(rest))
		}
		for ; len(rest) > 0; rest = rest[8:] {
			got[binary.LittleEndian.Uint32(rest[4:8])]++
		}
		for i := range nmsg {
			if got[uint32(i)] != 1 {
				t.Fatalf("round %d: message %d seen %d times (read or left in the pipe)", round, i, got[uint32(i)])
			}
		}
		expectNoEventsFor(t, c, time.Millisecond)
	}
	t.Logf("%s: %v", be, seen)
}

// cfdTestBatchConcurrentSubmit: goroutines submit polls on one pipe while
// another calls CancelFD on it again and again. Nothing can end a poll on
// the empty pipe but a cancel, so every answer is Canceled or AllDone, never
// NotCanceled or an error; once the submitters stop, one more CancelFD takes
// the rest; and every poll submitted gets exactly one -ECANCELED event.
func cfdTestBatchConcurrentSubmit(t *testing.T, be string) {
	const submitters, perG, batch = 4, 96, 8
	r, _ := newPipe(t, 0)
	c := newContext(t, be, submitters*perG)
	cbs := make([][]*aio.IOCB, submitters)
	for g := range cbs {
		cbs[g] = cfdPolls(r, perG, uint64(g*perG))
	}
	var wg sync.WaitGroup
	errs := make(chan error, submitters)
	stop := make(chan struct{})
	for g := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i += batch {
				if n, err := c.Submit(cbs[g][i : i+batch]...); n != batch || err != nil {
					errs <- fmt.Errorf("goroutine %d: Submit = %d, %v", g, n, err)
					return
				}
				if i%(3*batch) == 0 {
					time.Sleep(20 * time.Microsecond)
				}
			}
		}()
	}
	seen := map[aio.CancelResult]int{}
	var cerr error
	cancelDone := make(chan struct{})
	go func() {
		defer close(cancelDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := c.CancelFD(r, nil)
			if err != nil || (res != aio.Canceled && res != aio.AllDone) {
				cerr = fmt.Errorf("CancelFD(r, nil) during submits = %v, %v; want Canceled or AllDone", res, err)
				return
			}
			seen[res]++
		}
	}()
	finishes(t, eventWait, "the submitters", wg.Wait)
	close(stop)
	finishes(t, eventWait, "the CancelFD loop", func() { <-cancelDone })
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if cerr != nil {
		t.Fatal(cerr)
	}
	res, err := cfdCancelFD(t, c, r)
	if err != nil || (res != aio.Canceled && res != aio.AllDone) {
		t.Fatalf("last CancelFD(r, nil) = %v, %v; want Canceled or AllDone", res, err)
	}
	total := submitters * perG
	evs := byIOCB(t, reapN(t, c, total))
	for _, g := range cbs {
		for _, cb := range g {
			ev, ok := evs[cb]
			if !ok {
				t.Fatalf("no event for poll Data %d", cb.Data)
			}
			wantEvent(t, ev, cb, cfdECANCELED, fmt.Sprintf("poll Data %d", cb.Data))
			cfdWantError(t, c, cb, unix.ECANCELED, fmt.Sprintf("poll Data %d", cb.Data))
		}
	}
	expectNoEvents(t, c)
	t.Logf("%s: %v", be, seen)
}

// cfdTestBatchDeadThread: polls and reads submitted from a thread that has
// exited since (io_uring ends such requests -ECANCELED and the library puts
// them in flight again, §10.6) are still canceled by CancelFD, each exactly
// once.
func cfdTestBatchDeadThread(t *testing.T, be string) {
	const npoll, nread = 64, 16
	r, _ := newPipe(t, 0)
	c := newContext(t, be, npoll+nread)
	all := append(cfdPolls(r, npoll, 0), cfdReads(r, nread, 8, 1000)...)
	var n int
	var serr error
	onDyingThread(t, func() { n, serr = c.Submit(all...) })
	if n != len(all) || serr != nil {
		t.Fatalf("Submit on the dying thread = %d, %v", n, serr)
	}
	// Let the reaper see the kernel's -ECANCELED and put them in flight again.
	expectNoEventsFor(t, c, 5*time.Millisecond)
	res, err := cfdCancelFD(t, c, r)
	cfdWantResult(t, res, err, aio.Canceled, "CancelFD(r, nil)")
	evs := byIOCB(t, reapN(t, c, len(all)))
	for _, cb := range all {
		ev, ok := evs[cb]
		if !ok {
			t.Fatalf("no event for Data %d", cb.Data)
		}
		wantEvent(t, ev, cb, cfdECANCELED, fmt.Sprintf("Data %d", cb.Data))
	}
	expectNoEvents(t, c)
}
