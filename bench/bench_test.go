//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uringaio/uringaio/aio"
)

// tinyConfig is the whole matrix (every backend, every workload) at a very
// short runtime on a 1 MiB file: it exercises the tool, not the machine.
func tinyConfig(dir string) Config {
	return Config{
		Backends:   []string{"uring", "kaio", "threads", "gosync"},
		Workloads:  allWorkloads,
		BS:         []int{4096},
		QD:         []int{4},
		Goroutines: []int{1, 4},
		MaxEvents:  8,
		Runtime:    50 * time.Millisecond,
		Warmup:     10 * time.Millisecond,
		Size:       1 << 20,
		File:       filepath.Join(dir, "data.dat"),
		CancelN:    16,
	}
}

var (
	tinyOnce sync.Once
	tinyRes  *Results
	tinyErr  error
	tinyDir  string
)

// tinyRun runs the tiny matrix once for all the tests that look at its results.
func tinyRun(t *testing.T) *Results {
	t.Helper()
	tinyOnce.Do(func() {
		tinyDir, tinyErr = os.MkdirTemp("", "uringaio-bench-test")
		if tinyErr != nil {
			return
		}
		tinyRes, tinyErr = RunMatrix(tinyConfig(tinyDir))
	})
	if tinyErr != nil {
		t.Fatalf("RunMatrix: %v", tinyErr)
	}
	return tinyRes
}

