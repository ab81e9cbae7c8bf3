//go:build unix

package backend

import "golang.org/x/sys/unix"

// Descriptors of the pool.
//
// A request must act on the file its descriptor named at Submit, even if the
// caller closes the number and opens another file under it before the request
// ends. Where the caller's number may be closed underneath (a raw Submit), the
// pool works on a duplicate of its own (F_DUPFD_CLOEXEC), which it closes when
// the last request using it ends. One duplicate serves every request on the
// same open file at the same time (acquire): it is found by the caller's
// number, and used only when the kernel says that the number still names
// that duplicate's open file (sameFile: kcmp(2) KCMP_FILE on Linux). A
// number closed and reused for another file fails that check, and the request
// gets a duplicate of its own; where the check cannot be made (no kcmp, or
// off Linux) every request gets its own, as before. So a thousand polls on one
// pipe hold one extra descriptor, not a thousand, and none can be redirected.
//
// A descriptor the pool does not own (start with own false: the pool's tests,
// and requests whose caller holds the number for the request's whole life)
// is shared by number (heldLocked).
//
// The readiness mechanism (poller_*.go) watches dfiles, not requests: one
// registration per descriptor, whatever the number of requests waiting on
// it, and always on a number the pool holds, so that no registration can be
// left behind by a caller's close.
type dfile struct {
	fd   int
	own  bool  // the pool closes fd when refs reaches 0
	num  int32 // the caller's number it duplicates, while p.files maps it here; else -1
	refs int   // requests using it, and acquires in progress
	id   uint64

	waiters []*preq   // requests waiting for readiness; preq.widx indexes it
	bits    [16]int32 // how many waiters wait for each poll bit
	aidx    int       // index in p.active while it has waiters, else -1

	//lint:ignore U1000 empty for poll(2) (poller_other.go)
	pollerFile // the readiness mechanism's own (poller_*.go)
}

// newDfileLocked makes a dfile for fd with one reference.
func (p *pool) newDfileLocked(fd int, own bool, num int32) *dfile {
	p.nextID++
	df := &dfile{fd: fd, own: own, num: num, refs: 1, id: p.nextID, aidx: -1}
	p.watch[df.id] = df
	return df
}

// heldLocked is the dfile of a descriptor the pool does not own, with one
// more reference.
func (p *pool) heldLocked(fd int) *dfile {
	if df := p.held[fd]; df != nil {
		df.refs++
		return df
	}
	df := p.newDfileLocked(fd, false, -1)
	p.held[fd] = df
	return df
}

// acquire returns a descriptor of the pool's own for the open file fd names
// now, with one reference for the caller (startOn, or release): a duplicate
// made for an earlier request that is still running, if fd still names its
// open file, else a new one. It fails with the errno of F_DUPFD_CLOEXEC
// (EBADF: fd is not open; EMFILE: no descriptor left).
func (p *pool) acquire(fd int32) (*dfile, error) {
	p.mu.Lock()
	df := p.files[fd]
	if df != nil {
		df.refs++
	}
	p.mu.Unlock()
	if df != nil {
		if sameFile(int(fd), df.fd) {
			return df, nil
		}
		p.release(df)
	}
	d, err := dupCloexec(int(fd))
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	df = p.newDfileLocked(d, true, -1)
	if sameFileWorks {
		if old := p.files[fd]; old != nil {
			old.num = -1 // fd names another file now: old serves its own requests only
		}
		df.num = fd
		p.files[fd] = df
	}
	p.mu.Unlock()
	return df, nil
}

// release drops a reference taken by acquire that no request took over.
func (p *pool) release(df *dfile) {
	p.mu.Lock()
	fd := p.releaseLocked(df)
	p.mu.Unlock()
	if fd >= 0 {
		unix.Close(fd)
	}
}

// releaseLocked drops one reference to df. At the last it forgets df and
// returns the descriptor for the caller to close once p.mu is released (else
// -1): no request waits on it any more, and the readiness mechanism has let
// it go (forgetLocked), so the number may be reused at once.
func (p *pool) releaseLocked(df *dfile) int {
	if df.refs--; df.refs > 0 {
		return -1
	}
	p.forgetLocked(df)
	delete(p.watch, df.id)
	if df.num >= 0 && p.files[df.num] == df {
		delete(p.files, df.num)
	}
	if !df.own {
		if p.held[df.fd] == df {
			delete(p.held, df.fd)
		}
		return -1
	}
	return df.fd
}
