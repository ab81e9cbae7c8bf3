// Package pebblefs is a Pebble vfs.FS whose files move their data through a
// uringaio Context (package github.com/uringaio/uringaio/aio) instead of
// pread(2), pwrite(2), fsync(2), fdatasync(2), sync_file_range(2),
// fallocate(2) and readahead(2).
//
// It is its own module so that Pebble and its dependencies never reach the
// importers of the library itself. It builds wherever Pebble does (Pebble's
// vfs does not build for AIX, Solaris/illumos or WebAssembly); off Linux only
// the library's threads backend runs, and off Unix none does.
//
// # What goes through the library
//
// A file opened by Create, Open, OpenReadWrite or ReuseForWrite on a base whose
// files are *os.File underneath (vfs.Default) is wrapped so that
//
//   - ReadAt and WriteAt are aio.Context.ReadAt and WriteAt (OpRead, OpWrite);
//   - Read and Write are the same requests at an offset the wrapper tracks,
//     starting at 0 as the descriptor's own position does after open(2);
//     Pebble's WAL, MANIFEST and sstable writers are sequential Write callers;
//   - Sync is OpFsync and SyncData is OpFdsync, through aio.Context.Do;
//   - on Linux, SyncTo is OpSyncFileRange (or OpFdsync where vfs.Default
//     would fdatasync) and Preallocate is OpFallocate with
//     FALLOC_FL_KEEP_SIZE, each with vfs.Default's semantics (ops_linux.go).
//
// Everything else is what the base file or the base FS does: Stat, Fd, Close,
// directories (OpenDir and their Sync), Link, Remove, Rename, Lock, List,
// MkdirAll, GetDiskUsage; Prefetch, which on Linux is readahead(2) on the
// caller's goroutine (a request costs a warm scan more than the hint saves:
// ops_linux.go); and, outside Linux, SyncTo and Preallocate (where
// vfs.Default does a full sync and nothing).
//
// # Descriptors
//
// The descriptor is borrowed through (*os.File).SyscallConn, never
// (*os.File).Fd, and every request runs inside RawConn.Control, which holds a
// reference on the descriptor: a concurrent Close cannot let the number be
// reused while a request is in flight (the same rule aio.File follows).
//
// # A destroyed Context
//
// c must outlive the DB. The FS does not guard against a Context destroyed
// too early (it cannot stop Destroy, and nothing else would be right to do
// with the DB's I/O); instead, every read, write or sync that finds the
// Context destroyed fails with an error matching ErrContextDestroyed (and
// aio.ErrDestroyed, EINVAL) whose message says so. Pebble passes it on —
// wrapped in words that read like a damaged file, such as "invalid file
// (could not read footer)", for a table it reads — or, for a WAL write,
// stops the process, as it does on any WAL write failure.
//
// A base whose files are not *os.File underneath (vfs.NewMem, errorfs, a disk
// health checker, any wrapper that overrides methods) is not unwrapped: its
// files are returned as they are, so their behaviour is kept. To combine the
// adapter with such a wrapper, put the wrapper outside:
// vfs.WithDiskHealthChecks(pebblefs.New(c, vfs.Default), ...).
package pebblefs

import (
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/aio"
)

// FS is the adapter. It implements vfs.FS; the methods it does not define are
// base's, promoted through the embedded field.
type FS struct {
	vfs.FS // base: every call that opens no regular file goes straight there

	c       *aio.Context
	route   bool
	routed  atomic.Uint64
	skipped atomic.Uint64
}

var _ vfs.FS = (*FS)(nil)

// New returns an FS whose regular files read, write and sync through c, on top
// of base. c must outlive every file opened through the FS (destroy it after
// the Pebble DB is closed). A nil base means vfs.Default.
//
// New returns *FS rather than vfs.FS so that callers can read Stats; *FS is a
// vfs.FS and can be stored in pebble.Options.FS as it is.
//
// Files are routed through c only when base is vfs.Default, whose files embed
// *os.File and add nothing to its ReadAt, WriteAt, Write and Sync. On any other
// base every file is base's own, unchanged (Stats counts them as skipped):
// reaching past a wrapper to its *os.File would bypass what the wrapper does.
func New(c *aio.Context, base vfs.FS) *FS {
	if base == nil {
		base = vfs.Default
	}
	return &FS{FS: base, c: c, route: base == vfs.Default}
}

// Stats counts the files the FS opened.
type Stats struct {
	Routed  uint64 // files whose I/O goes through the Context
	Skipped uint64 // files left to base (not *os.File underneath, or O_APPEND)
}

// Stats returns the FS's counters.
func (fs *FS) Stats() Stats {
	return Stats{Routed: fs.routed.Load(), Skipped: fs.skipped.Load()}
}

// Context returns the Context the FS's files use.
func (fs *FS) Context() *aio.Context { return fs.c }

// Unwrap returns base, so that vfs.Root sees through the adapter.
func (fs *FS) Unwrap() vfs.FS { return fs.FS }

// Create implements vfs.FS.
func (fs *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, category))
}

// Open implements vfs.FS. The options (vfs.RandomReadsOption, …) are applied to
// base's file by base.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.Open(name, opts...))
}

// OpenReadWrite implements vfs.FS.
func (fs *FS) OpenReadWrite(
	name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption,
) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, category, opts...))
}

// ReuseForWrite implements vfs.FS.
func (fs *FS) ReuseForWrite(
	oldname, newname string, category vfs.DiskWriteCategory,
) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, category))
}

// rawConner is what vfs.Default's files promote from their embedded *os.File.
type rawConner interface {
	syscall.Conn
	Name() string
}

func (fs *FS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil || f == nil {
		return f, err
	}
	if fs.route {
		if rc, ok := f.(rawConner); ok {
			if raw, err := rc.SyscallConn(); err == nil && !appendMode(raw) {
				fs.routed.Add(1)
				af := aio.NewFileConn(fs.c, rc)
				return &file{File: f, c: fs.c, af: af, rc: raw, name: rc.Name()}, nil
			}
		}
	}
	fs.skipped.Add(1)
	return f, nil
}
