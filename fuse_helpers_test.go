//go:build linux

package uringaio_test

// A minimal FUSE file server, for the fuse/* compat cases (compat_fuse_test.go).
//
// It speaks the kernel's FUSE protocol (include/uapi/linux/fuse.h) directly
// over /dev/fuse: it mounts a file system whose root directory holds one
// read-only regular file, "data", and answers INIT, LOOKUP, GETATTR, OPEN,
// READ, RELEASE, FLUSH, STATFS, ACCESS and DESTROY; FORGET and BATCH_FORGET
// get no reply (none is expected); INTERRUPT is recorded and, when the test
// asks for it, honoured (the interrupted READ is answered -EINTR); every other
// request, GETXATTR and LISTXATTR among them, is answered -ENOSYS.
//
// The test can make the server hold READ requests (not answer them) until it
// releases them: that is how a read that is "running" in the kernel, in a
// call nothing but the server can end, is made on purpose.
//
// Teardown (t.Cleanup): held READs are answered, the mount is detached
// (umount2 MNT_DETACH), the serving goroutine is told to stop (it polls the
// device and a stop pipe, so it never sits in a read that nothing ends) and
// returns, and then /dev/fuse is closed, which aborts the connection: any
// request still pending in the kernel fails, so nothing can stay blocked on
// this server after the test.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FUSE opcodes (enum fuse_opcode).
const (
	fuseLookup      = 1
	fuseForget      = 2
	fuseGetattr     = 3
	fuseOpen        = 14
	fuseRead        = 15
	fuseStatfs      = 17
	fuseRelease     = 18
	fuseGetxattr    = 22
	fuseListxattr   = 23
	fuseFlush       = 25
	fuseInit        = 26
	fuseAccess      = 34
	fuseInterrupt   = 36
	fuseDestroy     = 38
	fuseBatchForget = 42
)

const (
	fuseRootID = 1 // FUSE_ROOT_ID
	fuseFileID = 2 // the one file's node id
	fuseInHdr  = 40
	fuseOutHdr = 16
	// fuseMinMinor is the oldest protocol minor this server speaks: the
	// structures it uses have had their present size since 7.12.
	fuseMinMinor = 12
	// fuseAsyncRead is FUSE_ASYNC_READ, the one INIT flag a test may ask for.
	fuseAsyncRead = 1 << 0
	// fuseFileName is the file the root directory holds.
	fuseFileName = "data"
)

// fuseHeld is a READ the server holds.
type fuseHeld struct {
	unique uint64
	off    int64
	size   int
}

// fuseOptions chooses how the server behaves.
type fuseOptions struct {
	asyncRead      bool // offer FUSE_ASYNC_READ in the INIT reply
	honorInterrupt bool // answer an interrupted held READ with -EINTR
}

// fuseServer is one mounted FUSE file system served by this process.
type fuseServer struct {
	t    testing.TB
	dir  string // the mount point
	path string // dir/data
	data []byte
	opts fuseOptions

	dev          int // /dev/fuse, non-blocking
	stopR, stopW int // a pipe: a byte on it stops the serving goroutine
	done         chan struct{}

	mu         sync.Mutex
	minor      uint32 // negotiated protocol minor (0 before INIT)
	hold       bool
	held       []fuseHeld
	heldTotal  int // READs held so far
	reads      int // READs received
	interrupts int // INTERRUPTs received
	unknown    map[uint32]int
	err        error // the first protocol error the server met
	changed    chan struct{}
}

