package main

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// The chart: one panel per workload (and size/depth), one horizontal bar per
// backend, fio's bars in a lighter shade of the backend they stand beside.
// I/O panels show IOPS (higher is better); cancel panels show p50 latency
// with the p99 as a whisker (lower is better). Each panel has its own scale.

var barColors = map[string]string{
	"uring":        "#1f77b4",
	"kaio":         "#ff7f0e",
	"gosync":       "#2ca02c",
	"auto":         "#9467bd",
	"env":          "#8c564b",
	"fio io_uring": "#9ecae1",
	"fio libaio":   "#fdc08a",
	"fio psync":    "#a1d99b",
}

type svgPanel struct {
	title   string
	latency bool // bars are p50 latency (us), lower is better
	bars    []svgBar
}

type svgBar struct {
	label string
	color string
	value float64 // IOPS, or p50 us
	whisk float64 // p99 us for latency panels
	text  string
}

func chartPanels(res *Results) []svgPanel {
	var panels []svgPanel
	index := map[string]int{}
	for _, r := range res.Rows {
		if r.Error != "" || r.Skipped || r.Ops == 0 {
			continue
		}
		var key, title string
		lat := r.Workload == wlCancel || r.Workload == wlCancelFD
		switch {
		case r.Workload == wlCancel:
			key = fmt.Sprintf("%s/%d", r.Workload, r.CancelN)
			title = fmt.Sprintf("cancel: one Cancel of a pending poll (%d pending) — p50 latency, whisker p99, lower is better", r.CancelN)
		case r.Workload == wlCancelFD:
			key = fmt.Sprintf("%s/%d", r.Workload, r.CancelN)
			title = fmt.Sprintf("cancel-fd: one CancelFD of %d pending polls — p50 latency, whisker p99, lower is better", r.CancelN)
		case r.BS == 0:
			key = fmt.Sprintf("%s/%d/%d", r.Workload, r.QD, r.Batch)
			title = fmt.Sprintf("%s: qd %d, batch %d — requests/s, higher is better", r.Workload, r.QD, r.Batch)
		default:
			key = fmt.Sprintf("%s/%d/%d", r.Workload, r.BS, r.QD)
			title = fmt.Sprintf("%s: %s, qd %d — IOPS, higher is better", r.Workload, fmtBytes(int64(r.BS)), r.QD)
		}
		i, ok := index[key]
		if !ok {
			i = len(panels)
			index[key] = i
			panels = append(panels, svgPanel{title: title, latency: lat})
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
		b := svgBar{label: label, color: color}
		if lat {
			b.value, b.whisk = r.LatP50us, r.LatP99us
			b.text = fmt.Sprintf("p50 %s µs, p99 %s µs", fmtF(r.LatP50us), fmtF(r.LatP99us))
		} else {
			b.value = r.IOPS
			b.text = fmtInt(r.IOPS)
			var rs []string
			if r.RatioFio > 0 && r.Tool != "fio" {
				rs = append(rs, fmt.Sprintf("%.2fx fio", r.RatioFio))
			}
			if r.RatioGosync > 0 {
				rs = append(rs, fmt.Sprintf("%.2fx gosync", r.RatioGosync))
			}
			if len(rs) > 0 {
				b.text += "  (" + strings.Join(rs, ", ") + ")"
			}
		}
		panels[i].bars = append(panels[i].bars, b)
	}
	return panels
}

// writeSVG draws the chart.
func writeSVG(w io.Writer, res *Results) {
	const (
		width    = 960
		left     = 150 // label column
		barArea  = 560
		barH     = 18
		barGap   = 6
		titleH   = 26
		panelGap = 18
		top      = 56
	)
	panels := chartPanels(res)
	height := top + 34
	for _, p := range panels {
		height += titleH + len(p.bars)*(barH+barGap) + panelGap
	}
	if len(panels) == 0 {
		height += 30
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	m := res.Meta
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">%s</text>`+"\n",
		esc("uringaio bench: io_uring vs classic AIO vs os.File (gosync)"))
	fmt.Fprintf(&b, `<text x="10" y="42" fill="#555">%s</text>`+"\n",
		esc(fmt.Sprintf("%s · kernel %s · %s · %d CPUs · %s", m.Date, m.Kernel, m.GoVersion, m.CPUs, m.CPUModel)))
	y := top
	if len(panels) == 0 {
		fmt.Fprintf(&b, `<text x="10" y="%d">no results</text>`+"\n", y+20)
	}
	for _, p := range panels {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+16, esc(p.title))
		y += titleH
		maxV := 0.0
		for _, bar := range p.bars {
			v := bar.value
			if p.latency && bar.whisk > v {
				v = bar.whisk
			}
			if v > maxV {
				maxV = v
			}
		}
		if maxV <= 0 {
			maxV = 1
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", left, y-3, left, y+len(p.bars)*(barH+barGap)-barGap+3)
		for _, bar := range p.bars {
			wpx := bar.value / maxV * barArea
			if wpx < 1 && bar.value > 0 {
				wpx = 1
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH-5, esc(bar.label))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, wpx, barH, bar.color)
			textX := float64(left) + wpx + 6
			if p.latency && bar.whisk > bar.value {
				wx := float64(left) + bar.whisk/maxV*barArea
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>`+"\n", float64(left)+wpx, y+barH/2, wx, y+barH/2)
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>`+"\n", wx, y+3, wx, y+barH-3)
				textX = wx + 6
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", textX, y+barH-5, esc(bar.text))
			y += barH + barGap
		}
		y += panelGap
	}
	foot := []string{"Each panel has its own scale. What each figure measures: the table notes, or bench/README.md."}
	if m.FioVersion != "" {
		foot = append(foot, m.FioVersion+" bars: the same parameters; engine io_uring beside uring, libaio beside kaio, psync (iodepth jobs) beside gosync.")
	}
	for i, line := range foot {
		fmt.Fprintf(&b, `<text x="10" y="%d" fill="#777" font-size="10">%s</text>`+"\n", height-22+14*i, esc(line))
	}
	b.WriteString("</svg>\n")
	io.WriteString(w, b.String())
}

func esc(s string) string { return html.EscapeString(s) }
