//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// fioEngine is the fio ioengine that stands beside a backend: io_uring beside
// uring, libaio beside kaio, posixaio (glibc's user-space POSIX AIO, threads
// making blocking calls, as the threads backend is) beside threads, psync
// (one job per goroutine) beside gosync.
func fioEngine(backend string) string {
	switch backend {
	case "uring":
		return "io_uring"
	case "kaio":
		return "libaio"
	case "threads":
		return "posixaio"
	case "gosync":
		return "psync"
	}
	return ""
}

// fioPath is fio's path, or "" when it is not installed.
func fioPath() string {
	p, err := exec.LookPath("fio")
	if err != nil {
		return ""
	}
	return p
}

// fioVersion asks fio for its version.
func fioVersion(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// fioArgs are fio's options for a case: time_based, norandommap and
// randrepeat=0 (offsets drawn anew, as the tool's are), invalidate=0 (the
// page cache stays as we warmed it), lat_percentiles so that the latency is
// submission to completion like ours. Batch > 1 becomes iodepth_batch_submit
// and iodepth_batch_complete_min, as the library loop submits and reaps.
// io_uring, libaio and posixaio run one job of depth iodepth; psync runs iodepth jobs
// (threads) of depth 1, the way gosync runs iodepth goroutines. In the
// goroutine mode iodepth is N: N requests outstanding on one io_uring or
// libaio context, as N goroutines keep N on the library's one Context; and
// psync with N jobs is the fio twin of N goroutines calling pread.
func fioArgs(cs Case, engine, file string, size int64) []string {
	info := workloads[cs.Workload]
	rw := "randread"
	if info.write {
		rw = "randwrite"
	}
	direct := "0"
	if info.direct {
		direct = "1"
	}
	args := []string{
		"--name=uringaio-bench",
		"--filename=" + file,
		"--size=" + strconv.FormatInt(size, 10),
		"--bs=" + strconv.Itoa(cs.BS),
		"--rw=" + rw,
		"--ioengine=" + engine,
		"--direct=" + direct,
		"--time_based",
		"--runtime=" + strconv.FormatInt(cs.Runtime.Milliseconds(), 10) + "ms",
		"--norandommap",
		"--randrepeat=0",
		"--invalidate=0",
		"--lat_percentiles=1",
		"--percentile_list=50:99:99.9:99.99",
		"--output-format=json",
	}
	if engine == "io_uring" {
		if cs.Ring.FixedBufs {
			args = append(args, "--fixedbufs")
		}
		if cs.Ring.RegisterFiles {
			args = append(args, "--registerfiles")
		}
		if cs.Ring.SQPoll {
			args = append(args, "--sqthread_poll=1")
		}
	}
	if ms := cs.Warmup.Milliseconds(); ms > 0 {
		args = append(args, "--ramp_time="+strconv.FormatInt(ms, 10)+"ms")
	}
	if engine == "psync" {
		args = append(args, "--iodepth=1", "--numjobs="+strconv.Itoa(cs.QD), "--thread", "--group_reporting")
	} else {
		args = append(args, "--iodepth="+strconv.Itoa(cs.QD), "--numjobs=1")
		if cs.Batch > 1 {
			args = append(args, "--iodepth_batch_submit="+strconv.Itoa(cs.Batch),
				"--iodepth_batch_complete_min="+strconv.Itoa(cs.Batch))
		}
	}
	return args
}

// runFio runs fio for a case and fills row from its JSON output.
func runFio(path string, cs Case, engine string, env *runEnv, row *Row) error {
	args := fioArgs(cs, engine, env.data.Path, env.data.Size)
	row.Command = "fio " + strings.Join(args, " ")
	ctx, cancel := context.WithTimeout(context.Background(), cs.Warmup+cs.Runtime+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	env.caseStarted(cs, time.Now())
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fio failed: %v: %s", err, firstLine(stderr.String()))
	}
	return parseFio(stdout.Bytes(), workloads[cs.Workload].write, row)
}

// fioOutput is the part of fio's --output-format=json that is used.
type fioOutput struct {
	Version string `json:"fio version"`
	Jobs    []struct {
		Error      int      `json:"error"`
		JobRuntime int64    `json:"job_runtime"` // ms
		UsrCPU     float64  `json:"usr_cpu"`     // percent of one CPU
		SysCPU     float64  `json:"sys_cpu"`
		Read       fioStats `json:"read"`
		Write      fioStats `json:"write"`
	} `json:"jobs"`
}

type fioStats struct {
	IOPS     float64 `json:"iops"`
	BwBytes  float64 `json:"bw_bytes"`
	Runtime  int64   `json:"runtime"` // ms
	TotalIOs int64   `json:"total_ios"`
	Lat      struct {
		Min        float64            `json:"min"`
		Mean       float64            `json:"mean"`
		Stddev     float64            `json:"stddev"`
		Max        float64            `json:"max"`
		N          int64              `json:"N"`
		Percentile map[string]float64 `json:"percentile"`
	} `json:"lat_ns"`
}

// parseFio reads fio's JSON (stray text before the opening brace, which fio
// sometimes prints, is skipped) into row.
func parseFio(out []byte, write bool, row *Row) error {
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	var fo fioOutput
	if err := json.Unmarshal(out, &fo); err != nil {
		return fmt.Errorf("parsing fio's JSON output: %w", err)
	}
	if len(fo.Jobs) == 0 {
		return fmt.Errorf("fio's JSON output has no jobs")
	}
	j := fo.Jobs[0]
	if j.Error != 0 {
		return fmt.Errorf("fio job ended with error %d", j.Error)
	}
	st := j.Read
	if write {
		st = j.Write
	}
	row.Ops = st.TotalIOs
	row.RuntimeSec = float64(st.Runtime) / 1e3
	row.IOPS = st.IOPS
	row.MBps = st.BwBytes / 1e6
	row.LatP50us = st.Lat.Percentile["50.000000"] / 1e3
	row.LatP99us = st.Lat.Percentile["99.000000"] / 1e3
	row.LatP999us = st.Lat.Percentile["99.900000"] / 1e3
	row.LatP9999us = st.Lat.Percentile["99.990000"] / 1e3
	row.LatMinUs = st.Lat.Min / 1e3
	row.LatMeanUs = st.Lat.Mean / 1e3
	row.LatStdevUs = st.Lat.Stddev / 1e3
	row.LatMaxUs = st.Lat.Max / 1e3
	row.LatSamples = st.Lat.N
	row.LatencyOf = "fio lat (submission to completion)"
	if st.TotalIOs > 0 {
		runtimeMs := j.JobRuntime
		if runtimeMs == 0 {
			runtimeMs = st.Runtime
		}
		row.CPUNsPerOp = (j.UsrCPU + j.SysCPU) / 100 * float64(runtimeMs) * 1e6 / float64(st.TotalIOs)
	}
	row.BackendRan = row.Backend
	if fo.Version != "" {
		row.Notes = append(row.Notes, fo.Version)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
