package aio

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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
// errors.Is(err, syscall.ECANCELED), errors.Is(err, context.Canceled) and
// errors.Is(err, os.ErrClosed) work.
type File struct {
	c      *Context
	f      *os.File
	name   string
	rc     syscall.RawConn
	rcErr  error
	append bool
	// hint tells the backend that each request's descriptor is held open
	// (RawConn.Control) and what kind of file it is (backend.Req.Hint).
	hint uint8
	// heat is what the caller-side path has learned about the file
	// (caller.go): whether its reads and writes may run on the caller's
	// goroutine, and whether its data is in the page cache.
	heat atomic.Uint32
	// reg is the File's fixed-file registration (fixedfile.go), nil until
	// Register.
	reg atomic.Pointer[fileReg]
	// fd is the descriptor's number, for IOCB.SetFile.
	fd int
	// closer is what Close closes: the *os.File, or the conn if it has
	// a Close method.
	closer io.Closer
}

// Compile-time checks that File implements the interfaces it promises.
var (
	_ io.ReaderAt = (*File)(nil)
	_ io.WriterAt = (*File)(nil)
)

// errAppendMode mirrors the os package's refusal of WriteAt on an O_APPEND file,
// where pwrite(2) on Linux would ignore the offset.
var errAppendMode = errors.New("aio: WriteAt: file opened with O_APPEND")

// NewFile returns a File that reads and writes f through c. It does not take
// ownership of f: closing f remains the caller's business, and c must outlive
// the File's calls. A nil f gives a File whose calls fail with os.ErrInvalid;
// a nil c, one whose calls fail with a *CallError naming NewFile (matching
// syscall.EINVAL).
func NewFile(c *Context, f *os.File) *File {
	if f == nil {
		return &File{c: c, rcErr: os.ErrInvalid}
	}
	if c == nil {
		return &File{f: f, name: f.Name(), rcErr: errNewFileNil}
	}
	af := NewFileConn(c, f)
	af.f = f
	af.closer = f
	return af
}

// NewFileConn is NewFile for any file that gives its descriptor through
// syscall.Conn, as the files of storage engines' file-system layers do (a
// Pebble vfs.File over *os.File, for one) without exposing the *os.File. The
// descriptor is borrowed through SyscallConn's RawConn, held for each request
// as NewFile's is. Error messages name the file if conn has a Name() string
// method. File() returns nil for such a File. A nil c or conn gives a File
// whose calls fail, as NewFile's do.
func NewFileConn(c *Context, conn syscall.Conn) *File {
	af := &File{c: c}
	if n, ok := conn.(interface{ Name() string }); ok {
		af.name = n.Name()
	}
	if cl, ok := conn.(io.Closer); ok {
		af.closer = cl
	}
	switch {
	case conn == nil:
		af.rcErr = os.ErrInvalid
		return af
	case c == nil:
		af.rcErr = errNewFileConnNil
		return af
	}
	af.rc, af.rcErr = conn.SyscallConn()
	if af.rcErr == nil {
		// pwrite(2) ignores the offset on an O_APPEND file; refuse WriteAt there
		// as (*os.File).WriteAt does.
		_ = af.rc.Control(func(fd uintptr) {
			af.fd = int(fd)
			appendMode, direct, ok := fileFlags(fd)
			af.append = appendMode
			af.hint = fileHint(fd)
			// O_DIRECT I/O would wait for the device inside the call on
			// the caller, holding an OS thread per goroutine: never there.
			if ok && !direct && !c.cs.off {
				af.heat.Store(hChecked)
			} else {
				af.heat.Store(hChecked | hNoRead | hNoWrite)
			}
		})
	}
	return af
}

// Context returns the Context the File's requests go through.
func (f *File) Context() *Context { return f.c }

// File returns the underlying *os.File (nil for a File from NewFileConn).
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
// read is canceled and the error matches both ctx.Err() and syscall.ECANCELED, with
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
	// The call's state lives in a pooled fileCall whose method value is bound
	// once: a closure handed to RawConn.Control would escape to the heap on
	// every call.
	fc := fileCalls.Get().(*fileCall)
	fc.f, fc.ctx, fc.op, fc.p, fc.off = f, ctx, op, p, off
	_ = f.rc.Control(fc.fn)
	ran := fc.ran
	n, err = fc.n, fc.err
	*fc = fileCall{fn: fc.fn}
	fileCalls.Put(fc)
	if !ran {
		// Control refuses only a file that is closed or being closed (its error,
		// internal/poll's "use of closed file", is not exported). A
		// registration of it is dropped now (fixedfile.go).
		f.dropReg()
		return 0, f.pathErr(op, os.ErrClosed)
	}
	if err != nil && err != io.EOF {
		err = f.pathErr(op, err)
	}
	return n, err
}

// fileCall is one File call, run by RawConn.Control while the descriptor is
// held open.
type fileCall struct {
	f   *File
	ctx context.Context
	op  Op
	p   []byte
	off int64
	n   int
	err error
	ran bool
	fn  func(fd uintptr) // fc.run, bound once
}

var fileCalls = sync.Pool{New: func() any {
	fc := new(fileCall)
	fc.fn = fc.run
	return fc
}}

func (fc *fileCall) run(fd uintptr) {
	fc.ran = true
	// The registration is entered only by a request that may use it
	// (rwAsyncReg): a transfer made on the caller's goroutine does not,
	// and entering is a shared counter's cache line moving between cores.
	fc.n, fc.err = fc.f.transfer(fc.ctx, fc.op, int(fd), fc.p, fc.off, fc.f.reg.Load())
	// The request has ended; the descriptor was held open until now.
}

// transfer moves p at off on fd: on the caller's goroutine where the policy
// of caller.go allows, and whatever is left through the Context.
func (f *File) transfer(ctx context.Context, op Op, fd int, p []byte, off int64, reg *fileReg) (int, error) {
	if off < 0 {
		return f.c.rwAt(ctx, op, fd, p, off) // its refusal
	}
	return f.c.transfer(ctx, op, &f.heat, false, f.hint, fd, p, off, reg)
}

func (f *File) pathErr(op Op, err error) error {
	name := ""
	if f.name != "" {
		name = f.name
	}
	return &os.PathError{Op: op.String(), Path: name, Err: err}
}
