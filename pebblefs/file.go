package pebblefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/aio"
)

// file is a base file whose data moves through the Context. Methods it does not
// define are the base file's. SyncTo and Preallocate are in ops_linux.go
// (through the Context) and ops_other.go (the base file's); Prefetch is the
// base file's everywhere (ops_*.go).
type file struct {
	vfs.File // base's file: Close, Stat, Fd

	c    *aio.Context
	af   *aio.File // reads and writes
	rc   syscall.RawConn
	name string

	// pos is the offset of the next Read or Write, which on an *os.File would
	// be the descriptor's position. The wrapper owns the descriptor's I/O, so
	// nothing else moves it; posMu keeps a Read or Write and its offset update
	// one step, as the kernel's f_pos lock does.
	posMu sync.Mutex
	pos   int64

	// syncRange says whether SyncTo uses sync_file_range (Linux; unknown
	// until the first SyncTo, then yes or no: ops_linux.go).
	syncRange atomic.Uint32
}

var (
	_ vfs.File    = (*file)(nil)
	_ io.ReaderAt = (*file)(nil)
	_ io.WriterAt = (*file)(nil)
)

// ReadAt implements io.ReaderAt: n < len(p) only with an error, io.EOF when
// the file ends first.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	return f.rw(aio.OpRead, p, off)
}

// WriteAt implements io.WriterAt.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	return f.rw(aio.OpWrite, p, off)
}

// Write writes all of p at the tracked offset, as write(2) on a regular file
// does (pwrite loops until done or an error, like (*os.File).Write).
func (f *file) Write(p []byte) (int, error) {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	n, err := f.rw(aio.OpWrite, p, f.pos)
	f.pos += int64(n)
	return n, err
}

// Read reads up to len(p) bytes at the tracked offset, as read(2) does on a
// regular file: all of them unless the file ends first (then what is there,
// and 0, io.EOF at the end). It goes through aio.File, so page-cached data
// is copied on the caller's goroutine as ReadAt's is.
func (f *file) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.posMu.Lock()
	defer f.posMu.Unlock()
	n, err := f.rw(aio.OpRead, p, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Sync is fsync(2) as OpFsync.
func (f *file) Sync() error { return f.req(&aio.IOCB{Op: aio.OpFsync}) }

// SyncData is fdatasync(2) as OpFdsync.
func (f *file) SyncData() error { return f.req(&aio.IOCB{Op: aio.OpFdsync}) }

// req runs a request whose only result is success or failure: a sync, or
// sync_file_range, fallocate, fadvise (ops_linux.go).
func (f *file) req(cb *aio.IOCB) error {
	if _, err := f.do(cb); err != nil {
		return f.pathErr(cb.Op, destroyedErr(err))
	}
	return nil
}

// rw is ReadAt or WriteAt through aio.File: page-cached data is copied on
// the calling goroutine (aio.Options.NoInline), the rest is the library's
// requests on the borrowed descriptor, held open until they end. Its errors
// are already what *os.File reports.
func (f *file) rw(op aio.Op, p []byte, off int64) (n int, err error) {
	if op == aio.OpRead {
		n, err = f.af.ReadAt(p, off)
	} else {
		n, err = f.af.WriteAt(p, off)
	}
	if err != nil && err != io.EOF {
		err = destroyedErr(err)
	}
	return n, err
}

// ErrContextDestroyed is matched, with errors.Is, by every error of a file
// of the FS whose request found the aio.Context destroyed: the program
// destroyed it before closing the DB. Such an error also matches
// aio.ErrDestroyed and EINVAL, and its message says what happened, since
// Pebble may wrap it in words that read like a damaged file ("invalid file
// (could not read footer)") or, for the WAL, stop the process as it does on
// any failed WAL write.
var ErrContextDestroyed = errors.New("pebblefs: the aio.Context was destroyed while the DB used it (destroy it only after closing the DB)")

// destroyedErr returns err, or, if the Context was destroyed, err with
// ErrContextDestroyed in front of the library's error (inside the
// *os.PathError, when there is one).
func destroyedErr(err error) error {
	if !errors.Is(err, aio.ErrDestroyed) {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &os.PathError{Op: pe.Op, Path: pe.Path, Err: fmt.Errorf("%w: %w", ErrContextDestroyed, pe.Err)}
	}
	return fmt.Errorf("%w: %w", ErrContextDestroyed, err)
}

// do runs one request on the borrowed descriptor and returns its event; the
// error is the request's (a negative Res) or the library's. cb.FD is filled in.
func (f *file) do(cb *aio.IOCB) (ev aio.Event, err error) {
	ran := false
	_ = f.rc.Control(func(fd uintptr) {
		ran = true
		cb.FD = int(fd)
		ev, err = f.c.Do(context.Background(), cb)
		// The request has ended; the descriptor was held open until now.
	})
	if !ran {
		return aio.Event{}, os.ErrClosed
	}
	return ev, err
}

// pathErr reports err as the os package reports the same call's failure.
func (f *file) pathErr(op aio.Op, err error) error {
	return &os.PathError{Op: op.String(), Path: f.name, Err: err}
}