// newFuseServer mounts a FUSE file system serving data as dir/data, or skips
// the test with the reason when FUSE cannot be used here. It is torn down when
// the test ends (see the file comment); register it before the Contexts that
// read it, so that they are destroyed first.
func newFuseServer(t *testing.T, data []byte, opts fuseOptions) *fuseServer {
	t.Helper()
	dev, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		t.Skipf("FUSE is not available here: open /dev/fuse: %v", err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		t.Skipf("FUSE is not usable by this user: open /dev/fuse: %v", err)
	case err != nil:
		t.Fatalf("open /dev/fuse: %v", err)
	}
	dir, err := os.MkdirTemp("", "uringaio-fuse-")
	if err != nil {
		unix.Close(dev)
		t.Fatalf("MkdirTemp: %v", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		unix.Close(dev)
		os.Remove(dir)
		t.Fatalf("pipe2: %v", err)
	}
	s := &fuseServer{
		t: t, dir: dir, path: dir + "/" + fuseFileName, data: data, opts: opts,
		dev: dev, stopR: p[0], stopW: p[1], done: make(chan struct{}),
		unknown: map[uint32]int{}, changed: make(chan struct{}),
	}
	mopts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d", dev, os.Getuid(), os.Getgid())
	if err := unix.Mount("uringaio-test", dir, "fuse.uringaio-test", unix.MS_NOSUID|unix.MS_NODEV, mopts); err != nil {
		unix.Close(dev)
		unix.Close(p[0])
		unix.Close(p[1])
		os.Remove(dir)
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			t.Skipf("FUSE mount not permitted here (needs CAP_SYS_ADMIN or a user namespace): mount: %v", err)
		case errors.Is(err, unix.ENODEV):
			t.Skipf("the fuse file system is not available (module not loaded?): mount: %v", err)
		}
		t.Fatalf("mount fuse on %s: %v", dir, err)
	}
	go s.serve()
	t.Cleanup(s.close)
	// Wait for INIT to be answered: a request made before that waits in the
	// kernel, which is harmless, but a server that never got INIT is a setup
	// failure worth reporting as such.
	deadline := time.Now().Add(eventWait)
	for {
		var st unix.Stat_t
		err := unix.Stat(s.path, &st)
		if err == nil {
			if st.Size != int64(len(data)) {
				t.Fatalf("stat %s: size %d, want %d", s.path, st.Size, len(data))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stat %s on the FUSE mount: %v", s.path, err)
		}
		time.Sleep(time.Millisecond)
	}
	return s
}

// close tears the server down (see the file comment) and reports a protocol
// error the server met.
func (s *fuseServer) close() {
	s.release()
	if err := unix.Unmount(s.dir, unix.MNT_DETACH); err != nil {
		s.t.Errorf("umount2(%s, MNT_DETACH): %v", s.dir, err)
	}
	unix.Write(s.stopW, []byte{1})
	select {
	case <-s.done:
	case <-time.After(eventWait):
		s.t.Errorf("the FUSE server's goroutine did not stop within %v", eventWait)
	}
	unix.Close(s.dev) // aborts whatever is still pending
	unix.Close(s.stopR)
	unix.Close(s.stopW)
	os.Remove(s.dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		s.t.Errorf("FUSE server: %v", s.err)
	}
}

// setHold makes the server hold every READ from now on (true), or answer
// them again (false; the ones held stay held until release).
func (s *fuseServer) setHold(on bool) {
	s.mu.Lock()
	s.hold = on
	s.mu.Unlock()
}

// release answers every held READ and stops holding. It is safe to call at
// any time, from any goroutine, more than once.
func (s *fuseServer) release() {
	s.mu.Lock()
	s.hold = false
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, h := range held {
		s.answerRead(h.unique, h.off, h.size)
	}
}

// waitHeld waits until at least n READs have been held since the server
// started, and reports whether that happened within d.
func (s *fuseServer) waitHeld(n int, d time.Duration) bool {
	deadline := time.After(d)
	for {
		s.mu.Lock()
		ok, ch := s.heldTotal >= n, s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// stats returns the counts of READs received, READs held now and INTERRUPTs.
func (s *fuseServer) stats() (reads, heldNow, interrupts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, len(s.held), s.interrupts
}

// notifyLocked wakes waitHeld. With mu held.
func (s *fuseServer) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// failf records the server's first protocol error.
func (s *fuseServer) failf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

// serve reads and answers requests until told to stop or the connection
// ends.
func (s *fuseServer) serve() {
	defer close(s.done)
	// The kernel wants room for a whole request: max_write plus headers, and
	// at least FUSE_MIN_READ_BUFFER (8 KiB).
	buf := make([]byte, 1<<20+4096)
	for {
		pfd := []unix.PollFd{{Fd: int32(s.dev), Events: unix.POLLIN}, {Fd: int32(s.stopR), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			s.failf("poll: %v", err)
			return
		}
		if pfd[1].Revents != 0 {
			return
		}
		n, err := unix.Read(s.dev, buf)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			continue
		case err == unix.ENOENT:
			continue // the request was interrupted before it was read
		case err == unix.ENODEV:
			return // unmounted, or aborted
		case err != nil:
			s.failf("read /dev/fuse: %v", err)
			return
		}
		s.handle(buf[:n])
	}
}

var le = binary.LittleEndian

// handle answers one request.
func (s *fuseServer) handle(req []byte) {
	if len(req) < fuseInHdr {
		s.failf("request of %d bytes", len(req))
		return
	}
	op := le.Uint32(req[4:])
	unique := le.Uint64(req[8:])
	node := le.Uint64(req[16:])
	body := req[fuseInHdr:]
	switch op {
	case fuseInit:
		s.init(unique, body)
	case fuseLookup:
		name := string(body)
		if i := indexByte(body, 0); i >= 0 {
			name = string(body[:i])
		}
		if node != fuseRootID || name != fuseFileName {
			s.reply(unique, -int32(unix.ENOENT), nil)
			return
		}
		out := make([]byte, 40, 40+88)
		le.PutUint64(out[0:], fuseFileID) // nodeid
		le.PutUint64(out[8:], 1)          // generation
		le.PutUint64(out[16:], 3600)      // entry_valid
		le.PutUint64(out[24:], 3600)      // attr_valid
		s.reply(unique, 0, append(out, s.attr(fuseFileID)...))
	case fuseGetattr:
		if node != fuseRootID && node != fuseFileID {
			s.reply(unique, -int32(unix.ENOENT), nil)
			return
		}
		out := make([]byte, 16, 16+88)
		le.PutUint64(out[0:], 3600) // attr_valid
		s.reply(unique, 0, append(out, s.attr(node)...))
	case fuseOpen:
		if node != fuseFileID {
			s.reply(unique, -int32(unix.EISDIR), nil)
			return
		}
		if len(body) >= 4 && le.Uint32(body)&unix.O_ACCMODE != unix.O_RDONLY {
			s.reply(unique, -int32(unix.EROFS), nil)
			return
		}
		// fh 1, open_flags 0: no FOPEN_KEEP_CACHE, so each open drops the
		// file's page cache (a cold start), and no FOPEN_DIRECT_IO, so
		// reads go through the page cache like any file system's.
		out := make([]byte, 16)
		le.PutUint64(out[0:], 1)
		s.reply(unique, 0, out)
	case fuseRead:
		if len(body) < 24 || node != fuseFileID {
			s.reply(unique, -int32(unix.EINVAL), nil)
			return
		}
		off := int64(le.Uint64(body[8:]))
		size := int(le.Uint32(body[16:]))
		s.mu.Lock()
		s.reads++
		if s.hold {
			s.held = append(s.held, fuseHeld{unique, off, size})
			s.heldTotal++
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.answerRead(unique, off, size)
	case fuseInterrupt:
		if len(body) < 8 {
			return
		}
		target := le.Uint64(body)
		s.mu.Lock()
		s.interrupts++
		var found *fuseHeld
		if s.opts.honorInterrupt {
			for i, h := range s.held {
				if h.unique == target {
					found = &fuseHeld{h.unique, h.off, h.size}
					s.held = append(s.held[:i], s.held[i+1:]...)
					break
				}
			}
		}
		s.notifyLocked()
		s.mu.Unlock()
		if found != nil {
			s.reply(target, -int32(unix.EINTR), nil)
		}
		// Otherwise ignored, as the kernel allows (fuse.rst): the request
		// is answered in its own time.
	case fuseRelease, fuseFlush, fuseAccess, fuseDestroy:
		s.reply(unique, 0, nil)
	case fuseStatfs:
		out := make([]byte, 80)
		le.PutUint64(out[0:], uint64(len(s.data)+4095)/4096) // blocks
		le.PutUint32(out[40:], 4096)                         // bsize
		le.PutUint32(out[44:], 255)                          // namelen
		le.PutUint32(out[48:], 4096)                         // frsize
		s.reply(unique, 0, out)
	case fuseForget, fuseBatchForget:
		// No reply.
	case fuseGetxattr, fuseListxattr:
		s.reply(unique, -int32(unix.ENOSYS), nil)
	default:
		s.mu.Lock()
		s.unknown[op]++
		s.mu.Unlock()
		s.reply(unique, -int32(unix.ENOSYS), nil)
	}
}

// init answers INIT with the kernel's own protocol minor (the structures
// this server uses have not changed size since fuseMinMinor) and minimal
// flags.
func (s *fuseServer) init(unique uint64, body []byte) {
	if len(body) < 16 {
		s.failf("INIT of %d bytes", len(body))
		s.reply(unique, -int32(unix.EPROTO), nil)
		return
	}
	major, minor := le.Uint32(body[0:]), le.Uint32(body[4:])
	maxReadahead := le.Uint32(body[8:])
	if major != 7 || minor < fuseMinMinor {
		s.failf("kernel offers FUSE protocol %d.%d; this server needs 7.%d or later", major, minor, fuseMinMinor)
		// Answering with our major makes the kernel fail the mount's
		// requests cleanly.
	}
	var flags uint32
	if s.opts.asyncRead {
		flags |= fuseAsyncRead & le.Uint32(body[12:])
	}
	// struct fuse_init_out as of 7.23 and later (64 bytes); the kernel
	// accepts a reply up to its own size, and older minors read a prefix.
	out := make([]byte, 64)
	le.PutUint32(out[0:], 7)
	le.PutUint32(out[4:], minor)
	le.PutUint32(out[8:], maxReadahead)
	le.PutUint32(out[12:], flags)
	le.PutUint16(out[16:], 0)     // max_background: the kernel's default
	le.PutUint16(out[18:], 0)     // congestion_threshold: default
	le.PutUint32(out[20:], 1<<16) // max_write
	le.PutUint32(out[24:], 1)     // time_gran
	size := 64
	if minor < 23 {
		size = 24 // FUSE_COMPAT_22_INIT_OUT_SIZE
	}
	s.mu.Lock()
	s.minor = minor
	s.mu.Unlock()
	s.reply(unique, 0, out[:size])
}

// attr is struct fuse_attr for node.
func (s *fuseServer) attr(node uint64) []byte {
	a := make([]byte, 88)
	le.PutUint64(a[0:], node) // ino
	mode, nlink, size := uint32(unix.S_IFDIR|0o555), uint32(2), uint64(0)
	if node == fuseFileID {
		mode, nlink, size = unix.S_IFREG|0o444, 1, uint64(len(s.data))
	}
	le.PutUint64(a[8:], size)                 // size
	le.PutUint64(a[16:], (size+511)/512)      // blocks
	le.PutUint32(a[60:], mode)                // mode
	le.PutUint32(a[64:], nlink)               // nlink
	le.PutUint32(a[68:], uint32(os.Getuid())) // uid
	le.PutUint32(a[72:], uint32(os.Getgid())) // gid
	le.PutUint32(a[80:], 4096)                // blksize
	return a
}

// answerRead answers READ unique with the file's bytes in [off, off+size),
// cut at the end of the file.
func (s *fuseServer) answerRead(unique uint64, off int64, size int) {
	var b []byte
	if off < int64(len(s.data)) {
		b = s.data[off:min(int64(len(s.data)), off+int64(size))]
	}
	s.reply(unique, 0, b)
}

// reply writes one answer. ENOENT means the request is gone (interrupted and
// answered, or the connection aborted): not an error of the server.
func (s *fuseServer) reply(unique uint64, errno int32, payload []byte) {
	msg := make([]byte, fuseOutHdr+len(payload))
	le.PutUint32(msg[0:], uint32(len(msg)))
	le.PutUint32(msg[4:], uint32(errno))
	le.PutUint64(msg[8:], unique)
	copy(msg[fuseOutHdr:], payload)
	for {
		_, err := unix.Write(s.dev, msg)
		switch err {
		case nil, unix.ENOENT, unix.ENODEV, unix.EBADF:
			return
		case unix.EINTR:
			continue
		}
		s.failf("reply to request %d: %v", unique, err)
		return
	}
}

// fuseKernelStacks returns the kernel stacks of this process's threads that
// wait in FUSE, io_uring or the page cache (io-wq workers are threads of the
// process too), for a failure message: they show where a stuck call waits.
// Reading them needs root; without it the answer says so.
func fuseKernelStacks() string {
	tasks, _ := filepath.Glob("/proc/self/task/*")
	var out strings.Builder
	for _, task := range tasks {
		st, err := os.ReadFile(task + "/stack")
		if err != nil {
			return "(kernel stacks unreadable: " + err.Error() + ")"
		}
		s := string(st)
		if !strings.Contains(s, "fuse") && !strings.Contains(s, "io_") && !strings.Contains(s, "folio") {
			continue
		}
		comm, _ := os.ReadFile(task + "/comm")
		fmt.Fprintf(&out, "\n  thread %s (%s):\n%s", filepath.Base(task), strings.TrimSpace(string(comm)), s)
	}
	if out.Len() == 0 {
		return "(no thread waits in FUSE or io_uring)"
	}
	return out.String()
}

// indexByte is bytes.IndexByte without the import.
func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
