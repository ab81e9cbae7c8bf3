//go:build linux

package aio

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHotFilesNoticeEviction (§8.5, "Cold and hot"): when a hot file is
// found cold, the Context's other hot files sample one read in
// alarmSampleEvery instead of sampleEvery, so that a page cache dropped
// under them (Pebble's get-cold round, memory reclaimed) costs each a read
// or two made as a plain pread that waits for the device while holding its
// P, not sampleEvery of them. Every read returns the file's bytes.
//
// Each cycle makes two ext4 files hot, drops both from the page cache
// (readahead off, reads 64 KiB apart: each one uncached), reads A until it
// is no longer hot — that read raises the alarm — and then counts B's reads
// made while B was still hot. Without the alarm B's count is geometric with
// mean sampleEvery (16); with it, alarmSampleEvery (2).
func TestHotFilesNoticeEviction(t *testing.T) {
	eachBackend(t, func(t *testing.T, _ string, c *Context) {
		const blocks, stride, bs = 512, 64 << 10, 4096
		dir := t.TempDir()
		open := func(name string, seed byte) (int, []byte) {
			data := make([]byte, blocks*stride)
			for i := range data {
				data[i] = byte(i*7+i>>12) ^ seed
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.Fsync(fd); err != nil {
				t.Fatal(err)
			}
			if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
				t.Fatal(err)
			}
			return fd, data
		}
		fdA, dataA := open("a", 0)
		fdB, dataB := open("b", 0x5a)
		buf := make([]byte, bs)
		read := func(fd int, data []byte, off int64) {
			t.Helper()
			n, err := c.ReadAt(context.Background(), fd, buf, off)
			if err != nil || n != bs {
				t.Fatalf("ReadAt(%d, %d) = %d, %v", fd, off, n, err)
			}
			if !bytes.Equal(buf, data[off:off+bs]) {
				t.Fatalf("ReadAt(%d, %d): wrong bytes", fd, off)
			}
		}
		hot := func(fd int) bool { return c.cs.fds.get(fd).Load()&hHot != 0 }
		makeHot := func(fd int, data []byte) {
			t.Helper()
			for i := 0; !hot(fd); i++ {
				if i == 200 {
					t.Fatalf("fd %d not hot after 200 cached reads", fd)
				}
				read(fd, data, 0)
			}
		}
		// readWhileHot reads fd's blocks from next on while fd is hot,
		// and returns how many it read and the next block.
		readWhileHot := func(fd int, data []byte, next int) (int, int) {
			t.Helper()
			n := 0
			for ; hot(fd); n++ {
				if next == blocks {
					t.Fatalf("fd %d still hot after %d uncached reads", fd, blocks-1)
				}
				read(fd, data, int64(next)*stride)
				next++
			}
			return n, next
		}

		const cycles = 16
		totalB := 0
		for cycle := 0; cycle < cycles; cycle++ {
			makeHot(fdA, dataA)
			makeHot(fdB, dataB)
			for _, fd := range []int{fdA, fdB} {
				if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
					t.Fatal(err)
				}
			}
			_, _ = readWhileHot(fdA, dataA, 1)
			if c.cs.alarm.Load() <= 0 {
				t.Fatalf("cycle %d: A went cold and the alarm is %d", cycle, c.cs.alarm.Load())
			}
			n, _ := readWhileHot(fdB, dataB, 1)
			totalB += n
		}
		mean := float64(totalB) / cycles
		t.Logf("B read %.2f times on average while hot after A went cold", mean)
		if mean > 5 {
			t.Errorf("B read %.2f times on average while hot after A went cold, want at most 5 (alarmSampleEvery %d)", mean, alarmSampleEvery)
		}
	})
}
