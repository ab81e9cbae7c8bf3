//go:build linux

package main

// The wal workload: what a write-ahead log does on commit. Each commit
// appends one record (4 KiB to 64 KiB) at the end of a log file and makes it
// durable before the next commit starts. Variants:
//
//   - pwrite+fdatasync: os.File.WriteAt then unix.Fdatasync on the calling
//     goroutine, from one goroutine: what a Go WAL does today, and the
//     baseline every ratio is taken against.
//   - write+fdatasync: the library's Do(write) then Do(fdatasync): two
//     round trips.
//   - dsync: one Do(write) with RWF_DSYNC (IOCB.RWFlags).
//   - linked: DoChain(write, fdatasync), io_uring's IOSQE_IO_LINK on uring,
//     the library's chain on kaio and threads: one round trip.
//   - group: --group goroutines commit at once; a leader takes every record
//     waiting, appends them as one write and runs DoChain(write, fdatasync)
//     for all of them (group commit). Commit latency is from a goroutine's
//     commit call to the end of the fdatasync that covered its record.
//
// Commit latency percentiles (p50, p99) and commits per second, per
// backend; --count rounds run interleaved (every variant once per round, in
// a rotated order) and the table shows each case's median and the min-max
// over rounds, and the ratio of each median p50 to the baseline's median
// p50 of the same record size. With --fio, fio runs the same appends with
// --fdatasync=1 (psync beside the baseline, io_uring beside uring, libaio
// beside kaio) in every round. Each commit record goes into a fresh file of
// the data directory, removed at the end of the case.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

const (
	walBaseline = "pwrite+fdatasync"
	walTwo      = "write+fdatasync"
	walDsync    = "dsync"
	walLinked   = "linked"
	walGroup    = "group"
)

var walVariants = []string{walTwo, walDsync, walLinked, walGroup}

// walCase is one measured case: a backend ("gosync" for the baseline, or
// "fio-<engine>"), a variant and a record size.
type walCase struct {
	Backend string `json:"backend"`
	Variant string `json:"variant"`
	BS      int    `json:"bs"`
	Group   int    `json:"group,omitempty"`
}

func (c walCase) key() string { return c.Backend + "/" + c.Variant + "/" + strconv.Itoa(c.BS) }

// walResult is one round of one case.
type walResult struct {
	Commits       int     `json:"commits"`
	CommitsPerSec float64 `json:"commits_per_sec"`
	P50           float64 `json:"p50_us"`
	P99           float64 `json:"p99_us"`
	Err           string  `json:"error,omitempty"`
}

