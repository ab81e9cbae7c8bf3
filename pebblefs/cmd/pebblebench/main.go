// Command pebblebench compares Pebble on vfs.Default with Pebble on the
// pebblefs adapter, once per uringaio backend that can start here.
//
//	go -C pebblefs run ./cmd/pebblebench [-rounds 3] [-backends uring,kaio,threads] [-raw uring,kaio,threads]
//
// Each round runs every workload once on every file system, the file systems
// in a rotated order from round to round, so that a slow moment of a shared
// machine lands on all of them alike. The table gives, per workload and file
// system, the median over rounds of the wall time per op, its ratio to
// vfs.Default's in the same round (median of the per-round ratios), and the
// process CPU time (getrusage user+sys, which counts io_uring's and the
// threads backend's workers, all threads of this process) per op.
//
// Workloads:
//
//	get-warm  point Gets at 32 goroutines, 1 MiB block cache, DB files in the page cache
//	get-cold  the same after posix_fadvise(DONTNEED) on every DB file
//	scan      SeekGE and 50 Nexts at 8 goroutines, 1 MiB block cache, page cache warm
//	load      a fresh DB: Sets in batches of 100 (NoSync) with a 1 MiB memtable
//	          (tens of flushes, compactions behind them), then Flush and a full Compact
//
// The reads share one DB, built once with vfs.Default and opened read-only by
// each file system, so every file system reads the same file layout.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/aio"
	"github.com/uringaio/uringaio/pebblefs"
)

var (
	rounds   = flag.Int("rounds", 3, "rounds; medians are taken over them")
	backends = flag.String("backends", "uring,kaio,threads", "uringaio backends to run the adapter on")
	dirFlag  = flag.String("dir", "", "directory for the DBs (default: a new one under $TMPDIR, removed at the end)")
	nKeys    = flag.Int("keys", 400_000, "keys in the read DB")
	nGets    = flag.Int("gets", 160_000, "Gets per get-warm round")
	nCold    = flag.Int("cold-gets", 16_000, "Gets per get-cold round")
	nScans   = flag.Int("scans", 8_000, "scans per scan round")
	nLoad    = flag.Int("load-keys", 100_000, "keys per load round")
	only     = flag.String("workloads", "", "comma-separated workloads to run (default: all)")
	coldPool = flag.String("coldpool", "", "comma-separated backends to also run through pebblefs on a Context with aio.Options.ColdReadsToPool, as <backend>+pool")
	raw      = flag.String("raw", "", "comma-separated backends to also run through a minimal adapter over Context.ReadAt/WriteAt on the descriptor (raw.go), as <backend>-raw")
	cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the measured workloads to this file")
)

const valueSize = 100

func key(i int) []byte { return fmt.Appendf(nil, "key-%010d", i) }

func value(i int) []byte {
	v := make([]byte, valueSize)
	r := rand.New(rand.NewPCG(uint64(i), 7))
	for j := 0; j+8 <= len(v); j += 8 {
		binary.LittleEndian.PutUint64(v[j:], r.Uint64())
	}
	return v
}

// target is one file system under test.
type target struct {
	name string
	fs   vfs.FS
	c    *aio.Context // nil for vfs.Default
}

type result struct {
	wall time.Duration // per op
	cpu  time.Duration // per op
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pebblebench:", err)
		os.Exit(1)
	}
}

