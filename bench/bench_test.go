package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
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
		Backends:  []string{"uring", "kaio", "gosync"},
		Workloads: allWorkloads,
		BS:        []int{4096},
		QD:        []int{4},
		Runtime:   60 * time.Millisecond,
		Warmup:    10 * time.Millisecond,
		Size:      1 << 20,
		File:      filepath.Join(dir, "data.dat"),
		CancelN:   16,
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
		if errors.Is(err, aio.ErrNotSupported) {
			t.Logf("backend %s not available here, its rows are skipped: %v", name, err)
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
	for _, b := range []string{"uring", "kaio"} {
		avail[b] = backendAvailable(t, b)
	}
	ran := map[string]int{}
	for _, r := range res.Rows {
		name := r.Backend + "/" + r.Workload
		switch {
		case r.Error != "":
			t.Errorf("%s: %s", name, r.Error)
		case r.NotSupported:
			if avail[r.Backend] {
				t.Errorf("%s: marked not supported, but Setup works: %s", name, r.SkipReason)
			}
		case r.Skipped:
			if r.Backend == "gosync" && (r.Workload == wlPoll || r.Workload == wlCancel || r.Workload == wlCancelFD) {
				continue // n/a
			}
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
			if workloads[r.Workload].disk && (r.SubmitsPerOp == nil || *r.SubmitsPerOp <= 0) {
				t.Errorf("%s: submits/op missing", name)
			}
			if r.Workload == wlCancelFD && (r.Rounds <= 0 || r.CancelN != 16) {
				t.Errorf("%s: rounds=%d n=%d", name, r.Rounds, r.CancelN)
			}
		}
	}
	for _, b := range []string{"uring", "kaio", "gosync"} {
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
	writeTable(&table, res)
	for _, want := range []string{"backend uring: ran uring", "IOPS", "p99.9 us", "submits/op", "page-cache warm"} {
		if avail := !strings.Contains(want, "uring") || backendAvailable(t, "uring"); avail && !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
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
	code := run([]string{"--backend=all", "--workload=randread,poll", "--iodepth=2", "--runtime=30ms", "--warmup=0",
		"--size=256k", "--file=" + filepath.Join(dir, "d.dat"), "--out=" + filepath.Join(dir, "out"), "--format=bench"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "BenchmarkIO/backend=gosync/workload=randread") {
		t.Errorf("no gosync line in:\n%s", stdout.String())
	}
	for _, f := range []string{"results.json", "results.svg"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
			t.Error(err)
		}
	}
	if code := run([]string{"--backend=nope"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("--backend=nope: exit %d, want 2", code)
	}
	if code := run([]string{"--workload=nope"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("--workload=nope: exit %d, want 2", code)
	}
}

func TestDefaultMatrix(t *testing.T) {
	cfg := Config{Backends: []string{"uring", "kaio", "gosync"}, Workloads: defaultWorkloads, BS: []int{defaultBS}, QD: []int{defaultQD}, Warmup: -1, CancelN: defaultCancelN}
	cases := buildMatrix(cfg)
	var runnable []Case
	for _, c := range cases {
		if c.Backend == "gosync" && !workloads[c.Workload].disk {
			continue
		}
		runnable = append(runnable, c)
	}
	if len(runnable) != 10 {
		t.Errorf("default matrix has %d runnable cases, want 10: %v", len(runnable), runnable)
	}
	if d := estimate(runnable, false); d < 45*time.Second || d > 75*time.Second {
		t.Errorf("default matrix takes %v, want about a minute", d)
	}
	for _, c := range runnable {
		if c.Workload == wlPoll && c.Batch != 32 {
			t.Errorf("poll batch %d, want 32", c.Batch)
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
		cs := Case{Backend: be, Workload: wlRandRead, BS: 4096, QD: 4, Batch: 2, Runtime: time.Second}
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