func TestMain(m *testing.M) {
	if isChild() { // a goroutine case: the test binary is the child too
		os.Exit(childMain(os.Stdin, os.Stdout))
	}
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

// backendAvailable sets up a Context on a backend; a backend that this machine
// does not offer (errors.Is(err, aio.ErrNotSupported)) is the only reason to skip.
func backendAvailable(t *testing.T, name string) bool {
	t.Helper()
	ctx, err := aio.SetupWithOptions(4, aio.Options{Backend: name})
	if err != nil {
		if errors.Is(err, aio.ErrNotSupported) || strings.Contains(err.Error(), "unknown backend") {
			t.Logf("backend %s not available here, its rows are left out: %v", name, err)
			return false
		}
		t.Fatalf("aio.SetupWithOptions(4, %q): %v", name, err)
	}
	ctx.Destroy()
	return true
}

func TestTinyMatrix(t *testing.T) {
	res := tinyRun(t)
	avail := map[string]bool{"gosync": true}
	for _, b := range []string{"uring", "kaio", "threads"} {
		avail[b] = backendAvailable(t, b)
	}
	for _, bi := range res.Meta.Backends {
		if bi.Available != avail[bi.Name] {
			t.Errorf("backend %s: meta says available=%v, Setup says %v (%s)", bi.Name, bi.Available, avail[bi.Name], bi.Reason)
		}
	}
	ran := map[string]int{}
	for _, r := range res.Rows {
		name := r.Backend + "/" + r.Workload + "/" + r.Mode
		if !avail[r.Backend] {
			t.Errorf("%s: a row of a backend that is not available here", name)
		}
		if r.Tool == "gosync" && (r.Mode != modeGoroutines || !workloads[r.Workload].disk) {
			t.Errorf("%s: gosync row outside the goroutine mode", name)
		}
		switch {
		case r.Error != "":
			t.Errorf("%s: %s", name, r.Error)
		case r.NotSupported:
			if avail[r.Backend] {
				t.Errorf("%s: marked not supported, but Setup works: %s", name, r.SkipReason)
			}
		case r.Skipped:
			if strings.Contains(r.SkipReason, "O_DIRECT") {
				t.Logf("%s: skipped: %s", name, r.SkipReason)
				continue
			}
			t.Errorf("%s: unexpectedly skipped: %s", name, r.SkipReason)
		default:
			ran[r.Backend]++
			if r.Ops <= 0 || r.IOPS <= 0 || r.RuntimeSec <= 0 {
				t.Errorf("%s: no work measured: ops=%d iops=%v runtime=%v", name, r.Ops, r.IOPS, r.RuntimeSec)
			}
			if r.LatSamples <= 0 || r.LatP50us <= 0 || r.LatP99us < r.LatP50us || r.LatP999us < r.LatP99us {
				t.Errorf("%s: bad latency figures: n=%d p50=%v p99=%v p99.9=%v", name, r.LatSamples, r.LatP50us, r.LatP99us, r.LatP999us)
			}
			if r.Backend != "gosync" && r.BackendRan != r.Backend {
				t.Errorf("%s: asked for %s, ran %q", name, r.Backend, r.BackendRan)
			}
			if r.Backend != "gosync" && len(r.Probes) == 0 {
				t.Errorf("%s: no probes recorded", name)
			}
			if workloads[r.Workload].disk && r.Backend != "gosync" {
				// Every call either reached the kernel or finished inline
				// (File's first try serves page-cached data with no
				// submission at all).
				switch {
				case r.SubmitsPerOp == nil:
					t.Errorf("%s: submits/op missing", name)
				case r.InlinePerOp == nil && *r.SubmitsPerOp <= 0,
					r.InlinePerOp != nil && *r.SubmitsPerOp+*r.InlinePerOp <= 0:
					t.Errorf("%s: neither submissions nor inline calls counted", name)
				}
			}
			if r.Workload == wlCancelFD && (r.Rounds <= 0 || r.CancelN != 16) {
				t.Errorf("%s: rounds=%d n=%d", name, r.Rounds, r.CancelN)
			}
			if r.Mode == modeGoroutines {
				if !r.Child || (procStats && r.PeakThreads < 2) || r.Goroutines != r.QD {
					t.Errorf("%s: goroutine row without its child process figures: child=%v threads=%d N=%d", name, r.Child, r.PeakThreads, r.Goroutines)
				}
				if r.Tool == "uringaio" && (r.InlinePerOp == nil || r.MaxEvents != 8) {
					t.Errorf("%s: inline/op or maxEvents missing", name)
				}
			}
			if r.LatMinUs <= 0 || r.LatMinUs > r.LatP50us || r.LatP9999us < r.LatP999us || r.LatMeanUs <= 0 {
				t.Errorf("%s: bad latency detail: min=%v p50=%v p99.99=%v mean=%v", name, r.LatMinUs, r.LatP50us, r.LatP9999us, r.LatMeanUs)
			}
		}
	}
	for _, b := range []string{"uring", "kaio", "threads", "gosync"} {
		if avail[b] && ran[b] == 0 {
			t.Errorf("backend %s is available but no row of it ran", b)
		}
	}
	t.Logf("rows: %d, ran per backend: %v", len(res.Rows), ran)
}

func TestJSONRoundTrip(t *testing.T) {
	res := tinyRun(t)
	var buf bytes.Buffer
	if err := writeJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	back, err := readJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("reading back results.json: %v", err)
	}
	if !reflect.DeepEqual(res, back) {
		t.Errorf("results changed in a JSON round trip:\nbefore %+v\nafter  %+v", res, back)
	}
	// And through the files the tool writes.
	dir := t.TempDir()
	jp, sp, err := writeOutputs(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromFile, err := readJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, fromFile) {
		t.Errorf("results.json does not hold the results")
	}
	checkSVG(t, sp)
}

func checkSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	rects := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects < 2 {
		t.Errorf("%s has no bars", path)
	}
}

