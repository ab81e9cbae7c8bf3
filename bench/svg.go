//go:build unix

package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// The chart: one panel per workload, mode and size/depth; one row per
// backend, fio's in a lighter shade of the backend it stands beside. Each
// row has two bars: IOPS on the left (higher is better; cancel panels:
// requests canceled per second) and latency on the right, p50 as the bar and
// p99 as a whisker (lower is better). Each half of a panel has its own axis
// with ticks; a p99 far past the panel's others is clipped at the axis end
// (an arrowhead, the real figure beside it, a note under the chart). A bar's
// ratio to fio or gosync is printed only when that bar is in its panel. With
// --count the bars are the medians.

var barColors = map[string]string{
	"uring":        "#1f77b4",
	"kaio":         "#ff7f0e",
	"threads":      "#d62728",
	"gosync":       "#2ca02c",
	"auto":         "#9467bd",
	"env":          "#8c564b",
	"fio io_uring": "#9ecae1",
	"fio libaio":   "#fdc08a",
	"fio psync":    "#a1d99b",
}

type svgPanel struct {
	title    string
	rateName string // what the left bars count
	bars     []svgBar
}

type svgBar struct {
	label    string
	color    string
	rate     float64 // IOPS (or canceled/s)
	rateText string
	p50, p99 float64 // us
	gosync   bool    // the gosync bar
	fio      bool    // a fio bar
	vsFio    float64 // ratios to fio and gosync, 0 when none
	vsGosync float64
}

func chartPanels(res *Results) []svgPanel {
	var panels []svgPanel
	index := map[string]int{}
	for _, r := range res.shown() {
		if r.Error != "" || r.Skipped || r.Ops == 0 {
			continue
		}
		var key, title string
		rateName := "IOPS"
		switch {
		case r.Workload == wlCancel:
			key = fmt.Sprintf("%s/%d", r.Workload, r.CancelN)
			title = fmt.Sprintf("cancel: one Cancel of a pending poll (%d pending)", r.CancelN)
			rateName = "canceled/s"
		case r.Workload == wlCancelFD:
			key = fmt.Sprintf("%s/%d", r.Workload, r.CancelN)
			title = fmt.Sprintf("cancel-fd: one CancelFD of %d pending polls", r.CancelN)
			rateName = "canceled/s"
		case r.BS == 0:
			key = fmt.Sprintf("%s/%d/%d", r.Workload, r.QD, r.Batch)
			title = fmt.Sprintf("%s: qd %d, batch %d", r.Workload, r.QD, r.Batch)
			rateName = "requests/s"
		case r.Mode == modeGoroutines:
			key = fmt.Sprintf("%s/%s/%d/%d", r.Mode, r.Workload, r.BS, r.QD)
			title = fmt.Sprintf("%s: %s, %d goroutine%s (blocking ReadAt/WriteAt, one shared Context)", r.Workload, fmtBytes(int64(r.BS)), r.QD, plural(r.QD))
		default:
			key = fmt.Sprintf("%s/%s/%d/%d", r.Mode, r.Workload, r.BS, r.QD)
			title = fmt.Sprintf("%s: %s, qd %d (Submit/GetEvents loop)", r.Workload, fmtBytes(int64(r.BS)), r.QD)
		}
		i, ok := index[key]
		if !ok {
			i = len(panels)
			index[key] = i
			panels = append(panels, svgPanel{title: title, rateName: rateName})
		}
		label := r.Backend
		if r.Tool == "fio" {
			label = "fio " + r.Backend
		} else if r.BackendRan != "" && r.BackendRan != r.Backend {
			label += " (" + r.BackendRan + ")"
		}
		if r.Tool == "uringaio" && r.Batch > 1 && r.BS > 0 {
			label += fmt.Sprintf(" b%d", r.Batch)
		}
		color := barColors[label]
		if r.Run > 0 {
			label += fmt.Sprintf(" #%d", r.Run)
		}
		if color == "" {
			color = barColors[r.Backend]
		}
		if color == "" {
			color = "#7f7f7f"
		}
		b := svgBar{label: label, color: color, rate: r.IOPS, p50: r.LatP50us, p99: r.LatP99us,
			gosync: r.Tool == "gosync", fio: r.Tool == "fio", vsFio: r.RatioFio, vsGosync: r.RatioGosync}
		panels[i].bars = append(panels[i].bars, b)
	}
	// A ratio is printed only beside a bar it can be checked against: the
	// table's "vs gosync" of a loop case refers to a goroutine case, which
	// is in another panel.
	for i := range panels {
		var fio, gosync bool
		for _, b := range panels[i].bars {
			fio, gosync = fio || b.fio, gosync || b.gosync
		}
		for j := range panels[i].bars {
			b := &panels[i].bars[j]
			b.rateText = fmtInt(b.rate)
			var rs []string
			if fio && b.vsFio > 0 {
				rs = append(rs, fmt.Sprintf("%.2fx fio", b.vsFio))
			}
			if gosync && b.vsGosync > 0 {
				rs = append(rs, fmt.Sprintf("%.2fx gosync", b.vsGosync))
			}
			if len(rs) > 0 {
				b.rateText += " (" + strings.Join(rs, ", ") + ")"
			}
		}
	}
	return panels
}

