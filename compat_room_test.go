//go:build linux

package uringaio_test

// Contract §8.3: Do and the calls built on it wait for room when maxEvents
// requests are outstanding, honouring their context, instead of failing with
// EAGAIN; an io.ReaderAt must not fail because many goroutines read at once.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("context/room/many-readers", func(t *testing.T, be string) { roomManyReaders(t, be, 1) })
	registerCompat("context/room/many-readers-lanes", func(t *testing.T, be string) { roomManyReaders(t, be, 3) })
	registerCompat("context/room/deadline", roomDeadline)
	registerCompat("context/room/destroy", roomDestroy)
}

// roomManyReaders: 16 goroutines share a File on a Context of 4, each reading
// its own ranges; not one call fails and every byte is right. With lanes > 1
// the reads spread over that many lanes (Options.Lanes), each of 4.
func roomManyReaders(t *testing.T, be string, lanes int) {
	const size = 1 << 20
	data := pattern(size, 3)
	path := tempFileWith(t, data)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// NoInline: every read is a request of the backend, so the Context of 4
	// really fills up (page-cached reads would otherwise finish inline).
	c, err := aio.SetupWithOptions(4, aio.Options{Backend: be, NoInline: true, Lanes: lanes})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	af := aio.NewFile(c, f)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []error
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := 0; i < 150; i++ {
				off := int64((g*151+i*17)%(size/4096)) * 4096
				n, err := af.ReadAt(buf, off)
				if err == nil && (n != len(buf) || !bytes.Equal(buf, data[off:off+4096])) {
					err = errors.New("wrong data")
				}
				if err != nil {
					mu.Lock()
					fails = append(fails, err)
					mu.Unlock()
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of 16 readers failed, first: %v", len(fails), fails[0])
	}
	if got := c.Stats().Requests; got != 16*150 {
		t.Errorf("Stats().Requests = %d; want %d", got, 16*150)
	}
}

// roomDeadline: with maxEvents requests outstanding, a Do waits; when its
// context ends first it returns a CanceledError and submits nothing; when a
// request is delivered it proceeds.
func roomDeadline(t *testing.T, be string) {
	r, w := newPipe(t, 0)
	c := newContext(t, be, 2)
	a := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 1), Data: 1}
	b := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 1), Data: 2}
	mustSubmit(t, c, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	cb := &aio.IOCB{Op: aio.OpNop, Data: 3}
	_, err := c.Do(ctx, cb)
	var ce *aio.CanceledError
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do on a full Context past its deadline = %v; want a CanceledError matching DeadlineExceeded", err)
	}
	if e := c.Error(cb); !errors.Is(e, unix.EINVAL) {
		t.Fatalf("Error of the Do that never got room = %v; want EINVAL (never submitted)", e)
	}
	// Room comes when an event is delivered: a waiting Do then runs.
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), cb)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Do returned %v with no room", err)
	case <-time.After(quietWait):
	}
	writeFull(t, w, []byte("x"))
	got := reapN(t, c, 1)[0] // a or b took the byte
	if got.Res != 1 {
		t.Fatalf("pipe read: %+v", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Do after room came: %v", err)
		}
	case <-time.After(eventWait):
		t.Fatal("Do did not run when room came")
	}
	other := a
	if got.IOCB == a {
		other = b
	}
	cancelIt(t, c, other)
}

// roomDestroy: a Do waiting for room when Destroy runs returns EINVAL.
func roomDestroy(t *testing.T, be string) {
	r, _ := newPipe(t, 0)
	c := newContext(t, be, 1)
	a := &aio.IOCB{Op: aio.OpRead, FD: r, Buf: make([]byte, 1)}
	mustSubmit(t, c, a)
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), &aio.IOCB{Op: aio.OpNop})
		done <- err
	}()
	time.Sleep(quietWait)
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantErrno(t, err, unix.EINVAL, "Do waiting for room when Destroy ran")
	case <-time.After(eventWait):
		t.Fatal("Do waiting for room was not woken by Destroy")
	}
}
