//go:build linux

package aio_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/uringaio/uringaio/aio"
)

// connOnly hides the *os.File: it offers only what a storage engine's file
// layer does (syscall.Conn and a name).
type connOnly struct{ f *os.File }

func (c connOnly) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }
func (c connOnly) Name() string                          { return c.f.Name() }

// TestFileConn: a File made from a syscall.Conn reads and writes like one made
// from the *os.File, with and without the inline first try, names the file in
// its errors and reports io.EOF at the end.
func TestFileConn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conn")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, noInline := range []bool{false, true} {
		c, err := aio.SetupWithOptions(8, aio.Options{NoInline: noInline})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		af := aio.NewFileConn(c, connOnly{f})
		if af.File() != nil {
			t.Errorf("File() = %v, want nil for a File from NewFileConn", af.File())
		}
		got := make([]byte, 5000)
		if n, err := af.ReadAt(got, 1000); n != len(got) || err != nil || !bytes.Equal(got, data[1000:6000]) {
			t.Fatalf("NoInline=%v: ReadAt = %d, %v", noInline, n, err)
		}
		if n, err := af.WriteAt([]byte("WXYZ"), 16); n != 4 || err != nil {
			t.Fatalf("NoInline=%v: WriteAt = %d, %v", noInline, n, err)
		}
		if n, err := af.ReadAt(got[:8], 14); n != 8 || err != nil || string(got[:8]) != "efWXYZ45" {
			t.Fatalf("NoInline=%v: ReadAt after WriteAt = %d, %v, %q", noInline, n, err, got[:8])
		}
		if n, err := af.ReadAt(got, int64(len(data))-10); n != 10 || err != io.EOF {
			t.Fatalf("NoInline=%v: ReadAt across the end = %d, %v; want 10, io.EOF", noInline, n, err)
		}
		st := c.Stats()
		if noInline && st.Inline != 0 || !noInline && st.Inline == 0 {
			t.Errorf("NoInline=%v: Stats().Inline = %d", noInline, st.Inline)
		}
		f.Close()
		_, err = af.ReadAt(got, 0)
		var pe *os.PathError
		if !errors.Is(err, os.ErrClosed) || !errors.As(err, &pe) || !strings.HasSuffix(pe.Path, "conn") {
			t.Errorf("ReadAt after Close: %v; want an *os.PathError naming the file, matching os.ErrClosed", err)
		}
		c.Destroy()
	}
}