func runWAL(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench wal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		_        = fs.String("workload", "wal", "wal")
		backend  = fs.String("backend", "uring,kaio,threads", "comma list of library backends")
		variant  = fs.String("variant", strings.Join(walVariants, ","), "comma list of library variants: "+strings.Join(walVariants, ", ")+" (the pwrite+fdatasync baseline always runs)")
		bsList   = fs.String("bs", "4k,64k", "comma list of record sizes (4k to 64k)")
		runtime  = fs.Duration("runtime", time.Second, "measured duration of each case")
		count    = fs.Int("count", 3, "rounds, interleaved; the table shows medians and min-max")
		group    = fs.Int("group", 8, "group variant: goroutines committing at once")
		dir      = fs.String("dir", os.TempDir(), "directory of the log files (a disk, not tmpfs, to measure anything)")
		useFio   = fs.Bool("fio", false, "also run fio --rw=write --fdatasync=1 (psync, io_uring, libaio) in every round")
		jsonOut  = fs.Bool("json", false, "print every round as JSON instead of the table")
		progress = fs.Bool("v", true, "progress on stderr")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var sizes []int
	for _, s := range splitList(*bsList) {
		n, err := parseSize(s)
		if err != nil || n < 512 || n > 1<<20 {
			fmt.Fprintf(stderr, "bench: --bs %q: want 512 to 1M\n", s)
			return 2
		}
		sizes = append(sizes, int(n))
	}
	var cases []walCase
	for _, bs := range sizes {
		cases = append(cases, walCase{Backend: "gosync", Variant: walBaseline, BS: bs})
		for _, be := range splitList(*backend) {
			c, err := aio.SetupWithOptions(4, aio.Options{Backend: be})
			if err != nil {
				fmt.Fprintf(stderr, "bench: %s: NOT AVAILABLE: %v\n", be, err)
				continue
			}
			_ = c.Destroy()
			for _, v := range splitList(*variant) {
				if !slices.Contains(walVariants, v) {
					fmt.Fprintf(stderr, "bench: --variant %q: want one of %s\n", v, strings.Join(walVariants, ", "))
					return 2
				}
				wc := walCase{Backend: be, Variant: v, BS: bs}
				if v == walGroup {
					wc.Group = *group
				}
				cases = append(cases, wc)
			}
		}
		if *useFio {
			for _, eng := range []string{"psync", "io_uring", "libaio"} {
				cases = append(cases, walCase{Backend: "fio-" + eng, Variant: "fdatasync=1", BS: bs})
			}
		}
	}
	rounds := map[string][]walResult{}
	for r := 0; r < *count; r++ {
		// Rotate the order each round, so that no case always runs first
		// (or right after the same neighbour).
		order := append(append([]walCase(nil), cases[r%len(cases):]...), cases[:r%len(cases)]...)
		for _, wc := range order {
			if *progress {
				fmt.Fprintf(stderr, "round %d/%d: %s\n", r+1, *count, wc.key())
			}
			res := runWALCase(wc, *dir, *runtime)
			rounds[wc.key()] = append(rounds[wc.key()], res)
		}
	}
	if *jsonOut {
		type row struct {
			walCase
			Rounds []walResult `json:"rounds"`
		}
		var rows []row
		for _, wc := range cases {
			rows = append(rows, row{wc, rounds[wc.key()]})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"library": libraryInfo().String(), "count": *count, "runtime": runtime.String(), "rows": rows})
		return 0
	}
	fmt.Fprintf(stdout, "wal: %s; %d interleaved rounds of %v per case; medians [min-max]\n", libraryInfo(), *count, *runtime)
	fmt.Fprintf(stdout, "%-10s %-18s %5s %22s %26s %26s %8s\n", "backend", "variant", "bs", "commits/s", "p50 µs", "p99 µs", "p50/base")
	failed := false
	for _, wc := range cases {
		rs := rounds[wc.key()]
		var errs []string
		var ok []walResult
		for _, r := range rs {
			if r.Err != "" {
				errs = append(errs, r.Err)
			} else {
				ok = append(ok, r)
			}
		}
		name := wc.Variant
		if wc.Group > 0 {
			name += " N=" + strconv.Itoa(wc.Group)
		}
		if len(ok) == 0 {
			fmt.Fprintf(stdout, "%-10s %-18s %5s  FAILED: %s\n", wc.Backend, name, fmtBytes(int64(wc.BS)), strings.Join(errs, "; "))
			failed = true
			continue
		}
		base := walMedian(rounds[walCase{Backend: "gosync", Variant: walBaseline, BS: wc.BS}.key()], func(r walResult) float64 { return r.P50 })
		p50 := walMedian(ok, func(r walResult) float64 { return r.P50 })
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2fx", p50/base)
		}
		fmt.Fprintf(stdout, "%-10s %-18s %5s %22s %26s %26s %8s\n", wc.Backend, name, fmtBytes(int64(wc.BS)),
			walSpread(ok, func(r walResult) float64 { return r.CommitsPerSec }, "%.0f"),
			walSpread(ok, func(r walResult) float64 { return r.P50 }, "%.0f"),
			walSpread(ok, func(r walResult) float64 { return r.P99 }, "%.0f"), ratio)
		if len(errs) > 0 {
			fmt.Fprintf(stdout, "    %d round(s) failed: %s\n", len(errs), strings.Join(errs, "; "))
		}
	}
	fmt.Fprintln(stdout, "p50/base: the case's median p50 over the median p50 of pwrite+fdatasync (one goroutine, os.File) at the same bs, same run.")
	fmt.Fprintln(stdout, "fio rows: commits/s is fio's write IOPS (one fdatasync per write); p50/p99 are fio's write latency plus its fdatasync latency percentiles (their sum, an approximation of a commit).")
	if failed {
		return 1
	}
	return 0
}