func run() error {
	start := time.Now()
	dir := *dirFlag
	if dir == "" {
		d, err := os.MkdirTemp("", "pebblebench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if onTmpfs(dir) {
		fmt.Fprintf(os.Stderr, "warning: %s is on tmpfs; the page-cache-cold round means nothing there\n", dir)
	}

	targets := []target{{name: "default", fs: vfs.Default}}
	for _, be := range strings.Split(*backends, ",") {
		if be = strings.TrimSpace(be); be == "" {
			continue
		}
		c, err := aio.SetupWithOptions(256, aio.Options{Backend: be})
		if errors.Is(err, aio.ErrNotSupported) {
			fmt.Printf("skipping %s: %v\n", be, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("setup %s: %w", be, err)
		}
		defer c.Destroy()
		targets = append(targets, target{name: be, fs: pebblefs.New(c, vfs.Default), c: c})
	}
	for _, be := range strings.Split(*coldPool, ",") {
		if be = strings.TrimSpace(be); be == "" {
			continue
		}
		c, err := aio.SetupWithOptions(256, aio.Options{Backend: be, ColdReadsToPool: true})
		if errors.Is(err, aio.ErrNotSupported) {
			fmt.Printf("skipping %s+pool: %v\n", be, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("setup %s+pool: %w", be, err)
		}
		defer c.Destroy()
		targets = append(targets, target{name: be + "+pool", fs: pebblefs.New(c, vfs.Default), c: c})
	}
	for _, be := range strings.Split(*raw, ",") {
		if be = strings.TrimSpace(be); be == "" {
			continue
		}
		c, err := aio.SetupWithOptions(256, aio.Options{Backend: be})
		if errors.Is(err, aio.ErrNotSupported) {
			fmt.Printf("skipping %s-raw: %v\n", be, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("setup %s: %w", be, err)
		}
		defer c.Destroy()
		targets = append(targets, target{name: be + "-raw", fs: rawFS{FS: vfs.Default, c: c}, c: c})
	}

	readDir := filepath.Join(dir, "read")
	t0 := time.Now()
	if err := build(readDir, vfs.Default, *nKeys, true); err != nil {
		return fmt.Errorf("building the read DB: %w", err)
	}
	fmt.Printf("read DB: %d keys of %d bytes, built in %.1fs; %d rounds on %s\n",
		*nKeys, valueSize, time.Since(t0).Seconds(), *rounds, dir)

	type workload struct {
		name string
		run  func(t target, round int) (result, error)
	}
	workloads := []workload{
		{"get-warm", func(t target, _ int) (result, error) { return gets(readDir, t, *nGets, 32, false) }},
		{"get-cold", func(t target, _ int) (result, error) { return gets(readDir, t, *nCold, 32, true) }},
		{"scan", func(t target, _ int) (result, error) { return scans(readDir, t, *nScans, 8) }},
		{"load", func(t target, r int) (result, error) {
			d := filepath.Join(dir, fmt.Sprintf("load-%s-%d", t.name, r))
			defer os.RemoveAll(d)
			return measure(*nLoad, func() error { return build(d, t.fs, *nLoad, false) })
		}},
	}
	if *only != "" {
		want := strings.Split(*only, ",")
		workloads = slices.DeleteFunc(workloads, func(w workload) bool { return !slices.Contains(want, w.name) })
		if len(workloads) == 0 {
			return fmt.Errorf("-workloads %q names none of get-warm, get-cold, scan, load", *only)
		}
	}
	if !canDropCache {
		fmt.Printf("get-cold left out: %s\n", noDropCache)
		workloads = slices.DeleteFunc(workloads, func(w workload) bool { return w.name == "get-cold" })
	}

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res := map[string]map[string][]result{} // workload -> target -> per round
	for _, w := range workloads {
		res[w.name] = map[string][]result{}
	}
	for r := 0; r < *rounds; r++ {
		for _, w := range workloads {
			for i := range targets {
				t := targets[(i+r)%len(targets)]
				var out result
				var err error
				// Labelled so that -cpuprofile's samples can be told apart:
				// go tool pprof -tagfocus fs=uring (goroutines started
				// inside inherit the label).
				pprof.Do(context.Background(), pprof.Labels("fs", t.name, "workload", w.name), func(context.Context) {
					out, err = w.run(t, r)
				})
				if err != nil {
					return fmt.Errorf("%s on %s: %w", w.name, t.name, err)
				}
				res[w.name][t.name] = append(res[w.name][t.name], out)
			}
		}
		fmt.Printf("round %d done at %.0fs\n", r+1, time.Since(start).Seconds())
	}

	fmt.Printf("\nmedians over %d rounds; x dflt: wall or CPU time per op over vfs.Default's in the same round\n", *rounds)
	fmt.Printf("%-9s %-8s %12s %8s %12s %8s\n", "workload", "fs", "wall/op", "x dflt", "cpu/op", "x dflt")
	for _, w := range workloads {
		base := res[w.name]["default"]
		for _, t := range targets {
			rs := res[w.name][t.name]
			var wr, cr []float64
			for i := range rs {
				wr = append(wr, float64(rs[i].wall)/float64(base[i].wall))
				if base[i].cpu > 0 { // 0 where the process's CPU time cannot be read
					cr = append(cr, float64(rs[i].cpu)/float64(base[i].cpu))
				}
			}
			fmt.Printf("%-9s %-8s %12s %8.2f %12s %8.2f\n", w.name, t.name,
				median(rs, func(r result) float64 { return float64(r.wall) }),
				medianF(wr),
				median(rs, func(r result) float64 { return float64(r.cpu) }),
				medianF(cr))
		}
	}
	fmt.Println()
	for _, t := range targets {
		if t.c != nil {
			fmt.Printf("%s: %d requests through the Context\n", t.name, t.c.Stats().Requests)
		}
	}
	fmt.Printf("total %.0fs\n", time.Since(start).Seconds())
	return nil
}

func median(rs []result, f func(result) float64) time.Duration {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return time.Duration(medianF(v)).Round(10 * time.Nanosecond)
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// measure runs f and returns its wall and CPU time divided by ops.
func measure(ops int, f func() error) (result, error) {
	before := processCPU()
	t0 := time.Now()
	err := f()
	wall := time.Since(t0)
	cpu := processCPU() - before
	return result{wall: wall / time.Duration(ops), cpu: cpu / time.Duration(ops)}, err
}

// build writes n keys into a new DB in dir: batches of 100, a 1 MiB memtable,
// then Flush and a full Compact.
func build(dir string, fs vfs.FS, n int, bigMemtable bool) error {
	opts := &pebble.Options{FS: fs, MemTableSize: 1 << 20, Logger: quiet{}}
	if bigMemtable {
		opts.MemTableSize = 64 << 20
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return err
	}
	for i := 0; i < n; i += 100 {
		b := db.NewBatch()
		for j := i; j < min(i+100, n); j++ {
			_ = b.Set(key(j), value(j), nil)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			db.Close()
			return err
		}
	}
	if err := db.Flush(); err != nil {
		db.Close()
		return err
	}
	if err := db.Compact(context.Background(), key(0), key(n), true); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

func openRead(dir string, t target) (*pebble.DB, *pebble.Cache, error) {
	cache := pebble.NewCache(1 << 20)
	db, err := pebble.Open(dir, &pebble.Options{FS: t.fs, ReadOnly: true, Cache: cache, Logger: quiet{}})
	if err != nil {
		cache.Unref()
		return nil, nil, err
	}
	return db, cache, nil
}

// gets runs n point Gets of random keys at g goroutines.
func gets(dir string, t target, n, g int, cold bool) (result, error) {
	db, cache, err := openRead(dir, t)
	if err != nil {
		return result{}, err
	}
	defer cache.Unref()
	defer db.Close()
	if cold {
		if err := dropCache(dir); err != nil {
			return result{}, err
		}
	}
	return measure(n, func() error {
		return parallel(g, n, func(r *rand.Rand) error {
			i := r.IntN(*nKeys)
			v, closer, err := db.Get(key(i))
			if err != nil {
				return fmt.Errorf("Get(%s): %w", key(i), err)
			}
			if len(v) != valueSize {
				err = fmt.Errorf("Get(%s): %d bytes", key(i), len(v))
			}
			closer.Close()
			return err
		})
	})
}

// scans runs n range scans (SeekGE, then 50 Nexts) at g goroutines.
func scans(dir string, t target, n, g int) (result, error) {
	db, cache, err := openRead(dir, t)
	if err != nil {
		return result{}, err
	}
	defer cache.Unref()
	defer db.Close()
	return measure(n, func() error {
		return parallel(g, n, func(r *rand.Rand) error {
			it, err := db.NewIter(nil)
			if err != nil {
				return err
			}
			k := 0
			for ok := it.SeekGE(key(r.IntN(*nKeys))); ok && k < 50; ok = it.Next() {
				k++
			}
			return it.Close()
		})
	})
}

// parallel runs op n times in total over g goroutines, each with its own
// deterministic random source, and returns the first error.
func parallel(g, n int, op func(*rand.Rand) error) error {
	var wg sync.WaitGroup
	errs := make([]error, g)
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for i := w; i < n; i += g {
				if err := op(r); err != nil {
					errs[w] = err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return errors.Join(errs...)
}

type quiet struct{}

func (quiet) Infof(string, ...interface{})      {}
func (quiet) Errorf(f string, a ...interface{}) { pebble.DefaultLogger.Errorf(f, a...) }
func (quiet) Fatalf(f string, a ...interface{}) { pebble.DefaultLogger.Fatalf(f, a...) }
