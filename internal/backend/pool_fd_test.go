//go:build linux

package backend

import (
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// TestPoolAcquireShares: requests on one open file share one duplicate while
// any holds it; a number closed and reused for another file gets a duplicate
// of its own, never the old one; the duplicate is closed with its last
// reference; and without kcmp (sameFileWorks false) nothing is shared
// (docs/contract.md §3.7).
func TestPoolAcquireShares(t *testing.T) {
	defer goleak.VerifyNone(t)
	if !sameFileWorks {
		t.Skip("kcmp(2) refused here: the pool shares no duplicate (that case is checked below by forcing it)")
	}
	p, _ := newTestPool(t, 1)
	defer p.close()
	r, _ := testPipe(t)
	n := dup(t, r) // the caller's number, closed and reused below

	a, err := p.acquire(int32(n))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.acquire(int32(n))
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.refs != 2 {
		t.Fatalf("two acquires of one open file: %p (refs %d) and %p", a, a.refs, b)
	}
	if same, ok := kcmpFile(a.fd, r); !ok || !same {
		t.Fatalf("the duplicate %d is not the pipe's read end (kcmp %v %v)", a.fd, same, ok)
	}

	// The number now names another file: the write end of another pipe.
	unix.Close(n)
	_, w2 := testPipe(t)
	if err := unix.Dup3(w2, n, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(n)
	c, err := p.acquire(int32(n))
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("a reused number was given the old file's duplicate")
	}
	if same, ok := kcmpFile(c.fd, w2); !ok || !same {
		t.Fatalf("the new duplicate %d is not the new file", c.fd)
	}
	if same, _ := kcmpFile(a.fd, r); !same {
		t.Fatal("the old duplicate no longer names the old file")
	}

	oldFD := a.fd
	p.release(a)
	if !isOpen(oldFD) {
		t.Fatal("the duplicate was closed while a request still held it")
	}
	p.release(b)
	if isOpen(oldFD) {
		if same, _ := kcmpFile(oldFD, r); same {
			t.Fatal("the duplicate is still open after its last release")
		}
	}
	p.release(c)

	// Without kcmp every acquire makes a duplicate of its own.
	sameFileWorks = false
	defer func() { sameFileWorks = true }()
	d, err := p.acquire(int32(r))
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.acquire(int32(r))
	if err != nil {
		t.Fatal(err)
	}
	if d == e || d.fd == e.fd {
		t.Fatal("without kcmp two acquires shared a duplicate")
	}
	p.release(d)
	p.release(e)
	p.mu.Lock()
	left := len(p.files) + len(p.watch)
	p.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d table entries left after every release", left)
	}
}
