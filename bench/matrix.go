//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/uringaio/uringaio/aio"
)

// Config is everything a run needs; main fills it from the flags, tests directly.
type Config struct {
	Backends   []string        // uring, kaio, threads, gosync, auto, env
	Workloads  []string        // see allWorkloads
	Modes      []string        // loop, goroutines; nil: both
	BS         []int           // request sizes
	QD         []int           // loop mode: requests in flight
	Goroutines []int           // goroutine mode: goroutines, each with one blocking call at a time
	APIs       []string        // goroutine mode: the library calls the goroutines make (apiFile, apiFD, apiDo); nil: apiFile
	MaxEvents  int             // goroutine mode: maxEvents of the one shared Context; 0: defaultMaxEvents
	Batch      []int           // requests per Submit call; nil: per-workload default
	Runtime    time.Duration   // measured time per case; 0: per-mode/workload default
	Warmup     time.Duration   // unmeasured time before each case; <0: default
	Size       int64           // data file region
	File       string          // data file path
	Direct     bool            // buffered disk workloads become their O_DIRECT twins
	Fio        bool            // run fio beside each disk case
	CancelN    int             // pending requests in the cancel workload
	Progress   io.Writer       // progress lines (stderr); nil: none
	Live       bool            // rewrite a live progress line (stderr is a terminal)
	Required   map[string]bool // backends named explicitly: not being available is a failure
	Count      int             // run the whole matrix this many times (benchstat wants >= 6)
	NoChild    bool            // goroutine cases in this process (tests of the runner itself)
	Ring       RingOpts        // --fixedbufs, --registerfiles, --sqpoll
}

// Defaults.
const (
	defaultSize       = 256 << 20
	defaultBS         = 4096
	defaultQD         = 32
	defaultWarmup     = 500 * time.Millisecond
	defaultGoWarmup   = 250 * time.Millisecond
	defaultGoRuntime  = time.Second
	defaultCancelN    = 1000
	defaultMaxEvents  = 256
	defaultGoroutines = "1,32,256"
)

// The two ways of driving a backend.
const (
	modeLoop       = "loop"       // one goroutine keeps iodepth requests in flight: Submit/GetEvents
	modeGoroutines = "goroutines" // N goroutines, each one blocking ReadAt/WriteAt at a time
)

// Case is one cell of the matrix.
type Case struct {
	Backend   string
	Workload  string
	Mode      string // modeLoop or modeGoroutines; cancel and poll are loop cases
	BS        int
	QD        int // loop: requests in flight; goroutines: N
	Batch     int
	Runtime   time.Duration
	Warmup    time.Duration
	CancelN   int
	MaxEvents int    // goroutine mode: the shared Context's maxEvents
	API       string // goroutine mode, library backends: apiFile, apiFD or apiDo
	Ring      RingOpts
}

// RingOpts are io_uring's registered resources and SQ polling, asked of the
// library's Context (Options.SQPoll, File.Register, aio.Buffers) and of fio's
// io_uring engine (--sqthread_poll, --registerfiles, --fixedbufs) alike. The
// library's other backends take them too and ignore what they lack, as
// programs would; fio's other engines do not know them.
type RingOpts struct {
	FixedBufs     bool `json:"fixedbufs,omitempty"`
	RegisterFiles bool `json:"registerfiles,omitempty"`
	SQPoll        bool `json:"sqpoll,omitempty"`
}

// String is the options given, "+fixedbufs+registerfiles", or "".
func (o RingOpts) String() string {
	s := ""
	if o.FixedBufs {
		s += "+fixedbufs"
	}
	if o.RegisterFiles {
		s += "+registerfiles"
	}
	if o.SQPoll {
		s += "+sqpoll"
	}
	return s
}

// The library calls a goroutine-mode case makes (--api).
const (
	apiFile = "file" // aio.File.ReadAt/WriteAt
	apiFD   = "fd"   // aio.Context.ReadAt/WriteAt on the descriptor
	apiDo   = "do"   // aio.Context.Do with an IOCB per goroutine
)

var allAPIs = []string{apiFile, apiFD, apiDo}

func (c Case) String() string {
	return c.name() + c.Ring.String()
}

