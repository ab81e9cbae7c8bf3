package backend

// Per-request flags (IOCB.RWFlags): the RWF_* bits of include/uapi/linux/fs.h
// that preadv2(2)/pwritev2(2), classic AIO's aio_rw_flags and io_uring's
// rw_flags all take. Spelled as numbers because this file builds where
// x/sys/unix has no names for them.
const (
	RWFHiPri  = 0x01 // RWF_HIPRI: poll for completion (O_DIRECT on a polling device)
	RWFDsync  = 0x02 // RWF_DSYNC: this write is O_DSYNC
	RWFSync   = 0x04 // RWF_SYNC: this write is O_SYNC
	RWFNowait = 0x08 // RWF_NOWAIT: do not wait for data or locks; -EAGAIN instead
	RWFAppend = 0x10 // RWF_APPEND: this write goes at the end of the file (O_APPEND)

	// RWFKnown are the bits package aio accepts; any other is refused at
	// Submit with EINVAL on every backend.
	RWFKnown = RWFHiPri | RWFDsync | RWFSync | RWFNowait | RWFAppend
)

// Nowait reports whether the caller asked for RWF_NOWAIT: a -EAGAIN (or a
// short count) is then the request's answer, never a cue for the backend to
// wait and try again.
func (r *Req) Nowait() bool { return r.RWFlags&RWFNowait != 0 }
