package aio

import (
	"errors"
	"syscall"
)

// Every error the package makes reads "aio: " + the call or the operation +
// ": " + what happened: CallError ("aio: Submit: …"), RequestError and
// CanceledError ("aio: read: …"), and Setup's backend selection ("aio: Setup:
// …", from internal/backend). A refusal names the call the program made,
// whichever call refused underneath: ReadAt's say ReadAt though ReadAt runs
// on Do, and Do's say Do though Submit's checks refused. File's errors wrap
// them in an *os.PathError, as the os package does ("read /path: aio:
// ReadAt: …", "read /path: aio: read: …").

// CallError is a refusal by one of the Context's calls: the call's name, the
// errno a C programmer would expect from the matching kernel call, and why.
// errors.Is(err, syscall.EINVAL) and the like work on it.
type CallError struct {
	// Call is the name of the call the program made: "Setup", "Submit",
	// "GetEvents", "Cancel", "CancelFD", "Error", "Destroy", "Do", "ReadAt"
	// or "WriteAt" (File.ReadAt's and File.WriteAt's too); "NewFile" or
	// "NewFileConn" for the calls of a File made without a Context;
	// "Register" (File.Register), "NewBuffers" and "Release" (Buffers).
	Call string
	// Errno is the errno the matching kernel call would give; Unwrap
	// returns it.
	Errno syscall.Errno
	// Reason says what was wrong, in a few words.
	Reason string

	destroyed bool // refused because the Context was destroyed
}

func (e *CallError) Error() string {
	return "aio: " + e.Call + ": " + e.Errno.Error() + ": " + e.Reason
}

// Unwrap returns the errno.
func (e *CallError) Unwrap() error { return e.Errno }

// Is reports whether target is ErrDestroyed and the call was refused because
// the Context had been destroyed.
func (e *CallError) Is(target error) bool { return target == ErrDestroyed && e.destroyed }

// ErrDestroyed is matched, with errors.Is, by every refusal of a call on a
// destroyed Context (each also matches EINVAL), and by File's errors
// wrapping one: the program destroyed the Context while it still used it.
var ErrDestroyed = errors.New("aio: context destroyed")

// RequestError is a request's own failure, from its Event (Event.Err) or from
// the context-aware calls.
type RequestError struct {
	// Op is the failed request's operation (0 for an Event with no IOCB).
	Op Op
	// Errno is the failure: the negated Event.Res. Unwrap returns it.
	Errno syscall.Errno
}

func (e *RequestError) Error() string { return "aio: " + e.Op.String() + ": " + e.Errno.Error() }

// Unwrap returns the errno.
func (e *RequestError) Unwrap() error { return e.Errno }