func walMedian(rs []walResult, f func(walResult) float64) float64 {
	var v []float64
	for _, r := range rs {
		if r.Err == "" {
			v = append(v, f(r))
		}
	}
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func walSpread(rs []walResult, f func(walResult) float64, format string) string {
	lo, hi := f(rs[0]), f(rs[0])
	for _, r := range rs {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	return fmt.Sprintf(format+" ["+format+"-"+format+"]", walMedian(rs, f), lo, hi)
}

// runWALCase runs one case for d in a fresh log file.
func runWALCase(wc walCase, dir string, d time.Duration) walResult {
	if strings.HasPrefix(wc.Backend, "fio-") {
		return runWALFio(wc, dir, d)
	}
	f, err := os.CreateTemp(dir, "uringaio-wal-*.log")
	if err != nil {
		return walResult{Err: err.Error()}
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var c *aio.Context
	if wc.Backend != "gosync" {
		c, err = aio.SetupWithOptions(64, aio.Options{Backend: wc.Backend})
		if err != nil {
			return walResult{Err: err.Error()}
		}
		defer c.Destroy()
	}
	rec := make([]byte, wc.BS)
	fillRandom(rec, uint64(wc.BS))
	if wc.Variant == walGroup {
		return walGroupRun(c, f, rec, wc.Group, d)
	}
	fd := int(f.Fd())
	var off int64
	var lats []time.Duration
	ctx := context.Background()
	commit := func() error {
		switch wc.Variant {
		case walBaseline:
			if _, err := f.WriteAt(rec, off); err != nil {
				return err
			}
			return unix.Fdatasync(fd)
		case walTwo:
			w := aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: rec, Offset: off}
			if ev, err := c.Do(ctx, &w); err != nil || ev.Res != int64(len(rec)) {
				return fmt.Errorf("write: %d, %v", ev.Res, err)
			}
			s := aio.IOCB{Op: aio.OpFdsync, FD: fd}
			_, err := c.Do(ctx, &s)
			return err
		case walDsync:
			w := aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: rec, Offset: off, RWFlags: unix.RWF_DSYNC}
			if ev, err := c.Do(ctx, &w); err != nil || ev.Res != int64(len(rec)) {
				return fmt.Errorf("write: %d, %v", ev.Res, err)
			}
			return nil
		case walLinked:
			w := aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: rec, Offset: off}
			s := aio.IOCB{Op: aio.OpFdsync, FD: fd}
			_, err := c.DoChain(ctx, &w, &s)
			return err
		}
		return fmt.Errorf("unknown variant %q", wc.Variant)
	}
	// Warm-up: a few commits, not measured.
	for i := 0; i < 5; i++ {
		if err := commit(); err != nil {
			return walResult{Err: err.Error()}
		}
		off += int64(len(rec))
	}
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		if err := commit(); err != nil {
			return walResult{Err: err.Error()}
		}
		lats = append(lats, time.Since(t0))
		off += int64(len(rec))
	}
	return walSummary(lats, time.Since(start))
}

