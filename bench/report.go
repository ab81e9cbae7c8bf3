//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Row is one line of the results: one case on one backend, or fio beside it.
type Row struct {
	Run          int         `json:"run,omitempty"`         // repetition (--count > 1), from 1
	Tool         string      `json:"tool"`                  // uringaio, gosync or fio
	Backend      string      `json:"backend"`               // asked for: uring, kaio, auto, env, gosync; fio: its ioengine
	BackendRan   string      `json:"backend_ran,omitempty"` // what ran: ctx.Backend()
	Probes       []ProbeInfo `json:"probes,omitempty"`      // ctx.Probes(): what selection tried and why
	Workload     string      `json:"workload"`
	Mode         string      `json:"mode"`                  // loop (Submit/GetEvents, iodepth in flight) or goroutines (N blocking calls)
	Goroutines   int         `json:"goroutines,omitempty"`  // goroutine mode: N (also in iodepth); fio: its iodepth or jobs
	API          string      `json:"api,omitempty"`         // goroutine mode, library rows: file (aio.File), fd (Context.ReadAt/WriteAt), do (Context.Do)
	Ring         string      `json:"ring,omitempty"`        // --fixedbufs, --registerfiles, --sqpoll given: "+fixedbufs+registerfiles"
	FixedFiles   uint64      `json:"fixed_files,omitempty"` // loop mode: requests that named a fixed-file entry (aio.Stats)
	FixedBufs    uint64      `json:"fixed_bufs,omitempty"`  // loop mode: requests that went READ_FIXED/WRITE_FIXED (aio.Stats)
	MaxEvents    int         `json:"max_events,omitempty"`  // goroutine mode: maxEvents of the one shared Context
	BS           int         `json:"bs"`                    // bytes per request (0: no data moved)
	QD           int         `json:"iodepth"`               // requests in flight; N in goroutine mode; jobs for fio psync
	Batch        int         `json:"batch"`                 // requests per Submit call
	CancelN      int         `json:"cancel_n,omitempty"`
	Rounds       int64       `json:"rounds,omitempty"`
	RuntimeSec   float64     `json:"runtime_s"` // measured time
	Ops          int64       `json:"ops"`
	IOPS         float64     `json:"iops"`
	MBps         float64     `json:"mb_per_s"`
	LatP50us     float64     `json:"lat_p50_us"`
	LatP99us     float64     `json:"lat_p99_us"`
	LatP999us    float64     `json:"lat_p999_us"`
	LatP9999us   float64     `json:"lat_p9999_us"`
	LatMinUs     float64     `json:"lat_min_us"`
	LatMeanUs    float64     `json:"lat_mean_us"`
	LatStdevUs   float64     `json:"lat_stdev_us"`
	LatMaxUs     float64     `json:"lat_max_us"`
	LatSamples   int64       `json:"lat_samples"`
	LatencyOf    string      `json:"latency_of,omitempty"` // what one latency sample is
	ReapP50us    float64     `json:"reap_p50_us,omitempty"`
	ReapP99us    float64     `json:"reap_p99_us,omitempty"`
	CPUNsPerOp   float64     `json:"cpu_ns_per_op"`            // getrusage user+sys / ops
	SubmitsPerOp *float64    `json:"submits_per_op,omitempty"` // library Submit calls / ops; nil: not known
	InlinePerOp  *float64    `json:"inline_per_op,omitempty"`  // goroutine mode: requests the library finished without a kernel submission / ops
	PeakThreads  int         `json:"peak_threads,omitempty"`   // goroutine mode: most OS threads of the (child) process during the case
	Errors       int64       `json:"errors,omitempty"`         // goroutine mode: calls refused with EAGAIN and retried
	Child        bool        `json:"child_process,omitempty"`  // ran in a child process of its own
	AllocsPerOp  float64     `json:"allocs_per_op"`            // MemStats.Mallocs delta / ops
	Runs         int         `json:"runs,omitempty"`           // summary rows: rounds the medians are taken over
	IOPSMin      float64     `json:"iops_min,omitempty"`       // summary rows: the lowest and highest round
	IOPSMax      float64     `json:"iops_max,omitempty"`
	P50Min       float64     `json:"lat_p50_min_us,omitempty"` // summary rows: spread of the p50
	P50Max       float64     `json:"lat_p50_max_us,omitempty"`
	RatioFio     float64     `json:"ratio_vs_fio,omitempty"` // library IOPS / fio IOPS, same engine
	RatioGosync  float64     `json:"ratio_vs_gosync,omitempty"`
	Resident     float64     `json:"page_cache_resident,omitempty"` // buffered cases: share of the file in the page cache
	Notes        []string    `json:"notes,omitempty"`
	Command      string      `json:"command,omitempty"` // fio's command line
	Skipped      bool        `json:"skipped,omitempty"`
	NotSupported bool        `json:"not_supported,omitempty"` // Setup said errors.Is(err, aio.ErrNotSupported)
	SkipReason   string      `json:"skip_reason,omitempty"`
	Error        string      `json:"error,omitempty"`
}