func (c Case) name() string {
	switch {
	case c.Workload == wlCancel:
		return fmt.Sprintf("%s %s n=%d", c.Backend, c.Workload, c.CancelN)
	case c.Workload == wlPoll:
		return fmt.Sprintf("%s %s qd=%d batch=%d", c.Backend, c.Workload, c.QD, c.Batch)
	case c.Mode == modeGoroutines && c.API != "" && c.API != apiFile:
		return fmt.Sprintf("%s/%s %s bs=%d goroutines=%d", c.Backend, c.API, c.Workload, c.BS, c.QD)
	case c.Mode == modeGoroutines:
		return fmt.Sprintf("%s %s bs=%d goroutines=%d", c.Backend, c.Workload, c.BS, c.QD)
	}
	return fmt.Sprintf("%s %s bs=%d qd=%d batch=%d", c.Backend, c.Workload, c.BS, c.QD, c.Batch)
}

func hasMode(cfg Config, m string) bool {
	if len(cfg.Modes) == 0 {
		return true
	}
	for _, x := range cfg.Modes {
		if x == m {
			return true
		}
	}
	return false
}

// buildMatrix expands the configuration into cases, in the order they run:
// workload by workload, the loop cases first, then the goroutine cases, the
// backends side by side. gosync has only the goroutine mode (it is N
// goroutines calling os.File.ReadAt), and the goroutine mode only the disk
// workloads: nothing is made that could not run.
func buildMatrix(cfg Config) []Case {
	var cases []Case
	seen := map[Case]bool{}
	add := func(c Case) {
		if !seen[c] {
			seen[c] = true
			cases = append(cases, c)
		}
	}
	maxEv := cfg.MaxEvents
	if maxEv <= 0 {
		maxEv = defaultMaxEvents
	}
	gors := cfg.Goroutines
	if len(gors) == 0 {
		gors = []int{1, 32, 256} // defaultGoroutines
	}
	for _, wl := range dedup(mapList(cfg.Workloads, func(w string) string {
		if cfg.Direct {
			return directVariant(w)
		}
		return w
	})) {
		info := workloads[wl]
		rt, grt := cfg.Runtime, cfg.Runtime
		if rt <= 0 {
			rt, grt = info.runtime, defaultGoRuntime
		}
		warm, gwarm := cfg.Warmup, cfg.Warmup
		if warm < 0 {
			warm, gwarm = defaultWarmup, defaultGoWarmup
		}
		batches := cfg.Batch
		if len(batches) == 0 {
			batches = []int{info.batch}
		}
		bss, qds := cfg.BS, cfg.QD
		if !info.disk {
			bss = []int{0}
		}
		if wl == wlCancel {
			qds, batches = []int{cfg.CancelN}, []int{1}
		}
		if hasMode(cfg, modeLoop) {
			for _, bs := range bss {
				for _, qd := range qds {
					for _, batch := range batches {
						for _, be := range cfg.Backends {
							if be == "gosync" {
								continue // gosync is the goroutine mode
							}
							c := Case{Backend: be, Workload: wl, Mode: modeLoop, BS: bs, QD: qd, Batch: batch, Runtime: rt, Warmup: warm, CancelN: cfg.CancelN, Ring: cfg.Ring}
							if c.Batch > c.QD {
								c.Batch = c.QD
							}
							if wl != wlCancel {
								c.CancelN = 0
							}
							add(c)
						}
					}
				}
			}
		}
		if hasMode(cfg, modeGoroutines) && info.disk {
			for _, bs := range bss {
				for _, n := range gors {
					for _, be := range cfg.Backends {
						c := Case{Backend: be, Workload: wl, Mode: modeGoroutines, BS: bs, QD: n, Batch: 1, Runtime: grt, Warmup: gwarm, MaxEvents: maxEv, Ring: cfg.Ring}
						if be == "gosync" {
							c.MaxEvents = 0
							add(c)
							continue
						}
						apis := cfg.APIs
						if len(apis) == 0 {
							apis = []string{apiFile}
						}
						for _, api := range apis {
							c.API = api
							add(c)
						}
					}
				}
			}
		}
	}
	return cases
}

func mapList(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// runEnv is shared by the cases of one run.
type runEnv struct {
	cfg      Config
	data     *dataFile
	fio      string // fio's path when --fio and installed
	index    int    // case number, for progress lines
	total    int
	mu       sync.Mutex
	current  string
	started  time.Time
	planned  time.Duration
	tickStop chan struct{}
}

// caseStarted marks the start of a case's timed part (for the live progress line).
func (e *runEnv) caseStarted(cs Case, t time.Time) {
	e.mu.Lock()
	e.started = t
	e.planned = cs.Warmup + cs.Runtime
	e.mu.Unlock()
}

func (e *runEnv) progressf(format string, args ...any) {
	if e.cfg.Progress == nil {
		return
	}
	if e.cfg.Live {
		fmt.Fprint(e.cfg.Progress, "\r\033[K")
	}
	fmt.Fprintf(e.cfg.Progress, format, args...)
}

// ticker keeps a live "[3/10] uring randread ... 2.5/6.5s" line on a terminal.
// It allocates a few times a second, which shows as well under 0.01 allocs/op.
func (e *runEnv) ticker() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.tickStop:
			return
		case <-t.C:
			e.mu.Lock()
			cur, st, pl := e.current, e.started, e.planned
			e.mu.Unlock()
			if cur != "" && !st.IsZero() {
				fmt.Fprintf(e.cfg.Progress, "\r\033[K%s %.1f/%.1fs", cur, time.Since(st).Seconds(), pl.Seconds())
			}
		}
	}
}

