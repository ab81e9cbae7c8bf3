//go:build unix

package backend

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// threads is the user-space backend (SPEC §9 "threads"): a pool of worker
// goroutines making blocking system calls, as glibc's POSIX AIO does, plus
// one poller for readiness waits. It needs no kernel AIO mechanism, so it
// runs on every Unix Go supports and wherever io_uring and classic AIO are
// refused (seccomp, kernel.io_uring_disabled, fs.aio-max-nr).
//
// Submit binds each request to the file its descriptor names at that moment:
// the pool works on a duplicate of the descriptor (F_DUPFD_CLOEXEC) that it
// owns and closes, shared by the requests outstanding on the same open file
// (pool_fd.go: kcmp proves the number still names it), so a caller that
// closes the number and opens another file under it cannot redirect a
// request still queued or waiting. The cost is one fcntl and one close per
// open file, and one kcmp per further request. A File's request (Req.Hint
// HintHeld) needs none of that: its descriptor is held open for its life
// (RawConn.Control), so the pool works on the number itself. When the
// duplicate cannot be made (EMFILE: the process is at RLIMIT_NOFILE; EBADF:
// not an open descriptor) the request
// ends at once with that errno as an inline completion: it was accepted, and
// its event carries the failure, as a per-request failure does on the kernel
// backends (SPEC §3). Working on the caller's number instead would break the
// binding rule, and refusing the whole Submit would report a per-request
// failure as a Submit error.
//
// What runs where (try): a Nop completes inline, and so do a poll that is
// ready and a read or write on a pollable file that moves data at once with
// RWF_NOWAIT. Otherwise a poll waits in the poller. A read or write on a
// regular file, block device or directory (fstat at Submit, unless the
// request's Hint says: a File's requests carry their file's kind) is one
// preadv/pwritev at the offset on a worker; on anything else (pipe, socket,
// tty, eventfd, other character devices) it waits for readiness in the poller
// and then transfers at the current position. Fsync, fdatasync,
// sync_file_range, fallocate and posix_fadvise run on a worker (Linux;
// elsewhere the last three end with ENOSYS: rangeop_other.go).
//
// Cancel: a request queued for a worker or waiting for readiness is stopped
// (CancelPending; its -ECANCELED event follows); a running transfer is not
// (CancelRefused; its event comes later), since a thread blocked in pread
// cannot be stopped without signals. After readiness the pool moves data only
// with calls that cannot block (pool.go: RWF_NOWAIT, a non-blocking open of
// its own for FIFOs and terminals, or a guarded plain call), so a read that
// loses its data to another reader waits again, cancelable
// (docs/contract.md §3.11).
type threads struct {
	p *pool

	mu    sync.Mutex
	ready []Completion // finished, not yet reaped, oldest first
	need  int          // a Reap waits until ready holds this many (0: none waits)
	woken bool         // Wake was called; the next waiting Reap returns at once
	sig   chan struct{}

	timer *time.Timer // the reaper's; one Reap at a time
}