// The refusals are allocated once: the hot paths that return them (EAGAIN from
// Submit and Cancel) must not allocate.
var (
	errDestroyed        = destroyedRefusal("Submit", "context destroyed")
	errSubmitNil        = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "nil IOCB"}
	errSubmitOp         = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "unknown Op"}
	errSubmitOffset     = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "negative Offset"}
	errSubmitPoll       = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "Poll with PollEvents 0"}
	errSubmitPollBits   = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "PollEvents has bits outside poll(2)'s (>= 1<<16)"}
	errSubmitBoth       = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "both Buf and Bufs set"}
	errSubmitIOV        = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "more than MaxIOV (1024) Bufs"}
	errSubmitLen        = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "transfer longer than MaxRW"}
	errSubmitFD         = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "FD out of range"}
	errSubmitRangeArgs  = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "Len or Flags set for an Op that takes neither"}
	errSubmitRangeLen   = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "negative Len"}
	errSubmitSyncFlags  = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "Flags has bits outside SYNC_FILE_RANGE_WAIT_BEFORE|WRITE|WAIT_AFTER"}
	errSubmitFallocLen  = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "fallocate with Len 0"}
	errSubmitBusy       = &CallError{Call: "Submit", Errno: syscall.EBUSY, Reason: "IOCB still outstanding"}
	errSubmitFull       = &CallError{Call: "Submit", Errno: syscall.EAGAIN, Reason: "maxEvents requests outstanding"}
	errGetDestroyed     = destroyedRefusal("GetEvents", "context destroyed")
	errGetArgs          = &CallError{Call: "GetEvents", Errno: syscall.EINVAL, Reason: "minNr < 0 or minNr > len(events)"}
	errCancelNil        = &CallError{Call: "Cancel", Errno: syscall.EFAULT, Reason: "nil IOCB"}
	errCancelDestroyed  = destroyedRefusal("Cancel", "context destroyed")
	errCancelForeign    = &CallError{Call: "Cancel", Errno: syscall.EINVAL, Reason: "IOCB not submitted to this context"}
	errCancelDelivered  = &CallError{Call: "Cancel", Errno: syscall.EINVAL, Reason: "event already delivered"}
	errCancelAgain      = &CallError{Call: "Cancel", Errno: syscall.EAGAIN, Reason: "request could not be stopped; its event will be delivered"}
	errCancelFDBad      = &CallError{Call: "CancelFD", Errno: syscall.EBADF, Reason: "not an open file descriptor"}
	errCancelFDMismatch = &CallError{Call: "CancelFD", Errno: syscall.EINVAL, Reason: "cb.FD != fd"}
	errCancelFDForeign  = &CallError{Call: "CancelFD", Errno: syscall.EINVAL, Reason: "IOCB not submitted to this context"}
	errCancelFDDead     = destroyedRefusal("CancelFD", "context destroyed")
	errErrorNil         = &CallError{Call: "Error", Errno: syscall.EINVAL, Reason: "nil IOCB"}
	errErrorForeign     = &CallError{Call: "Error", Errno: syscall.EINVAL, Reason: "IOCB not submitted to this context"}
	errDestroyTwice     = destroyedRefusal("Destroy", "context already destroyed")
	errDoDestroyed      = destroyedRefusal("Do", "context destroyed")
	errDoNil            = &CallError{Call: "Do", Errno: syscall.EINVAL, Reason: "nil IOCB"}
	errReadAtDestroyed  = destroyedRefusal("ReadAt", "context destroyed")
	errWriteAtDestroyed = destroyedRefusal("WriteAt", "context destroyed")
	errNewFileNil       = &CallError{Call: "NewFile", Errno: syscall.EINVAL, Reason: "nil Context"}
	errNewFileConnNil   = &CallError{Call: "NewFileConn", Errno: syscall.EINVAL, Reason: "nil Context"}
	errSetupMax         = &CallError{Call: "Setup", Errno: syscall.EINVAL, Reason: "maxEvents must be between 1 and 32768"}
	errSetupWorkers     = &CallError{Call: "Setup", Errno: syscall.EINVAL, Reason: "negative Options.Workers"}
	errSetupLanes       = &CallError{Call: "Setup", Errno: syscall.EINVAL, Reason: "negative Options.Lanes"}
)

// errInProgress is what Error returns for an outstanding request.
var errInProgress error = syscall.EINPROGRESS

// rwCall names the Context method that rwAt serves.
func rwCall(op Op) string {
	if op == OpWrite {
		return "WriteAt"
	}
	return "ReadAt"
}

// rwDestroyed is ReadAt's or WriteAt's refusal on a destroyed Context.
func rwDestroyed(op Op) error {
	if op == OpWrite {
		return errWriteAtDestroyed
	}
	return errReadAtDestroyed
}

// destroyedRefusal is call's refusal on a destroyed Context: EINVAL, and
// ErrDestroyed.
func destroyedRefusal(call, reason string) *CallError {
	return &CallError{Call: call, Errno: syscall.EINVAL, Reason: reason, destroyed: true}
}

// asCall returns err as a refusal by call: a *CallError that another call
// made (Do's checks are Submit's, ReadAt runs on Do) is renamed, keeping its
// errno and reason; any other error is returned as it is.
func asCall(err error, call string) error {
	if ce, ok := err.(*CallError); ok && ce.Call != call {
		return &CallError{Call: call, Errno: ce.Errno, Reason: ce.Reason, destroyed: ce.destroyed}
	}
	return err
}