// Results is what a run produces: results.json holds exactly this.
type Results struct {
	Meta Meta  `json:"meta"`
	Rows []Row `json:"rows"` // every case of every round
	// Summary has one row per case when --count > 1: the medians of the
	// rounds, with the IOPS min and max (the table and the chart show these).
	Summary []Row `json:"summary,omitempty"`
}

// BackendInfo says whether a backend asked for can run here.
type BackendInfo struct {
	Name      string      `json:"name"`
	Available bool        `json:"available"`
	Reason    string      `json:"reason,omitempty"` // why not
	Failed    bool        `json:"failed,omitempty"` // Setup failed for another reason than "not supported here"
	Probes    []ProbeInfo `json:"probes,omitempty"`
}

// probeBackends sets up a one-entry Context on each library backend asked
// for. A backend whose Setup fails with aio.ErrNotSupported, or that this
// build of the library does not know ("unknown backend", e.g. threads before
// it lands), is not available: its cases are left out and the header says so
// in one line.
func probeBackends(names []string) []BackendInfo {
	var out []BackendInfo
	for _, b := range names {
		if b == "gosync" {
			continue
		}
		bi := BackendInfo{Name: b, Available: true}
		ctx, err := aio.SetupWithOptions(1, aio.Options{Backend: aioBackendOption(b)})
		if err != nil {
			bi.Available, bi.Reason = false, err.Error()
			bi.Failed = !errors.Is(err, aio.ErrNotSupported) && !strings.Contains(err.Error(), "unknown backend")
		} else {
			bi.Probes = probeInfos(ctx.Probes())
			ctx.Destroy()
		}
		out = append(out, bi)
	}
	return out
}

// planCases is the matrix without the backends that cannot run here.
func planCases(cfg Config) ([]Case, []BackendInfo) {
	infos := probeBackends(cfg.Backends)
	gone := map[string]bool{}
	for _, bi := range infos {
		if !bi.Available {
			gone[bi.Name] = true
		}
	}
	var keep []string
	for _, b := range cfg.Backends {
		if !gone[b] {
			keep = append(keep, b)
		}
	}
	cfg.Backends = keep
	return buildMatrix(cfg), infos
}

