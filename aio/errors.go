package aio

import "syscall"

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
	// "NewFileConn" for the calls of a File made without a Context.
	Call string
	// Errno is the errno the matching kernel call would give; Unwrap
	// returns it.
	Errno syscall.Errno
	// Reason says what was wrong, in a few words.
	Reason string
}

func (e *CallError) Error() string {
	return "aio: " + e.Call + ": " + e.Errno.Error() + ": " + e.Reason
}

// Unwrap returns the errno.
func (e *CallError) Unwrap() error { return e.Errno }

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
	errDestroyed        = &CallError{"Submit", syscall.EINVAL, "context destroyed"}
	errSubmitNil        = &CallError{"Submit", syscall.EINVAL, "nil IOCB"}
	errSubmitOp         = &CallError{"Submit", syscall.EINVAL, "unknown Op"}
	errSubmitOffset     = &CallError{"Submit", syscall.EINVAL, "negative Offset"}
	errSubmitPoll       = &CallError{"Submit", syscall.EINVAL, "Poll with PollEvents 0"}
	errSubmitPollBits   = &CallError{"Submit", syscall.EINVAL, "PollEvents has bits outside poll(2)'s (>= 1<<16)"}
	errSubmitBoth       = &CallError{"Submit", syscall.EINVAL, "both Buf and Bufs set"}
	errSubmitIOV        = &CallError{"Submit", syscall.EINVAL, "more than MaxIOV (1024) Bufs"}
	errSubmitLen        = &CallError{"Submit", syscall.EINVAL, "transfer longer than MaxRW"}
	errSubmitFD         = &CallError{"Submit", syscall.EINVAL, "FD out of range"}
	errSubmitRangeArgs  = &CallError{"Submit", syscall.EINVAL, "Len or Flags set for an Op that takes neither"}
	errSubmitRangeLen   = &CallError{"Submit", syscall.EINVAL, "negative Len"}
	errSubmitSyncFlags  = &CallError{"Submit", syscall.EINVAL, "Flags has bits outside SYNC_FILE_RANGE_WAIT_BEFORE|WRITE|WAIT_AFTER"}
	errSubmitFallocLen  = &CallError{"Submit", syscall.EINVAL, "fallocate with Len 0"}
	errSubmitBusy       = &CallError{"Submit", syscall.EBUSY, "IOCB still outstanding"}
	errSubmitFull       = &CallError{"Submit", syscall.EAGAIN, "maxEvents requests outstanding"}
	errGetDestroyed     = &CallError{"GetEvents", syscall.EINVAL, "context destroyed"}
	errGetArgs          = &CallError{"GetEvents", syscall.EINVAL, "minNr < 0 or minNr > len(events)"}
	errCancelNil        = &CallError{"Cancel", syscall.EFAULT, "nil IOCB"}
	errCancelDestroyed  = &CallError{"Cancel", syscall.EINVAL, "context destroyed"}
	errCancelForeign    = &CallError{"Cancel", syscall.EINVAL, "IOCB not submitted to this context"}
	errCancelDelivered  = &CallError{"Cancel", syscall.EINVAL, "event already delivered"}
	errCancelAgain      = &CallError{"Cancel", syscall.EAGAIN, "request could not be stopped; its event will be delivered"}
	errCancelFDBad      = &CallError{"CancelFD", syscall.EBADF, "not an open file descriptor"}
	errCancelFDMismatch = &CallError{"CancelFD", syscall.EINVAL, "cb.FD != fd"}
	errCancelFDForeign  = &CallError{"CancelFD", syscall.EINVAL, "IOCB not submitted to this context"}
	errCancelFDDead     = &CallError{"CancelFD", syscall.EINVAL, "context destroyed"}
	errErrorNil         = &CallError{"Error", syscall.EINVAL, "nil IOCB"}
	errErrorForeign     = &CallError{"Error", syscall.EINVAL, "IOCB not submitted to this context"}
	errDestroyTwice     = &CallError{"Destroy", syscall.EINVAL, "context already destroyed"}
	errDoDestroyed      = &CallError{"Do", syscall.EINVAL, "context destroyed"}
	errDoNil            = &CallError{"Do", syscall.EINVAL, "nil IOCB"}
	errReadAtDestroyed  = &CallError{"ReadAt", syscall.EINVAL, "context destroyed"}
	errWriteAtDestroyed = &CallError{"WriteAt", syscall.EINVAL, "context destroyed"}
	errNewFileNil       = &CallError{"NewFile", syscall.EINVAL, "nil Context"}
	errNewFileConnNil   = &CallError{"NewFileConn", syscall.EINVAL, "nil Context"}
	errSetupMax         = &CallError{"Setup", syscall.EINVAL, "maxEvents must be between 1 and 32768"}
	errSetupWorkers     = &CallError{"Setup", syscall.EINVAL, "negative Options.Workers"}
	errSetupLanes       = &CallError{"Setup", syscall.EINVAL, "negative Options.Lanes"}
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

// asCall returns err as a refusal by call: a *CallError that another call
// made (Do's checks are Submit's, ReadAt runs on Do) is renamed, keeping its
// errno and reason; any other error is returned as it is.
func asCall(err error, call string) error {
	if ce, ok := err.(*CallError); ok && ce.Call != call {
		return &CallError{Call: call, Errno: ce.Errno, Reason: ce.Reason}
	}
	return err
}
