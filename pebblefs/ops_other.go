//go:build !linux

package pebblefs

// Outside Linux vfs.Default's files do nothing for Preallocate and Prefetch,
// and SyncTo is a full sync (fsync, fullSync true); the library's range
// operations end with ENOSYS there (docs/contract.md §1.7). So these stay
// the base file's own.

// SyncTo is the base file's.
func (f *file) SyncTo(length int64) (fullSync bool, err error) { return f.File.SyncTo(length) }

// Preallocate is the base file's.
func (f *file) Preallocate(offset, length int64) error { return f.File.Preallocate(offset, length) }

// Prefetch is the base file's.
func (f *file) Prefetch(offset, length int64) error { return f.File.Prefetch(offset, length) }
