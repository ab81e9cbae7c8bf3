//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The workloads. Disk workloads move BS bytes per request at random BS-aligned
// offsets of the data file; poll and cancel touch no disk.
const (
	wlRandRead        = "randread"         // buffered reads, page cache warmed first
	wlRandReadDirect  = "randread-direct"  // O_DIRECT reads
	wlRandWrite       = "randwrite"        // buffered overwrites
	wlRandWriteDirect = "randwrite-direct" // O_DIRECT overwrites of the allocated file
	wlPoll            = "poll"             // OpPoll POLLIN on an always-readable eventfd (a pipe where there is none)
	wlCancel          = "cancel"           // N pending polls on an empty pipe, canceled
	wlCancelFD        = "cancel-fd"        // a row produced by the cancel workload
)

// allWorkloads is every workload name --workload accepts, in display order.
var allWorkloads = []string{wlRandRead, wlRandReadDirect, wlRandWrite, wlRandWriteDirect, wlPoll, wlCancel}

// defaultWorkloads is the default matrix's workload list.
var defaultWorkloads = []string{wlRandRead, wlRandReadDirect, wlPoll, wlCancel}

// fullWorkloads and fullGoroutines are --matrix=full's (with every --api).
var fullWorkloads = []string{wlRandRead, wlRandReadDirect, wlRandWrite, wlPoll, wlCancel}

const fullGoroutines = "1,32,256,1024"

// workloadInfo says what a workload does.
type workloadInfo struct {
	disk    bool // reads or writes the data file
	write   bool
	direct  bool
	gosync  bool // gosync can run it
	runtime time.Duration
	batch   int // default requests per Submit call
}

// Default per-case runtimes of the loop mode. With the goroutine cases
// (defaultGoRuntime each) the default matrix (4 loop disk cases, 2 poll, 2
// cancel, 18 or 24 goroutine cases, plus the warm-up of each) takes about a
// minute.
var workloads = map[string]workloadInfo{
	wlRandRead:        {disk: true, gosync: true, runtime: 3 * time.Second, batch: 1},
	wlRandReadDirect:  {disk: true, direct: true, gosync: true, runtime: 3 * time.Second, batch: 1},
	wlRandWrite:       {disk: true, write: true, gosync: true, runtime: 3 * time.Second, batch: 1},
	wlRandWriteDirect: {disk: true, write: true, direct: true, gosync: true, runtime: 3 * time.Second, batch: 1},
	wlPoll:            {runtime: 1500 * time.Millisecond, batch: 32},
	wlCancel:          {runtime: 1500 * time.Millisecond, batch: 1},
}

// directVariant maps a buffered disk workload to its O_DIRECT twin (--direct).
func directVariant(wl string) string {
	switch wl {
	case wlRandRead:
		return wlRandReadDirect
	case wlRandWrite:
		return wlRandWriteDirect
	}
	return wl
}

// dataFile is the file the disk workloads use.
type dataFile struct {
	Path    string
	Size    int64 // the region used: the first Size bytes
	Created bool  // made by this run
	FSType  string
}

// defaultDataPath is where the data file lives unless --file says otherwise.
func defaultDataPath() string {
	return filepath.Join(os.TempDir(), "uringaio-bench.dat")
}

// prepareDataFile makes sure path holds at least size bytes of random, fully
// allocated data. An existing file that is big enough is reused as it is (its
// first size bytes are used); a smaller one is rewritten.
func prepareDataFile(path string, size int64, progress io.Writer) (*dataFile, error) {
	if size < 4096 {
		return nil, fmt.Errorf("--size %d is too small (at least 4096 bytes)", size)
	}
	df := &dataFile{Path: path, Size: size}
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() >= size {
		df.FSType = fsType(path)
		return df, nil
	} else if err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("data file %s is not a regular file", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "creating data file %s (%s of random data, written once and reused)\n", path, fmtBytes(size))
	t0 := time.Now()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating data file: %w", err)
	}
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("uringaio-bench %d", time.Now().UnixNano()))
	src := rand.NewChaCha8(seed)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = src.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("writing data file: %w", err)
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("syncing data file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	fmt.Fprintf(progress, "data file ready in %.1fs\n", time.Since(t0).Seconds())
	df.Created = true
	df.FSType = fsType(path)
	return df, nil
}

// warmCache reads the first size bytes of path so that buffered reads hit the
// page cache, then measures with mincore how much of it is resident.
func warmCache(path string, size int64) (resident float64, took time.Duration, err error) {
	t0 := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	adviseWillNeed(f, size)
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, fmt.Errorf("warming page cache: %w", err)
		}
	}
	took = time.Since(t0)
	return residentFraction(f, size), took, nil
}

// openData opens the data file for a workload: read-only or read-write, with
// O_DIRECT (F_NOCACHE on macOS) for the direct ones. A filesystem that refuses O_DIRECT gives an
// error that says so.
func openData(df *dataFile, info workloadInfo) (*os.File, error) {
	flags := os.O_RDONLY
	if info.write {
		flags = os.O_RDWR
	}
	open := func(path string, flags int) (*os.File, error) { return os.OpenFile(path, flags, 0) }
	if info.direct {
		open = openDirect // O_DIRECT, or F_NOCACHE on macOS
	}
	f, err := open(df.Path, flags)
	if err != nil {
		var skip *skipError
		if errors.As(err, &skip) {
			return nil, err
		}
		if info.direct && errors.Is(err, unix.EINVAL) {
			return nil, &skipError{fmt.Sprintf("the %s filesystem of %s refuses O_DIRECT; choose a file on a disk filesystem with --file", df.FSType, df.Path)}
		}
		return nil, fmt.Errorf("opening data file: %w", err)
	}
	return f, nil
}

// skipError marks a case that cannot run here for a reason that is not a bug
// (no O_DIRECT on this filesystem, a backend the kernel does not offer).
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// alignedRegion returns n page-aligned bytes from an anonymous mapping (good
// for O_DIRECT, which wants 4096-aligned buffers), and the function freeing them.
func alignedRegion(n int) ([]byte, func(), error) {
	if n <= 0 {
		n = os.Getpagesize()
	}
	pg := os.Getpagesize()
	n = (n + pg - 1) / pg * pg
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap of %d bytes for buffers: %w", n, err)
	}
	return m, func() { _ = unix.Munmap(m) }, nil
}

// fillRandom fills b with pseudo-random bytes (write buffers).
func fillRandom(b []byte, seed uint64) {
	r := newRNG(seed)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.next()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// rng is xorshift64*: a few nanoseconds per offset, no allocation, no locks.
type rng struct{ s uint64 }

func newRNG(seed uint64) rng {
	if seed == 0 {
		seed = 0x9E3779B97F4A7C15
	}
	return rng{s: seed}
}

func (r *rng) next() uint64 {
	r.s ^= r.s >> 12
	r.s ^= r.s << 25
	r.s ^= r.s >> 27
	return r.s * 2685821657736338717
}

// offset returns a random bs-aligned offset with room for bs bytes below size.
func (r *rng) offset(nblocks uint64, bs int) int64 {
	return int64(r.next()%nblocks) * int64(bs)
}

// parseSize reads "4096", "4k", "256M", "256MiB", "1g", "1GB": powers of 1024.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	var v int64
	if _, err := fmt.Sscanf(t, "%d", &v); err != nil || v <= 0 || fmt.Sprint(v) != t {
		return 0, fmt.Errorf("bad size %q (want e.g. 4096, 4k, 256M, 1G)", s)
	}
	return v * mult, nil
}

// fmtBytes prints a byte count in binary units.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
