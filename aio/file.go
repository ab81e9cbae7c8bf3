package aio

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// File adapts an *os.File to io.ReaderAt and io.WriterAt, moving the data
// through a Context (Context.ReadAt and Context.WriteAt) instead of pread(2) and
// pwrite(2). ReadAtContext and WriteAtContext take a context.Context that can
// cancel the request, as Do does.
//
// A File is safe for concurrent use: parallel ReadAt and WriteAt calls are
// independent requests, as the io.ReaderAt and io.WriterAt contracts allow.
//
// The descriptor is borrowed through (*os.File).SyscallConn, never through
// (*os.File).Fd, which would switch the file to blocking mode. Each call holds a
// reference on the descriptor while its request is in flight, so a concurrent
// Close cannot let the descriptor number be reused under a running request:
// the os package closes the descriptor only once the request has ended.
// Closing a regular file returns at once (the descriptor goes when the last
// request ends); closing a pollable file (a pipe, a socket) waits until its
// pending calls end, so cancel their contexts first. Calls made after Close
// fail with os.ErrClosed.
//
// Errors are reported as the os package reports them for (*os.File).ReadAt and
// WriteAt: io.EOF as it is, anything else in an *os.PathError (Op "read" or
// "write", Path the file's name) that wraps the library's error, so that
// errors.Is(err, unix.ECANCELED), errors.Is(err, context.Canceled) and
// errors.Is(err, os.ErrClosed) work.
type File struct {
	c      *Context
	f      *os.File
	rc     syscall.RawConn
	rcErr  error
	append bool
}

// Compile-time checks that File implements the interfaces it promises.
var (
	_ io.ReaderAt = (*File)(nil)
	_ io.WriterAt = (*File)(nil)
)

// errAppendMode mirrors the os package's refusal of WriteAt on an O_APPEND file,
// where pwrite(2) on Linux would ignore the offset.
var errAppendMode = errors.New("aio: WriteAt on a file opened with O_APPEND")

// NewFile returns a File that reads and writes f through c. It does not take
// ownership of f: closing f remains the caller's business, and c must outlive
// the File's calls. A nil f gives a File whose calls fail with os.ErrInvalid.
func NewFile(c *Context, f *os.File) *File {
	af := &File{c: c, f: f}
	if f == nil {
		af.rcErr = os.ErrInvalid
		return af
	}
	af.rc, af.rcErr = f.SyscallConn()
	if af.rcErr == nil {
		// pwrite(2) ignores the offset on an O_APPEND file; refuse WriteAt there
		// as (*os.File).WriteAt does.
		_ = af.rc.Control(func(fd uintptr) {
			fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
			af.append = err == nil && fl&unix.O_APPEND != 0
		})
	}
	return af
}

// Context returns the Context the File's requests go through.
func (f *File) Context() *Context { return f.c }

// File returns the underlying *os.File.
func (f *File) File() *os.File { return f.f }

// Fd returns the file's descriptor, or -1 if the file is closed or nil. Unlike
// (*os.File).Fd it leaves the file in the mode it is in (non-blocking for
// pipes and sockets). The number is valid only while the file stays open.
func (f *File) Fd() int {
	fd := -1
	if f.rcErr != nil {
		return fd
	}
	_ = f.rc.Control(func(sysfd uintptr) { fd = int(sysfd) })
	return fd
}

// ReadAt reads len(p) bytes at offset off, as io.ReaderAt specifies: it returns
// n < len(p) only with a non-nil error, io.EOF when the file ends first. It is
// ReadAtContext with context.Background().
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// WriteAt writes len(p) bytes at offset off, as io.WriterAt specifies: it
// returns a non-nil error whenever n < len(p). It is WriteAtContext with
// context.Background().
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	return f.WriteAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt with a context: when ctx ends while a read waits, the
// read is canceled and the error matches both ctx.Err() and unix.ECANCELED, with
// n counting the bytes read before. A read that cannot be stopped is waited for,
// so the call never returns while the kernel may still write into p.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return f.rw(ctx, OpRead, p, off)
}

// WriteAtContext is WriteAt with a context, canceled as ReadAtContext is; n
// then counts the bytes written before. On a file opened with O_APPEND it
// fails, as (*os.File).WriteAt does, since pwrite(2) would append there.
func (f *File) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if f.append && f.rcErr == nil {
		return 0, f.pathErr(OpWrite, errAppendMode)
	}
	return f.rw(ctx, OpWrite, p, off)
}

func (f *File) rw(ctx context.Context, op Op, p []byte, off int64) (n int, err error) {
	if f.rcErr != nil {
		return 0, f.pathErr(op, f.rcErr)
	}
	ran := false
	_ = f.rc.Control(func(fd uintptr) {
		ran = true
		n, err = f.c.rwAt(ctx, op, int(fd), p, off)
		// The request has ended; the descriptor was held open until now.
	})
	if !ran {
		// Control refuses only a file that is closed or being closed (its error,
		// internal/poll's "use of closed file", is not exported).
		return 0, f.pathErr(op, os.ErrClosed)
	}
	if err != nil && err != io.EOF {
		err = f.pathErr(op, err)
	}
	return n, err
}

func (f *File) pathErr(op Op, err error) error {
	name := ""
	if f.f != nil {
		name = f.f.Name()
	}
	return &os.PathError{Op: op.String(), Path: name, Err: err}
}