// startThreads is newThreads as a Backend (a nil interface on failure).
func startThreads(workers int) (Backend, error) {
	t, err := newThreads(workers)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func newThreads(workers int) (*threads, error) {
	t := &threads{sig: make(chan struct{}, 1)}
	p, err := newPool(workers, t.done)
	if err != nil {
		return nil, err
	}
	// threads' done only queues the completion under t.mu, which no caller
	// of Cancel holds: a canceled request is delivered on Cancel's own
	// goroutine, without waking the poller's thread.
	p.cancelDone = true
	t.p = p
	return t, nil
}

func (t *threads) Name() string { return "threads" }

// done is the pool's completion callback.
func (t *threads) done(c Completion) {
	t.mu.Lock()
	t.ready = append(t.ready, c)
	if t.need > 0 && len(t.ready) >= t.need {
		t.need = 0
		t.signalLocked()
	}
	t.mu.Unlock()
}

func (t *threads) signalLocked() {
	select {
	case t.sig <- struct{}{}:
	default:
	}
}

func (t *threads) Submit(reqs []Req, inline []Completion) (int, int, error) {
	ninl := 0
	var starts []poolStart
	lastFD, lastDF := int32(-1), (*dfile)(nil)
	for i := range reqs {
		r := &reqs[i]
		how, res, done := t.try(r)
		if !done {
			// Bind the request to the file: the pool gets its own descriptor.
			// res is what try moved already (a short first try). A number
			// names one file for the whole Submit call, so requests in a
			// row on one number share what the first one acquired.
			if r.Hint&HintHeld != 0 {
				// A File's request: the number is held open for the
				// request's life, so it needs no duplicate.
				starts = append(starts, poolStart{r: r, how: how, moved: res})
				continue
			}
			if lastDF != nil && r.FD == lastFD {
				starts = append(starts, poolStart{r: r, df: lastDF, how: how, moved: res, addRef: true})
				continue
			}
			df, err := t.p.acquire(r.FD)
			if err == nil {
				starts = append(starts, poolStart{r: r, df: df, how: how, moved: res})
				lastFD, lastDF = r.FD, df
				continue
			}
			res = errnoRes(err)
		}
		inline[ninl] = Completion{Tag: r.Tag, Res: res}
		ninl++
	}
	if len(starts) > 0 {
		t.p.startMany(starts) // one lock round for the batch
	}
	return len(reqs), ninl, nil
}

// try finishes r on the submitting goroutine when that cannot block: a Nop, a
// poll whose events are already there, a read or write on a pipe, socket or
// tty that moves data at once with RWF_NOWAIT, a read or write of a regular
// file (not O_DIRECT) that the page cache serves in full, a bad descriptor.
// Otherwise it says how the pool must carry r out, and res is how many bytes
// a short first try moved already. Everything here uses r.FD, which names
// the request's file for the whole Submit call.
//
// Finishing at Submit is what the kernel backends do (a ready poll and a
// readable pipe complete inside io_submit or io_uring_enter), so Cancel
// answers alike on all of them; and a pipe read that finds data costs one
// system call instead of a dup, a hand-off to the poller and a close.
func (t *threads) try(r *Req) (how uint8, res int64, done bool) {
	switch r.Op {
	case OpNop:
		return 0, 0, true
	case OpPoll:
		mask := pollNow(int(r.FD), r.PollEvents)
		if mask&unix.POLLNVAL != 0 {
			return 0, -int64(unix.EBADF), true
		}
		if mask != 0 {
			return 0, int64(mask), true
		}
		return poolPoll, 0, false
	case OpFsync, OpFdsync, OpSyncFileRange, OpFallocate, OpFadvise:
		return poolRun, 0, false
	}
	waits, errno := r.Hint&HintStream != 0, unix.Errno(0)
	if r.Hint&(HintStorage|HintStream) == 0 {
		waits, errno = waitsForReadiness(int(r.FD))
	}
	switch {
	case errno != 0:
		return 0, -int64(errno), true
	case r.RWFlags != 0 && (!waits || r.Nowait()):
		return tryFlags(r, waits)
	case !waits:
		// Storage: what the page cache holds is copied here at the cost of
		// pread(2) (not for O_DIRECT, which would wait for the device);
		// the rest, or all of it, goes to a worker.
		if haveNowait && (r.Op == OpRead || r.Op == OpWrite) && !direct(r) {
			b := reqBufs(r, 0)
			switch res := rwAtNowait(isWrite(r.Op), int(r.FD), &b, r.Off); {
			case res == int64(r.Len) || res == 0 && r.Op == OpRead:
				return 0, res, true // all of it, or the end of the file
			case res > 0:
				return poolRun, res, false // continued on a worker
			}
		}
		return poolRun, 0, false
	case haveNowait:
		b := reqBufs(r, 0)
		res := rwCur(isWrite(r.Op), int(r.FD), &b, true, r.RWFlags)
		if res != -int64(unix.EAGAIN) && res != -int64(unix.EOPNOTSUPP) {
			return 0, res, true
		}
	}
	return poolWait, 0, false
}

// direct reports whether r's file is O_DIRECT: as its Hint says for a File's
// request (the File read its flags once), else asked (F_GETFL).
func direct(r *Req) bool {
	if r.Hint&HintHeld != 0 {
		return r.Hint&HintDirect != 0
	}
	return isDirect(int(r.FD))
}

// waitsForReadiness reports whether reads and writes on fd wait for
// readiness (pipe, socket, character device, eventfd and other anonymous
// inodes) rather than for storage (regular file, block device, directory).
func waitsForReadiness(fd int) (bool, unix.Errno) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		if e, ok := err.(unix.Errno); ok {
			return false, e
		}
		return false, unix.EIO
	}
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFBLK, unix.S_IFDIR:
		return false, 0
	}
	return true, 0
}

// Reap takes finished requests. With wait > 0 and fewer than wait there, it
// blocks until there are wait, the timeout expires, or Wake is called (Wake
// ends any wait here, not only a wait for one).
func (t *threads) Reap(cs []Completion, wait int, timeout time.Duration) (int, error) {
	t.mu.Lock()
	if wait > 0 && timeout != 0 && len(t.ready) < wait {
		if t.woken {
			t.woken = false
		} else {
			t.need = wait
			select { // a signal left from an earlier wait
			case <-t.sig:
			default:
			}
			t.mu.Unlock()
			t.block(timeout)
			t.mu.Lock()
			t.need, t.woken = 0, false
		}
	}
	n := copy(cs, t.ready)
	m := copy(t.ready, t.ready[n:])
	clear(t.ready[m:])
	t.ready = t.ready[:m]
	t.mu.Unlock()
	return n, nil
}

func (t *threads) block(timeout time.Duration) {
	if timeout < 0 {
		<-t.sig
		return
	}
	if t.timer == nil {
		t.timer = time.NewTimer(timeout)
	} else {
		t.timer.Reset(timeout)
	}
	select {
	case <-t.sig:
		t.timer.Stop()
		select { // a value already sent (timers before Go 1.23's semantics)
		case <-t.timer.C:
		default:
		}
	case <-t.timer.C:
	}
}

func (t *threads) Cancel(tag uint64) (CancelAnswer, error) {
	return t.p.cancel(tag), nil
}

func (t *threads) CancelMany(tags []uint64, answers []CancelAnswer) error {
	t.p.cancelMany(tags, answers)
	return nil
}

// Wake ends a Reap that is waiting, or the next one to wait.
func (t *threads) Wake() {
	t.mu.Lock()
	t.woken = true
	if t.need > 0 {
		t.signalLocked()
	}
	t.mu.Unlock()
}

// Close stops the pool; every request has completed (package aio waits), so
// nothing is left to cancel.
func (t *threads) Close() error {
	t.p.close()
	return nil
}

var _ Backend = (*threads)(nil)
