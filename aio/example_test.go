//go:build linux

package aio_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// Submit hands requests to the kernel; GetEvents collects their events. Each
// event names its IOCB, so the requests may finish in any order.
func ExampleContext_Submit() {
	dir, err := os.MkdirTemp("", "aio-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "data"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())

	c, err := aio.Setup(8) // io_uring or classic AIO: the results are the same
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()

	// Write, then read back what was written.
	w := &aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: []byte("hello, world"), Data: 1}
	if _, err := c.Submit(w); err != nil {
		log.Fatal(err)
	}
	events := make([]aio.Event, 2)
	n, err := c.GetEvents(1, events, nil) // wait for at least one
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d event: Data %d, wrote %d bytes\n", n, events[0].Data, events[0].Res)

	head := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 5), Offset: 0, Data: 2}
	tail := &aio.IOCB{Op: aio.OpRead, FD: fd, Buf: make([]byte, 16), Offset: 7, Data: 3}
	if n, err := c.Submit(head, tail); n != 2 {
		log.Fatal(err)
	}
	for got := 0; got < 2; {
		n, err := c.GetEvents(2-got, events[:2-got], nil)
		if err != nil {
			log.Fatal(err)
		}
		got += n
	}
	// The short read at the end of the file says how much it read.
	fmt.Printf("head: %q\n", head.Buf)
	fmt.Printf("tail: %q\n", tail.Buf[:5])
	// Output:
	// 1 event: Data 1, wrote 12 bytes
	// head: "hello"
	// tail: "world"
}

// Cancel stops a request that waits — here a read on an empty pipe — and
// returns its event itself: GetEvents will never deliver it.
func ExampleContext_Cancel() {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		log.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	c, err := aio.Setup(8)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()

	rd := &aio.IOCB{Op: aio.OpRead, FD: p[0], Buf: make([]byte, 64), Data: 42}
	if _, err := c.Submit(rd); err != nil { // returns at once: the read waits in the kernel
		log.Fatal(err)
	}
	ev, err := c.Cancel(rd)
	switch {
	case err == nil:
		fmt.Println("canceled:", ev.Data, errors.Is(ev.Err(), unix.ECANCELED))
	case errors.Is(err, unix.EAGAIN):
		fmt.Println("too late: GetEvents will deliver it")
	default:
		log.Fatal(err)
	}

	// A second Cancel finds nothing to cancel: the event was delivered.
	_, err = c.Cancel(rd)
	fmt.Println("again:", errors.Is(err, unix.EINVAL))

	// The canceled read took nothing from the pipe.
	unix.Write(p[1], []byte("still here"))
	buf := make([]byte, 64)
	n, _ := unix.Read(p[0], buf)
	fmt.Printf("pipe: %q\n", buf[:n])
	// Output:
	// canceled: 42 true
	// again: true
	// pipe: "still here"
}
