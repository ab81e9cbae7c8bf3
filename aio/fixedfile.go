package aio

import (
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/uringaio/uringaio/internal/backend"
)

// Registered files (docs/contract.md §12.2)
//
// File.Register installs the File's descriptor in the fixed-file table of
// each lane's ring (IORING_REGISTER_FILES_UPDATE on a sparse table), and the
// File's requests then name the entry (IOSQE_FIXED_FILE) instead of the
// descriptor: the kernel skips looking the descriptor up, and taking and
// dropping a reference on the file, for each request. A lane whose table is
// full, and every lane of kaio and threads (which have no table), keeps using
// the descriptor: the results are the same.
//
// The table holds the kernel's file, not the number, so the rules are about
// its lifetime:
//
//   - An entry is used only by requests of its File, only while the File's
//     descriptor is held open (RawConn.Control) and only between enter and
//     leave below. Emptying it (release) first stops new users, then waits
//     for those in flight, then empties the entries: no request can name an
//     entry after it was emptied, let alone after it was given to another
//     file.
//   - The entry keeps the kernel's file open, so it must not outlive the
//     program's wish to close it. release runs on File.Close, on the first
//     File call that finds the descriptor closed, when the File is garbage
//     collected (a finalizer), and Destroy closes the ring, which drops the
//     whole table. Closing the *os.File directly, without File.Close, leaves
//     the kernel's file open until one of those: the contract says to close
//     a registered File with File.Close.

// fileReg is one File's registration: its entry on each lane.
type fileReg struct {
	lanes []*Context
	idx   []int32 // the entry on lanes[i], or -1

	users  atomic.Int64 // requests that may name an entry
	closed atomic.Bool  // release has begun: no new users
	once   sync.Once
}

// Register puts the File's descriptor in the fixed-file table of each of the
// Context's rings, so that its reads and writes skip the kernel's descriptor
// lookup (IORING_REGISTER_FILES_UPDATE, IOSQE_FIXED_FILE). A ring whose table
// is full (Options.FixedFiles), and the kaio and threads backends, which have
// none, keep using the descriptor, with the same results: Register then
// succeeds all the same, and Stats.FixedFiles shows which requests used an
// entry. Registering twice does nothing.
//
// A registered File must be closed with Close, which empties its entries
// before it closes the file: the table holds the kernel's file open, so a
// file closed directly stays open in the kernel (its locks held, its space
// not freed, a pipe's reader not seeing EOF) until the File's next call,
// its garbage collection or the Context's Destroy (docs/contract.md §12.2).
//
// It fails with os.ErrClosed on a closed file, and with a *CallError naming
// Register (EINVAL) on a destroyed Context.
func (f *File) Register() error {
	if f.rcErr != nil {
		return f.pathErrCall("register", f.rcErr)
	}
	if f.reg.Load() != nil {
		return nil
	}
	if f.c.shut.Load() {
		return f.pathErrCall("register", &CallError{Call: "Register", Errno: syscall.EINVAL, Reason: "Context destroyed", destroyed: true})
	}
	var reg *fileReg
	if err := f.rc.Control(func(fd uintptr) { reg = newFileReg(f.c, int(fd)) }); err != nil || reg == nil {
		return f.pathErrCall("register", os.ErrClosed)
	}
	if !f.reg.CompareAndSwap(nil, reg) {
		reg.release()
		return nil
	}
	runtime.SetFinalizer(f, (*File).dropReg)
	return nil
}