// summary is the short form of a row for progress lines.
func (r Row) summary() string {
	switch {
	case r.Error != "":
		return "ERROR: " + r.Error
	case r.Skipped:
		return "skipped: " + r.SkipReason
	case r.Workload == wlCancel || r.Workload == wlCancelFD:
		return fmt.Sprintf("p50 %s us, p99 %s us (%s)", fmtF(r.LatP50us), fmtF(r.LatP99us), r.LatencyOf)
	}
	ran := ""
	if r.BackendRan != "" && r.BackendRan != r.Backend {
		ran = " [ran " + r.BackendRan + "]"
	}
	extra := ""
	if r.PeakThreads > 0 {
		extra = fmt.Sprintf(", %d threads", r.PeakThreads)
	}
	if r.Errors > 0 {
		extra += fmt.Sprintf(", %d EAGAIN", r.Errors)
	}
	return fmt.Sprintf("%s IOPS, p50 %s us, p99 %s us%s%s", fmtInt(r.IOPS), fmtF(r.LatP50us), fmtF(r.LatP99us), extra, ran)
}

// Meta describes the machine and the run.
type Meta struct {
	Date        string        `json:"date"`
	Command     string        `json:"command"`
	Kernel      string        `json:"kernel"`
	GoVersion   string        `json:"go_version"`
	GOOS        string        `json:"goos"`
	GOARCH      string        `json:"goarch"`
	CPUs        int           `json:"cpus"`
	GOMAXPROCS  int           `json:"gomaxprocs"`
	CPUModel    string        `json:"cpu_model,omitempty"`
	EnvBackend  string        `json:"env_URINGAIO_BACKEND,omitempty"`
	AutoBackend string        `json:"auto_backend,omitempty"` // what aio.Setup with "auto" picks here
	AutoProbes  []ProbeInfo   `json:"auto_probes,omitempty"`
	AutoError   string        `json:"auto_error,omitempty"`
	File        string        `json:"file,omitempty"`
	FileSize    int64         `json:"file_size,omitempty"`
	FileFS      string        `json:"file_fs,omitempty"`
	FileCreated bool          `json:"file_created,omitempty"`
	FileBytes   int64         `json:"file_bytes,omitempty"` // the data file's whole size on disk
	Backends    []BackendInfo `json:"backends,omitempty"`   // the library backends asked for, and whether they run here
	FioVersion  string        `json:"fio_version,omitempty"`
	ClockNs     float64       `json:"clock_ns"` // cost of one time.Now, the latency clock
	Library     LibraryInfo   `json:"library"`  // the library measured: module version, source directory, git commit
	Notes       []string      `json:"notes,omitempty"`
}