// RunMatrix prepares the data file, runs every case (and fio beside the disk
// cases when asked), and returns the rows. A case that fails gives a row with
// Error set and the run goes on; the error returned is only for what stops
// the whole run (no data file).
func RunMatrix(cfg Config) (*Results, error) {
	cases, infos := planCases(cfg)
	res := &Results{Meta: collectMeta(cfg)}
	res.Meta.Backends = infos
	env := &runEnv{cfg: cfg, total: len(cases)}
	needData := false
	for _, c := range cases {
		if workloads[c.Workload].disk {
			needData = true
		}
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	for _, bi := range infos {
		if !bi.Available {
			fmt.Fprintf(progress, "backend %s: not available here, its cases are left out: %s\n", bi.Name, bi.Reason)
		}
	}
	if needData {
		df, err := prepareDataFile(cfg.File, cfg.Size, progress)
		if err != nil {
			return nil, err
		}
		env.data = df
		res.Meta.File, res.Meta.FileSize, res.Meta.FileFS, res.Meta.FileCreated = df.Path, df.Size, df.FSType, df.Created
		if st, err := os.Stat(df.Path); err == nil {
			res.Meta.FileBytes = st.Size()
		}
	}
	if cfg.Fio {
		env.fio = fioPath()
		if env.fio == "" {
			res.Meta.Notes = append(res.Meta.Notes, "--fio: fio is not installed (apt-get install -y fio); no fio rows")
			fmt.Fprintln(progress, "note: --fio given but fio is not installed (apt-get install -y fio); going on without fio rows")
		} else {
			res.Meta.FioVersion = fioVersion(env.fio)
		}
	}
	if cfg.Live && cfg.Progress != nil {
		env.tickStop = make(chan struct{})
		go env.ticker()
		defer close(env.tickStop)
	}

	count := cfg.Count
	if count < 1 {
		count = 1
	}
	env.total = len(cases) * count
	for run := 1; run <= count; run++ {
		start := len(res.Rows)
		for i, cs := range cases {
			env.index = (run-1)*len(cases) + i + 1
			rows := runCase(cs, env)
			for _, r := range rows {
				label := cs.String()
				if r.Workload != cs.Workload {
					label = strings.Replace(label, cs.Workload, r.Workload, 1)
				}
				env.progressf("[%d/%d] %s: %s\n", env.index, env.total, label, r.summary())
			}
			res.Rows = append(res.Rows, rows...)
			if env.fio != "" && workloads[cs.Workload].disk && !rows[0].Skipped {
				be := cs.Backend
				if rows[0].BackendRan != "" {
					be = rows[0].BackendRan // auto, env: fio beside what actually ran
				}
				if eng := fioEngine(be); eng != "" {
					res.Rows = append(res.Rows, runFioCase(cs, eng, env))
					env.progressf("[%d/%d] fio %s %s %s: %s\n", env.index, env.total, eng, cs.Workload, cs.Mode, res.Rows[len(res.Rows)-1].summary())
				}
			}
		}
		for k := start; k < len(res.Rows); k++ {
			if count > 1 {
				res.Rows[k].Run = run
			}
		}
	}
	if cfg.Live && cfg.Progress != nil {
		env.progressf("")
	}
	computeRatios(res.Rows)
	if count > 1 {
		res.Summary = summarize(res.Rows)
		computeRatios(res.Summary)
	}
	return res, nil
}

// shown is the rows the table and the chart show: the medians when there
// are several rounds, else the rows.
func (res *Results) shown() []Row {
	if len(res.Summary) > 0 {
		return res.Summary
	}
	return res.Rows
}

// runCase runs one case and returns its rows (two for cancel).
func runCase(cs Case, env *runEnv) []Row {
	info := workloads[cs.Workload]
	row := Row{Tool: "uringaio", Backend: cs.Backend, Workload: cs.Workload, Mode: cs.Mode, BS: cs.BS, QD: cs.QD, Batch: cs.Batch, API: cs.API, Ring: cs.Ring.String()}
	if cs.Backend == "gosync" {
		row.Tool = "gosync"
	}
	if cs.Mode == modeGoroutines {
		row.Goroutines = cs.QD
		row.MaxEvents = cs.MaxEvents
	}
	env.mu.Lock()
	env.current = fmt.Sprintf("[%d/%d] %s", env.index, env.total, cs)
	env.started = time.Time{}
	env.mu.Unlock()
	defer func() {
		env.mu.Lock()
		env.current = ""
		env.mu.Unlock()
	}()
	if env.cfg.Live {
		env.progressf("%s ...", env.current)
	}

	// A hung request must not hang the run forever: dump the goroutines and exit.
	limit := cs.Warmup + cs.Runtime + 2*time.Minute
	watchdog := time.AfterFunc(limit, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "\nbench: case %s has not finished after %v; the library seems stuck. Goroutines:\n%s\n", cs, limit, buf[:n])
		os.Exit(3)
	})
	defer watchdog.Stop()

	if info.disk && !info.direct {
		res, took, err := warmCache(env.data.Path, env.data.Size)
		if err != nil {
			row.Error = err.Error()
			return []Row{row}
		}
		row.Notes = append(row.Notes, fmt.Sprintf("page cache warmed first (read %s in %.2fs; %.0f%% resident)", fmtBytes(env.data.Size), took.Seconds(), res*100))
		row.Resident = res
	}

	if cs.Mode == modeGoroutines {
		if !env.cfg.NoChild {
			env.caseStarted(cs, time.Now())
			return []Row{runInChild(cs, env, row)}
		}
		runtime.GC()
		finishErr(&row, runGoroutines(cs, env, &row))
		return []Row{row}
	}

	runtime.GC() // start every case from a clean heap
	var err error
	switch {
	case cs.Workload == wlCancel:
		all := row
		all.Workload = wlCancelFD
		row.LatencyOf = "one Cancel call"
		err = runCancel(cs, env, &row, &all)
		if err == nil {
			return []Row{row, all}
		}
		finishErr(&row, err)
		all.Error, all.Skipped, all.NotSupported, all.SkipReason = row.Error, row.Skipped, row.NotSupported, row.SkipReason
		return []Row{row, all}
	default:
		row.LatencyOf = "per request, submit to reap"
		err = runAIO(cs, env, &row)
	}
	finishErr(&row, err)
	return []Row{row}
}

