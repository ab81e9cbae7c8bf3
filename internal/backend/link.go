package backend

// Chains (IOCB.Link in package aio): requests that run one after the other,
// each starting only once the one before it succeeded, as io_uring's
// IOSQE_IO_LINK orders them. io_uring gets the chain whole, in one
// submission, and keeps the order itself. Classic AIO and the threads
// backend have no such thing: package aio keeps the order for them (it hands
// a chain's next request to the backend when the one before it has
// succeeded), so these backends only ever see chains through the uring
// backend's Submit.
const (
	LinkNext uint8 = 1 << iota // the next Req of this Submit starts after this one succeeds
	LinkPrev                   // this Req starts after the one before it succeeds
)

// Chained reports whether r belongs to a chain. Its -EAGAIN and -ECANCELED
// are then its answer: the kernel has already ended the rest of the chain
// because of them, so trying r again by itself would break the order.
func (r *Req) Chained() bool { return r.Link != 0 }

// LinkedBackend is implemented by a backend that keeps a chain's order
// itself (io_uring); package aio keeps it for the others.
type LinkedBackend interface {
	// KernelLinks reports whether chains given to Submit (Req.Link) are
	// ordered by the kernel.
	KernelLinks() bool
}

// MaxChain is the most requests one chain may hold (package aio refuses a
// longer one): every io_uring SQ ring takes a chain this long in one
// submission (its SQ ring holds min(maxEvents, 4096) or more, and a
// chain is never longer than maxEvents).
const MaxChain = 256
