package main

import (
	"context"
	"io"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/aio"
)

// rawFS is the adapter a user writes in an afternoon over the library's raw
// calls, which issue 17 asks to measure beside pebblefs: vfs.Default's
// files, whose ReadAt and WriteAt become Context.ReadAt and Context.WriteAt on
// the descriptor (Fd), everything else left to the *os.File (sequential
// Write, Sync, Prefetch, ...). It is what `-raw` runs; it is not pebblefs,
// which holds the descriptor with RawConn.Control and routes syncs too.
type rawFS struct {
	vfs.FS
	c *aio.Context
}

func (fs rawFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, category))
}

func (fs rawFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.Open(name, opts...))
}

func (fs rawFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, category, opts...))
}

func (fs rawFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, category))
}

func (fs rawFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil || f == nil || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	return &rawFile{File: f, c: fs.c, fd: int(f.Fd())}, nil
}

type rawFile struct {
	vfs.File
	c  *aio.Context
	fd int
}

func (f *rawFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.c.ReadAt(context.Background(), f.fd, p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

func (f *rawFile) WriteAt(p []byte, off int64) (int, error) {
	return f.c.WriteAt(context.Background(), f.fd, p, off)
}