func TestReports(t *testing.T) {
	res := tinyRun(t)
	var table bytes.Buffer
	writeTable(&table, res, false)
	for _, want := range []string{"backend uring: available", "IOPS", "p99.9 us", "submits/op", "page-cache warm",
		"Goroutine mode", "threads", "inline/op", "Cancellation", "canceled/s"} {
		if avail := !strings.Contains(want, "uring") || backendAvailable(t, "uring"); avail && !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	for _, unwanted := range []string{"n/a", "p99.99", "stdev"} {
		if strings.Contains(table.String(), unwanted) {
			t.Errorf("table has %q:\n%s", unwanted, table.String())
		}
	}
	// Cancel rows sit only in the cancellation table, which has no IOPS column.
	_, cancelPart, _ := strings.Cut(table.String(), "Cancellation")
	if head, _, _ := strings.Cut(cancelPart, "\n\n"); strings.Contains(head, "IOPS") {
		t.Errorf("the cancellation table has an IOPS column:\n%s", head)
	}
	table.Reset()
	writeTable(&table, res, true)
	for _, want := range []string{"p99.99 us", "min us", "mean us", "stdev us"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("--lat=full table lacks %q", want)
		}
	}
	var bench bytes.Buffer
	writeBench(&bench, res)
	line := regexp.MustCompile(`^BenchmarkIO/backend=[a-z_-]+/workload=[a-z-]+(/[a-z]+=\d+)+-\d+\t\d+\t[0-9.]+ ns/op(\t[0-9.e+]+ [A-Za-z0-9./-]+)+$`)
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(bench.String()), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			n++
			if !line.MatchString(l) {
				t.Errorf("not a benchstat line: %q", l)
			}
		}
	}
	if n == 0 {
		t.Errorf("no benchmark lines:\n%s", bench.String())
	}
}

