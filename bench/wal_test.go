//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestWALArgs: --workload=wal (either spelling) selects the wal workload,
// and nothing else does.
func TestWALArgs(t *testing.T) {
	for _, args := range [][]string{{"--workload=wal"}, {"-workload", "wal"}, {"--count=1", "--workload=wal"}} {
		if !isWAL(args) {
			t.Errorf("isWAL(%q) = false", args)
		}
	}
	for _, args := range [][]string{nil, {"--workload=randread"}, {"--workload=randread,wal"}, {"wal"}} {
		if isWAL(args) {
			t.Errorf("isWAL(%q) = true", args)
		}
	}
}

// TestWALRuns: every variant commits on every backend that starts here,
// each round's commits make the log file grow as they say (the library's
// writes are checked for their full count inside the run), and the JSON
// holds one row per case with its rounds.
func TestWALRuns(t *testing.T) {
	var out, errb bytes.Buffer
	var code int
	whileAioBudgetTaken(t, func() string {
		out.Reset()
		errb.Reset()
		code = runWAL([]string{"--workload=wal", "--bs=4k", "--runtime=50ms", "--count=1", "--group=3", "--json", "-v=false", "--dir=" + t.TempDir()}, &out, &errb)
		return errb.String() + out.String()
	})
	if code != 0 {
		t.Fatalf("runWAL exit %d: %s\n%s", code, errb.String(), out.String())
	}
	var res struct {
		Rows []struct {
			Backend, Variant string
			Rounds           []walResult
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out.String())
	}
	seen := map[string]bool{}
	for _, r := range res.Rows {
		seen[r.Variant] = true
		if len(r.Rounds) != 1 || r.Rounds[0].Err != "" || r.Rounds[0].Commits == 0 || r.Rounds[0].P50 <= 0 || r.Rounds[0].P99 < r.Rounds[0].P50 {
			t.Errorf("%s/%s: rounds %+v", r.Backend, r.Variant, r.Rounds)
		}
	}
	for _, v := range append([]string{walBaseline}, walVariants...) {
		if !seen[v] {
			t.Errorf("no row for variant %s (stderr: %s)", v, strings.TrimSpace(errb.String()))
		}
	}
	if s := walSummary([]time.Duration{3, 1, 2, 4}, time.Second); s.P50 != 0.003 || s.Commits != 4 {
		t.Errorf("walSummary = %+v", s)
	}
}
