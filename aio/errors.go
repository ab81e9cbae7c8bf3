package aio

import (
	"golang.org/x/sys/unix"
)

// CallError is a refusal by one of the Context's calls: the call's name, the
// errno a C programmer would expect from the matching kernel call, and why.
// errors.Is(err, unix.EINVAL) and the like work on it.
type CallError struct {
	Call   string     // "Submit", "GetEvents", "Cancel", …
	Errno  unix.Errno // the errno
	Reason string     // a short explanation
}

func (e *CallError) Error() string {
	return "aio: " + e.Call + ": " + e.Errno.Error() + ": " + e.Reason
}

// Unwrap returns the errno.
func (e *CallError) Unwrap() error { return e.Errno }

// RequestError is a request's own failure, from its Event (Event.Err) or from
// the context-aware calls.
type RequestError struct {
	Op    Op
	Errno unix.Errno
}

func (e *RequestError) Error() string { return "aio " + e.Op.String() + ": " + e.Errno.Error() }

// Unwrap returns the errno.
func (e *RequestError) Unwrap() error { return e.Errno }

// The refusals are allocated once: the hot paths that return them (EAGAIN from
// Submit and Cancel) must not allocate.
var (
	errDestroyed        = &CallError{"Submit", unix.EINVAL, "context destroyed"}
	errSubmitNil        = &CallError{"Submit", unix.EINVAL, "nil IOCB"}
	errSubmitOp         = &CallError{"Submit", unix.EINVAL, "unknown Op"}
	errSubmitOffset     = &CallError{"Submit", unix.EINVAL, "negative Offset"}
	errSubmitPoll       = &CallError{"Submit", unix.EINVAL, "Poll with PollEvents 0"}
	errSubmitPollBits   = &CallError{"Submit", unix.EINVAL, "PollEvents has bits outside poll(2)'s (>= 1<<16)"}
	errSubmitBoth       = &CallError{"Submit", unix.EINVAL, "both Buf and Bufs set"}
	errSubmitIOV        = &CallError{"Submit", unix.EINVAL, "more than MaxIOV (1024) Bufs"}
	errSubmitLen        = &CallError{"Submit", unix.EINVAL, "transfer longer than MaxRW"}
	errSubmitFD         = &CallError{"Submit", unix.EINVAL, "FD out of range"}
	errSubmitBusy       = &CallError{"Submit", unix.EBUSY, "IOCB still outstanding"}
	errSubmitFull       = &CallError{"Submit", unix.EAGAIN, "maxEvents requests outstanding"}
	errGetDestroyed     = &CallError{"GetEvents", unix.EINVAL, "context destroyed"}
	errGetArgs          = &CallError{"GetEvents", unix.EINVAL, "minNr < 0 or minNr > len(events)"}
	errCancelNil        = &CallError{"Cancel", unix.EFAULT, "nil IOCB"}
	errCancelDestroyed  = &CallError{"Cancel", unix.EINVAL, "context destroyed"}
	errCancelForeign    = &CallError{"Cancel", unix.EINVAL, "IOCB not submitted to this context"}
	errCancelDelivered  = &CallError{"Cancel", unix.EINVAL, "event already delivered"}
	errCancelAgain      = &CallError{"Cancel", unix.EAGAIN, "request could not be stopped; its event will be delivered"}
	errCancelFDBad      = &CallError{"CancelFD", unix.EBADF, "not an open file descriptor"}
	errCancelFDMismatch = &CallError{"CancelFD", unix.EINVAL, "cb.FD != fd"}
	errCancelFDForeign  = &CallError{"CancelFD", unix.EINVAL, "IOCB not submitted to this context"}
	errCancelFDDead     = &CallError{"CancelFD", unix.EINVAL, "context destroyed"}
	errErrorNil         = &CallError{"Error", unix.EINVAL, "nil IOCB"}
	errErrorForeign     = &CallError{"Error", unix.EINVAL, "IOCB not submitted to this context"}
	errDestroyTwice     = &CallError{"Destroy", unix.EINVAL, "context already destroyed"}
	errDoDestroyed      = &CallError{"Do", unix.EINVAL, "context destroyed"}
	errSetupMax         = &CallError{"Setup", unix.EINVAL, "maxEvents must be between 1 and 32768"}
)

// errInProgress is what Error returns for an outstanding request.
var errInProgress error = unix.EINPROGRESS