// finishErr records a case's error in its row: skips (n/a, not supported)
// are marked Skipped, anything else is an Error.
func finishErr(row *Row, err error) {
	if err == nil {
		return
	}
	var se *skipError
	if errors.As(err, &se) {
		row.Skipped = true
		row.SkipReason = se.reason
		return
	}
	row.Error = err.Error()
}

// runFioCase runs fio beside a library case.
func runFioCase(cs Case, engine string, env *runEnv) Row {
	row := Row{Tool: "fio", Backend: engine, Workload: cs.Workload, Mode: cs.Mode, BS: cs.BS, QD: cs.QD, Batch: cs.Batch}
	if engine == "io_uring" {
		row.Ring = cs.Ring.String()
	}
	if cs.Mode == modeGoroutines {
		row.Goroutines = cs.QD
	}
	if engine == "psync" {
		row.Batch = 1
	}
	if info := workloads[cs.Workload]; !info.direct {
		if res, _, err := warmCache(env.data.Path, env.data.Size); err == nil {
			row.Resident = res
		}
	}
	env.mu.Lock()
	env.current = fmt.Sprintf("[%d/%d] fio %s %s", env.index, env.total, engine, cs.Workload)
	env.mu.Unlock()
	if err := runFio(env.fio, cs, engine, env, &row); err != nil {
		row.Error = err.Error()
	}
	env.mu.Lock()
	env.current = ""
	env.mu.Unlock()
	return row
}

// ratioKey identifies rows that stand side by side.
type ratioKey struct {
	mode, wl           string
	bs, qd, batch, run int
}

// computeRatios fills, on the library's and gosync's rows only, the ratio to
// fio's same engine (io_uring for uring, libaio for kaio, psync for gosync and
// threads) and, on the library's rows, the ratio to gosync with the same
// workload, size and N (gosync runs only as N goroutines, so a loop row at
// depth D is set beside gosync with D goroutines). fio's rows carry no ratio.
func computeRatios(rows []Row) {
	fio := map[string]map[ratioKey]float64{}
	gos := map[ratioKey]float64{}
	for _, r := range rows {
		if r.Error != "" || r.Skipped || r.IOPS <= 0 {
			continue
		}
		switch r.Tool {
		case "fio":
			if fio[r.Backend] == nil {
				fio[r.Backend] = map[ratioKey]float64{}
			}
			fio[r.Backend][ratioKey{r.Mode, r.Workload, r.BS, r.QD, r.Batch, r.Run}] = r.IOPS
		case "gosync":
			gos[ratioKey{"", r.Workload, r.BS, r.QD, 0, r.Run}] = r.IOPS
		}
	}
	for i := range rows {
		r := &rows[i]
		r.RatioFio, r.RatioGosync = 0, 0
		if r.Error != "" || r.Skipped || r.IOPS <= 0 || r.Tool == "fio" {
			continue
		}
		eng := fioEngine(r.BackendRan)
		if r.Tool == "gosync" {
			eng = "psync"
		}
		if f := fio[eng][ratioKey{r.Mode, r.Workload, r.BS, r.QD, r.Batch, r.Run}]; f > 0 {
			r.RatioFio = r.IOPS / f
		}
		if g := gos[ratioKey{"", r.Workload, r.BS, r.QD, 0, r.Run}]; g > 0 && r.Tool == "uringaio" {
			r.RatioGosync = r.IOPS / g
		}
	}
}

func expandBackends(list []string) ([]string, error) {
	var out []string
	for _, b := range list {
		b = strings.TrimSpace(b)
		switch b {
		case "all":
			out = append(out, "uring", "kaio", "threads", "gosync")
		case "uring", "kaio", "threads", "gosync", "auto", "env":
			out = append(out, b)
		default:
			return nil, fmt.Errorf("unknown backend %q (valid: uring, kaio, threads, gosync, auto, env, all)", b)
		}
	}
	return dedup(out), nil
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// autoProbe sets up a one-entry Context the way aio.Setup would (auto, or what
// URINGAIO_BACKEND says) to report which backend auto picks and why.
func autoProbe() (chosen string, probes []ProbeInfo, err error) {
	ctx, err := aio.SetupWithOptions(1, aio.Options{Backend: "auto"})
	if err != nil {
		return "", nil, err
	}
	defer ctx.Destroy()
	return ctx.Backend(), probeInfos(ctx.Probes()), nil
}
