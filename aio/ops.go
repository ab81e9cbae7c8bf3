package aio

import "github.com/uringaio/uringaio/internal/backend"

// The range operations' arguments, IOCB.Len and IOCB.Flags: what Submit
// refuses (checkRange, the last step of validate in engine.go) and where
// backend.Req carries them (encodeRange, called by prepare).

// syncFileRangeFlags are SYNC_FILE_RANGE_WAIT_BEFORE (1), SYNC_FILE_RANGE_WRITE
// (2) and SYNC_FILE_RANGE_WAIT_AFTER (4) of include/uapi/linux/fs.h: the bits
// sync_file_range(2) accepts (VALID_FLAGS in fs/sync.c; any other is EINVAL).
// Spelled as numbers because this file builds where x/sys/unix has no names
// for them.
const syncFileRangeFlags = 1 | 2 | 4

// checkRange refuses, with EINVAL, the Len and Flags that the system calls
// refuse whatever the descriptor, so that no backend sees them and each
// answers alike: a negative Len (all three calls), a sync_file_range flag
// outside the three defined bits, a fallocate of Len 0 (vfs_fallocate wants
// len > 0). It also refuses Len or Flags on an Op that takes neither: a value
// there is a mistake today, and refusing it keeps room to give it a meaning
// later. What depends on the file or on the kernel's lists — an unknown
// fallocate mode (EOPNOTSUPP), an unknown advice (EINVAL), a pipe (ESPIPE) —
// is left to the kernel, as the request's result.
func checkRange(cb *IOCB) error {
	if !backend.IsRange(uint8(cb.Op)) {
		if cb.Len != 0 || cb.Flags != 0 {
			return errSubmitRangeArgs
		}
		return nil
	}
	if cb.Len < 0 {
		return errSubmitRangeLen
	}
	switch cb.Op {
	case OpSyncFileRange:
		if cb.Flags&^syncFileRangeFlags != 0 {
			return errSubmitSyncFlags
		}
	case OpFallocate:
		if cb.Len == 0 {
			return errSubmitFallocLen
		}
	}
	return nil
}

// encodeRange puts a range operation's Len and Flags where backend.Req carries
// them: the byte count in Addr (such a request has no buffer), the argument in
// PollEvents (it is not a poll). See backend.Req.
func encodeRange(cb *IOCB, r *backend.Req) {
	if backend.IsRange(uint8(cb.Op)) {
		r.Addr = uint64(cb.Len)
		r.PollEvents = cb.Flags
	}
}
