//go:build linux

package aio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// Cancel every request waiting on one descriptor, as aio_cancel(3) does with a
// NULL aiocbp. The canceled requests are notified as usual: GetEvents delivers
// each one's event with Res == -ECANCELED.
func ExampleContext_CancelFD() {
	c, err := aio.Setup(8)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Destroy()

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		fmt.Println(err)
		return
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	// Three reads wait on the empty pipe.
	cbs := make([]*aio.IOCB, 3)
	for i := range cbs {
		cbs[i] = &aio.IOCB{Op: aio.OpRead, FD: p[0], Buf: make([]byte, 16), Data: uint64(i)}
	}
	if _, err := c.Submit(cbs...); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("before:", c.Error(cbs[0]))

	res, err := c.CancelFD(p[0], nil)
	fmt.Println("CancelFD:", res, err)
	fmt.Println("after:", c.Error(cbs[0]))

	evs := make([]aio.Event, 3)
	n, err := c.GetEvents(3, evs, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	sort.Slice(evs[:n], func(i, j int) bool { return evs[i].Data < evs[j].Data })
	for _, ev := range evs[:n] {
		fmt.Printf("request %d: Res %d, canceled: %v\n", ev.Data, ev.Res, errors.Is(ev.Err(), unix.ECANCELED))
	}

	// Nothing is left on the descriptor.
	res, err = c.CancelFD(p[0], nil)
	fmt.Println("again:", res, err)
	// Output:
	// before: operation now in progress
	// CancelFD: Canceled <nil>
	// after: operation canceled
	// request 0: Res -125, canceled: true
	// request 1: Res -125, canceled: true
	// request 2: Res -125, canceled: true
	// again: AllDone <nil>
}

// Read with a deadline. When the deadline passes while the read waits, the
// read is canceled in the kernel and the error matches both
// context.DeadlineExceeded and ECANCELED; the data that comes later is not
// lost.
func ExampleContext_ReadAt_deadline() {
	c, err := aio.Setup(4)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Destroy()

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		fmt.Println(err)
		return
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	buf := make([]byte, 5)
	n, err := c.ReadAt(ctx, p[0], buf, 0)
	fmt.Println(n, errors.Is(err, context.DeadlineExceeded), errors.Is(err, unix.ECANCELED))
	fmt.Println(err)

	// The pipe lost nothing: a later read gets what is written now.
	unix.Write(p[1], []byte("hello"))
	n, err = c.ReadAt(context.Background(), p[0], buf, 0)
	fmt.Println(n, err, string(buf[:n]))
	// Output:
	// 0 true true
	// aio: read: canceled: context deadline exceeded
	// 5 <nil> hello
}

// A File makes an *os.File an io.ReaderAt and io.WriterAt whose I/O goes
// through the Context, so it composes with the io package.
func ExampleFile() {
	c, err := aio.Setup(4)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Destroy()

	dir, err := os.MkdirTemp("", "aio-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "greeting"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()

	af := aio.NewFile(c, f)
	if _, err := af.WriteAt([]byte("hello, world"), 0); err != nil {
		fmt.Println(err)
		return
	}

	// A section of the file, read through the Context.
	b, err := io.ReadAll(io.NewSectionReader(af, 7, 5))
	fmt.Printf("%q %v\n", b, err)

	// ReaderAt's contract at the end of the file: the bytes there, and io.EOF.
	p := make([]byte, 8)
	n, err := af.ReadAt(p, 10)
	fmt.Printf("%d %q %v\n", n, p[:n], err)

	// With a context that has already ended nothing is submitted.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = af.ReadAtContext(ctx, p, 0)
	fmt.Println(errors.Is(err, context.Canceled), errors.Is(err, unix.ECANCELED))
	// Output:
	// "world" <nil>
	// 2 "ld" EOF
	// true true
}
