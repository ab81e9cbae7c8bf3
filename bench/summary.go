//go:build unix

package main

import (
	"fmt"
	"sort"
)

// caseKey identifies one case's row across rounds.
type caseKey struct {
	tool, backend, api, mode, workload string
	bs, qd, batch, cancelN             int
}

func keyOf(r Row) caseKey {
	return caseKey{r.Tool, r.Backend, r.API, r.Mode, r.Workload, r.BS, r.QD, r.Batch, r.CancelN}
}

// median of vs (which it sorts); the mean of the middle two for an even count.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	sort.Float64s(vs)
	m := len(vs) / 2
	if len(vs)%2 == 1 {
		return vs[m]
	}
	return (vs[m-1] + vs[m]) / 2
}

func minMax(vs []float64) (lo, hi float64) {
	for i, v := range vs {
		if i == 0 || v < lo {
			lo = v
		}
		if i == 0 || v > hi {
			hi = v
		}
	}
	return lo, hi
}

// summarize turns the rounds of --count into one row per case, in the order
// the cases first appear: each figure is the median over the rounds that ran
// (a round that failed is left out of the figures; the row keeps the first
// error and a note), with the IOPS and p50 min and max beside it. Ops and
// LatSamples are totals. Ratios are computed afterwards from the medians.
func summarize(rows []Row) []Row {
	var order []caseKey
	groups := map[caseKey][]Row{}
	for _, r := range rows {
		k := keyOf(r)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		out = append(out, summarizeGroup(groups[k]))
	}
	return out
}

func summarizeGroup(g []Row) Row {
	var ok []Row
	var firstErr *Row
	for i := range g {
		switch {
		case g[i].Error != "":
			if firstErr == nil {
				firstErr = &g[i]
			}
		case g[i].Skipped:
		default:
			ok = append(ok, g[i])
		}
	}
	if len(ok) == 0 {
		s := g[0]
		if firstErr != nil {
			s = *firstErr
		}
		s.Run, s.Runs = 0, len(g)
		return s
	}
	s := ok[0]
	s.Run, s.Runs = 0, len(ok)
	s.Notes = append([]string(nil), s.Notes...)
	if firstErr != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("%d of %d rounds failed; first: %s", len(g)-len(ok), len(g), firstErr.Error))
	}
	col := func(f func(Row) float64) []float64 {
		vs := make([]float64, len(ok))
		for i, r := range ok {
			vs[i] = f(r)
		}
		return vs
	}
	med := func(f func(Row) float64) float64 { return median(col(f)) }
	medPtr := func(f func(Row) *float64) *float64 {
		var vs []float64
		for _, r := range ok {
			if p := f(r); p != nil {
				vs = append(vs, *p)
			}
		}
		if len(vs) == 0 {
			return nil
		}
		m := median(vs)
		return &m
	}
	s.IOPSMin, s.IOPSMax = minMax(col(func(r Row) float64 { return r.IOPS }))
	s.P50Min, s.P50Max = minMax(col(func(r Row) float64 { return r.LatP50us }))
	s.IOPS = med(func(r Row) float64 { return r.IOPS })
	s.MBps = med(func(r Row) float64 { return r.MBps })
	s.RuntimeSec = med(func(r Row) float64 { return r.RuntimeSec })
	s.LatP50us = med(func(r Row) float64 { return r.LatP50us })
	s.LatP99us = med(func(r Row) float64 { return r.LatP99us })
	s.LatP999us = med(func(r Row) float64 { return r.LatP999us })
	s.LatP9999us = med(func(r Row) float64 { return r.LatP9999us })
	s.LatMinUs = med(func(r Row) float64 { return r.LatMinUs })
	s.LatMeanUs = med(func(r Row) float64 { return r.LatMeanUs })
	s.LatStdevUs = med(func(r Row) float64 { return r.LatStdevUs })
	s.LatMaxUs = med(func(r Row) float64 { return r.LatMaxUs })
	s.ReapP50us = med(func(r Row) float64 { return r.ReapP50us })
	s.ReapP99us = med(func(r Row) float64 { return r.ReapP99us })
	s.CPUNsPerOp = med(func(r Row) float64 { return r.CPUNsPerOp })
	s.AllocsPerOp = med(func(r Row) float64 { return r.AllocsPerOp })
	s.Resident = med(func(r Row) float64 { return r.Resident })
	s.PeakThreads = int(med(func(r Row) float64 { return float64(r.PeakThreads) }) + 0.5)
	s.SubmitsPerOp = medPtr(func(r Row) *float64 { return r.SubmitsPerOp })
	s.InlinePerOp = medPtr(func(r Row) *float64 { return r.InlinePerOp })
	s.Ops, s.LatSamples, s.Errors, s.Rounds = 0, 0, 0, 0
	for _, r := range ok {
		s.Ops += r.Ops
		s.LatSamples += r.LatSamples
		s.Errors += r.Errors
		s.Rounds += r.Rounds
	}
	return s
}
