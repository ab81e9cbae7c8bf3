package pebblefs

import (
	"errors"

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

// Prefetch starts reading [offset, offset+length) into the page cache:
// vfs.Default makes readahead(2), which the kernel carries out as
// posix_fadvise(POSIX_FADV_WILLNEED) (ksys_readahead calls vfs_fadvise), so
// this is that advice as OpFadvise, with the same meaning of length 0 (to the
// end of the file). readahead(2) also refuses a descriptor not open for
// reading (EBADF); every file Pebble opens through vfs.Default is.
//
// It is a hint, and the caller does not wait for it: readahead(2) makes a
// scan wait while the kernel looks up and starts the range, where this hands
// the advice to the Context and returns nil (measured on page-cache-warm
// scans, waiting for the request cost 1.3-1.4x vfs.Default's time on uring
// and kaio; not waiting, 1.0-1.1x). One request per file is in flight; a hint
// that arrives meanwhile replaces any other waiting behind it, and runs when
// the first ends. Close waits for them.
func (f *file) Prefetch(offset, length int64) error {
	f.pfMu.Lock()
	defer f.pfMu.Unlock()
	if f.pfBusy {
		f.pfNext, f.pfHasNext = [2]int64{offset, length}, true
		return nil
	}
	f.pfBusy = true
	f.pfWG.Add(1)
	go f.prefetch(offset, length)
	return nil
}

func (f *file) prefetch(offset, length int64) {
	defer f.pfWG.Done()
	for {
		_ = f.req(&aio.IOCB{Op: aio.OpFadvise, Offset: offset, Len: length, Flags: unix.FADV_WILLNEED})
		f.pfMu.Lock()
		if !f.pfHasNext {
			f.pfBusy = false
			f.pfMu.Unlock()
			return
		}
		offset, length = f.pfNext[0], f.pfNext[1]
		f.pfHasNext = false
		f.pfMu.Unlock()
	}
}
