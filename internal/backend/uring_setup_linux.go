package backend

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/abi"
)

// Setting up a ring, and the optional kernel features it may use
//
// Each feature is asked for and, when the kernel refuses it, dropped: the
// ring then runs without it, and Features says which are on and why the
// others are not.
//
//   - IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG (5.19): a
//     completion does not interrupt the submitting thread with an IPI; it is
//     posted when that thread next enters or leaves the kernel (every Go
//     thread makes system calls often, and a sleeping one is woken). The
//     kernel sets IORING_SQ_TASKRUN in the SQ flags while such work waits,
//     and drain then enters with GETEVENTS to run it when it finds the CQ
//     ring empty. Refused with SQPOLL (the IPI flags mean nothing there).
//   - IORING_SETUP_SQPOLL (Config.SQPoll; 5.11 unprivileged): a kernel
//     thread consumes the SQ ring, so Submit publishes the tail, enters only
//     to wake the thread (IORING_SQ_NEED_WAKEUP), and waits until the thread
//     has consumed what it published (flushSQPoll), so that Submit means
//     what it means without SQPOLL. The thread spins on a CPU while
//     requests come and for the kernel's idle time (one second) after the
//     last one.
//   - A sparse fixed-file table (IORING_REGISTER_FILES2 with
//     IORING_RSRC_REGISTER_SPARSE, 5.19; before that IORING_REGISTER_FILES
//     with every entry -1, 5.12) and a sparse buffer table
//     (IORING_REGISTER_BUFFERS2, 5.19): package aio fills entries with
//     RegisterFile and RegisterBuffer (uring_files_linux.go).
//   - A registered ring descriptor (IORING_REGISTER_RING_FDS) is NOT used.
//     The kernel keeps it in the registering thread's io_uring context
//     (current->io_uring->registered_rings), so it is valid on that one
//     thread; Go runs a goroutine on whichever thread is free, and Destroy
//     cannot remove the registrations other threads made, which would keep
//     the ring alive after Destroy and leave a stale index that a later ring
//     could share. Features reports it off with that reason.

// ringx is the part of uring that set-up features add.
type ringx struct {
	sqpoll  bool // IORING_SETUP_SQPOLL: the kernel thread consumes the SQ
	taskrun bool // IORING_SETUP_TASKRUN_FLAG: honour IORING_SQ_TASKRUN
	feats   []Feature

	regMu     sync.Mutex
	fileFree  []int32  // free fixed-file entries, last taken first
	nFiles    int      // the table's size (0: none)
	bufFree   []uint16 // free buffer-table entries
	nBufs     int
	regClosed bool
}

// uringBufTable is the size of the sparse buffer table: a Buffers takes one
// entry per ring, and a program has few.
const uringBufTable = 64

// errRingFdsPerThread is why the registered ring descriptor is off.
var errRingFdsPerThread = errors.New("IORING_REGISTER_RING_FDS registers the ring for the calling thread only; Go moves goroutines between threads, and Destroy could not remove other threads' registrations")

