package aio_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uringaio/uringaio/aio"
)

// Every error the package makes reads "aio: " + the call or the operation +
// ": " + …, and File's errors are *os.PathError around one. The rows are errors
// from real calls, on whatever backend runs here; this file builds on every
// platform (off Unix only the Setup rows run: no backend starts there).

// setupOrSkip returns a Context on the default backend, or skips when none
// can run here; Setup's own error must follow the scheme too.
func setupOrSkip(t *testing.T) *aio.Context {
	t.Helper()
	c, err := aio.Setup(4)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "aio: Setup: ") {
			t.Errorf("Setup: %q does not start with %q", err, "aio: Setup: ")
		}
		if errors.Is(err, aio.ErrNotSupported) {
			t.Skip("no backend runs here:", err)
		}
		t.Fatal(err)
	}
	return c
}

func TestErrorScheme(t *testing.T) {
	tests := []struct {
		name   string
		prefix string // what the message must start with
		is     error  // what it must match (errors.Is)
		err    func(t *testing.T) error
	}{
		{"Setup maxEvents", "aio: Setup: ", syscall.EINVAL, func(t *testing.T) error {
			_, err := aio.Setup(0)
			return err
		}},
		{"Setup negative Workers", "aio: Setup: ", syscall.EINVAL, func(t *testing.T) error {
			_, err := aio.SetupWithOptions(1, aio.Options{Workers: -1})
			return err
		}},
		{"Setup negative Lanes", "aio: Setup: ", syscall.EINVAL, func(t *testing.T) error {
			_, err := aio.SetupWithOptions(1, aio.Options{Lanes: -1})
			return err
		}},
		{"Setup unknown backend", "aio: Setup: unknown backend ", syscall.EINVAL, func(t *testing.T) error {
			_, err := aio.SetupWithOptions(1, aio.Options{Backend: "nope"})
			return err
		}},
		{"Setup named backend that cannot run", "aio: Setup: backend ", aio.ErrNotSupported, func(t *testing.T) error {
			// Whichever of them cannot run here (off Linux, uring and
			// kaio; on Linux, one refused by the kernel's settings).
			for _, name := range []string{"uring", "kaio", "threads"} {
				c, err := aio.SetupWithOptions(1, aio.Options{Backend: name})
				if err != nil {
					return err
				}
				c.Destroy()
			}
			t.Skip("every backend runs here")
			return nil
		}},
		{"Submit on a destroyed Context", "aio: Submit: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			c.Destroy()
			_, err := c.Submit(&aio.IOCB{Op: aio.OpNop})
			return err
		}},
		{"Event.Err of a failed request", "aio: read: ", syscall.EBADF, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			if _, err := c.Submit(&aio.IOCB{Op: aio.OpRead, FD: -1, Buf: make([]byte, 1)}); err != nil {
				t.Fatal(err)
			}
			evs := make([]aio.Event, 1)
			if _, err := c.GetEvents(1, evs, nil); err != nil {
				t.Fatal(err)
			}
			return evs[0].Err()
		}},
		{"Submit with Len on a read", "aio: Submit: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			_, err := c.Submit(&aio.IOCB{Op: aio.OpRead, FD: 0, Buf: make([]byte, 1), Len: 1})
			return err
		}},
		{"Do of a fallocate with Len 0", "aio: Do: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			_, err := c.Do(context.Background(), &aio.IOCB{Op: aio.OpFallocate, FD: 0})
			return err
		}},
		{"Event.Err of a failed fallocate", "aio: fallocate: ", syscall.EBADF, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			cb := &aio.IOCB{Op: aio.OpFallocate, FD: -1, Len: 4096}
			if _, err := c.Submit(cb); err != nil {
				t.Fatal(err)
			}
			evs := make([]aio.Event, 1)
			if _, err := c.GetEvents(1, evs, nil); err != nil {
				t.Fatal(err)
			}
			return evs[0].Err()
		}},
		{"Do of a failed sync_file_range", "aio: sync_file_range: ", syscall.EBADF, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			_, err := c.Do(context.Background(), &aio.IOCB{Op: aio.OpSyncFileRange, FD: -1})
			return err
		}},
		{"Do of a failed fadvise", "aio: fadvise: ", syscall.EBADF, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			_, err := c.Do(context.Background(), &aio.IOCB{Op: aio.OpFadvise, FD: -1})
			return err
		}},
		{"Do canceled", "aio: nop: canceled: ", context.Canceled, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := c.Do(ctx, &aio.IOCB{Op: aio.OpNop})
			return err
		}},
		{"ReadAt at a negative offset", "aio: ReadAt: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			_, err := c.ReadAt(context.Background(), 0, make([]byte, 1), -1)
			return err
		}},
		// A refusal names the call the program made, whichever call
		// refused underneath (ReadAt and WriteAt are built on Do, and Do
		// on Submit's checks).
		{"Do on a destroyed Context", "aio: Do: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			c.Destroy()
			_, err := c.Do(context.Background(), &aio.IOCB{Op: aio.OpNop})
			return err
		}},
		{"Do of a nil IOCB", "aio: Do: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			defer c.Destroy()
			_, err := c.Do(context.Background(), nil)
			return err
		}},
		{"ReadAt on a destroyed Context", "aio: ReadAt: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			c.Destroy()
			_, err := c.ReadAt(context.Background(), 0, make([]byte, 1), 0)
			return err
		}},
		{"WriteAt on a destroyed Context", "aio: WriteAt: ", syscall.EINVAL, func(t *testing.T) error {
			c := setupOrSkip(t)
			c.Destroy()
			_, err := c.WriteAt(context.Background(), 1, make([]byte, 1), 0)
			return err
		}},
		{"ReadAt of a descriptor outside the int32 range", "aio: ReadAt: ", syscall.EINVAL, func(t *testing.T) error {
			fd := int64(1) << 40
			if int64(int(fd)) != fd {
				t.Skip("int has 32 bits here: every descriptor is in the int32 range")
			}
			c := setupOrSkip(t)
			defer c.Destroy()
			_, err := c.ReadAt(context.Background(), int(fd), make([]byte, 1), 0)
			return err
		}},
		{"ReadAt on a destroyed Context with lanes", "aio: ReadAt: ", syscall.EINVAL, func(t *testing.T) error {
			c, err := aio.SetupWithOptions(4, aio.Options{Lanes: 4})
			if err != nil {
				t.Skip("no backend runs here:", err)
			}
			c.Destroy()
			_, err = c.ReadAt(context.Background(), 0, make([]byte, 1), 0)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tt.prefix) {
				t.Errorf("%q does not start with %q", msg, tt.prefix)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("%q does not match %v", err, tt.is)
			}
		})
	}
}