// chartTitle names what the chart compares: the library's backends that
// ran, against plain goroutines and fio when they ran.
func chartTitle(res *Results) string {
	seen := map[string]bool{}
	for _, r := range res.shown() {
		if r.Error == "" && !r.Skipped && r.Ops > 0 {
			seen[r.Tool+"/"+r.Backend] = true
			if r.Tool == "uringaio" && r.BackendRan != "" {
				seen[r.Tool+"/"+r.BackendRan] = true
			}
			seen[r.Tool] = true
		}
	}
	var lib, others []string
	for _, b := range []struct{ key, name string }{{"uringaio/uring", "io_uring"}, {"uringaio/kaio", "classic AIO"}, {"uringaio/threads", "threads"}} {
		if seen[b.key] {
			lib = append(lib, b.name)
		}
	}
	if seen["gosync"] {
		others = append(others, "os.File goroutines (gosync)")
	}
	if seen["fio"] {
		others = append(others, "fio")
	}
	title := "uringaio bench"
	if len(lib) > 0 {
		title += ": " + andList(lib)
		if len(others) > 0 {
			title += " vs " + andList(others)
		}
	}
	return title
}

func andList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// latencyAxis is a panel's latency axis: a tick step and its end, which
// holds every p50 and every p99 but those more than four times both the
// panel's median p99 and its largest p50 (clipped is then true): one such
// outlier (a 374 ms p99 beside others of tens of ms) would squash every
// other bar to nothing.
func latencyAxis(bars []svgBar) (step, end float64, clipped bool) {
	var p99s []float64
	limit := 0.0
	for _, bar := range bars {
		limit = math.Max(limit, bar.p50)
		if bar.p99 > 0 {
			p99s = append(p99s, bar.p99)
		}
	}
	slices.Sort(p99s)
	cut := math.Inf(1)
	if n := len(p99s); n >= 3 {
		med := p99s[n/2]
		if n%2 == 0 {
			med = (p99s[n/2-1] + p99s[n/2]) / 2
		}
		cut = 4 * math.Max(med, limit) // limit is the largest p50 here
	}
	for _, v := range p99s {
		if v <= cut {
			limit = math.Max(limit, v)
		} else {
			clipped = true
		}
	}
	step, end = niceTicks(limit)
	return step, end, clipped
}

// niceTicks returns a tick step and the axis end (a multiple of it) for
// values up to maxV: steps of 1, 2, 2.5 or 5 times a power of ten, at most 5
// intervals.
func niceTicks(maxV float64) (step, end float64) {
	if maxV <= 0 || math.IsNaN(maxV) || math.IsInf(maxV, 0) {
		return 1, 1
	}
	p := math.Pow(10, math.Floor(math.Log10(maxV/5)))
	for _, m := range []float64{1, 2, 2.5, 5, 10, 20} {
		step = m * p
		if math.Ceil(maxV/step-1e-9) <= 5 {
			break
		}
	}
	end = math.Ceil(maxV/step-1e-9) * step
	return step, end
}

// fmtTick prints an axis value: 250k, 1.5M, 40.
func fmtTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.2g", v/1e6), ".0") + "M"
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.3g", v/1e3), ".0") + "k"
	}
	return fmt.Sprintf("%g", v)
}