func collectMeta(cfg Config) Meta {
	m := Meta{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Command:    strings.Join(append([]string{"bench"}, os.Args[1:]...), " "),
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
		EnvBackend: os.Getenv("URINGAIO_BACKEND"),
		ClockNs:    clockCost(),
		Library:    libraryInfo(),
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	chosen, probes, err := autoProbe()
	if err != nil {
		m.AutoError = err.Error()
	} else {
		m.AutoBackend, m.AutoProbes = chosen, probes
	}
	return m
}

// writeHeader prints what ran where: the machine, the backends with their
// probe reasons (so nobody benchmarks a silent fallback), the data file.
func writeHeader(w io.Writer, res *Results) {
	m := res.Meta
	fmt.Fprintf(w, "uringaio bench  %s  kernel %s  %s  %d CPUs (GOMAXPROCS %d)  %s\n", m.Date, m.Kernel, m.GoVersion, m.CPUs, m.GOMAXPROCS, m.CPUModel)
	fmt.Fprintf(w, "library: %s\n", m.Library)
	if m.AutoError != "" {
		fmt.Fprintf(w, "auto backend: none: %s\n", m.AutoError)
	} else {
		fmt.Fprintf(w, "auto backend: %s (probes: %s)\n", m.AutoBackend, fmtProbes(m.AutoProbes))
	}
	if m.EnvBackend != "" {
		fmt.Fprintf(w, "URINGAIO_BACKEND=%s (used by --backend=env)\n", m.EnvBackend)
	}
	for _, bi := range m.Backends {
		if bi.Available {
			fmt.Fprintf(w, "backend %s: available (probes: %s)\n", bi.Name, fmtProbes(bi.Probes))
		} else {
			fmt.Fprintf(w, "backend %s: NOT AVAILABLE here, left out: %s\n", bi.Name, bi.Reason)
		}
	}
	seen := map[string]bool{}
	for _, r := range res.Rows {
		if r.Tool != "uringaio" || seen[r.Backend] || r.BackendRan == "" || r.BackendRan == r.Backend {
			continue
		}
		seen[r.Backend] = true
		fmt.Fprintf(w, "backend %s: ran %s (probes: %s)\n", r.Backend, r.BackendRan, fmtProbes(r.Probes))
	}
	if m.File != "" {
		created := "reused"
		if m.FileCreated {
			created = "created by this run"
		}
		fmt.Fprintf(w, "data file: %s (%s region of %s, %s, %s)\n", m.File, fmtBytes(m.FileSize), fmtBytes(m.FileBytes), m.FileFS, created)
	}
	if m.FioVersion != "" {
		fmt.Fprintf(w, "fio: %s\n", m.FioVersion)
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func fmtProbes(ps []ProbeInfo) string {
	if len(ps) == 0 {
		return "none reported"
	}
	var parts []string
	for _, p := range ps {
		if p.OK {
			parts = append(parts, p.Backend+" ok")
		} else {
			parts = append(parts, p.Backend+" failed: "+p.Reason)
		}
	}
	return strings.Join(parts, "; ")
}

// column is one column of a table: identity columns (which case) are printed
// for failed rows too; the figures of a failed row are one "ERROR".
type column struct {
	head string
	id   bool
	cell func(r Row) string
}

func printTable(w io.Writer, title string, rows []Row, cols []column) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t")+"\t")
	for _, r := range rows {
		cells := make([]string, len(cols))
		failed := false
		for i, c := range cols {
			switch {
			case c.id:
				cells[i] = c.cell(r)
			case r.Error != "" && !failed:
				cells[i], failed = "ERROR", true
			case r.Error != "":
			default:
				cells[i] = c.cell(r)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// Columns shared by the tables.
var (
	colWorkload = column{"workload", true, func(r Row) string { return r.Workload }}
	colBackend  = column{"backend", true, func(r Row) string {
		if r.Tool == "fio" {
			return "fio " + r.Backend + r.Ring
		}
		if r.API != "" && r.API != apiFile {
			return r.Backend + "/" + r.API + r.Ring
		}
		return r.Backend + r.Ring
	}}
	colRan = column{"ran", true, func(r Row) string {
		if r.BackendRan == "" {
			return "-"
		}
		return r.BackendRan
	}}
	colBS = column{"bs", true, func(r Row) string {
		if r.BS > 0 {
			return fmtSizeShort(r.BS)
		}
		return "-"
	}}
	colIOPS   = column{"IOPS", false, func(r Row) string { return fmtInt(r.IOPS) }}
	colSpread = column{"min-max", false, func(r Row) string {
		if r.Runs < 2 {
			return "-"
		}
		return fmtCompact(r.IOPSMin) + "-" + fmtCompact(r.IOPSMax)
	}}
	colCPU     = column{"CPU us/op", false, func(r Row) string { return fmt.Sprintf("%.3f", r.CPUNsPerOp/1e3) }}
	colSubmits = column{"submits/op", false, func(r Row) string { return fmtPtr(r.SubmitsPerOp) }}
	colAllocs  = column{"allocs/op", false, func(r Row) string {
		if r.Tool == "fio" {
			return "-"
		}
		return fmt.Sprintf("%.3f", r.AllocsPerOp)
	}}
	colFio    = column{"vs fio", false, func(r Row) string { return fmtRatio(r.RatioFio) }}
	colGosync = column{"vs gosync", false, func(r Row) string { return fmtRatio(r.RatioGosync) }}
)

func latCols(full bool, p999 bool) []column {
	cols := []column{
		{"p50 us", false, func(r Row) string { return fmtF(r.LatP50us) }},
		{"p99 us", false, func(r Row) string { return fmtF(r.LatP99us) }},
	}
	if p999 || full {
		cols = append(cols, column{"p99.9 us", false, func(r Row) string { return fmtF(r.LatP999us) }})
	}
	if full {
		cols = append(cols,
			column{"p99.99 us", false, func(r Row) string { return fmtF(r.LatP9999us) }},
			column{"min us", false, func(r Row) string { return fmtF(r.LatMinUs) }},
			column{"mean us", false, func(r Row) string { return fmtF(r.LatMeanUs) }},
			column{"stdev us", false, func(r Row) string { return fmtF(r.LatStdevUs) }},
		)
	}
	return cols
}

func cat(parts ...[]column) []column {
	var out []column
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// writeTable prints the header, then up to three tables: the loop mode (and
// poll), the goroutine mode, and cancellation (a latency table of its own,
// so that no latency sits in an IOPS column). With several rounds each row is
// a case's median, with the IOPS min-max beside it. Rows that did not run are
// left out (listed below with their reason); failed rows say ERROR.
func writeTable(w io.Writer, res *Results, fullLat bool) {
	writeHeader(w, res)
	fmt.Fprintln(w)
	var loop, gor, cancel []Row
	hasFio, multi, hasGosync, hasErrs := false, false, false, false
	for _, r := range res.shown() {
		if r.Skipped {
			continue
		}
		hasFio = hasFio || r.Tool == "fio"
		multi = multi || r.Runs > 1
		hasGosync = hasGosync || r.RatioGosync > 0
		hasErrs = hasErrs || r.Errors > 0
		switch {
		case r.Workload == wlCancel || r.Workload == wlCancelFD:
			cancel = append(cancel, r)
		case r.Mode == modeGoroutines:
			gor = append(gor, r)
		default:
			loop = append(loop, r)
		}
	}
	opt := func(on bool, c ...column) []column {
		if on {
			return c
		}
		return nil
	}
	rounds := ""
	if multi {
		rounds = fmt.Sprintf(" — medians of %d rounds, IOPS min-max beside", res.shownRuns())
	}
	printTable(w, "Loop mode: one goroutine keeps iodepth requests in flight (Submit/GetEvents)"+rounds, loop, cat(
		[]column{colWorkload, colBackend, colRan, colBS,
			{"qd", true, func(r Row) string { return fmt.Sprint(r.QD) }},
			{"batch", true, func(r Row) string { return fmt.Sprint(r.Batch) }},
			colIOPS},
		opt(multi, colSpread),
		[]column{{"MB/s", false, func(r Row) string {
			if r.BS > 0 {
				return fmt.Sprintf("%.1f", r.MBps)
			}
			return "-"
		}}},
		latCols(fullLat, true),
		[]column{colCPU, colSubmits, colAllocs},
		opt(hasFio, colFio), opt(hasGosync, colGosync),
	))
	maxEv := 0
	for _, r := range gor {
		if r.MaxEvents > maxEv {
			maxEv = r.MaxEvents
		}
	}
	printTable(w, fmt.Sprintf("Goroutine mode: N goroutines, each one blocking ReadAt/WriteAt at a time; aio rows share one Context (maxEvents %d); one child process per case%s", maxEv, rounds), gor, cat(
		[]column{colWorkload, colBackend, colRan, colBS,
			{"N", true, func(r Row) string { return fmt.Sprint(r.QD) }},
			colIOPS},
		opt(multi, colSpread),
		opt(hasGosync, colGosync), opt(hasFio, colFio),
		[]column{colCPU},
		latCols(fullLat, false),
		[]column{
			{"threads", false, func(r Row) string {
				if r.PeakThreads == 0 {
					return "-"
				}
				return fmt.Sprint(r.PeakThreads)
			}},
			colSubmits,
			{"inline/op", false, func(r Row) string { return fmtPtr(r.InlinePerOp) }},
		},
		opt(hasErrs, column{"EAGAIN", false, func(r Row) string {
			if r.Tool != "uringaio" {
				return "-"
			}
			return fmt.Sprint(r.Errors)
		}}),
	))
	printTable(w, "Cancellation: latency of one call (lower is better)"+strings.Replace(rounds, "IOPS", "p50", 1), cancel, cat(
		[]column{colWorkload, colBackend, colRan,
			{"pending", true, func(r Row) string { return fmt.Sprint(r.CancelN) }}},
		latCols(fullLat, true)[:1],
		opt(multi, column{"p50 min-max", false, func(r Row) string {
			if r.Runs < 2 {
				return "-"
			}
			return fmtF(r.P50Min) + "-" + fmtF(r.P50Max)
		}}),
		latCols(fullLat, true)[1:],
		[]column{
			{"canceled/s", false, func(r Row) string { return fmtInt(r.IOPS) }},
			colCPU, colAllocs,
		},
	))

	// Errors and skips in full, then what the columns mean.
	var problems []string
	for _, r := range res.Rows {
		if r.Error != "" {
			problems = append(problems, fmt.Sprintf("ERROR %s %s %s: %s", r.Backend, r.Workload, r.Mode, r.Error))
		} else if r.Skipped {
			problems = append(problems, fmt.Sprintf("skipped %s %s: %s", r.Backend, r.Workload, r.SkipReason))
		}
	}
	if len(problems) > 0 {
		for _, p := range dedup(problems) {
			fmt.Fprintln(w, p)
		}
		fmt.Fprintln(w)
	}
	for _, n := range tableNotes(res) {
		fmt.Fprintln(w, "* "+n)
	}
}

// shownRuns is the most rounds a shown row has.
func (res *Results) shownRuns() int {
	n := 0
	for _, r := range res.shown() {
		if r.Runs > n {
			n = r.Runs
		}
	}
	return n
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *p)
}

// fmtCompact prints a rate with three significant digits and k/M.
func fmtCompact(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.3g", v)
}

func tableNotes(res *Results) []string {
	var notes []string
	has := map[string]bool{}
	for _, r := range res.Rows {
		has[r.Workload] = true
		has["tool:"+r.Tool] = true
		has["mode:"+r.Mode] = true
	}
	if has[wlRandRead] || has[wlRandWrite] {
		minRes := -1.0
		for _, r := range res.Rows {
			if (r.Workload == wlRandRead || r.Workload == wlRandWrite) && r.Tool != "fio" && r.Error == "" && (minRes < 0 || r.Resident < minRes) {
				minRes = r.Resident
			}
		}
		warm := "unknown"
		if minRes >= 0 {
			warm = fmt.Sprintf("at least %.0f%% of it resident in every case, by mincore", minRes*100)
		}
		if has[wlRandRead] {
			notes = append(notes, "randread is buffered and page-cache warm: the whole file region is read before each case ("+warm+"); no disk I/O, so it measures the per-request path.")
		}
		if has[wlRandWrite] {
			notes = append(notes, "randwrite is buffered: writes land in the page cache and writeback throttles them; it is not a disk figure.")
		}
	}
	if has[wlRandReadDirect] || has[wlRandWriteDirect] {
		notes = append(notes, "-direct workloads use O_DIRECT with 4096-aligned buffers and go to the disk.")
	}
	notes = append(notes,
		fmt.Sprintf("latency: loop rows = per request from just before its Submit call to just after the GetEvents call that returned it (the clock, %.0f ns a read, is read once per Submit call and once per GetEvents return); goroutine rows = per ReadAt/WriteAt call (one clock read per call; with more goroutines than GOMAXPROCS it includes waiting for a P); fio = fio's lat (submission to completion).", res.Meta.ClockNs),
		"submits/op = kernel submissions (io_uring_enter or io_submit calls that carried requests) per completed request: loop rows count the tool's Submit calls, goroutine rows take aio.Context.Stats() (Submits/Requests) over the window; gosync makes one pread/pwrite system call per request. inline/op = Stats().Inline / requests: requests the library finished on the caller's goroutine with no submission.",
		"CPU us/op = getrusage(RUSAGE_SELF) user+sys of the whole process over the measured time / requests; fio's is its own usr+sys. allocs/op = runtime.MemStats.Mallocs delta / requests (the tool's loop allocates nothing itself).",
		"vs gosync = library IOPS / gosync IOPS at the same workload and size, gosync with as many goroutines as the row's N (goroutine mode) or iodepth (loop mode).",
	)
	if has["tool:fio"] {
		notes = append(notes, "vs fio = IOPS / fio's IOPS with the same engine and parameters, on the library's (and gosync's) row only: io_uring at iodepth N beside uring, libaio at iodepth N beside kaio, posixaio (glibc's POSIX AIO threads) at iodepth N beside threads, psync with N jobs (threads) beside gosync.")
	}
	if has["mode:"+modeGoroutines] {
		notes = append(notes, "goroutine mode: N goroutines each call ReadAt/WriteAt in a loop, one call at a time: gosync on an *os.File (a pread each, one OS thread per blocked call), the library's backends over one Context shared by all N, through aio.NewFile (backend name alone), Context.ReadAt/WriteAt on the descriptor (backend/fd) or Context.Do with an IOCB per goroutine (backend/do). Each case runs in a fresh child process; threads = the peak of its Threads: line in /proc/self/status, sampled every 2 ms (Linux only). The library waits for room when maxEvents requests are outstanding, so no call should fail with EAGAIN; an EAGAIN column appears only if one did (such calls are retried, not counted as requests).")
	}
	if has[wlPoll] {
		notes = append(notes, "poll = OpPoll POLLIN on an always-readable "+readyFDKind+": the engine's own per-request cost, no disk.")
	}
	if has[wlCancel] {
		notes = append(notes, "cancel = N OpPoll POLLIN pending on an empty pipe, canceled one by one with Cancel (latency per call, IOPS = cancels/s); cancel-fd = one CancelFD(fd, nil) of all N (latency = the whole call; IOPS = requests canceled per second including reaping their N events, CPU and allocs per canceled request).")
	}
	if has["tool:gosync"] {
		notes = append(notes, "gosync = N goroutines each calling os.File.ReadAt/WriteAt on one *os.File; it has only the goroutine mode, and no poll or cancel.")
	}
	return notes
}

func fmtSizeShort(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprint(n)
}

// fmtInt prints a float as an integer with thousands separators.
func fmtInt(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtF prints a latency with about three significant digits.
func fmtF(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmtInt(v)
}

func fmtRatio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}

// writeBench prints Go benchmark lines that benchstat reads:
//
//	BenchmarkIO/backend=uring/workload=randread/bs=4096/qd=32/batch=1-2  N  ns/op ...
//
// ns/op is wall time per request (1/IOPS) for I/O rows, the mean per call for
// cancel rows. fio rows use backend=fio-<engine>.
func writeBench(w io.Writer, res *Results) {
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/uringaio/uringaio/bench\n", res.Meta.GOOS, res.Meta.GOARCH)
	if res.Meta.CPUModel != "" {
		fmt.Fprintf(w, "cpu: %s\n", res.Meta.CPUModel)
	}
	for _, r := range res.Rows {
		if r.Error != "" || r.Skipped || r.Ops == 0 {
			continue
		}
		be := r.Backend
		if r.Tool == "fio" {
			be = "fio-" + r.Backend
		}
		name := fmt.Sprintf("BenchmarkIO/backend=%s/workload=%s", be, r.Workload)
		var n int64
		var nsop float64
		switch r.Workload {
		case wlCancel:
			name += fmt.Sprintf("/n=%d", r.CancelN)
			n, nsop = r.Ops, r.LatMeanUs*1e3
		case wlCancelFD:
			name += fmt.Sprintf("/n=%d", r.CancelN)
			n, nsop = r.Rounds, r.LatMeanUs*1e3
		default:
			if r.BS > 0 {
				name += fmt.Sprintf("/bs=%d", r.BS)
			}
			if r.Mode == modeGoroutines {
				if r.API != "" && r.API != apiFile {
					name += "/api=" + r.API
				}
				name += fmt.Sprintf("/goroutines=%d", r.QD)
			} else {
				name += fmt.Sprintf("/qd=%d/batch=%d", r.QD, r.Batch)
			}
			n = r.Ops
			if r.IOPS > 0 {
				nsop = 1e9 / r.IOPS
			}
		}
		name += fmt.Sprintf("-%d", res.Meta.GOMAXPROCS)
		var b strings.Builder
		fmt.Fprintf(&b, "%s\t%d\t%.1f ns/op", name, n, nsop)
		if r.MBps > 0 {
			fmt.Fprintf(&b, "\t%.2f MB/s", r.MBps)
		}
		fmt.Fprintf(&b, "\t%.0f IOPS\t%.0f p50-ns\t%.0f p99-ns\t%.0f p99.9-ns\t%.1f cpu-ns/op",
			r.IOPS, r.LatP50us*1e3, r.LatP99us*1e3, r.LatP999us*1e3, r.CPUNsPerOp)
		if r.SubmitsPerOp != nil {
			fmt.Fprintf(&b, "\t%.4f submits/op", *r.SubmitsPerOp)
		}
		if r.Tool != "fio" {
			fmt.Fprintf(&b, "\t%.4f allocs/op", r.AllocsPerOp)
		}
		if r.PeakThreads > 0 {
			fmt.Fprintf(&b, "\t%d threads", r.PeakThreads)
		}
		fmt.Fprintln(w, b.String())
	}
}

// writeJSON writes the results as indented JSON.
func writeJSON(w io.Writer, res *Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// readJSON reads what writeJSON wrote.
func readJSON(r io.Reader) (*Results, error) {
	var res Results
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return nil, err
	}
	return &res, nil
}

// writeOutputs writes results.json and results.svg into dir.
func writeOutputs(dir string, res *Results) (jsonPath, svgPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	var jb bytes.Buffer
	if err := writeJSON(&jb, res); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, "results.json")
	if err := os.WriteFile(jsonPath, jb.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	var sb bytes.Buffer
	writeSVG(&sb, res)
	svgPath = filepath.Join(dir, "results.svg")
	if err := os.WriteFile(svgPath, sb.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, svgPath, nil
}
