package pebblefs

import (
	"errors"
	"os"
	"sync"

	"github.com/uringaio/uringaio/aio"
	"golang.org/x/sys/unix"
)

// The per-file range calls of vfs.File, as the library's range operations
// (docs/contract.md §1.7) through the Context, with vfs.Default's semantics
// on Linux (pebble/vfs/default_linux.go, v2.1.7). ops_other.go keeps the
// base file's elsewhere.

// extMagic is EXT4_SUPER_MAGIC, which ext2, ext3 and ext4 share: the only file
// systems on which vfs.Default uses sync_file_range (others, ZFS among them,
// accept the call and do nothing).
const extMagic = 0xef53

// Whether SyncTo uses sync_file_range on this file (file.syncRange).
const (
	syncRangeUnknown uint32 = iota
	syncRangeYes
	syncRangeNo
)

// SyncTo is vfs.Default's: on ext2/3/4, sync_file_range(2) on [0, length)
// with SYNC_FILE_RANGE_WAIT_BEFORE|SYNC_FILE_RANGE_WRITE — wait for writeback
// already under way, start it for the rest, do not wait for that — and
// fullSync false (length 0 means the whole file, as for the system call);
// elsewhere fdatasync(2), and fullSync true. vfs.Default decides when it opens
// the file, from the file system and a sync_file_range that must not fail
// with ENOSYS; here the first SyncTo decides, and an ENOSYS from a later call
// falls back to fdatasync for it and from then on. Both run through the
// Context (OpSyncFileRange, OpFdsync).
func (f *file) SyncTo(length int64) (fullSync bool, err error) {
	if f.useSyncRange() {
		err := f.req(&aio.IOCB{Op: aio.OpSyncFileRange, Len: length,
			Flags: unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE})
		if !errors.Is(err, unix.ENOSYS) {
			return false, err
		}
		f.syncRange.Store(syncRangeNo)
	}
	if err := f.SyncData(); err != nil {
		return false, err
	}
	return true, nil
}

// useSyncRange reports whether SyncTo uses sync_file_range on this file: on
// ext2/3/4 (fstatfs on the first call).
func (f *file) useSyncRange() bool {
	switch f.syncRange.Load() {
	case syncRangeYes:
		return true
	case syncRangeNo:
		return false
	}
	ext := false
	ran := false
	_ = f.rc.Control(func(fd uintptr) {
		ran = true
		var st unix.Statfs_t
		ext = unix.Fstatfs(int(fd), &st) == nil && uint32(st.Type) == extMagic
	})
	if !ran {
		return true // closed: the request reports it (os.ErrClosed)
	}
	state := syncRangeNo
	if ext {
		state = syncRangeYes
	}
	f.syncRange.CompareAndSwap(syncRangeUnknown, state)
	return ext
}

// Preallocate is fallocate(2) with FALLOC_FL_KEEP_SIZE, as on vfs.Default:
// the blocks of [offset, offset+length) are allocated and the size is left
// alone. Like vfs.Default it returns the kernel's refusal as it is —
// EOPNOTSUPP on a file system without fallocate — and Pebble's writers
// ignore it (preallocation is a hint to them).
func (f *file) Preallocate(offset, length int64) error {
	return f.req(&aio.IOCB{Op: aio.OpFallocate, Offset: offset, Len: length, Flags: unix.FALLOC_FL_KEEP_SIZE})
}

// Prefetch is what vfs.Default does, readahead(2) (as the fadvise it is in
// the kernel), on the caller's goroutine, not a request through the Context.
// The advice is a hint that costs the kernel a lookup of pages already
// cached, which is what most of Pebble's Prefetch calls find (sequential
// scans of warm tables); a request costs more than that. Measured with
// pebblebench's scan (8 goroutines, warm page cache, -rounds 5, the three
// variants one after another): an OpFadvise request handed to the Context
// without waiting made scans 1.07-1.31x vfs.Default's time (waiting for it:
// 1.3-1.4x, measured earlier); the plain call 1.02-1.08x; no Prefetch at all
// 0.99-1.03x.
//
// vfs.Default (v2.1.7) returns the raw errno of the call, a non-nil
// syscall.Errno(0) on success; this returns nil then, and otherwise the
// errno in an *os.PathError as the file's other calls do.
func (f *file) Prefetch(offset, length int64) error {
	pc := prefetchCalls.Get().(*prefetchCall)
	pc.off, pc.n = offset, length
	_ = f.rc.Control(pc.fn)
	ran, err := pc.ran, pc.err
	*pc = prefetchCall{fn: pc.fn}
	prefetchCalls.Put(pc)
	if !ran {
		return os.ErrClosed
	}
	if err != nil {
		return &os.PathError{Op: "fadvise", Path: f.name, Err: err}
	}
	return nil
}

// prefetchCall is one Prefetch, run by RawConn.Control while the descriptor
// is held open. It is pooled, with its method value bound once, because a
// closure handed to Control would escape to the heap on every call, and
// Pebble calls Prefetch often in a scan (TestPrefetchAllocs).
type prefetchCall struct {
	off, n int64
	err    error
	ran    bool
	fn     func(fd uintptr) // pc.run, bound once
}

var prefetchCalls = sync.Pool{New: func() any {
	pc := new(prefetchCall)
	pc.fn = pc.run
	return pc
}}

func (pc *prefetchCall) run(fd uintptr) {
	pc.ran = true
	// readahead(2) is posix_fadvise(POSIX_FADV_WILLNEED) in the kernel
	// (ksys_readahead calls vfs_fadvise); x/sys has no readahead wrapper
	// that splits the 64-bit offset on 32-bit systems, and Fadvise does.
	pc.err = unix.Fadvise(int(fd), pc.off, pc.n, unix.FADV_WILLNEED)
}
