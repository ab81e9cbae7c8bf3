//go:build linux

package aio_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// Choose the kernel mechanism by name. A named backend runs exactly that
// backend, or SetupWithOptions fails with an error matching ErrNotSupported
// that says why: there is no silent fallback. "auto" (or leaving Backend
// empty with URINGAIO_BACKEND unset) takes the best one that can run.
func ExampleSetupWithOptions() {
	c, err := aio.SetupWithOptions(8, aio.Options{Backend: "kaio"})
	if errors.Is(err, aio.ErrNotSupported) {
		fmt.Println("classic AIO cannot run here:", err) // e.g. fs.aio-max-nr is used up
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()
	fmt.Println("started:", c.Backend())
	// Probes says what selection tried; the last entry is the backend in use.
	p := c.Probes()
	fmt.Println("last probe:", p[len(p)-1].Backend, p[len(p)-1].Err)

	// Which backend auto picks depends on the machine (see its Backend and
	// Probes); that it starts does not.
	auto, err := aio.SetupWithOptions(8, aio.Options{Backend: "auto"})
	fmt.Println("auto started:", err == nil)
	if err == nil {
		auto.Destroy()
	}

	// An unknown name is an error listing the valid names, not a fallback.
	_, err = aio.SetupWithOptions(8, aio.Options{Backend: "epoll"})
	fmt.Println("epoll refused:", errors.Is(err, unix.EINVAL))
	// Output:
	// started: kaio
	// last probe: kaio <nil>
	// auto started: true
	// epoll refused: true
}

// Do with a deadline: a read on an empty pipe waits until the deadline, then
// Do cancels it in the kernel. The error matches both
// context.DeadlineExceeded and ECANCELED, and the IOCB may be reused at once:
// the kernel no longer holds its buffer.
func ExampleContext_Do() {
	c, err := aio.Setup(4)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		log.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	cb := &aio.IOCB{Op: aio.OpRead, FD: p[0], Buf: make([]byte, 16)}
	ev, err := c.Do(ctx, cb)
	fmt.Println("deadline exceeded:", errors.Is(err, context.DeadlineExceeded))
	fmt.Println("canceled:", errors.Is(err, unix.ECANCELED), ev.Res == -int64(unix.ECANCELED))

	// The same IOCB, again, once there is data.
	unix.Write(p[1], []byte("late data"))
	ev, err = c.Do(context.Background(), cb)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %q\n", cb.Buf[:ev.Res])
	// Output:
	// deadline exceeded: true
	// canceled: true true
	// read "late data"
}

// GetEvents with a timeout returns what is ready when the time is up, with a
// nil error — possibly nothing. A zero timeout looks without waiting.
func ExampleContext_GetEvents() {
	c, err := aio.Setup(4)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		log.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	// Wait for input on the empty pipe.
	cb := &aio.IOCB{Op: aio.OpPoll, FD: p[0], PollEvents: unix.POLLIN, Data: 7}
	if _, err := c.Submit(cb); err != nil {
		log.Fatal(err)
	}
	evs := make([]aio.Event, 4)
	timeout := 10 * time.Millisecond
	n, err := c.GetEvents(1, evs, &timeout)
	fmt.Println("after 10ms:", n, err)
	var zero time.Duration
	n, err = c.GetEvents(0, evs, &zero)
	fmt.Println("without waiting:", n, err)

	// Input arrives: the poll completes, with only the event it asked for.
	unix.Write(p[1], []byte("x"))
	timeout = 5 * time.Second
	n, err = c.GetEvents(1, evs, &timeout)
	fmt.Println("after the write:", n, err)
	fmt.Println("Data", evs[0].Data, "POLLIN only:", evs[0].Res == unix.POLLIN)
	// Output:
	// after 10ms: 0 <nil>
	// without waiting: 0 <nil>
	// after the write: 1 <nil>
	// Data 7 POLLIN only: true
}

// Buffers are aligned blocks outside the Go heap; on io_uring they are
// registered with the ring, and a read into a block goes READ_FIXED by
// itself. A registered File names its fixed-file entry instead of its
// descriptor. Both behave the same on every backend.
func ExampleNewBuffers() {
	c, err := aio.Setup(8)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Destroy()
	f, err := os.CreateTemp("", "buffers-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString("registered"); err != nil {
		fmt.Println(err)
		return
	}
	af := aio.NewFile(c, f)
	if err := af.Register(); err != nil {
		fmt.Println(err)
		return
	}
	defer af.Close() // empties the entry, then closes f

	bufs, err := aio.NewBuffers(c, 4096, 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	cb := &aio.IOCB{Op: aio.OpRead, Buf: bufs.Block(0)[:10]}
	cb.SetFile(af)
	ev, err := c.Do(context.Background(), cb)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", cb.Buf[:ev.Res])
	// Release refuses while a request on the memory is outstanding; here
	// none is.
	if err := bufs.Release(); err != nil {
		fmt.Println(err)
	}
	// Output: registered
}
