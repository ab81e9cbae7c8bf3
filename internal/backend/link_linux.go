package backend

import "github.com/uringaio/uringaio/internal/abi"

// KernelLinks: io_uring orders a chain itself (IOSQE_IO_LINK).
func (u *uring) KernelLinks() bool { return true }

// prepLink fills what the request's RWFlags and Link ask of its SQE: the
// RWF_* bits in rw_flags (a transfer's only), IOSQE_IO_LINK on every member
// of a chain but the last.
func prepLink(e *abi.SQE, r *Req) {
	if r.isTransfer() {
		// RWF_HIPRI asks the kernel to poll for the completion, which
		// io_uring does only on a ring set up with IORING_SETUP_IOPOLL and
		// otherwise refuses (-EINVAL). The ring is not one, and classic
		// AIO drops the bit ("no one is going to poll for this I/O",
		// aio_prep_rw), so it is dropped here too: the request runs as
		// it would without it, as on kaio (rwflags.go).
		e.OpFlags = uint32(r.RWFlags &^ RWFHiPri)
	}
	if r.Link&LinkNext != 0 {
		e.Flags |= abi.IOSQE_IO_LINK
	}
}

// chainWontFit reports whether reqs begins a chain that the SQ ring cannot
// take whole now: the chain must go in with one io_uring_enter, since the
// kernel ends a chain at the end of each submission, so the ring is flushed
// first. A chain is at most MaxChain and maxEvents long, which an empty SQ
// ring holds (newUring makes it min(maxEvents, 4096) or more). With sqMu
// held.
func (u *uring) chainWontFit(reqs []Req) bool {
	if reqs[0].Link != LinkNext {
		return false // not a chain's head
	}
	n := uint32(1)
	for n < uint32(len(reqs)) && reqs[n-1].Link&LinkNext != 0 {
		n++
	}
	return u.sqTail-u.m.sqHead.Load()+n > u.m.sqEntries
}
