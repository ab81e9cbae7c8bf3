//go:build linux

package pebblefs_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/pebblefs"
	"golang.org/x/sys/unix"
)

// TestRangeOps checks SyncTo, Preallocate and Prefetch against what
// vfs.Default's own file does on the same file, and that each went through
// the Context (one request each, but Prefetch: none): SyncTo's fullSync
// answer (false where Pebble uses sync_file_range, ext4 here; true on tmpfs,
// where it uses fdatasync), Preallocate's blocks (FALLOC_FL_KEEP_SIZE: the
// size does not change) and its error on a file not open for writing,
// Prefetch bringing the range into the page cache.
func TestRangeOps(t *testing.T) {
	dirs := map[string]string{"disk": ""}
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && uint32(st.Type) == unix.TMPFS_MAGIC {
		dirs["tmpfs"] = "/dev/shm"
	}
	for _, be := range backends {
		for where, base := range dirs {
			t.Run(be+"/"+where, func(t *testing.T) {
				c := setup(t, be)
				fs := pebblefs.New(c, vfs.Default)
				dir := base
				if dir == "" {
					dir = t.TempDir()
				} else {
					d, err := os.MkdirTemp(dir, "pebblefs-")
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { os.RemoveAll(d) })
					dir = d
				}
				name := filepath.Join(dir, "f")
				f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				const size = 64 << 10
				if _, err := f.Write(make([]byte, size)); err != nil {
					t.Fatal(err)
				}
				ref, err := vfs.Default.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				defer ref.Close()
				fd := int(ref.Fd())

				// What went through the Context: its requests, and the
				// blocking calls it makes on the caller where the backend
				// would make them on a worker (threads' and kaio's syncs,
				// the library's contract §8.5).
				requests := func() uint64 { st := c.Stats(); return st.Requests + st.Blocking }

				// Preallocate: KEEP_SIZE, as vfs.Default.
				n := requests()
				var before unix.Stat_t
				if err := unix.Fstat(fd, &before); err != nil {
					t.Fatal(err)
				}
				if err := f.Preallocate(size, 1<<20); err != nil {
					t.Fatalf("Preallocate: %v", err)
				}
				if d := requests() - n; d != 1 {
					t.Fatalf("Preallocate made %d requests through the Context, want 1", d)
				}
				var after unix.Stat_t
				if err := unix.Fstat(fd, &after); err != nil {
					t.Fatal(err)
				}
				if after.Size != size || (after.Blocks-before.Blocks)*512 < 1<<20 {
					t.Fatalf("after Preallocate(64K, 1M): size %d, blocks %d→%d", after.Size, before.Blocks, after.Blocks)
				}
				// On a file opened read-only, the error vfs.Default gives.
				ro, err := fs.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				defer ro.Close()
				wantErr := ref.Preallocate(0, 4096)
				if err := ro.Preallocate(0, 4096); !sameErrno(err, wantErr) {
					t.Fatalf("Preallocate on a read-only file: %v; vfs.Default says %v", err, wantErr)
				}

				// SyncTo: vfs.Default's fullSync answer for this file system.
				refRW, err := vfs.Default.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
				if err != nil {
					t.Fatal(err)
				}
				defer refRW.Close()
				wantFull, wantErr := refRW.SyncTo(size)
				if wantErr != nil {
					t.Fatalf("vfs.Default SyncTo: %v", wantErr)
				}
				for _, length := range []int64{size, size / 2, 0} {
					n = requests()
					full, err := f.SyncTo(length)
					if err != nil || full != wantFull {
						t.Fatalf("SyncTo(%d) = %v, %v; vfs.Default says %v, nil", length, full, err, wantFull)
					}
					if d := requests() - n; d != 1 {
						t.Fatalf("SyncTo made %d calls through the Context (requests and blocking calls), want 1", d)
					}
				}
				// A negative length: EINVAL from sync_file_range, nothing
				// from fdatasync, which ignores it.
				wantFull, wantErr = refRW.SyncTo(-1)
				if full, err := f.SyncTo(-1); full != wantFull || !sameErrno(err, wantErr) {
					t.Fatalf("SyncTo(-1) = %v, %v; vfs.Default says %v, %v", full, err, wantFull, wantErr)
				}

				// Prefetch: the range enters the page cache (on disk, after
				// its pages were dropped; tmpfs keeps them anyway).
				if err := unix.Fdatasync(fd); err != nil {
					t.Fatal(err)
				}
				if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
					t.Fatal(err)
				}
				n = requests()
				if err := f.Prefetch(0, size); err != nil {
					t.Fatalf("Prefetch: %v", err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				// Prefetch is vfs.Default's readahead(2) on the caller's
				// goroutine, not a request: a scan of cached data would pay
				// more for a request than the hint is worth (counted after
				// Close, which would wait for any request still going).
				if d := requests() - n; d != 0 {
					t.Fatalf("Prefetch made %d requests through the Context, want 0 (the plain readahead(2))", d)
				}
				if cached, ok := cachedPages(t, fd); ok && cached == 0 {
					t.Fatalf("nothing cached after Prefetch(0, %d)", size)
				}
			})
		}
	}
}

// sameErrno reports whether got and want are both nil or carry the same errno.
func sameErrno(got, want error) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	var e unix.Errno
	return errors.As(want, &e) && errors.Is(got, e)
}

// cachedPages is cachestat(2)'s count of fd's pages in the page cache (Linux
// 6.5; ok false before).
func cachedPages(t *testing.T, fd int) (uint64, bool) {
	t.Helper()
	var rng struct{ Off, Len uint64 }
	var cs struct{ Cache, Dirty, Writeback, Evicted, RecentlyEvicted uint64 }
	const sysCachestat = 451
	_, _, e := unix.Syscall6(sysCachestat, uintptr(fd), uintptr(unsafe.Pointer(&rng)), uintptr(unsafe.Pointer(&cs)), 0, 0, 0)
	if e != 0 {
		t.Logf("cachestat: %v; the page cache is not checked", e)
		return 0, false
	}
	return cs.Cache, true
}

// TestPrefetchAllocs: Prefetch is called for every read of a table that a
// scan reaches past its cache (pebblebench's scan: about one call in six
// reads), and vfs.Default's costs one system call and no allocation. A
// closure handed to RawConn.Control would escape to the heap on every call.
func TestPrefetchAllocs(t *testing.T) {
	c := setup(t, backends[0])
	fs := pebblefs.New(c, vfs.Default)
	name := filepath.Join(t.TempDir(), "f")
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := f.Prefetch(0, 64<<10); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Prefetch: %v allocations per call, want 0", n)
	}
}
