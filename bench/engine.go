//go:build unix

package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// aioBackendOption maps a --backend name to aio.Options.Backend.
func aioBackendOption(b string) string {
	if b == "env" {
		return "" // URINGAIO_BACKEND decides, like aio.Setup
	}
	return b
}

// setupAIO creates a Context for a case and fills the row's backend fields. A
// backend that cannot run here comes back as a *skipError wrapping the library's
// error, with row.NotSupported set.
func setupAIO(cs Case, maxEvents int, row *Row) (*aio.Context, error) {
	ctx, err := aio.SetupWithOptions(maxEvents, aio.Options{Backend: aioBackendOption(cs.Backend), SQPoll: cs.Ring.SQPoll})
	if err != nil {
		if errors.Is(err, aio.ErrNotSupported) {
			row.NotSupported = true
			return nil, &skipError{fmt.Sprintf("backend %s not available here: %v", cs.Backend, err)}
		}
		return nil, fmt.Errorf("aio.SetupWithOptions(%d, Backend=%q): %w", maxEvents, aioBackendOption(cs.Backend), err)
	}
	row.BackendRan = ctx.Backend()
	row.Probes = probeInfos(ctx.Probes())
	return ctx, nil
}

// ProbeInfo is one aio.Probe in JSON-friendly form.
type ProbeInfo struct {
	Backend string `json:"backend"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
}

func probeInfos(ps []aio.Probe) []ProbeInfo {
	out := make([]ProbeInfo, 0, len(ps))
	for _, p := range ps {
		pi := ProbeInfo{Backend: p.Backend, OK: p.Err == nil}
		if p.Err != nil {
			pi.Reason = p.Err.Error()
		}
		out = append(out, pi)
	}
	return out
}

// runAIO runs a disk or poll workload on one of the library's backends: iodepth
// requests in flight, submitted in batches of Batch, reaped with GetEvents(min)
// where min makes room for the next full batch. IOCBs, buffers and the Event
// slice are made once; the loop itself allocates nothing.
//
// Latency is per request, from just before the Submit call that carried it to
// just after the GetEvents call that returned it: the clock is read once per
// Submit call and once per GetEvents return, not per request.
func runAIO(cs Case, env *runEnv, row *Row) error {
	info := workloads[cs.Workload]
	qd, batch, bs := cs.QD, cs.Batch, cs.BS

	var (
		fd      int
		nblocks uint64
		op      aio.Op
	)
	switch {
	case info.disk:
		f, err := openData(env.data, info)
		if err != nil {
			return err
		}
		defer f.Close()
		fd = int(f.Fd())
		nblocks = uint64(env.data.Size / int64(bs))
		if nblocks == 0 {
			return fmt.Errorf("data file region %d bytes is smaller than --bs %d", env.data.Size, bs)
		}
		op = aio.OpRead
		if info.write {
			op = aio.OpWrite
		}
	case cs.Workload == wlPoll:
		rfd, done, err := readyFD() // an eventfd, or a pipe holding a byte: always readable
		if err != nil {
			return err
		}
		defer done()
		fd = rfd
		op = aio.OpPoll
		bs = 0
	default:
		return fmt.Errorf("workload %s is not an I/O loop", cs.Workload)
	}

	var region []byte
	if bs > 0 {
		buf, free, err := alignedRegion(qd * bs)
		if err != nil {
			return err
		}
		defer free() // runs after Destroy (deferred later): the kernel is done by then
		region = buf
		if info.write {
			fillRandom(region, uint64(time.Now().UnixNano()))
		}
	}

	ctx, err := setupAIO(cs, qd, row)
	if err != nil {
		return err
	}
	defer ctx.Destroy()
	rr, err := ringResources(cs, ctx, fd, qd, bs, region)
	if err != nil {
		return err
	}
	defer rr.close(ctx) // before the Destroy deferred above, which then finds it done

	cbs := make([]aio.IOCB, qd)
	free := make([]*aio.IOCB, 0, qd) // a stack of idle IOCBs
	sent := make([]int64, qd)        // submit time per IOCB, ns since base
	events := make([]aio.Event, qd)
	for i := range cbs {
		cb := &cbs[i]
		cb.Op, cb.FD, cb.Data = op, fd, uint64(i)
		if rr.file != nil {
			cb.SetFile(rr.file)
		}
		if bs > 0 {
			cb.Buf = rr.block(i, bs, region)
		}
		if op == aio.OpPoll {
			cb.PollEvents = unix.POLLIN
		}
		free = append(free, cb)
	}
	h := newHist()
	r := newRNG(uint64(time.Now().UnixNano()) | 1)

	var (
		inflight   int
		ops        int64
		submits    int64
		measuring  bool
		stopping   bool
		a, b       snapshot
		tStart     int64
		tEnd       int64
		end        int64
		warmEnd    = int64(cs.Warmup)
		runtimeNs  = int64(cs.Runtime)
		checkRes   = int64(bs)
		pollResult = op == aio.OpPoll
	)
	base := time.Now()
	if warmEnd <= 0 {
		a = takeSnapshot()
		measuring, tStart, end = true, int64(time.Since(base)), int64(time.Since(base))+runtimeNs
	}
	env.caseStarted(cs, base)

	for {
		if !stopping {
			for len(free) >= batch {
				top := len(free) - batch
				pend := free[top:]
				t := int64(time.Since(base))
				for _, cb := range pend {
					if nblocks > 0 {
						cb.Offset = r.offset(nblocks, bs)
					}
					sent[cb.Data] = t
				}
				n, err := ctx.Submit(pend...)
				if measuring {
					submits++
				}
				if err != nil {
					if errors.Is(err, unix.EAGAIN) && inflight > 0 {
						break // full: reap first
					}
					return fmt.Errorf("submit of %d %v requests (%d in flight): %w", len(pend), op, inflight, err)
				}
				inflight += n
				// The first n of pend were accepted; keep the rest on the stack.
				copy(free[top:], pend[n:])
				free = free[:len(free)-n]
				if n < batch {
					break
				}
			}
		}
		if inflight == 0 {
			if stopping {
				break
			}
			return fmt.Errorf("nothing in flight and Submit accepted nothing")
		}
		minNr := batch - len(free)
		if stopping || minNr < 1 {
			minNr = 1
		}
		if minNr > inflight {
			minNr = inflight
		}
		n, err := ctx.GetEvents(minNr, events, nil)
		if err != nil {
			return fmt.Errorf("GetEvents(%d, %d, nil) with %d in flight: %w", minNr, len(events), inflight, err)
		}
		t := int64(time.Since(base))
		count := measuring && !stopping
		for i := 0; i < n; i++ {
			ev := &events[i]
			idx := ev.Data
			if idx >= uint64(len(cbs)) || ev.IOCB != &cbs[idx] {
				return fmt.Errorf("event with Data %d does not match its IOCB (library bug?)", idx)
			}
			if pollResult {
				if ev.Res < 0 || ev.Res&unix.POLLIN == 0 {
					return fmt.Errorf("poll request on %s %d failed: res=%d (%v)", readyFDKind, fd, ev.Res, ev.Err())
				}
			} else if ev.Res != checkRes {
				if ev.Res < 0 {
					return fmt.Errorf("%v of %d bytes at offset %d of %s failed: %w", op, bs, ev.IOCB.Offset, env.data.Path, ev.Err())
				}
				return fmt.Errorf("%v of %d bytes at offset %d of %s was short: %d bytes", op, bs, ev.IOCB.Offset, env.data.Path, ev.Res)
			}
			if count {
				record(h, t-sent[idx])
			}
			free = append(free, ev.IOCB)
		}
		inflight -= n
		if count {
			ops += int64(n)
		}
		if !measuring && t >= warmEnd {
			a = takeSnapshot()
			tStart = int64(time.Since(base))
			end = tStart + runtimeNs
			measuring = true
		} else if count && t >= end {
			b = takeSnapshot()
			tEnd = t
			stopping = true
		}
	}
	row.fillFigures(ops, time.Duration(tEnd-tStart), h, a, b)
	if ops > 0 {
		spo := float64(submits) / float64(ops)
		row.SubmitsPerOp = &spo
	}
	st := ctx.Stats()
	row.FixedFiles, row.FixedBufs = st.FixedFiles, st.FixedBufs
	if err := ctx.Destroy(); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	return nil
}

// runCancel measures cancellation with N pending OpPoll POLLIN requests on the
// read end of an empty pipe (they can only end by being canceled). Each round:
// submit N and Cancel them one by one (per-call latency); submit N again, cancel
// them all with one CancelFD(fd, nil) and reap the N events with Res ==
// -ECANCELED. It fills two rows: "cancel" (one by one) and "cancel-fd".
func runCancel(cs Case, env *runEnv, one, all *Row) error {
	n := cs.CancelN
	var p [2]int
	var err error
	if p[0], p[1], err = pipe(); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	ctx, err := setupAIO(cs, n, one)
	if err != nil {
		all.NotSupported = one.NotSupported
		return err
	}
	defer ctx.Destroy()
	all.BackendRan, all.Probes = one.BackendRan, one.Probes

	cbs := make([]aio.IOCB, n)
	ptrs := make([]*aio.IOCB, n)
	for i := range cbs {
		cbs[i] = aio.IOCB{Op: aio.OpPoll, FD: p[0], PollEvents: unix.POLLIN, Data: uint64(i)}
		ptrs[i] = &cbs[i]
	}
	events := make([]aio.Event, n)
	hOne, hAll, hReap := newHist(), newHist(), newHist()
	const reapTimeout = 10 * time.Second

	submitAll := func() error {
		for done := 0; done < n; {
			k, err := ctx.Submit(ptrs[done:]...)
			if err != nil {
				return fmt.Errorf("submit of %d polls on a pipe: %w", n-done, err)
			}
			done += k
		}
		return nil
	}
	// reap collects k events, all of which must be canceled polls.
	reap := func(k int, what string) error {
		to := reapTimeout
		for got := 0; got < k; {
			m, err := ctx.GetEvents(k-got, events[:k-got], &to)
			if err != nil {
				return fmt.Errorf("GetEvents after %s: %w", what, err)
			}
			if m == 0 {
				return fmt.Errorf("after %s only %d of %d events arrived within %v", what, got, k, reapTimeout)
			}
			for i := 0; i < m; i++ {
				if ev := events[i]; ev.Res != -int64(unix.ECANCELED) {
					return fmt.Errorf("after %s a poll on an empty pipe ended with res=%d (%v), want -ECANCELED", what, ev.Res, ev.Err())
				}
			}
			got += m
		}
		return nil
	}

	var (
		oneOps, allOps, rounds int64
		oneWall, allWall       time.Duration
		oneCPU, allCPU         time.Duration
		oneMallocs, allMallocs uint64
		eagain                 int64
		notCanceled            int64
	)
	base := time.Now()
	env.caseStarted(cs, base)
	for {
		elapsed := time.Since(base)
		measuring := elapsed >= cs.Warmup
		if measuring && elapsed >= cs.Warmup+cs.Runtime && rounds > 0 {
			break
		}
		// One by one.
		if err := submitAll(); err != nil {
			return err
		}
		s0 := takeSnapshot()
		again := 0
		for i := 0; i < n; i++ {
			t0 := time.Now()
			ev, err := ctx.Cancel(ptrs[i])
			d := time.Since(t0)
			switch {
			case err == nil:
				if ev.Res != -int64(unix.ECANCELED) || ev.IOCB != ptrs[i] {
					return fmt.Errorf("cancel of a pending poll returned res=%d (%v), want -ECANCELED", ev.Res, ev.Err())
				}
			case errors.Is(err, unix.EAGAIN):
				again++ // its event comes through GetEvents
			default:
				return fmt.Errorf("cancel of pending poll %d of %d: %w", i, n, err)
			}
			if measuring {
				record(hOne, d.Nanoseconds())
			}
		}
		s1 := takeSnapshot()
		if again > 0 {
			if err := reap(again, "Cancel returned EAGAIN"); err != nil {
				return err
			}
		}
		// All at once.
		if err := submitAll(); err != nil {
			return err
		}
		s2 := takeSnapshot()
		t0 := time.Now()
		res, err := ctx.CancelFD(p[0], nil)
		d := time.Since(t0)
		if err != nil {
			return fmt.Errorf("CancelFD(pipe, nil) with %d pending polls: %w", n, err)
		}
		if err := reap(n, "CancelFD"); err != nil {
			return err
		}
		dReap := time.Since(t0) - d
		s3 := takeSnapshot()
		if res == aio.AllDone {
			return fmt.Errorf("CancelFD(pipe, nil) said AllDone with %d polls pending", n)
		}
		if measuring {
			rounds++
			oneOps += int64(n)
			allOps += int64(n)
			oneWall += s1.at.Sub(s0.at)
			allWall += s3.at.Sub(s2.at)
			oneCPU += s1.cpu - s0.cpu
			allCPU += s3.cpu - s2.cpu
			oneMallocs += s1.mallocs - s0.mallocs
			allMallocs += s3.mallocs - s2.mallocs
			eagain += int64(again)
			if res == aio.NotCanceled {
				notCanceled++
			}
			record(hAll, d.Nanoseconds())
			record(hReap, dReap.Nanoseconds())
		}
	}
	one.fillFigures(oneOps, oneWall, hOne, snapshot{}, snapshot{cpu: oneCPU, mallocs: oneMallocs})
	one.BS, one.Batch, one.CancelN = 0, 0, n
	one.LatencyOf = "one Cancel call"
	one.Notes = append(one.Notes, fmt.Sprintf("%d pending polls on an empty pipe, canceled one by one; %d rounds", n, rounds))
	if eagain > 0 {
		one.Notes = append(one.Notes, fmt.Sprintf("%d Cancel calls returned EAGAIN", eagain))
	}

	all.fillFigures(allOps, allWall, hAll, snapshot{}, snapshot{cpu: allCPU, mallocs: allMallocs})
	all.BS, all.Batch, all.CancelN = 0, 0, n
	all.Rounds = rounds
	all.LatencyOf = fmt.Sprintf("one CancelFD(fd, nil) of all %d", n)
	all.ReapP50us = us(hReap.ValueAtQuantile(50))
	all.ReapP99us = us(hReap.ValueAtQuantile(99))
	all.Notes = append(all.Notes, fmt.Sprintf("IOPS = requests canceled per second incl. reaping; reaping the %d events: p50 %.0f us", n, all.ReapP50us))
	if notCanceled > 0 {
		all.Notes = append(all.Notes, fmt.Sprintf("CancelFD said NotCanceled in %d rounds", notCanceled))
	}
	if err := ctx.Destroy(); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	return nil
}
