//go:build linux

package uringaio_test

// Data integrity under churn (issue 5): O_DIRECT writes and reads at queue
// depth 128 across a file on a real filesystem, about a third of them hit by
// Cancel or CancelFD at random. A model holds each block's expected content:
// every write that was not canceled must be on disk (a write whose cancel
// failed counts as written), every read must return what the file holds at
// that moment (no read and write of one block are in flight together), and
// every request must end exactly once. A final pass reads every block back.
//
// CI runs a few thousand requests per backend; RELIABILITY_LONG=1 runs
// 200,000 (RELIABILITY_CHURN_N overrides either; RELIABILITY_SEED replays).

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

const (
	relBlockSize = 4096
	relBlocks    = 512 // 2 MiB file
	relDepth     = 128
)

// relBlockContent fills b with block's content at version: every 8-byte word
// says (block, version, word index).
func relBlockContent(b []byte, block int, version uint32) {
	for w := 0; w < len(b)/8; w++ {
		binary.LittleEndian.PutUint64(b[w*8:], uint64(block)<<44|uint64(version)<<12|uint64(w))
	}
}

// relBlockVersion decodes a block's content: the version if every word is
// consistent with block, else ok false.
func relBlockVersion(b []byte, block int) (version uint32, ok bool) {
	first := binary.LittleEndian.Uint64(b)
	version = uint32(first>>12) & (1<<32 - 1)
	for w := 0; w < len(b)/8; w++ {
		if binary.LittleEndian.Uint64(b[w*8:]) != uint64(block)<<44|uint64(version)<<12|uint64(w) {
			return 0, false
		}
	}
	return version, true
}

type relChurnReq struct {
	cb       *aio.IOCB
	slot     int
	block    int
	write    bool
	version  uint32 // written version
	cancel   bool   // a cancel was attempted
	fdCancel bool   // CancelFD canceled it (Error said ECANCELED): its event must be -ECANCELED
	ended    bool
}

type relChurnStats struct {
	requests, writes, reads, vectored                   int
	cancelAttempts, cancelStopped, cancelRefused        int
	cancelDelivered                                     int
	cancelFDAttempts, fdCanceled, fdNotCanceled, fdDone int
	cancelFDAll                                         int
	canceledWrites, canceledReads                       int
	uncertainWrites                                     int
	verifiedReads                                       int
}