// newUring sets up a ring able to hold slots outstanding requests.
func newUring(slots int, cfg Config) (*uring, error) {
	sq := pow2(uint32(min(slots, 4096)))
	if sq < 8 {
		sq = 8
	}
	// Every slot may have two CQEs alive at once (its own and its cancel's),
	// plus the wake NOP; the ring never overflows.
	cq := pow2(uint32(2*slots + 16))
	if cq > 2*abi.IORING_MAX_ENTRIES {
		cq = 2 * abi.IORING_MAX_ENTRIES
	}
	var feats []Feature
	// The flag sets to try, best first. A kernel that does not know a flag
	// refuses the whole set with EINVAL; the next set goes without it.
	coop := uint32(abi.IORING_SETUP_COOP_TASKRUN | abi.IORING_SETUP_TASKRUN_FLAG)
	base := uint32(abi.IORING_SETUP_CQSIZE)
	var tries []uint32
	if cfg.SQPoll {
		sqp := uint32(abi.IORING_SETUP_SQPOLL)
		tries = []uint32{base | abi.IORING_SETUP_SUBMIT_ALL | sqp, base | sqp}
	}
	tries = append(tries, base|abi.IORING_SETUP_SUBMIT_ALL|coop, base|abi.IORING_SETUP_SUBMIT_ALL, base)
	var p abi.UringParams
	var fd int
	var err error
	var sqpErr, coopErr error
	for _, flags := range tries {
		p = abi.UringParams{Flags: flags, CQEntries: cq}
		fd, err = uringSetup(sq, &p)
		if err == nil {
			break
		}
		if flags&abi.IORING_SETUP_SQPOLL != 0 {
			sqpErr = err
		} else if flags&coop != 0 {
			coopErr = err
		}
		// EINVAL: a flag this kernel does not know. EPERM on SQPOLL: an old
		// kernel that wants CAP_SYS_ADMIN for it. Anything else is not about
		// the flags.
		if err != unix.EINVAL && !(err == unix.EPERM && flags&abi.IORING_SETUP_SQPOLL != 0) {
			break
		}
	}
	if err != nil {
		return nil, uringSetupErr("io_uring_setup", err)
	}
	u := &uring{fd: fd, features: p.Features, st: make([]ustate, slots)}
	u.sqpoll = p.Flags&abi.IORING_SETUP_SQPOLL != 0
	u.taskrun = p.Flags&abi.IORING_SETUP_TASKRUN_FLAG != 0
	u.stage.wake = u.Wake
	fail := func(err error) (*uring, error) {
		if u.m != nil {
			u.m.unmap()
		}
		unix.Close(fd)
		return nil, err
	}
	if p.Features&abi.IORING_FEAT_EXT_ARG == 0 {
		return fail(fmt.Errorf("io_uring lacks IORING_FEAT_EXT_ARG (needs Linux 5.11): %w", ErrNotSupported))
	}
	if p.Features&abi.IORING_FEAT_NODROP == 0 {
		return fail(fmt.Errorf("io_uring lacks IORING_FEAT_NODROP (needs Linux 5.5): %w", ErrNotSupported))
	}
	var pr abi.Probe
	if err := uringProbe(fd, &pr); err != nil {
		return fail(uringSetupErr("IORING_REGISTER_PROBE", err))
	}
	for _, o := range uringOps {
		if o.op > pr.LastOp || pr.Ops[o.op].Flags&abi.IO_URING_OP_SUPPORTED == 0 {
			return fail(fmt.Errorf("io_uring does not support IORING_OP_%s: %w", o.name, ErrNotSupported))
		}
	}
	if u.m, err = mapUring(fd, &p); err != nil {
		return fail(uringSetupErr("mmap io_uring rings", err))
	}

	// The features, in the order Features reports them.
	switch {
	case u.taskrun:
		feats = append(feats, Feature{Name: "coop_taskrun", On: true})
	case u.sqpoll:
		feats = append(feats, Feature{Name: "coop_taskrun", Why: errors.New("not used with SQPOLL (the kernel refuses the pair)")})
	default:
		feats = append(feats, Feature{Name: "coop_taskrun", Why: fmt.Errorf("io_uring_setup refused IORING_SETUP_COOP_TASKRUN|TASKRUN_FLAG (needs Linux 5.19): %w", coopErr)})
	}
	switch {
	case u.sqpoll:
		feats = append(feats, Feature{Name: "sqpoll", On: true})
	case cfg.SQPoll:
		feats = append(feats, Feature{Name: "sqpoll", Why: fmt.Errorf("io_uring_setup refused IORING_SETUP_SQPOLL: %w", sqpErr)})
	default:
		feats = append(feats, Feature{Name: "sqpoll", Why: errors.New("not asked for (Options.SQPoll)")})
	}
	feats = append(feats, Feature{Name: "registered_ring", Why: errRingFdsPerThread})
	feats = append(feats, u.setupFiles(cfg.FixedFiles))
	feats = append(feats, u.setupBuffers(&pr))
	u.feats = feats
	return u, nil
}

