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
	BS           int         `json:"bs"`      // bytes per request (0: no data moved)
	QD           int         `json:"iodepth"` // requests in flight; goroutines for gosync, jobs for fio psync
	Batch        int         `json:"batch"`   // requests per Submit call
	CancelN      int         `json:"cancel_n,omitempty"`
	Rounds       int64       `json:"rounds,omitempty"`
	RuntimeSec   float64     `json:"runtime_s"` // measured time
	Ops          int64       `json:"ops"`
	IOPS         float64     `json:"iops"`
	MBps         float64     `json:"mb_per_s"`
	LatP50us     float64     `json:"lat_p50_us"`
	LatP99us     float64     `json:"lat_p99_us"`
	LatP999us    float64     `json:"lat_p999_us"`
	LatMeanUs    float64     `json:"lat_mean_us"`
	LatMaxUs     float64     `json:"lat_max_us"`
	LatSamples   int64       `json:"lat_samples"`
	LatencyOf    string      `json:"latency_of,omitempty"` // what one latency sample is
	ReapP50us    float64     `json:"reap_p50_us,omitempty"`
	ReapP99us    float64     `json:"reap_p99_us,omitempty"`
	CPUNsPerOp   float64     `json:"cpu_ns_per_op"`            // getrusage user+sys / ops
	SubmitsPerOp *float64    `json:"submits_per_op,omitempty"` // library Submit calls / ops; nil: not known
	AllocsPerOp  float64     `json:"allocs_per_op"`            // MemStats.Mallocs delta / ops
	RatioFio     float64     `json:"ratio_vs_fio,omitempty"`   // library IOPS / fio IOPS, same engine
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
	return fmt.Sprintf("%s IOPS, p50 %s us, p99 %s us%s", fmtInt(r.IOPS), fmtF(r.LatP50us), fmtF(r.LatP99us), ran)
}

// Meta describes the machine and the run.
type Meta struct {
	Date        string      `json:"date"`
	Command     string      `json:"command"`
	Kernel      string      `json:"kernel"`
	GoVersion   string      `json:"go_version"`
	GOOS        string      `json:"goos"`
	GOARCH      string      `json:"goarch"`
	CPUs        int         `json:"cpus"`
	GOMAXPROCS  int         `json:"gomaxprocs"`
	CPUModel    string      `json:"cpu_model,omitempty"`
	EnvBackend  string      `json:"env_URINGAIO_BACKEND,omitempty"`
	AutoBackend string      `json:"auto_backend,omitempty"` // what aio.Setup with "auto" picks here
	AutoProbes  []ProbeInfo `json:"auto_probes,omitempty"`
	AutoError   string      `json:"auto_error,omitempty"`
	File        string      `json:"file,omitempty"`
	FileSize    int64       `json:"file_size,omitempty"`
	FileFS      string      `json:"file_fs,omitempty"`
	FileCreated bool        `json:"file_created,omitempty"`
	FioVersion  string      `json:"fio_version,omitempty"`
	ClockNs     float64     `json:"clock_ns"` // cost of one time.Now, the latency clock
	Notes       []string    `json:"notes,omitempty"`
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

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.IndexByte(line, ':'); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return ""
}

