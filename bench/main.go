//go:build unix

// Command bench measures the uringaio library side by side: io_uring ("uring"),
// classic kernel AIO ("kaio"), the user-space "threads" backend, and plain
// goroutines calling os.File.ReadAt ("gosync"), with fio beside them when
// asked. Each backend runs in two modes: a Submit/GetEvents loop with
// iodepth requests in flight, and N goroutines each making blocking
// aio.File.ReadAt calls on one shared Context (in a child process per case).
//
//	go -C bench run .                       # the default matrix, about a minute
//	go -C bench run . --backend=uring,kaio --workload=randread-direct --iodepth=1,32,128
//	go -C bench run . --fio                 # fio with the same parameters in the same run
//	go -C bench run . --matrix=full         # every path: File, Context.ReadAt, Do; randwrite; N up to 1024
//	go -C bench run . --format=bench > new.txt && benchstat old.txt new.txt
//
// It makes its own data file (256 MiB in the temp dir unless --file/--size say
// otherwise), prints a table, and writes results.json and results.svg into --out.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if isChild() {
		os.Exit(childMain(os.Stdin, os.Stdout))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// optDuration is a duration flag whose default is told in its usage text
// (flag.PrintDefaults prints no "(default ...)" of its own for it).
type optDuration struct {
	d   time.Duration
	set bool
}

func (o *optDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("negative duration")
	}
	o.d, o.set = d, true
	return nil
}