// setupFiles registers an empty fixed-file table of n entries.
func (u *uring) setupFiles(n int) Feature {
	f := Feature{Name: "registered_files"}
	if n == 0 {
		n = DefaultFixedFiles
	}
	if n < 0 {
		f.Why = errors.New("the fixed-file table is turned off (Options.FixedFiles < 0)")
		return f
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && uint64(n) > lim.Cur {
		// The kernel refuses a table larger than RLIMIT_NOFILE (EMFILE).
		n = int(lim.Cur)
	}
	err := uringRegisterSparse(u.fd, abi.IORING_REGISTER_FILES2, uint32(n))
	if err == unix.EINVAL {
		// Before 5.19: a table of -1 entries, which 5.12 accepts.
		err = uringRegisterFilesEmpty(u.fd, n)
	}
	if err != nil {
		f.Why = fmt.Errorf("registering a fixed-file table of %d entries: %w", n, err)
		return f
	}
	u.nFiles = n
	u.fileFree = freeStack[int32](n)
	f.On = true
	return f
}

// freeStack is a table's free entries, n-1 down to 0, so that entry 0 is
// taken first (popped from the end).
func freeStack[T int32 | uint16](n int) []T {
	st := make([]T, n)
	for i := range st {
		st[i] = T(n - 1 - i)
	}
	return st
}

// setupBuffers registers an empty buffer table, when READ_FIXED and
// WRITE_FIXED are there.
func (u *uring) setupBuffers(pr *abi.Probe) Feature {
	f := Feature{Name: "registered_buffers"}
	for _, op := range []uint8{abi.IORING_OP_READ_FIXED, abi.IORING_OP_WRITE_FIXED} {
		if op > pr.LastOp || pr.Ops[op].Flags&abi.IO_URING_OP_SUPPORTED == 0 {
			f.Why = errors.New("io_uring lacks IORING_OP_READ_FIXED or WRITE_FIXED")
			return f
		}
	}
	if err := uringRegisterSparse(u.fd, abi.IORING_REGISTER_BUFFERS2, uringBufTable); err != nil {
		f.Why = fmt.Errorf("registering a sparse buffer table (IORING_REGISTER_BUFFERS2, Linux 5.19): %w", err)
		return f
	}
	u.nBufs = uringBufTable
	u.bufFree = freeStack[uint16](uringBufTable)
	f.On = true
	return f
}

// Features reports the optional features and whether this ring uses them.
func (u *uring) Features() []Feature { return append([]Feature(nil), u.feats...) }

// prepFixed turns e into its registered form: the fixed-file entry in place
// of the descriptor (IOSQE_FIXED_FILE), READ_FIXED/WRITE_FIXED on a
// registered buffer. Only plain reads and writes carry them.
func prepFixed(e *abi.SQE, r *Req) {
	if r.Op != OpRead && r.Op != OpWrite {
		return
	}
	if r.Fixed&FixedFile != 0 {
		e.Fd = r.FileIndex
		e.Flags |= abi.IOSQE_FIXED_FILE
	}
	if r.Fixed&FixedBuf != 0 {
		if r.Op == OpRead {
			e.Opcode = abi.IORING_OP_READ_FIXED
		} else {
			e.Opcode = abi.IORING_OP_WRITE_FIXED
		}
		e.BufIndex = r.BufIndex
	}
}

// flushSQPoll is flush with IORING_SETUP_SQPOLL: publishing the tail hands
// the SQEs to the kernel thread, which is woken if it sleeps
// (IORING_SQ_NEED_WAKEUP; the tail store and the flags load are sequentially
// consistent, as the kernel's ordering rule for this pair requires). It then
// waits until the thread has consumed them: the kernel advances the SQ head
// only after it has issued the batch and posted the completions that issuing
// produced (io_submit_sqes: io_submit_state_end, then io_commit_sqring), so
// when Submit returns a NOP has finished and an -EAGAIN of an O_NONBLOCK
// file is in the CQ ring for scanSubmitted, as without SQPOLL. The thread
// polls, so the wait is short; it yields the processor after a few spins,
// and sleeps after many, in case the thread is not running. Every SQE counts
// as taken: a failure comes as its CQE. With sqMu held.
func (u *uring) flushSQPoll() int {
	u.m.sqTail.Store(u.sqTail)
	n := int(u.pending)
	u.pending = 0
	for spins := 0; u.m.sqHead.Load() != u.sqTail; spins++ {
		if u.m.sqFlags.Load()&abi.IORING_SQ_NEED_WAKEUP != 0 {
			if _, err := uringEnter(u.fd, 0, 0, abi.IORING_ENTER_SQ_WAKEUP); err != nil && err != unix.EINTR {
				break // the thread is gone (the ring's owner exited): nothing will consume them
			}
		}
		switch {
		case spins < 64:
		case spins < 1024:
			runtime.Gosched()
		default:
			time.Sleep(10 * time.Microsecond)
		}
	}
	return n
}

// runTaskWork is called by drain when the CQ ring is empty: if the kernel
// flagged completions waiting as task work (IORING_SQ_TASKRUN, with
// COOP_TASKRUN), an enter with GETEVENTS and nothing to wait for runs this
// thread's share of it. It returns the CQ tail after.
func (u *uring) runTaskWork() uint32 {
	if u.m.sqFlags.Load()&abi.IORING_SQ_TASKRUN != 0 {
		_, _ = uringEnter(u.fd, 0, 0, abi.IORING_ENTER_GETEVENTS)
	}
	return u.m.cqTail.Load()
}