// walGroupRun is group commit: n goroutines commit records; whoever finds
// no commit running leads one for every record waiting (one write of them
// all, then fdatasync, as a DoChain), the others wait for the commit that
// covers theirs.
func walGroupRun(c *aio.Context, f *os.File, rec []byte, n int, d time.Duration) walResult {
	fd := int(f.Fd())
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		waiting int    // records queued for the next commit
		queued  uint64 // records ever queued
		durable uint64 // records made durable
		leading bool
		off     int64
		failure error
	)
	buf := make([]byte, 0, n*len(rec))
	commitFor := func() error {
		mu.Lock()
		queued++
		my := queued
		waiting++
		for durable < my && failure == nil {
			if leading {
				cond.Wait()
				continue
			}
			leading = true
			k := waiting
			waiting = 0
			at := off
			off += int64(k * len(rec))
			mu.Unlock()
			buf = buf[:0]
			for i := 0; i < k; i++ {
				buf = append(buf, rec...)
			}
			w := aio.IOCB{Op: aio.OpWrite, FD: fd, Buf: buf, Offset: at}
			s := aio.IOCB{Op: aio.OpFdsync, FD: fd}
			_, err := c.DoChain(context.Background(), &w, &s)
			mu.Lock()
			leading = false
			if err != nil {
				failure = err
			}
			durable += uint64(k)
			cond.Broadcast()
		}
		err := failure
		mu.Unlock()
		return err
	}
	var wg sync.WaitGroup
	lats := make([][]time.Duration, n)
	errs := make([]error, n)
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for time.Since(start) < d {
				t0 := time.Now()
				if err := commitFor(); err != nil {
					errs[g] = err
					return
				}
				lats[g] = append(lats[g], time.Since(t0))
			}
		}(g)
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return walResult{Err: err.Error()}
		}
	}
	return walSummary(slices.Concat(lats...), took)
}

func walSummary(lats []time.Duration, took time.Duration) walResult {
	if len(lats) == 0 {
		return walResult{Err: "no commit finished"}
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Nanoseconds()) / 1e3
	}
	return walResult{Commits: len(lats), CommitsPerSec: float64(len(lats)) / took.Seconds(), P50: pct(0.50), P99: pct(0.99)}
}

// runWALFio runs fio's sequential writes with an fdatasync after each.
func runWALFio(wc walCase, dir string, d time.Duration) walResult {
	path := fioPath()
	if path == "" {
		return walResult{Err: "fio not found"}
	}
	eng := strings.TrimPrefix(wc.Backend, "fio-")
	file := filepath.Join(dir, fmt.Sprintf("uringaio-wal-fio-%d.log", os.Getpid()))
	defer os.Remove(file)
	args := []string{
		"--name=wal", "--filename=" + file, "--rw=write", "--bs=" + strconv.Itoa(wc.BS),
		"--size=1G", "--ioengine=" + eng, "--iodepth=1", "--fdatasync=1",
		"--time_based", "--runtime=" + strconv.FormatInt(d.Milliseconds(), 10) + "ms",
		"--lat_percentiles=1", "--percentile_list=50:99", "--output-format=json",
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return walResult{Err: fmt.Sprintf("fio: %v: %s", err, firstLine(errb.String()))}
	}
	b := out.Bytes()
	if i := bytes.IndexByte(b, '{'); i > 0 {
		b = b[i:]
	}
	var fo struct {
		Jobs []struct {
			Write struct {
				IOPS float64 `json:"iops"`
				Lat  struct {
					Percentile map[string]float64 `json:"percentile"`
				} `json:"lat_ns"`
			} `json:"write"`
			Sync struct {
				Lat struct {
					Percentile map[string]float64 `json:"percentile"`
				} `json:"lat_ns"`
			} `json:"sync"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(b, &fo); err != nil || len(fo.Jobs) == 0 {
		return walResult{Err: fmt.Sprintf("fio output: %v", err)}
	}
	j := fo.Jobs[0]
	p := func(m map[string]float64, k string) float64 { return m[k] / 1e3 }
	return walResult{
		CommitsPerSec: j.Write.IOPS,
		P50:           p(j.Write.Lat.Percentile, "50.000000") + p(j.Sync.Lat.Percentile, "50.000000"),
		P99:           p(j.Write.Lat.Percentile, "99.000000") + p(j.Sync.Lat.Percentile, "99.000000"),
	}
}