// Close empties the File's fixed-file entries, if it has any, then closes
// the file: the *os.File of NewFile, or NewFileConn's conn when it has a
// Close method. It waits for the File's requests in flight that use an
// entry (they end first; cancel their contexts to hurry them).
func (f *File) Close() error {
	f.dropReg()
	runtime.SetFinalizer(f, nil)
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// dropReg empties the File's entries (Close, a closed descriptor, the
// finalizer).
func (f *File) dropReg() {
	if reg := f.reg.Load(); reg != nil {
		reg.release()
	}
}

func (f *File) pathErrCall(op string, err error) error {
	return &os.PathError{Op: op, Path: f.name, Err: err}
}

// newFileReg registers fd on every lane of c.
func newFileReg(c *Context, fd int) *fileReg {
	lanes := c.lanes
	if lanes == nil {
		lanes = []*Context{c}
	}
	reg := &fileReg{lanes: lanes, idx: make([]int32, len(lanes))}
	for i, l := range lanes {
		reg.idx[i] = -1
		l.beMu.RLock()
		if r, ok := l.be.(backend.Registrar); ok {
			if idx, err := r.RegisterFile(fd); err == nil {
				reg.idx[i] = idx
			}
		}
		l.beMu.RUnlock()
	}
	return reg
}

// enter reports whether a request may name the File's entries; leave must
// follow when it does.
func (r *fileReg) enter() bool {
	r.users.Add(1)
	if r.closed.Load() {
		r.users.Add(-1)
		return false
	}
	return true
}

func (r *fileReg) leave() { r.users.Add(-1) }

// entry is the fixed-file entry on lane l, plus one (0: none).
func (r *fileReg) entry(l *Context) int32 {
	for i, x := range r.lanes {
		if x == l {
			return r.idx[i] + 1
		}
	}
	return 0
}

// release stops new users, waits for those in flight and empties the
// entries. A lane being destroyed is skipped: closing its ring drops them.
func (r *fileReg) release() {
	r.once.Do(func() {
		r.closed.Store(true)
		for d := time.Microsecond; r.users.Load() != 0; d = min(2*d, time.Millisecond) {
			time.Sleep(d)
		}
		for i, l := range r.lanes {
			if r.idx[i] < 0 {
				continue
			}
			l.beMu.RLock()
			if reg, ok := l.be.(backend.Registrar); ok {
				_ = reg.UnregisterFile(r.idx[i]) // a closed ring has dropped it
			}
			l.beMu.RUnlock()
			r.idx[i] = -1
		}
	})
}

var _ io.Closer = (*File)(nil)

// SetFile makes cb a request on f, for Submit and Do: FD becomes f's
// descriptor, and on uring a read or write uses f's fixed-file entry when f
// is registered (Register) and has one on the ring that runs it. nil undoes
// it (FD is left as it is). A later change of FD makes Submit refuse cb
// (EINVAL) until SetFile is called again.
//
// Closing a registered f (File.Close) waits, on every backend, for its
// outstanding SetFile requests. A request submitted after f's *os.File was closed directly, while
// f is still registered, reaches the file f named, never a file that reuses
// the number.
func (cb *IOCB) SetFile(f *File) {
	cb.file = f
	if f != nil {
		cb.FD = f.fd
	}
}

// The refusals of a SetFile IOCB: its FD changed, or its File's descriptor
// was closed (the number may name another file by now).
var (
	errSubmitFile       = &CallError{Call: "Submit", Errno: syscall.EINVAL, Reason: "FD is not the descriptor of the File given to SetFile"}
	errSubmitFileClosed = &CallError{Call: "Submit", Errno: syscall.EBADF, Reason: "the File given to SetFile is closed"}
)

// checkIOCB is Submit's check of an IOCB given f with SetFile. The look at
// f's descriptor holds it for a moment only (RawConn.Control with a function
// that does nothing, so that nothing is allocated): a close racing with
// Submit is the program's race, as with any descriptor.
func (f *File) checkIOCB(cb *IOCB) error {
	if cb.FD != f.fd {
		return errSubmitFile
	}
	if f.rcErr != nil || f.rc.Control(noFD) != nil {
		f.dropReg()
		return errSubmitFileClosed
	}
	return nil
}

func noFD(uintptr) {}

// fixedFileOf puts the fixed-file entry of cb's request into r: from the
// library's own IOCB (fixedFile, File's calls, whose File holds the entries
// meanwhile), or from cb's SetFile File, which then counts the request as a
// user of its entries until it ends (unpin), on every backend. With mu held.
func (c *Context) fixedFileOf(cb *IOCB, s *slot, r *backend.Req) {
	e := cb.fixedFile
	if e == 0 && cb.file != nil {
		// Every backend counts the request, entry or not, so that Close
		// waits for it alike on all of them.
		if reg := cb.file.reg.Load(); reg != nil && reg.enter() {
			s.freg = reg
			e = reg.entry(c)
		}
	}
	if e != 0 {
		r.Fixed, r.FileIndex = backend.FixedFile, e-1
		c.nFixedFiles.Add(1)
	}
}