// writeHeader prints what ran where: the machine, the backends with their
// probe reasons (so nobody benchmarks a silent fallback), the data file.
func writeHeader(w io.Writer, res *Results) {
	m := res.Meta
	fmt.Fprintf(w, "uringaio bench  %s  kernel %s  %s  %d CPUs (GOMAXPROCS %d)  %s\n", m.Date, m.Kernel, m.GoVersion, m.CPUs, m.GOMAXPROCS, m.CPUModel)
	if m.AutoError != "" {
		fmt.Fprintf(w, "auto backend: none: %s\n", m.AutoError)
	} else {
		fmt.Fprintf(w, "auto backend: %s (probes: %s)\n", m.AutoBackend, fmtProbes(m.AutoProbes))
	}
	if m.EnvBackend != "" {
		fmt.Fprintf(w, "URINGAIO_BACKEND=%s (used by --backend=env)\n", m.EnvBackend)
	}
	seen := map[string]bool{}
	for _, r := range res.Rows {
		if r.Tool != "uringaio" || seen[r.Backend] {
			continue
		}
		seen[r.Backend] = true
		switch {
		case r.BackendRan != "":
			fmt.Fprintf(w, "backend %s: ran %s (probes: %s)\n", r.Backend, r.BackendRan, fmtProbes(r.Probes))
		case r.NotSupported:
			fmt.Fprintf(w, "backend %s: NOT AVAILABLE: %s\n", r.Backend, r.SkipReason)
		}
	}
	if m.File != "" {
		created := "reused"
		if m.FileCreated {
			created = "created by this run"
		}
		fmt.Fprintf(w, "data file: %s (%s region, %s, %s)\n", m.File, fmtBytes(m.FileSize), m.FileFS, created)
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

// writeTable prints the rows as an aligned table, then the notes that say what
// the columns measure.
func writeTable(w io.Writer, res *Results) {
	writeHeader(w, res)
	fmt.Fprintln(w)
	hasFio := false
	for _, r := range res.Rows {
		hasFio = hasFio || r.Tool == "fio"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	line := func(cells ...string) {
		if !hasFio {
			cells = append(cells[:14], cells[15:]...) // no "vs fio" column
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	line("workload", "backend", "ran", "bs", "qd", "batch", "IOPS", "MB/s", "p50 us", "p99 us", "p99.9 us", "CPU us/op", "submits/op", "allocs/op", "vs fio", "vs gosync")
	for _, r := range res.Rows {
		be := r.Backend
		if r.Tool == "fio" {
			be = "fio " + r.Backend
		}
		wl := r.Workload
		if r.Run > 0 {
			wl = fmt.Sprintf("%s #%d", wl, r.Run)
		}
		ran := r.BackendRan
		if ran == "" {
			ran = "-"
		}
		bs := "-"
		if r.BS > 0 {
			bs = fmtSizeShort(r.BS)
		}
		qd := fmt.Sprint(r.QD)
		if r.CancelN > 0 {
			qd = fmt.Sprintf("n=%d", r.CancelN)
		}
		batch := "-"
		if r.Batch > 0 {
			batch = fmt.Sprint(r.Batch)
		}
		if r.Error != "" || r.Skipped {
			msg := "ERROR"
			if r.Skipped {
				msg = "n/a"
				qd, batch = "-", "-"
			}
			line(wl, be, ran, bs, qd, batch, msg, "", "", "", "", "", "", "", "", "")
			continue
		}
		mbps := "-"
		if r.BS > 0 {
			mbps = fmt.Sprintf("%.1f", r.MBps)
		}
		spo := "-"
		if r.SubmitsPerOp != nil {
			spo = fmt.Sprintf("%.3f", *r.SubmitsPerOp)
		}
		cpu, allocs := fmt.Sprintf("%.3f", r.CPUNsPerOp/1e3), fmt.Sprintf("%.3f", r.AllocsPerOp)
		if r.Tool == "fio" {
			allocs = "-"
		}
		line(wl, be, ran, bs, qd, batch, fmtInt(r.IOPS), mbps,
			fmtF(r.LatP50us), fmtF(r.LatP99us), fmtF(r.LatP999us), cpu, spo, allocs,
			fmtRatio(r.RatioFio), fmtRatio(r.RatioGosync))
	}
	tw.Flush()

	// Errors and skips in full, then what the columns mean.
	var problems []string
	for _, r := range res.Rows {
		if r.Error != "" {
			problems = append(problems, fmt.Sprintf("ERROR %s %s: %s", r.Backend, r.Workload, r.Error))
		} else if r.Skipped && r.NotSupported {
			problems = append(problems, fmt.Sprintf("skipped %s %s: %s", r.Backend, r.Workload, r.SkipReason))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(w)
		for _, p := range dedup(problems) {
			fmt.Fprintln(w, p)
		}
	}
	fmt.Fprintln(w)
	for _, n := range tableNotes(res) {
		fmt.Fprintln(w, "* "+n)
	}
}

func tableNotes(res *Results) []string {
	var notes []string
	has := map[string]bool{}
	for _, r := range res.Rows {
		has[r.Workload] = true
		has["tool:"+r.Tool] = true
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
		fmt.Sprintf("latency: aio rows = per request from just before its Submit call to just after the GetEvents call that returned it (the clock, %.0f ns a read, is read once per Submit call and once per GetEvents return); gosync = per ReadAt/WriteAt call (one clock read per call; with more goroutines than GOMAXPROCS it includes waiting for a P); fio = fio's lat (submission to completion).", res.Meta.ClockNs),
		"submits/op = the library's Submit calls per completed request, each one io_uring_enter or io_submit system call; gosync makes one pread/pwrite system call per request.",
		"CPU us/op = getrusage(RUSAGE_SELF) user+sys of the whole process over the measured time / requests; fio's is its own usr+sys. allocs/op = runtime.MemStats.Mallocs delta / requests (the tool's loop allocates nothing itself).",
		"vs gosync = aio IOPS / gosync IOPS at the same workload, size and depth.",
	)
	if has["tool:fio"] {
		notes = append(notes, "vs fio = library (or gosync) IOPS / fio IOPS with the same engine and parameters (io_uring beside uring, libaio beside kaio, psync with iodepth jobs beside gosync); fio's rows show the same ratio.")
	}
	if has[wlPoll] {
		notes = append(notes, "poll = OpPoll POLLIN on an always-readable eventfd: the engine's own per-request cost, no disk.")
	}
	if has[wlCancel] {
		notes = append(notes, "cancel = N OpPoll POLLIN pending on an empty pipe, canceled one by one with Cancel (latency per call, IOPS = cancels/s); cancel-fd = one CancelFD(fd, nil) of all N (latency = the whole call; IOPS = requests canceled per second including reaping their N events, CPU and allocs per canceled request).")
	}
	if has["tool:gosync"] {
		notes = append(notes, "gosync = iodepth goroutines each calling os.File.ReadAt/WriteAt on one *os.File; it has no poll or cancel (n/a).")
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
			name += fmt.Sprintf("/qd=%d/batch=%d", r.QD, r.Batch)
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