// File's errors are the os package's shape, *os.PathError, around one of
// the package's errors.
func TestErrorSchemeFile(t *testing.T) {
	c := setupOrSkip(t)
	defer c.Destroy()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = aio.NewFile(c, f).WriteAt([]byte("x"), 0)
	var pe *os.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("WriteAt on an O_APPEND file: %v (%T), want an *os.PathError", err, err)
	}
	if pe.Op != "write" || pe.Path != f.Name() || !strings.HasPrefix(pe.Err.Error(), "aio: WriteAt: ") {
		t.Errorf("WriteAt on an O_APPEND file: Op %q Path %q Err %q; want write, %s, aio: WriteAt: …", pe.Op, pe.Path, pe.Err, f.Name())
	}
}

// File's errors name the File call that was made, inside the os package's
// *os.PathError: "read <name>: aio: ReadAt: …".
func TestErrorSchemeFileCall(t *testing.T) {
	for _, lanes := range []int{1, 4} {
		c, err := aio.SetupWithOptions(4, aio.Options{Lanes: lanes})
		if err != nil {
			t.Skip("no backend runs here:", err)
		}
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		af := aio.NewFile(c, f)
		c.Destroy()
		for _, tc := range []struct {
			op, call string
			do       func() error
		}{
			{"read", "ReadAt", func() error { _, err := af.ReadAt(make([]byte, 1), 0); return err }},
			{"write", "WriteAt", func() error { _, err := af.WriteAt(make([]byte, 1), 0); return err }},
		} {
			err := tc.do()
			var pe *os.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("lanes %d: File.%s on a destroyed Context: %v (%T), want an *os.PathError", lanes, tc.call, err, err)
			}
			if pe.Op != tc.op || !strings.HasPrefix(pe.Err.Error(), "aio: "+tc.call+": ") || !errors.Is(err, syscall.EINVAL) {
				t.Errorf("lanes %d: File.%s on a destroyed Context: Op %q, %q; want %s, aio: %s: …, matching EINVAL", lanes, tc.call, pe.Op, pe.Err, tc.op, tc.call)
			}
		}
	}
}