// writeSVG draws the chart.
func writeSVG(w io.Writer, res *Results) {
	const (
		width    = 1230
		left     = 190 // label column
		rateX    = left
		rateW    = 330 // IOPS scale; its text runs on to the right
		latX     = 760
		latW     = 260
		barH     = 16
		barGap   = 5
		titleH   = 24
		axisH    = 26
		panelGap = 14
		top      = 56
	)
	panels := chartPanels(res)
	m := res.Meta
	foot := []string{"Left: rate, higher is better. Right: latency p50 (bar) and p99 (whisker) in µs, lower is better. Each panel half has its own axis. What each figure measures: the table notes, or bench/README.md."}
	if m.FioVersion != "" {
		foot = append(foot, m.FioVersion+" bars: the same parameters; io_uring beside uring, libaio beside kaio, posixaio beside threads, psync (N jobs) beside gosync.")
	}
	for _, p := range panels {
		if _, _, clipped := latencyAxis(p.bars); clipped {
			foot = append(foot, "A whisker ending in an arrowhead is clipped at its panel's axis (a p99 over 4x both the panel's median p99 and its largest p50); the figure printed beside it is the real one.")
			break
		}
	}
	height := top + 40 + 14*max(0, len(foot)-2)
	for _, p := range panels {
		height += titleH + len(p.bars)*(barH+barGap) + axisH + panelGap
	}
	if len(panels) == 0 {
		height += 30
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := chartTitle(res)
	if n := res.shownRuns(); n > 1 {
		title += fmt.Sprintf(" — medians of %d rounds", n)
	}
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", esc(title))
	fmt.Fprintf(&b, `<text x="10" y="42" fill="#555">%s</text>`+"\n",
		esc(fmt.Sprintf("%s · kernel %s · %s · %d CPUs · %s", m.Date, m.Kernel, m.GoVersion, m.CPUs, m.CPUModel)))
	y := top
	if len(panels) == 0 {
		fmt.Fprintf(&b, `<text x="10" y="%d">no results</text>`+"\n", y+20)
	}
	for _, p := range panels {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+15, esc(p.title))
		y += titleH
		maxRate := 0.0
		for _, bar := range p.bars {
			maxRate = math.Max(maxRate, bar.rate)
		}
		rStep, rEnd := niceTicks(maxRate)
		lStep, lEnd, _ := latencyAxis(p.bars)
		h := len(p.bars)*(barH+barGap) - barGap
		// Grid lines and axes.
		axis := func(x0, wpx int, step, end float64, unit string) {
			for v := 0.0; v <= end*1.0001; v += step {
				x := float64(x0) + v/end*float64(wpx)
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", x, y-2, x, y+h+2)
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>`+"\n", x, y+h+2, x, y+h+6)
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="10" fill="#555">%s</text>`+"\n", x, y+h+16, fmtTick(v))
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", x0, y+h+2, x0+wpx, y+h+2)
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", x0, y-2, x0, y+h+2)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#555">%s</text>`+"\n", x0+wpx+22, y+h+16, esc(unit))
		}
		axis(rateX, rateW, rStep, rEnd, p.rateName)
		axis(latX, latW, lStep, lEnd, "µs: p50 bar, p99 whisker")
		for _, bar := range p.bars {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH-4, esc(bar.label))
			wpx := bar.rate / rEnd * rateW
			if wpx < 1 && bar.rate > 0 {
				wpx = 1
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", rateX, y, wpx, barH, bar.color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s</text>`+"\n", float64(rateX)+wpx+5, y+barH-4, esc(bar.rateText))
			lpx := bar.p50 / lEnd * latW
			if lpx < 1 && bar.p50 > 0 {
				lpx = 1
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", latX, y, lpx, barH, bar.color)
			textX := float64(latX) + lpx + 5
			if bar.p99 > bar.p50 {
				wx := float64(latX) + math.Min(bar.p99, lEnd)/lEnd*latW
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>`+"\n", float64(latX)+lpx, y+barH/2, wx, y+barH/2)
				if bar.p99 > lEnd {
					// Clipped: an arrowhead at the axis end instead of the whisker's cap.
					fmt.Fprintf(&b, `<path d="M%.1f %d l6 %d l-6 %d z" fill="#333"/>`+"\n", wx, y+3, barH/2-3, barH/2-3)
					wx += 6
				} else {
					fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>`+"\n", wx, y+3, wx, y+barH-3)
				}
				textX = wx + 5
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s</text>`+"\n", textX, y+barH-4, esc(fmt.Sprintf("%s / %s", fmtF(bar.p50), fmtF(bar.p99))))
			y += barH + barGap
		}
		y += axisH - barGap + panelGap
	}
	for i, line := range foot {
		fmt.Fprintf(&b, `<text x="10" y="%d" fill="#777" font-size="10">%s</text>`+"\n", height-12-14*(len(foot)-1-i), esc(line))
	}
	b.WriteString("</svg>\n")
	io.WriteString(w, b.String())
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func esc(s string) string { return html.EscapeString(s) }