func relChurnCount() int {
	if s := os.Getenv("RELIABILITY_CHURN_N"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if os.Getenv("RELIABILITY_LONG") == "1" {
		return 200000
	}
	return 4000
}

func TestRelChurnODirect(t *testing.T) {
	dir := relDiskDir(t)
	n := relChurnCount()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RELIABILITY_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	relEachBackend(t, func(t *testing.T, be string) {
		t.Logf("seed %d (RELIABILITY_SEED replays), %d requests", seed, n)
		start := time.Now()
		st := relChurn(t, be, filepath.Join(dir, "churn-"+be), n, seed)
		t.Logf("%s: %d requests (%d writes, %d reads, %d vectored) at depth %d in %v; "+
			"cancel attempts %d (Cancel %d: %d stopped, %d refused, %d already delivered (EINVAL); CancelFD %d: %d Canceled, %d NotCanceled, %d AllDone; %d CancelFD(fd, nil)); "+
			"canceled writes %d, canceled reads %d, uncertain writes %d; %d reads verified in flight, %d blocks verified at the end",
			be, st.requests, st.writes, st.reads, st.vectored, relDepth, time.Since(start).Round(time.Millisecond),
			st.cancelAttempts+st.cancelFDAttempts, st.cancelAttempts, st.cancelStopped, st.cancelRefused, st.cancelDelivered,
			st.cancelFDAttempts, st.fdCanceled, st.fdNotCanceled, st.fdDone, st.cancelFDAll,
			st.canceledWrites, st.canceledReads, st.uncertainWrites, st.verifiedReads, relBlocks)
	})
}

func relChurn(t *testing.T, be, path string, total int, seed uint64) relChurnStats {
	rng := rand.New(rand.NewPCG(seed, uint64(len(be))))
	var st relChurnStats

	// The file, every block at version 0, on disk.
	init := make([]byte, relBlocks*relBlockSize)
	for b := range relBlocks {
		relBlockContent(init[b*relBlockSize:(b+1)*relBlockSize], b, 0)
	}
	if err := os.WriteFile(path, init, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	c := relCtx(t, be, relDepth)
	// versions[b]: the versions block b may hold (one, unless a canceled
	// write's fate is unknown)
	versions := make([]map[uint32]bool, relBlocks)
	for b := range versions {
		versions[b] = map[uint32]bool{0: true}
	}
	busy := make([]bool, relBlocks)
	bufs := relAligned(relDepth*relBlockSize, relBlockSize)
	freeSlots := make([]int, 0, relDepth)
	for s := range relDepth {
		freeSlots = append(freeSlots, s)
	}
	inflight := map[uint64]*relChurnReq{}
	var nextID uint64
	var nextVersion uint32
	evs := make([]aio.Event, relDepth)

	end := func(r *relChurnReq, res int64, via string) {
		if r.ended {
			t.Fatalf("request %d (block %d, write %v) ended twice (%s)", r.cb.Data, r.block, r.write, via)
		}
		r.ended = true
		delete(inflight, r.cb.Data)
		busy[r.block] = false
		buf := bufs[r.slot*relBlockSize : (r.slot+1)*relBlockSize]
		freeSlots = append(freeSlots, r.slot)
		canceled := res == -int64(unix.ECANCELED)
		switch {
		case r.fdCancel && !canceled:
			t.Fatalf("request %d: CancelFD canceled it but its event has Res %d", r.cb.Data, res)
		case canceled && !r.fdCancel && via != "Cancel":
			t.Fatalf("request %d (write %v) ended with -ECANCELED that no call reported", r.cb.Data, r.write)
		case canceled:
			if r.write {
				st.canceledWrites++ // nothing moved: the block keeps what it had
			} else {
				st.canceledReads++
			}
			return
		case res < 0 && r.cancel:
			// an interrupted request (io-wq may say -EINTR): its data may or
			// may not have moved
			if r.write {
				versions[r.block][r.version] = true
				st.uncertainWrites++
			}
			return
		case res != relBlockSize:
			t.Fatalf("request %d (block %d, write %v): Res %d (%v), want %d", r.cb.Data, r.block, r.write, res, aio.Event{Res: res}.Err(), relBlockSize)
		}
		if r.write {
			versions[r.block] = map[uint32]bool{r.version: true}
			return
		}
		v, ok := relBlockVersion(buf, r.block)
		if !ok || !versions[r.block][v] {
			t.Fatalf("read of block %d returned version %d (consistent %v); the file holds one of %v", r.block, v, ok, versions[r.block])
		}
		if len(versions[r.block]) > 1 {
			versions[r.block] = map[uint32]bool{v: true} // now known
		}
		st.verifiedReads++
	}

	// cancelOne cancels r with Cancel (4 in 5) or CancelFD(fd, r).
	// A request that already ended (its event was delivered) gets the
	// answers for that: Cancel EINVAL, CancelFD AllDone.
	cancelOne := func(r *relChurnReq) {
		r.cancel = true
		if rng.IntN(5) != 0 {
			st.cancelAttempts++
			ev, err := c.Cancel(r.cb)
			switch {
			case r.ended:
				if !relIsErrno(err, unix.EINVAL) {
					t.Fatalf("Cancel(delivered) = %+v, %v; want EINVAL", ev, err)
				}
				st.cancelDelivered++
			case err == nil:
				if ev.IOCB != r.cb || ev.Res != -int64(unix.ECANCELED) || ev.Data != r.cb.Data {
					t.Fatalf("Cancel = %+v", ev)
				}
				st.cancelStopped++
				end(r, ev.Res, "Cancel")
			case relIsErrno(err, unix.EAGAIN):
				st.cancelRefused++
			default:
				t.Fatalf("Cancel(in flight) = %v", err)
			}
			return
		}
		st.cancelFDAttempts++
		res, err := c.CancelFD(fd, r.cb)
		if err != nil {
			t.Fatalf("CancelFD(fd, cb) = %v", err)
		}
		if r.ended && res != aio.AllDone {
			t.Fatalf("CancelFD(fd, delivered) = %v; want AllDone", res)
		}
		switch res {
		case aio.Canceled:
			st.fdCanceled++
			if e := c.Error(r.cb); !relIsErrno(e, unix.ECANCELED) {
				t.Fatalf("CancelFD said Canceled, Error = %v", e)
			}
			r.fdCancel = true
		case aio.NotCanceled:
			st.fdNotCanceled++
		case aio.AllDone:
			st.fdDone++
		}
	}

	for st.requests < total || len(inflight) > 0 {
		// Fill the queue.
		var batch []*relChurnReq
		want := min(relDepth-len(inflight), total-st.requests, 1+rng.IntN(48))
		for range want {
			block := rng.IntN(relBlocks)
			if busy[block] {
				continue
			}
			slot := freeSlots[len(freeSlots)-1]
			freeSlots = freeSlots[:len(freeSlots)-1]
			buf := bufs[slot*relBlockSize : (slot+1)*relBlockSize]
			nextID++
			r := &relChurnReq{cb: &aio.IOCB{FD: fd, Offset: int64(block) * relBlockSize, Data: nextID}, slot: slot, block: block}
			r.write = rng.IntN(2) == 0
			if r.write {
				nextVersion++
				r.version = nextVersion
				relBlockContent(buf, block, r.version)
				st.writes++
			} else {
				for i := range buf {
					buf[i] = 0xAB
				}
				st.reads++
			}
			if rng.IntN(4) == 0 {
				st.vectored++
				r.cb.Bufs = [][]byte{buf[:2048], buf[2048:]}
				r.cb.Op = aio.OpReadv
				if r.write {
					r.cb.Op = aio.OpWritev
				}
			} else {
				r.cb.Buf = buf
				r.cb.Op = aio.OpRead
				if r.write {
					r.cb.Op = aio.OpWrite
				}
			}
			busy[block] = true
			inflight[r.cb.Data] = r
			batch = append(batch, r)
		}
		if len(batch) > 0 {
			cbs := make([]*aio.IOCB, len(batch))
			for i, r := range batch {
				cbs[i] = r.cb
			}
			if k, err := c.Submit(cbs...); k != len(cbs) || err != nil {
				t.Fatalf("Submit(%d) with %d in flight = %d, %v", len(cbs), len(inflight)-len(batch), k, err)
			}
			st.requests += len(batch)
		}

		// Cancel about a third: half at once, half after the next GetEvents.
		if rng.IntN(500) == 0 && len(inflight) > 0 {
			st.cancelFDAll++
			if _, err := c.CancelFD(fd, nil); err != nil {
				t.Fatalf("CancelFD(fd, nil) = %v", err)
			}
			for _, q := range inflight {
				q.cancel = true
				if relIsErrno(c.Error(q.cb), unix.ECANCELED) {
					q.fdCancel = true
				}
			}
		}
		var later []*relChurnReq
		for _, r := range batch {
			if rng.IntN(3) != 0 {
				continue
			}
			if rng.IntN(2) == 0 {
				later = append(later, r)
				continue
			}
			cancelOne(r)
		}

		// Reap.
		if len(inflight) == 0 {
			continue
		}
		minNr := 1
		if rng.IntN(3) == 0 {
			minNr = min(len(inflight), 1+rng.IntN(16))
		}
		k, err := c.GetEvents(minNr, evs, relTimeout(10*time.Second))
		if err != nil {
			t.Fatalf("GetEvents: %v", err)
		}
		if k == 0 {
			t.Fatalf("no completion in 10 s with %d in flight", len(inflight))
		}
		for _, ev := range evs[:k] {
			r := inflight[ev.Data]
			if r == nil || r.cb != ev.IOCB {
				t.Fatalf("event %+v for no request in flight", ev)
			}
			end(r, ev.Res, "GetEvents")
		}
		for _, r := range later {
			cancelOne(r)
		}
	}
	relNoEvents(t, c, 10*time.Millisecond)

	// fsync through the library, then read every block back, O_DIRECT.
	sync := &aio.IOCB{Op: aio.OpFsync, FD: fd}
	relSubmit(t, c, sync)
	if ev := relOne(t, c, sync); ev.Res != 0 {
		t.Fatalf("fsync: %+v (%v)", ev, ev.Err())
	}
	buf := relAligned(relBlockSize, relBlockSize)
	for b := range relBlocks {
		if k, err := unix.Pread(fd, buf, int64(b)*relBlockSize); k != relBlockSize || err != nil {
			t.Fatalf("pread block %d: %d, %v", b, k, err)
		}
		v, ok := relBlockVersion(buf, b)
		if !ok || !versions[b][v] {
			t.Fatalf("final pass: block %d holds version %d (consistent %v); want one of %v", b, v, ok, versions[b])
		}
	}
	return st
}