// run is main without the exit: 0 when every case ran (or was n/a, or its
// backend is not available here under --backend=all), 1 when a case failed,
// 2 for bad flags.
func run(args []string, stdout, stderr io.Writer) int {
	if isWAL(args) {
		return runWAL(args, stdout, stderr) // wal.go: flags and a table of its own
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var warm, rt optDuration
	fs.Var(&rt, "runtime", "measured `duration` of each case (default: 3s loop disk cases, 1.5s poll and cancel, 1s goroutine cases, so that the default matrix takes about a minute)")
	fs.Var(&warm, "warmup", "unmeasured warm-up `duration` before each case, like fio's ramp_time (default: 500ms loop cases, 250ms goroutine cases)")
	var (
		backend  = fs.String("backend", "all", "comma list of backends: uring, kaio, threads, gosync, auto (aio picks), env (URINGAIO_BACKEND picks); all = uring,kaio,threads,gosync (a backend that cannot run here is reported and left out)")
		workload = fs.String("workload", strings.Join(defaultWorkloads, ","), "comma list of workloads: "+strings.Join(allWorkloads, ", "))
		mode     = fs.String("mode", "loop,goroutines", "comma list: loop (Submit/GetEvents, iodepth in flight; poll and cancel), goroutines (N goroutines each calling ReadAt/WriteAt, one child process per case; disk workloads; gosync runs only here)")
		gors     = fs.String("goroutines", defaultGoroutines, "goroutine mode: comma list of N (goroutines each with one blocking call), e.g. 1,32,256,1024")
		maxEv    = fs.Int("max-events", defaultMaxEvents, "goroutine mode: maxEvents of the one Context all N goroutines share")
		bs       = fs.String("bs", "4k", "comma list of request sizes (4k, 64k, 1M, 4096)")
		iodepth  = fs.String("iodepth", strconv.Itoa(defaultQD), "loop mode: comma list of queue depths (requests in flight)")
		batch    = fs.String("batch", "", "loop mode: comma list of requests per Submit call (default: 1 for disk workloads, like fio; 32 for poll)")
		size     = fs.String("size", "256M", "data file size (region used by the disk workloads)")
		file     = fs.String("file", "", "data file (default "+defaultDataPath()+"); created if missing or smaller than --size; randwrite-direct overwrites it")
		clean    = fs.Bool("clean", false, "remove the data file at the end of the run")
		direct   = fs.Bool("direct", false, "turn randread/randwrite into randread-direct/randwrite-direct (O_DIRECT)")
		cancelN  = fs.Int("cancel-n", defaultCancelN, "pending requests in the cancel workload")
		useFio   = fs.Bool("fio", false, "also run fio with the same parameters (io_uring beside uring, libaio beside kaio, posixaio beside threads, psync with N jobs beside gosync)")
		jsonOut  = fs.Bool("json", false, "print the results as JSON on stdout (same as --format=json)")
		format   = fs.String("format", "table", "stdout format: table, bench (Go benchmark lines for benchstat), json")
		lat      = fs.String("lat", "short", "table latency columns: short (p50, p99, p99.9) or full (also min, mean, stdev, p99.99)")
		out      = fs.String("out", "./bench-results", "directory for results.json and results.svg (\"\" writes none)")
		quiet    = fs.Bool("q", false, "no progress lines on stderr")
		count    = fs.Int("count", 1, "run the whole matrix this many times, interleaved; the table shows each case's median and min-max (benchstat wants 6 or more)")
		api      = fs.String("api", apiFile, "goroutine mode: comma list of the library calls the goroutines make: file (aio.File.ReadAt/WriteAt), fd (Context.ReadAt/WriteAt on the descriptor), do (Context.Do with an IOCB per goroutine)")
		fixedB   = fs.Bool("fixedbufs", false, "io_uring: buffers from aio.Buffers, registered with the ring (READ_FIXED/WRITE_FIXED); fio's io_uring runs with --fixedbufs")
		regFiles = fs.Bool("registerfiles", false, "io_uring: the data file registered in the ring's fixed-file table (File.Register, IOCB.SetFile); fio's io_uring runs with --registerfiles")
		sqpoll   = fs.Bool("sqpoll", false, "io_uring: a kernel thread polls the SQ ring (Options.SQPoll); fio's io_uring runs with --sqthread_poll=1 (the SQ thread is one of the process's threads, so its CPU counts in the library's figures)")
		matrix   = fs.String("matrix", "default", "default, or full: every path a program takes, for flags not given: workloads randread,randread-direct,randwrite,poll,cancel; goroutines 1,32,256,1024; api file,fd,do")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go -C bench run . [flags]\n\nBenchmarks uringaio's backends (io_uring, classic AIO, threads) against os.File goroutines and, with --fio, fio.\nThe default matrix (about a minute): loop mode at iodepth 32 on randread, randread-direct, poll, cancel;\ngoroutine mode with N = 1, 32, 256 on randread and randread-direct. Goroutine cases are shorter\n(1s + 250ms warm-up) and each runs in a child process, so its OS thread count is its own.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	switch *matrix {
	case "default":
	case "full":
		// Every path: a flag given on the command line still wins.
		if !given["workload"] {
			*workload = strings.Join(fullWorkloads, ",")
		}
		if !given["goroutines"] {
			*gors = fullGoroutines
		}
		if !given["api"] {
			*api = strings.Join(allAPIs, ",")
		}
	default:
		fmt.Fprintf(stderr, "bench: --matrix %q: want default or full\n", *matrix)
		return 2
	}
	bad := func(err error) int {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}

	cfg := Config{Direct: *direct, Fio: *useFio, CancelN: *cancelN, Count: *count, MaxEvents: *maxEv, Warmup: -1,
		Ring: RingOpts{FixedBufs: *fixedB, RegisterFiles: *regFiles, SQPoll: *sqpoll}}
	if rt.set {
		cfg.Runtime = rt.d
		if rt.d == 0 {
			return bad(fmt.Errorf("--runtime 0: want a positive duration"))
		}
	}
	if warm.set {
		cfg.Warmup = warm.d
	}
	if cfg.MaxEvents < 1 || cfg.MaxEvents > 32768 {
		return bad(fmt.Errorf("--max-events %d: want 1..32768", cfg.MaxEvents))
	}
	var perr error
	if cfg.Goroutines, perr = parseIntList(*gors, 1, 16384); perr != nil {
		return bad(fmt.Errorf("--goroutines: %w", perr))
	}
	for _, a := range splitList(*api) {
		if a != apiFile && a != apiFD && a != apiDo {
			return bad(fmt.Errorf("--api %q: want file, fd or do", a))
		}
		cfg.APIs = append(cfg.APIs, a)
	}
	cfg.APIs = dedup(cfg.APIs)
	if len(cfg.APIs) == 0 {
		return bad(fmt.Errorf("--api must name at least one"))
	}
	for _, m := range splitList(*mode) {
		if m != modeLoop && m != modeGoroutines {
			return bad(fmt.Errorf("--mode %q: want loop, goroutines or both", m))
		}
		cfg.Modes = append(cfg.Modes, m)
	}
	if len(cfg.Modes) == 0 {
		return bad(fmt.Errorf("--mode must name at least one"))
	}
	if *lat != "short" && *lat != "full" {
		return bad(fmt.Errorf("--lat %q: want short or full", *lat))
	}
	if cfg.Count < 1 {
		return bad(fmt.Errorf("--count %d: want 1 or more", cfg.Count))
	}
	var err error
	if cfg.Backends, err = expandBackends(splitList(*backend)); err != nil {
		return bad(err)
	}
	cfg.Required = map[string]bool{}
	for _, b := range splitList(*backend) {
		if b != "all" {
			cfg.Required[b] = true
		}
	}
	for _, wl := range splitList(*workload) {
		if _, ok := workloads[wl]; !ok {
			return bad(fmt.Errorf("unknown workload %q (valid: %s)", wl, strings.Join(allWorkloads, ", ")))
		}
		cfg.Workloads = append(cfg.Workloads, wl)
	}
	cfg.Workloads = dedup(cfg.Workloads)
	if len(cfg.Backends) == 0 || len(cfg.Workloads) == 0 {
		return bad(fmt.Errorf("--backend and --workload must name at least one"))
	}
	if cfg.BS, err = parseSizeList(*bs); err != nil {
		return bad(fmt.Errorf("--bs: %w", err))
	}
	for _, v := range cfg.BS {
		if v%512 != 0 {
			return bad(fmt.Errorf("--bs %d: want a multiple of 512 (O_DIRECT needs 4096 on most disks)", v))
		}
	}
	if cfg.QD, err = parseIntList(*iodepth, 1, 4096); err != nil {
		return bad(fmt.Errorf("--iodepth: %w", err))
	}
	if *batch != "" {
		if cfg.Batch, err = parseIntList(*batch, 1, 4096); err != nil {
			return bad(fmt.Errorf("--batch: %w", err))
		}
	}
	if cfg.Size, err = parseSize(*size); err != nil {
		return bad(fmt.Errorf("--size: %w", err))
	}
	if cfg.CancelN < 1 || cfg.CancelN > 32768 {
		return bad(fmt.Errorf("--cancel-n %d: want 1..32768", cfg.CancelN))
	}
	cfg.File = *file
	if cfg.File == "" {
		cfg.File = defaultDataPath()
	}
	if *jsonOut {
		*format = "json"
	}
	switch *format {
	case "table", "bench", "json":
	default:
		return bad(fmt.Errorf("--format %q: want table, bench or json", *format))
	}
	if !*quiet {
		cfg.Progress = stderr
		if f, ok := stderr.(*os.File); ok {
			// A terminal is a character device (so is /dev/null, where
			// the live progress line costs nothing).
			fi, err := f.Stat()
			cfg.Live = err == nil && fi.Mode()&os.ModeCharDevice != 0
		}
	}
	if cases, infos := planCases(cfg); len(cases) == 0 {
		why := "gosync has only the goroutine mode, which has only the disk workloads; poll and cancel are loop cases"
		for _, bi := range infos {
			if !bi.Available {
				why = fmt.Sprintf("backend %s is not available here: %s", bi.Name, bi.Reason)
			}
		}
		fmt.Fprintln(stderr, "bench: nothing to run:", why)
		return 1
	} else if cfg.Progress != nil {
		est := estimate(cases, cfg.Fio) * time.Duration(cfg.Count)
		fmt.Fprintf(stderr, "bench: %d cases x %d, about %s\n", len(cases), cfg.Count, est.Round(time.Second))
	}

	res, err := RunMatrix(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	switch *format {
	case "table":
		writeTable(stdout, res, *lat == "full")
	case "bench":
		writeBench(stdout, res)
	case "json":
		if err := writeJSON(stdout, res); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	if *out != "" {
		jp, sp, err := writeOutputs(*out, res)
		if err != nil {
			fmt.Fprintln(stderr, "bench: writing results:", err)
			return 1
		}
		if cfg.Progress != nil {
			fmt.Fprintf(stderr, "bench: wrote %s and %s\n", jp, sp)
		}
	}
	if res.Meta.File != "" {
		if *clean {
			if err := os.Remove(res.Meta.File); err != nil {
				fmt.Fprintln(stderr, "bench: --clean:", err)
			} else if cfg.Progress != nil {
				fmt.Fprintf(stderr, "bench: removed the data file %s (%s)\n", res.Meta.File, fmtBytes(res.Meta.FileBytes))
			}
		} else if cfg.Progress != nil {
			fmt.Fprintf(stderr, "bench: data file %s (%s) is kept for the next run; remove it with: rm %s (or run with --clean)\n", res.Meta.File, fmtBytes(res.Meta.FileBytes), res.Meta.File)
		}
	}
	return exitCode(cfg, res)
}

// exitCode is 1 when any case failed, or when a backend named explicitly (not
// through "all") is not available here.
func exitCode(cfg Config, res *Results) int {
	code := 0
	for _, r := range res.Rows {
		if r.Error != "" || (r.NotSupported && cfg.Required[r.Backend]) {
			code = 1
		}
	}
	for _, bi := range res.Meta.Backends {
		if !bi.Available && (bi.Failed || cfg.Required[bi.Name]) {
			code = 1
		}
	}
	return code
}

// estimate is how long the cases will take, roughly.
func estimate(cases []Case, withFio bool) time.Duration {
	var d time.Duration
	for _, c := range cases {
		d += c.Warmup + c.Runtime
		if c.Mode == modeGoroutines {
			d += 60 * time.Millisecond // the child process
		}
		if info := workloads[c.Workload]; info.disk && !info.direct {
			d += 100 * time.Millisecond // warming the page cache
		}
		if withFio && workloads[c.Workload].disk && fioEngine(c.Backend) != "" {
			d += c.Warmup + c.Runtime + 100*time.Millisecond
		}
	}
	return d
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseIntList(s string, lo, hi int) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		v, err := strconv.Atoi(p)
		if err != nil || v < lo || v > hi {
			return nil, fmt.Errorf("bad value %q (want %d..%d)", p, lo, hi)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func parseSizeList(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		v, err := parseSize(p)
		if err != nil {
			return nil, err
		}
		if v > 1<<30 {
			return nil, fmt.Errorf("%q is too large", p)
		}
		out = append(out, int(v))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}
