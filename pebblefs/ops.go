package pebblefs

// The per-file calls that still run on base's file because aio has no
// operation for them yet. Each is one method; when aio gains the operation,
// the body becomes one line on f.req, as sketched beside it. None of
// them may move through the library before then: the library runs only the
// operations of its contract (docs/contract.md §1.2).

// SyncTo is sync_file_range(2) (SYNC_FILE_RANGE_WAIT_BEFORE|WRITE on [0, length))
// on vfs.Default, or fdatasync where that is not supported.
//
// With aio.OpSyncFileRange:
//
//	return false, f.req(&aio.IOCB{Op: aio.OpSyncFileRange, Offset: 0, Len: length, Flags: waitBefore|write})
func (f *file) SyncTo(length int64) (fullSync bool, err error) {
	return f.File.SyncTo(length)
}

// Preallocate is fallocate(2) with FALLOC_FL_KEEP_SIZE on vfs.Default.
//
// With aio.OpFallocate:
//
//	return f.req(&aio.IOCB{Op: aio.OpFallocate, Offset: offset, Len: length, Flags: unix.FALLOC_FL_KEEP_SIZE})
func (f *file) Preallocate(offset, length int64) error {
	return f.File.Preallocate(offset, length)
}

// Prefetch is readahead(2) on vfs.Default.
//
// With aio.OpFadvise:
//
//	return f.req(&aio.IOCB{Op: aio.OpFadvise, Offset: offset, Len: length, Flags: unix.FADV_WILLNEED})
func (f *file) Prefetch(offset, length int64) error {
	return f.File.Prefetch(offset, length)
}