// Each Op's String is the name its errors carry ("aio: fadvise: …"): the
// system call's, for the range operations.
func TestOpNames(t *testing.T) {
	for op, want := range map[aio.Op]string{
		aio.OpRead: "read", aio.OpWrite: "write", aio.OpReadv: "readv", aio.OpWritev: "writev",
		aio.OpFsync: "fsync", aio.OpFdsync: "fdatasync", aio.OpPoll: "poll", aio.OpNop: "nop",
		aio.OpSyncFileRange: "sync_file_range", aio.OpFallocate: "fallocate", aio.OpFadvise: "fadvise",
		aio.OpFadvise + 1: "Op(12)", 0: "Op(0)",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op %d: String %q, want %q", uint8(op), got, want)
		}
	}
}

// Probe's String says "name: ok" or "name: reason".
func TestProbeString(t *testing.T) {
	if got := (aio.Probe{Backend: "uring"}).String(); got != "uring: ok" {
		t.Errorf("got %q, want %q", got, "uring: ok")
	}
	p := aio.Probe{Backend: "kaio", Err: aio.ErrNotSupported}
	if got, want := p.String(), "kaio: "+aio.ErrNotSupported.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A File made without a Context fails each call with an error that says so,
// as a File made without a file does, rather than panic: "read <name>: aio:
// NewFile: invalid argument: nil Context", matching EINVAL.
func TestFileNilContext(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name, call string
		af         func() *aio.File
	}{
		{"NewFile", "NewFile", func() *aio.File { return aio.NewFile(nil, f) }},
		{"NewFileConn", "NewFileConn", func() *aio.File { return aio.NewFileConn(nil, f) }},
	} {
		af := tc.af()
		for _, rw := range []struct {
			op string
			do func() (int, error)
		}{
			{"read", func() (int, error) { return af.ReadAt(make([]byte, 1), 0) }},
			{"write", func() (int, error) { return af.WriteAt(make([]byte, 1), 0) }},
		} {
			n, err := rw.do()
			var pe *os.PathError
			if n != 0 || !errors.As(err, &pe) {
				t.Fatalf("%s(nil, f) then %s: %d, %v (%T); want 0 and an *os.PathError", tc.name, rw.op, n, err, err)
			}
			if pe.Op != rw.op || pe.Path != f.Name() || !strings.HasPrefix(pe.Err.Error(), "aio: "+tc.call+": ") ||
				!errors.Is(err, syscall.EINVAL) {
				t.Errorf("%s(nil, f) then %s: Op %q Path %q Err %q; want %s, %s, aio: %s: …, matching EINVAL",
					tc.name, rw.op, pe.Op, pe.Path, pe.Err, rw.op, f.Name(), tc.call)
			}
		}
		if af.Context() != nil {
			t.Errorf("%s(nil, f).Context() = %v, want nil", tc.name, af.Context())
		}
	}
}

// Every refusal of a call on a destroyed Context matches ErrDestroyed as well
// as EINVAL (contract §7.3), File's inside their *os.PathError; no other
// refusal does.
func TestErrDestroyed(t *testing.T) {
	c := setupOrSkip(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	af := aio.NewFile(c, f)
	if _, err := c.Submit(nil); errors.Is(err, aio.ErrDestroyed) {
		t.Errorf("Submit(nil) on a live Context: %v matches ErrDestroyed", err)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	zero := time.Duration(0)
	for _, tc := range []struct {
		call string
		err  func() error
	}{
		{"Submit", func() error { _, err := c.Submit(&aio.IOCB{Op: aio.OpNop}); return err }},
		{"GetEvents", func() error { _, err := c.GetEvents(0, nil, &zero); return err }},
		{"Cancel", func() error { _, err := c.Cancel(&aio.IOCB{Op: aio.OpNop}); return err }},
		{"Do", func() error { _, err := c.Do(bg, &aio.IOCB{Op: aio.OpNop}); return err }},
		{"ReadAt", func() error { _, err := c.ReadAt(bg, int(f.Fd()), make([]byte, 1), 0); return err }},
		{"WriteAt", func() error { _, err := c.WriteAt(bg, int(f.Fd()), make([]byte, 1), 0); return err }},
		{"File.ReadAt", func() error { _, err := af.ReadAt(make([]byte, 1), 0); return err }},
		{"File.WriteAt", func() error { _, err := af.WriteAt(make([]byte, 1), 0); return err }},
		{"Destroy", c.Destroy},
	} {
		err := tc.err()
		if !errors.Is(err, aio.ErrDestroyed) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s after Destroy: %v; want a refusal matching ErrDestroyed and EINVAL", tc.call, err)
		}
	}
}
