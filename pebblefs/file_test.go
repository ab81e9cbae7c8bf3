package pebblefs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/pebblefs"
)

// TestFile checks the wrapped file's calls against what vfs.Default's file
// does for the same sequence: sequential Write at the tracked offset, ReadAt
// and its io.EOF, sequential Read, WriteAt, Sync and SyncData, and the
// refusal after Close; and that each of them went through the Context.
func TestFile(t *testing.T) {
	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			c := setup(t, be)
			fs := pebblefs.New(c, vfs.Default)
			name := filepath.Join(t.TempDir(), "f")

			// Everything the library carried: requests of the backend, and
			// what aio.File did on the caller's goroutine.
			carried := func() uint64 { st := c.Stats(); return st.Requests + st.Inline }
			before := carried()
			f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte("0123456789abcdef"), 1000)
			for off := 0; off < len(want); off += 3000 {
				if n, err := f.Write(want[off:min(off+3000, len(want))]); err != nil || n != min(3000, len(want)-off) {
					t.Fatalf("Write at %d: %d, %v", off, n, err)
				}
			}
			if _, err := f.WriteAt([]byte("XY"), 10); err != nil {
				t.Fatal(err)
			}
			copy(want[10:], "XY")
			if err := f.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if err := f.SyncData(); err != nil {
				t.Fatalf("SyncData: %v", err)
			}
			if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(want)) {
				t.Fatalf("Stat: %v, %v", fi, err)
			}
			got := make([]byte, len(want)+5)
			n, err := f.ReadAt(got, 0)
			if n != len(want) || err != io.EOF || !bytes.Equal(got[:n], want) {
				t.Fatalf("ReadAt past the end: %d, %v", n, err)
			}
			if n, err := f.ReadAt(got[:100], 50); n != 100 || err != nil || !bytes.Equal(got[:100], want[50:150]) {
				t.Fatalf("ReadAt: %d, %v", n, err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadAt(got[:1], 0); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("ReadAt after Close: %v, want os.ErrClosed", err)
			}

			// Sequential Read from a reopened file starts at 0 and ends in io.EOF.
			r, err := fs.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			all, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(all, want) {
				t.Fatalf("ReadAll: %d bytes, %v", len(all), err)
			}
			if n, err := r.Read(got); n != 0 || err != io.EOF {
				t.Fatalf("Read at the end: %d, %v", n, err)
			}
			if r.Fd() == vfs.InvalidFd {
				t.Fatalf("Fd: invalid")
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if d := carried() - before; d < 10 {
				t.Fatalf("only %d operations went through the Context", d)
			}
			if s := fs.Stats(); s.Routed != 2 || s.Skipped != 0 {
				t.Fatalf("Stats = %+v, want 2 routed", s)
			}
		})
	}
}

// TestOtherBaseDelegates checks that a base other than vfs.Default keeps its
// own files: nothing goes through the Context.
func TestOtherBaseDelegates(t *testing.T) {
	c := setup(t, "threads")
	fs := pebblefs.New(c, vfs.NewMem())
	f, err := fs.Create("x", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if s := fs.Stats(); s.Routed != 0 || s.Skipped != 1 {
		t.Fatalf("Stats = %+v, want 1 skipped", s)
	}
	if n := c.Stats().Requests; n != 0 {
		t.Fatalf("%d requests went through the Context for a MemFS file", n)
	}
	if vfs.Root(fs) == vfs.Default {
		t.Fatalf("vfs.Root sees vfs.Default under a MemFS base")
	}
}

// TestCloseDuringReads closes a file while goroutines read it: each read
// either completes with the file's bytes or reports os.ErrClosed, never
// another file's data (the descriptor is held while a request is in flight).
func TestCloseDuringReads(t *testing.T) {
	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			c := setup(t, be)
			fs := pebblefs.New(c, vfs.Default)
			dir := t.TempDir()
			want := bytes.Repeat([]byte{'a'}, 1<<16)
			if err := os.WriteFile(filepath.Join(dir, "a"), want, 0o644); err != nil {
				t.Fatal(err)
			}
			for iter := 0; iter < 20; iter++ {
				f, err := fs.Open(filepath.Join(dir, "a"))
				if err != nil {
					t.Fatal(err)
				}
				errc := make(chan error, 8)
				for g := 0; g < 8; g++ {
					go func() {
						buf := make([]byte, 4096)
						for i := 0; i < 50; i++ {
							n, err := f.ReadAt(buf, int64(i*1024))
							if errors.Is(err, os.ErrClosed) {
								errc <- nil
								return
							}
							if err != nil || n != len(buf) || !bytes.Equal(buf, want[:n]) {
								errc <- fmt.Errorf("ReadAt: %d, %v", n, err)
								return
							}
						}
						errc <- nil
					}()
				}
				// A file opened and written meanwhile may take the number the
				// Close frees; the readers must never see its bytes.
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				other, err := os.Create(filepath.Join(dir, "b"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := other.Write(bytes.Repeat([]byte{'b'}, 1<<16)); err != nil {
					t.Fatal(err)
				}
				for g := 0; g < 8; g++ {
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
				}
				other.Close()
			}
		})
	}
}