func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"--backend=all", "--workload=randread,poll", "--iodepth=2", "--goroutines=2", "--runtime=30ms", "--warmup=0",
		"--size=256k", "--file=" + filepath.Join(dir, "d.dat"), "--out=" + filepath.Join(dir, "out"), "--format=bench"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "BenchmarkIO/backend=gosync/workload=randread/bs=4096/goroutines=2") {
		t.Errorf("no gosync line in:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "backend=gosync/workload=poll") {
		t.Errorf("gosync poll line (it cannot run) in:\n%s", stdout.String())
	}
	for _, f := range []string{"results.json", "results.svg"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stderr.String(), "data file "+filepath.Join(dir, "d.dat")) || !strings.Contains(stderr.String(), "--clean") {
		t.Errorf("the end of the run does not say where the data file is and how to remove it:\n%s", stderr.String())
	}
	for _, bad := range [][]string{{"--backend=nope"}, {"--workload=nope"}, {"--mode=nope"}, {"--lat=nope"}, {"--goroutines=0"}, {"--runtime=0s"}} {
		if code := run(bad, io.Discard, io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	// --clean removes the data file at the end.
	df := filepath.Join(dir, "clean.dat")
	stderr.Reset()
	if code := run([]string{"--backend=gosync", "--workload=randread", "--goroutines=1", "--runtime=20ms", "--warmup=0", "--size=64k",
		"--file=" + df, "--out=", "--clean", "--format=json"}, io.Discard, &stderr); code != 0 {
		t.Fatalf("--clean run: exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(df); !os.IsNotExist(err) {
		t.Errorf("--clean left %s: %v", df, err)
	}
}

func TestHelp(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--help"}, io.Discard, &stderr); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
	help := stderr.String()
	_, after, _ := strings.Cut(help, "-warmup")
	warmHelp, _, _ := strings.Cut(after, "\n  -")
	if n := strings.Count(warmHelp, "default"); n != 1 {
		t.Errorf("-warmup help states its default %d times:\n%s", n, warmHelp)
	}
	for _, want := range []string{"-goroutines", "-mode", "-max-events", "-lat", "-clean", "1s + 250ms", "1,32,256,1024"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// TestChildProcess runs goroutine cases through the child-process protocol
// (the test binary re-executed) and checks what comes back.
func TestChildProcess(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"--backend=uring,gosync", "--mode=goroutines", "--workload=randread", "--goroutines=3", "--runtime=200ms", "--warmup=20ms",
		"--size=1M", "--file=" + filepath.Join(dir, "d.dat"), "--out=", "--json"}, &stdout, &stderr)
	if code != 0 && backendAvailable(t, "uring") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	res, err := readJSON(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range res.Rows {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Backend, r.Error)
			continue
		}
		if !r.Child || r.Mode != modeGoroutines || r.Goroutines != 3 || r.Ops <= 0 || (procStats && (r.PeakThreads < 2 || r.Resident <= 0)) {
			t.Errorf("%s: row %+v", r.Backend, r)
		}
	}
	// A broken spec is answered with an error, not a crash.
	var out bytes.Buffer
	childMain(strings.NewReader("{"), &out)
	var rep childReply
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Error == "" {
		t.Errorf("bad spec: reply %q, %v", out.String(), err)
	}
}

func TestParseThreads(t *testing.T) {
	st := []byte("Name:\tbench\nUmask:\t0022\nState:\tS (sleeping)\nThreads:\t37\nSigQ:\t0/31\n")
	if got := parseThreads(st); got != 37 {
		t.Errorf("parseThreads = %d, want 37", got)
	}
	if got := parseThreads([]byte("Name:\tx\n")); got != 0 {
		t.Errorf("no Threads line: %d", got)
	}
	s := startThreadSampler(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if n := s.stop(); n < 1 {
		t.Errorf("sampled %d threads in this process", n)
	}
}

func TestSummarize(t *testing.T) {
	spo := func(v float64) *float64 { return &v }
	mk := func(run int, iops, p50 float64) Row {
		return Row{Run: run, Tool: "uringaio", Backend: "uring", Workload: wlRandRead, Mode: modeLoop, BS: 4096, QD: 32, Batch: 1,
			IOPS: iops, LatP50us: p50, Ops: 10, SubmitsPerOp: spo(iops / 1000)}
	}
	gos := func(run int, iops float64) Row {
		return Row{Run: run, Tool: "gosync", Backend: "gosync", Workload: wlRandRead, Mode: modeGoroutines, BS: 4096, QD: 32, Batch: 1, IOPS: iops, Ops: 5}
	}
	rows := []Row{mk(1, 300, 5), gos(1, 100), mk(2, 100, 9), gos(2, 200), mk(3, 200, 7), gos(3, 300),
		{Run: 4, Tool: "uringaio", Backend: "uring", Workload: wlRandRead, Mode: modeLoop, BS: 4096, QD: 32, Batch: 1, Error: "boom"}}
	sum := summarize(rows)
	computeRatios(sum)
	if len(sum) != 2 {
		t.Fatalf("%d summary rows, want 2 (one per case): %+v", len(sum), sum)
	}
	u := sum[0]
	if u.IOPS != 200 || u.IOPSMin != 100 || u.IOPSMax != 300 || u.LatP50us != 7 || u.P50Min != 5 || u.P50Max != 9 || u.Runs != 3 || u.Ops != 30 || u.Run != 0 {
		t.Errorf("uring summary %+v", u)
	}
	if u.SubmitsPerOp == nil || *u.SubmitsPerOp != 0.2 {
		t.Errorf("submits/op median %v", u.SubmitsPerOp)
	}
	if u.Error != "" || len(u.Notes) != 1 || !strings.Contains(u.Notes[0], "1 of 4 rounds failed") {
		t.Errorf("a failed round: error %q notes %q", u.Error, u.Notes)
	}
	if u.RatioGosync != 1 {
		t.Errorf("ratio of medians %v, want 1", u.RatioGosync)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4 = %v", m)
	}
	// The table shows one row per case with the spread; the JSON keeps every round.
	res := &Results{Rows: rows, Summary: sum}
	var table bytes.Buffer
	writeTable(&table, res, false)
	if n := len(regexp.MustCompile(`(?m)^ +randread +uring `).FindAllString(table.String(), -1)); n != 1 {
		t.Errorf("table rows:\n%s", table.String())
	}
	if !strings.Contains(table.String(), "100-300") || !strings.Contains(table.String(), "medians of 3 rounds") {
		t.Errorf("table lacks the spread:\n%s", table.String())
	}
	var js bytes.Buffer
	if err := writeJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	back, err := readJSON(&js)
	if err != nil || len(back.Rows) != len(rows) || len(back.Summary) != 2 {
		t.Errorf("JSON: %d rows, %d summary, %v", len(back.Rows), len(back.Summary), err)
	}
}

// TestCount: --count=2 interleaves the rounds and gives the summary.
func TestCount(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	var code int
	whileAioBudgetTaken(t, func() string {
		stdout.Reset()
		stderr.Reset()
		code = run([]string{"--backend=gosync,kaio", "--mode=loop,goroutines", "--workload=randread", "--iodepth=2", "--goroutines=2", "--runtime=20ms", "--warmup=0",
			"--size=64k", "--file=" + filepath.Join(dir, "d.dat"), "--out=", "--json", "--count=2"}, &stdout, &stderr)
		return stderr.String()
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	res, err := readJSON(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range res.Rows {
		order = append(order, fmt.Sprintf("%d:%s/%s", r.Run, r.Backend, r.Mode))
	}
	want := []string{"1:kaio/loop", "1:gosync/goroutines", "1:kaio/goroutines", "2:kaio/loop", "2:gosync/goroutines", "2:kaio/goroutines"}
	if !backendAvailable(t, "kaio") {
		want = []string{"1:gosync/goroutines", "2:gosync/goroutines"}
	}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("rounds ran as %v, want %v", order, want)
	}
	if len(res.Summary) != len(want)/2 {
		t.Errorf("%d summary rows, want %d", len(res.Summary), len(want)/2)
	}
	for _, r := range res.Summary {
		if r.Runs != 2 || r.IOPSMin > r.IOPS || r.IOPSMax < r.IOPS {
			t.Errorf("summary row %+v", r)
		}
	}
}

func TestDefaultMatrix(t *testing.T) {
	cfg := Config{Backends: []string{"uring", "kaio", "gosync"}, Workloads: defaultWorkloads, BS: []int{defaultBS}, QD: []int{defaultQD}, Warmup: -1, CancelN: defaultCancelN}
	cases := buildMatrix(cfg)
	count := map[string]int{}
	for _, c := range cases {
		count[c.Mode]++
		if c.Backend == "gosync" && (c.Mode != modeGoroutines || !workloads[c.Workload].disk) {
			t.Errorf("gosync case that cannot run: %v", c)
		}
		if c.Workload == wlPoll && c.Batch != 32 {
			t.Errorf("poll batch %d, want 32", c.Batch)
		}
		if c.Mode == modeGoroutines && (c.MaxEvents != defaultMaxEvents && c.Backend != "gosync" || c.Runtime != defaultGoRuntime) {
			t.Errorf("goroutine case %+v", c)
		}
	}
	if count[modeLoop] != 8 || count[modeGoroutines] != 18 {
		t.Errorf("default matrix: %v cases, want 8 loop and 18 goroutine", count)
	}
	if d := estimate(cases, false); d < 40*time.Second || d > 60*time.Second {
		t.Errorf("default matrix takes %v, want about a minute", d)
	}
	cfg.Backends = append(cfg.Backends, "threads")
	if d := estimate(buildMatrix(cfg), false); d > 70*time.Second {
		t.Errorf("default matrix with threads takes %v, want about a minute", d)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct{ max, step, end float64 }{{1234567, 250000, 1250000}, {87, 20, 100}, {0.3, 0.1, 0.3}, {0, 1, 1}} {
		step, end := niceTicks(c.max)
		if math.Abs(step-c.step) > 1e-9 || math.Abs(end-c.end) > 1e-9 {
			t.Errorf("niceTicks(%v) = %v, %v; want %v, %v", c.max, step, end, c.step, c.end)
		}
	}
}

func TestParseFio(t *testing.T) {
	const out = `note: both iodepth >= 1 and synchronous I/O engine are selected
{
  "fio version" : "fio-3.33",
  "jobs" : [ {
      "error" : 0, "job_runtime" : 5000, "usr_cpu" : 30.0, "sys_cpu" : 70.0,
      "read" : { "iops" : 100000.5, "bw_bytes" : 409602048, "runtime" : 5000, "total_ios" : 500002,
        "lat_ns" : { "mean" : 320000.0, "max" : 900000, "N" : 500002,
          "percentile" : { "50.000000" : 300000, "99.000000" : 450000, "99.900000" : 600000 } } },
      "write" : { "iops" : 0, "total_ios" : 0 } } ]
}`
	var r Row
	r.Backend = "io_uring"
	if err := parseFio([]byte(out), false, &r); err != nil {
		t.Fatal(err)
	}
	if r.IOPS != 100000.5 || r.LatP50us != 300 || r.LatP99us != 450 || r.LatP999us != 600 || r.Ops != 500002 {
		t.Errorf("parsed %+v", r)
	}
	if want := 1.0 * 5000 * 1e6 / 500002; r.CPUNsPerOp < want*0.999 || r.CPUNsPerOp > want*1.001 {
		t.Errorf("cpu ns/op %v, want %v", r.CPUNsPerOp, want)
	}
	if err := parseFio([]byte("garbage"), false, &r); err == nil {
		t.Error("garbage parsed")
	}
}

// TestFio runs fio for real beside a tiny case when fio is installed.
func TestFio(t *testing.T) {
	path := fioPath()
	if path == "" {
		t.Skip("fio is not installed")
	}
	dir := t.TempDir()
	df, err := prepareDataFile(filepath.Join(dir, "f.dat"), 1<<20, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env := &runEnv{data: df}
	cs := Case{Backend: "uring", Workload: wlRandRead, BS: 4096, QD: 4, Batch: 2, Runtime: 300 * time.Millisecond}
	row := Row{Tool: "fio", Backend: "io_uring"}
	if err := runFio(path, cs, "io_uring", env, &row); err != nil {
		t.Fatal(err)
	}
	if row.IOPS <= 0 || row.LatP50us <= 0 {
		t.Errorf("fio row %+v", row)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "4k": 4096, "4K": 4096, "256M": 256 << 20, "256MiB": 256 << 20, "1g": 1 << 30, "1GB": 1 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "4kk", "1.5M"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// TestFailedRequestAborts: a request whose result is wrong (here a read past
// the end of the file, which comes back short) stops the case with an error
// that says what failed, on every backend.
func TestFailedRequestAborts(t *testing.T) {
	dir := t.TempDir()
	df, err := prepareDataFile(filepath.Join(dir, "short.dat"), 64<<10, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	df.Size = 64 << 20 // pretend the file is bigger than it is: most reads hit EOF
	env := &runEnv{data: df}
	for _, be := range []string{"uring", "kaio", "gosync"} {
		if be != "gosync" && !backendAvailable(t, be) {
			continue
		}
		cs := Case{Backend: be, Workload: wlRandRead, Mode: modeLoop, BS: 4096, QD: 4, Batch: 2, Runtime: time.Second}
		if be == "gosync" {
			cs.Mode = modeGoroutines
		}
		rows := runCase(cs, env)
		if len(rows) != 1 || rows[0].Error == "" {
			t.Errorf("%s: a short read did not fail the case: %+v", be, rows)
			continue
		}
		if !strings.Contains(rows[0].Error, "short") && !strings.Contains(rows[0].Error, "EOF") {
			t.Errorf("%s: unclear error %q", be, rows[0].Error)
		}
		t.Logf("%s: %s", be, rows[0].Error)
	}
}

// whileAioBudgetTaken runs try again, for up to 20 s, while its output says
// that classic AIO could not start because fs.aio-max-nr, a system-wide
// budget, is used up (by another process: the library's own
// TestRelFaultKaioExhausted uses it up on purpose, and a shared machine may
// run it beside these tests). That refusal is not what these tests test.
func whileAioBudgetTaken(t *testing.T, try func() (output string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(try(), "fs.aio-max-nr exhausted") && time.Now().Before(deadline) {
		t.Log("fs.aio-max-nr used up by another process: trying again")
		time.Sleep(100 * time.Millisecond)
	}
}
