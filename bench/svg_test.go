//go:build unix

package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// chartResults is a run with the shapes the chart must draw honestly: a
// loop panel (no gosync bar in it) whose rows carry a ratio to gosync, fio
// beside a backend, threads, and a goroutine panel where one p99 is a
// hundred times the others.
func chartResults() *Results {
	loop := func(be string, iops, rf, rg float64) Row {
		return Row{Tool: "uringaio", Backend: be, Workload: wlRandReadDirect, Mode: modeLoop, BS: 4096, QD: 32, Batch: 1,
			Ops: 1000, IOPS: iops, LatP50us: 150, LatP99us: 700, RatioFio: rf, RatioGosync: rg}
	}
	gor := func(tool, be string, p50, p99, rg float64) Row {
		return Row{Tool: tool, Backend: be, Workload: wlRandReadDirect, Mode: modeGoroutines, BS: 4096, QD: 256, Goroutines: 256,
			Batch: 1, Ops: 1000, IOPS: 100000, LatP50us: p50, LatP99us: p99, RatioGosync: rg}
	}
	return &Results{Meta: Meta{FioVersion: "fio-3.33"}, Rows: []Row{
		loop("uring", 90000, 0.9, 0.43),
		{Tool: "fio", Backend: "io_uring", Workload: wlRandReadDirect, Mode: modeLoop, BS: 4096, QD: 32, Batch: 1, Ops: 1000, IOPS: 100000, LatP50us: 140, LatP99us: 650},
		loop("threads", 20000, 0, 0.1),
		gor("uringaio", "uring", 1500, 15000, 4.6),
		gor("uringaio", "kaio", 1400, 17000, 4.9),
		gor("uringaio", "threads", 12000, 38000, 0.7),
		gor("gosync", "gosync", 78, 374000, 0),
	}}
}

// A ratio to gosync is shown only in a panel that has a gosync bar to
// compare with; the title names every kind of bar drawn (threads, fio).
func TestChartLabels(t *testing.T) {
	panels := chartPanels(chartResults())
	if len(panels) != 2 {
		t.Fatalf("%d panels, want 2", len(panels))
	}
	for _, p := range panels {
		hasGosync := false
		for _, b := range p.bars {
			hasGosync = hasGosync || b.label == "gosync"
		}
		for _, b := range p.bars {
			if strings.Contains(b.rateText, "gosync") && !hasGosync {
				t.Errorf("panel %q: bar %s says %q, but no gosync bar is in the panel", p.title, b.label, b.rateText)
			}
			if b.label == "uring" && hasGosync && !strings.Contains(b.rateText, "x gosync") {
				t.Errorf("panel %q: bar %s says %q, want its ratio to the gosync bar", p.title, b.label, b.rateText)
			}
		}
	}
	var svg bytes.Buffer
	writeSVG(&svg, chartResults())
	_, rest, _ := strings.Cut(svg.String(), `font-weight="bold">`)
	title, _, _ := strings.Cut(rest, "</text>")
	for _, want := range []string{"io_uring", "classic AIO", "threads", "gosync", "fio"} {
		if !strings.Contains(title, want) {
			t.Errorf("chart title %q does not name %s", title, want)
		}
	}
}

// One p99 far beyond the others (374 ms beside tens of ms) is clipped, so
// that the other bars keep a readable axis, and the chart says so.
func TestChartLatencyClip(t *testing.T) {
	panels := chartPanels(chartResults())
	p := panels[1]
	_, end, clipped := latencyAxis(p.bars)
	if !clipped || end >= 374000 || end < 38000 {
		t.Errorf("latency axis of %q ends at %v (clipped %v); want the 374 ms p99 clipped, every other value on it", p.title, end, clipped)
	}
	_, end, clipped = latencyAxis(panels[0].bars)
	if clipped || end < 700 {
		t.Errorf("latency axis of %q ends at %v (clipped %v); want nothing clipped", panels[0].title, end, clipped)
	}
	var svg bytes.Buffer
	writeSVG(&svg, chartResults())
	if !strings.Contains(svg.String(), "clipped") || !strings.Contains(svg.String(), "374,000") {
		t.Errorf("the chart does not say that a whisker is clipped, or hides the clipped value")
	}
	// Every line of text, the notes under the chart included, is inside it.
	var height int
	if _, err := fmt.Sscanf(svg.String()[strings.Index(svg.String(), `height="`):], `height="%d"`, &height); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`<text x="[0-9.]+" y="([0-9.]+)"`).FindAllStringSubmatch(svg.String(), -1) {
		if y, _ := strconv.ParseFloat(m[1], 64); y > float64(height)-4 {
			t.Errorf("text at y=%s is outside the chart's height %d", m[1], height)
		}
	}
}
