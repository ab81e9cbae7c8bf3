//go:build linux

package aio

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPlainWriteWaitsForTurn (§8.3c): with every plain-write turn taken, a
// buffered WriteAt on ext4-like files (which refuse RWF_NOWAIT writes) waits
// for a turn instead of going to the backend, and is written on the caller
// once one is free; a wait whose context ends leaves the file untouched and
// reports the context's end.
func TestPlainWriteWaitsForTurn(t *testing.T) {
	for _, be := range []string{"uring", "kaio", "threads"} {
		t.Run(be, func(t *testing.T) {
			c, err := SetupWithOptions(8, Options{Backend: be, Lanes: 1})
			if errors.Is(err, ErrNotSupported) {
				t.Skipf("backend %s cannot start here: %v", be, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Destroy()
			f, err := os.Create(filepath.Join(t.TempDir(), "w"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fd := int(f.Fd())
			// Learn the file: after one write it is known to need plain
			// writes (hPlainW) if its file system refuses RWF_NOWAIT.
			if _, err := c.WriteAt(context.Background(), fd, []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
			if h := c.cs.fds.get(fd).Load(); h&hPlainW == 0 {
				t.Skipf("this file system takes RWF_NOWAIT buffered writes: no plain writes to bound")
			}
			for range cap(c.cs.wturn) {
				c.cs.wturn <- struct{}{}
			}
			free := func() {
				for range cap(c.cs.wturn) {
					<-c.cs.wturn
				}
			}

			// A context that ends during the wait.
			before := c.Stats()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			n, err := c.WriteAt(ctx, fd, []byte("late"), 100)
			cancel()
			if n != 0 || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECANCELED) {
				free()
				t.Fatalf("WriteAt with every turn taken and a 20ms context = %d, %v; want 0 and the context's end", n, err)
			}
			if st, _ := f.Stat(); st.Size() != 1 {
				free()
				t.Fatalf("file size %d after the canceled write, want 1: it was written", st.Size())
			}

			// A turn that comes: the write is made on the caller.
			done := make(chan error, 1)
			go func() {
				_, err := c.WriteAt(context.Background(), fd, []byte("turn"), 10)
				done <- err
			}()
			select {
			case err := <-done:
				free()
				t.Fatalf("WriteAt returned (%v) while every turn was taken", err)
			case <-time.After(50 * time.Millisecond):
			}
			free()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("WriteAt still waiting 10s after the turns were freed")
			}
			after := c.Stats()
			if after.Requests != before.Requests {
				t.Fatalf("%d requests went to the backend; the writes should have waited for a turn", after.Requests-before.Requests)
			}
			got := make([]byte, 4)
			if _, err := f.ReadAt(got, 10); err != nil || !bytes.Equal(got, []byte("turn")) {
				t.Fatalf("read back %q, %v", got, err)
			}
		})
	}
}
