//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package backend

// The kqueue poller's decisions (kqstate.go), driven against a model of one
// descriptor under kqueue and poll(2). This is the part of the kqueue poller
// that runs here: poller_kqueue.go, which makes the system calls, builds only
// on the BSDs and darwin and has not run in this repository's tests.
//
// The model's kqueue follows kqueue(2) for EV_CLEAR knotes: a knote added
// while its filter is true is pending at once; each change of the file that
// leaves a knote's filter true makes it pending; retrieving it clears that.
// A pending knote whose filter became false before it is retrieved is
// dropped or delivered at random (FreeBSD looks again at retrieval; the
// manual promises neither). The model refuses to re-add a knote that exists
// or delete one that does not: the decisions must not depend on what re-adding
// does, which differs between the systems.

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"golang.org/x/sys/unix"
)

var kqTestEvents = kqEvents{read: unix.POLLIN | unix.POLLPRI, write: unix.POLLOUT}

// Kinds of file in the model.
const (
	kqmStream   = iota // a pipe or socket: the read filter stands for IN, PRI, HUP
	kqmRegular         // poll(2): always IN|OUT; the read filter is true only before the end
	kqmWriteEnd        // a pipe's write end: the read filter never reports
)

type kqModel struct {
	t                             *testing.T
	rnd                           *rand.Rand
	kind                          int
	readable, pri, writable, hup  bool
	knotes                        map[kqSet]bool // registered filter: pending
	refuse                        kqSet          // adding these fails with EINVAL
	untrusted                     bool           // kqWatches says no (darwin's FIFOs)
	failAdd                       error          // adding any fails with this (ENOMEM)
	adds, dels, polls, deliveries int
}

func newKQModel(t *testing.T, kind int, seed int64) *kqModel {
	return &kqModel{t: t, rnd: rand.New(rand.NewSource(seed)), kind: kind, knotes: map[kqSet]bool{}}
}

func (m *kqModel) filterTrue(f kqSet) bool {
	if f == kqWrite {
		return m.writable || m.hup
	}
	switch m.kind {
	case kqmRegular:
		return m.readable
	case kqmWriteEnd:
		return false
	}
	return m.readable || m.pri || m.hup
}

func (m *kqModel) kqAdd(fd int, f kqSet) error {
	m.adds++
	if f != kqRead && f != kqWrite {
		m.t.Fatalf("kqAdd of %b: one filter at a time", f)
	}
	if _, ok := m.knotes[f]; ok {
		m.t.Fatalf("kqAdd of filter %b, which has a knote already", f)
	}
	if m.failAdd != nil {
		return m.failAdd
	}
	if m.refuse&f != 0 {
		return unix.EINVAL
	}
	m.knotes[f] = m.filterTrue(f)
	return nil
}

func (m *kqModel) kqDel(fd int, fs kqSet) {
	m.dels++
	for _, f := range [...]kqSet{kqRead, kqWrite} {
		if fs&f == 0 {
			continue
		}
		if _, ok := m.knotes[f]; !ok {
			m.t.Fatalf("kqDel of filter %b, which has no knote", f)
		}
		delete(m.knotes, f)
	}
}

func (m *kqModel) pollMask(events uint32) uint32 {
	var r uint32
	if m.kind == kqmRegular {
		r = unix.POLLIN | unix.POLLOUT
	} else {
		if m.readable {
			r |= unix.POLLIN
		}
		if m.pri {
			r |= unix.POLLPRI
		}
		if m.writable {
			r |= unix.POLLOUT
		}
		if m.hup {
			r |= unix.POLLHUP
		}
	}
	return r & (events | unix.POLLERR | unix.POLLHUP | unix.POLLNVAL)
}

func (m *kqModel) kqPoll(fd int, events uint32) uint32 {
	m.polls++
	return m.pollMask(events)
}

func (m *kqModel) kqWatches(fd int) bool { return !m.untrusted }

// change is a change of the file: every knote whose filter it leaves true
// reports.
func (m *kqModel) change(readable, pri, writable, hup bool) {
	m.readable, m.pri, m.writable, m.hup = readable, pri, writable, hup
	for f := range m.knotes {
		if m.filterTrue(f) {
			m.knotes[f] = true
		}
	}
}

// retrieve is kevent's answer: the pending knotes, cleared.
func (m *kqModel) retrieve() []kqSet {
	var out []kqSet
	for _, f := range [...]kqSet{kqRead, kqWrite} {
		if !m.knotes[f] {
			continue
		}
		m.knotes[f] = false
		if !m.filterTrue(f) && m.rnd.Intn(2) == 0 {
			continue
		}
		out = append(out, f)
	}
	m.deliveries += len(out)
	return out
}

// kqHarness is the poller's side for one descriptor, as poller_kqueue.go
// uses the decisions: armLocked per waiter added, kqFired per knote reported,
// then one kqCheck and collectLocked.
type kqHarness struct {
	m        *kqModel
	s        kqState
	waiters  []uint32 // the events of each waiter
	ready    bool     // armLocked found it ready: the poller collects it (alwaysReady)
	failed   error
	name     string
	collects int
}

func (h *kqHarness) want() uint32 {
	var w uint32
	for _, ev := range h.waiters {
		w |= ev
	}
	return w
}

func (h *kqHarness) need() kqSet { return kqFilters(h.want(), len(h.waiters), kqTestEvents) }

func (h *kqHarness) add(ev uint32) {
	h.waiters = append(h.waiters, ev)
	h.result(kqArm(h.m, &h.s, 3, h.want(), h.need()))
}

// result records what kqArm or kqDisarm answered: a failure ends the
// waiters, a mask makes the descriptor ready.
func (h *kqHarness) result(mask uint32, err error) {
	if err != nil {
		h.failed = err
		h.waiters = nil
		return
	}
	if mask != 0 {
		h.ready = true
	}
}

func (h *kqHarness) cancel(i int) {
	h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
	h.disarm()
}

// disarm is disarmLocked, after a cancel or a collect.
func (h *kqHarness) disarm() {
	h.result(kqDisarm(h.m, &h.s, 3, h.want(), h.need()))
}

// round is one turn of the poller. It reports whether it had anything to do.
func (h *kqHarness) round() bool {
	fired := h.m.retrieve()
	for _, f := range fired {
		kqFired(h.m, &h.s, 3, f, h.need())
	}
	if h.s.polled && len(h.waiters) > 0 {
		// The poller's poll(2) over the polled descriptors.
		if mask := h.m.pollMask(h.want()); mask != 0 {
			h.collect(mask)
			return true
		}
	}
	if len(fired) == 0 && !h.ready {
		return false
	}
	h.ready = false
	if len(h.waiters) > 0 {
		mask := kqCheck(h.m, &h.s, 3, h.want(), h.need())
		h.collect(mask)
	}
	return true
}

// collect is collectLocked: a waiter goes when mask has one of its events or
// an error, hang-up or invalid descriptor.
func (h *kqHarness) collect(mask uint32) {
	kept := h.waiters[:0]
	for _, ev := range h.waiters {
		if mask&(ev|unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			h.collects++
			continue
		}
		kept = append(kept, ev)
	}
	h.waiters = kept
	h.disarm()
}

// settle runs the poller until it has nothing to do, which must take no more
// than three rounds when the file does not change: a poller that spins on a
// report that brings no waiter anything would not settle.
func (h *kqHarness) settle(t *testing.T) {
	t.Helper()
	for i := 0; h.round(); i++ {
		if i == 3 {
			t.Fatalf("poller still busy after 3 rounds with no change of the file (spinning): state %+v, knotes %v", h.s, h.m.knotes)
		}
	}
}

// check is the invariant after settling: no waiter is left waiting for
// events poll(2) says are ready, and the state's knotes are the model's.
func (h *kqHarness) check(t *testing.T, step int) {
	t.Helper()
	for _, ev := range h.waiters {
		if got := h.m.pollMask(ev); got != 0 {
			t.Fatalf("%s step %d: a waiter for %#x still waits while poll(2) says %#x (state %+v, knotes %v, file %+v)",
				h.name, step, ev, got, h.s, h.m.knotes, *h.m)
		}
	}
	var reg kqSet
	for f := range h.m.knotes {
		reg |= f
	}
	if reg != h.s.reg {
		t.Fatalf("%s step %d: state says knotes %b, kqueue has %b", h.name, step, h.s.reg, reg)
	}
	if need := h.need(); need&^reg != 0 && !h.s.polled {
		t.Fatalf("%s step %d: waiters need filters %b, knotes %b", h.name, step, need, reg)
	}
}

func TestKQFilters(t *testing.T) {
	for _, c := range []struct {
		want uint32
		n    int
		f    kqSet
	}{
		{unix.POLLIN, 1, kqRead},
		{unix.POLLPRI, 1, kqRead},
		{unix.POLLOUT, 1, kqWrite},
		{unix.POLLIN | unix.POLLOUT, 2, kqRead | kqWrite},
		{0, 1, kqRead | kqWrite},            // a poll for POLLHUP/POLLERR alone
		{unix.POLLHUP, 1, kqRead | kqWrite}, // the same, asked for
		{unix.POLLIN | unix.POLLHUP, 1, kqRead},
		{0, 0, 0},
	} {
		if got := kqFilters(c.want, c.n, kqTestEvents); got != c.f {
			t.Errorf("kqFilters(%#x, %d) = %b, want %b", c.want, c.n, got, c.f)
		}
	}
}

// Random waiters, cancels and changes of the file, on each kind of file: after
// each step the poller settles (no spin) and no waiter waits for an event
// that poll(2) says is ready (none lost to an EV_CLEAR knote that reported
// before the waiter came).
func TestKQDecisionsModel(t *testing.T) {
	events := map[int][]uint32{
		kqmStream:   {unix.POLLIN, unix.POLLPRI, unix.POLLOUT, unix.POLLIN | unix.POLLOUT, 0, unix.POLLIN | unix.POLLPRI},
		kqmRegular:  {unix.POLLIN, unix.POLLOUT, unix.POLLPRI, 0},
		kqmWriteEnd: {unix.POLLOUT, 0},
	}
	for kind, evs := range events {
		for seed := int64(0); seed < 400; seed++ {
			m := newKQModel(t, kind, seed*7+int64(kind))
			// One run in four with a filter kqueue refuses, one in eight
			// with a descriptor kqWatches distrusts: poll(2) watches it.
			switch seed % 8 {
			case 1:
				m.refuse = kqRead
			case 3:
				m.refuse = kqWrite
			case 5:
				m.untrusted = true
			}
			h := &kqHarness{m: m, name: fmt.Sprintf("kind %d seed %d refuse %b untrusted %v", kind, seed, m.refuse, m.untrusted)}
			r := m.rnd
			for step := 0; step < 300; step++ {
				switch op := r.Intn(10); {
				case op < 4:
					h.add(evs[r.Intn(len(evs))])
				case op < 6 && len(h.waiters) > 0:
					h.cancel(r.Intn(len(h.waiters)))
				case op < 9:
					hup := m.hup || r.Intn(40) == 0
					m.change(r.Intn(3) == 0, r.Intn(5) == 0, r.Intn(3) == 0, hup)
				default:
					h.round() // the poller may run between any two steps
					continue
				}
				if h.failed != nil {
					t.Fatalf("kind %d seed %d step %d: %v", kind, seed, step, h.failed)
				}
				h.settle(t)
				h.check(t, step)
			}
			for len(h.waiters) > 0 {
				h.cancel(0)
			}
			kqForget(m, &h.s, 3)
			if len(m.knotes) != 0 || h.s != (kqState{}) {
				t.Fatalf("kind %d seed %d: after kqForget, knotes %v, state %+v", kind, seed, m.knotes, h.s)
			}
		}
	}
}

// 1000 polls on a quiet pipe: one knote and one look, not one each (cost
// property of kqArm's quiet set); the data then collects all of them with
// one report and one look.
func TestKQQuietWaitersCostNothing(t *testing.T) {
	m := newKQModel(t, kqmStream, 1)
	h := &kqHarness{m: m}
	for range 1000 {
		h.add(unix.POLLIN)
	}
	if m.adds != 1 || m.polls != 1 {
		t.Fatalf("1000 waiters on a quiet pipe: %d knotes added, %d looks; want 1 and 1", m.adds, m.polls)
	}
	m.change(true, false, false, false)
	h.settle(t)
	if h.collects != 1000 || len(h.waiters) != 0 {
		t.Fatalf("collected %d, %d left; want 1000, 0", h.collects, len(h.waiters))
	}
	if m.polls != 2 || m.deliveries != 1 {
		t.Fatalf("the data cost %d looks and %d reports; want 1 and 1", m.polls-1, m.deliveries)
	}
}

// A waiter arriving after its file's knote reported (EV_CLEAR will not report
// the same state again) is found ready by its own look.
func TestKQLateWaiterLooks(t *testing.T) {
	m := newKQModel(t, kqmStream, 2)
	h := &kqHarness{m: m}
	h.add(unix.POLLIN)
	m.change(true, false, false, false)
	h.settle(t)
	if len(h.waiters) != 0 {
		t.Fatal("first waiter not collected")
	}
	h.add(unix.POLLIN) // the data is still there; no change will come
	h.settle(t)
	if len(h.waiters) != 0 || h.collects != 2 {
		t.Fatalf("late waiter: %d collected, %d waiting; want 2, 0", h.collects, len(h.waiters))
	}
}

// A waiter for POLLPRI on a socket with ordinary data: the read filter
// reports the data, poll(2) says no POLLPRI, and the poller goes quiet until
// the file changes (a level-triggered knote would report forever).
func TestKQCoarseFilterDoesNotSpin(t *testing.T) {
	m := newKQModel(t, kqmStream, 3)
	m.change(true, false, false, false)
	h := &kqHarness{m: m}
	h.add(unix.POLLPRI)
	h.settle(t)
	if len(h.waiters) != 1 {
		t.Fatal("POLLPRI waiter collected without POLLPRI")
	}
	d := m.deliveries
	for range 10 {
		h.settle(t)
	}
	if m.deliveries != d {
		t.Fatalf("%d reports with no change of the file", m.deliveries-d)
	}
	m.change(true, true, false, false)
	h.settle(t)
	if len(h.waiters) != 0 {
		t.Fatal("POLLPRI waiter not collected once POLLPRI came")
	}
}

// A knote whose waiters were all canceled is deleted when it next reports
// (the cancel made no system call), and reports nothing after that.
func TestKQCanceledKnoteGoesAtItsReport(t *testing.T) {
	m := newKQModel(t, kqmStream, 4)
	h := &kqHarness{m: m}
	h.add(unix.POLLOUT)
	h.add(unix.POLLIN)
	h.cancel(0) // the POLLOUT waiter
	if m.dels != 0 {
		t.Fatal("a cancel made a system call")
	}
	m.change(false, false, true, false) // writable: for nobody
	h.settle(t)
	if _, ok := m.knotes[kqWrite]; ok || h.s.reg != kqRead {
		t.Fatalf("write knote kept after reporting for nobody: knotes %v, reg %b", m.knotes, h.s.reg)
	}
	d := m.deliveries
	m.change(false, false, true, false)
	h.settle(t)
	if m.deliveries != d {
		t.Fatal("deleted knote reported")
	}
}

// A filter kqueue refuses (a device without one, darwin's ttys): the
// descriptor goes to poll(2) for good, its other knotes deleted, with no
// further kqueue calls; a FIFO on darwin (kqWatches) goes there before any
// knote. Any other error ends the waiters with it.
func TestKQRefusedAndFailedAdd(t *testing.T) {
	m := newKQModel(t, kqmStream, 5)
	m.refuse = kqWrite
	h := &kqHarness{m: m}
	h.add(unix.POLLIN)
	if h.s.reg != kqRead || h.s.polled {
		t.Fatalf("read filter: state %+v", h.s)
	}
	h.add(unix.POLLOUT)
	if h.failed != nil || h.ready || h.s.reg != 0 || !h.s.polled || len(m.knotes) != 0 {
		t.Fatalf("write refused: failed %v ready %v state %+v knotes %v", h.failed, h.ready, h.s, m.knotes)
	}
	adds, polls := m.adds, m.polls
	h.add(unix.POLLOUT)
	h.cancel(0)
	if m.adds != adds || m.polls != polls {
		t.Fatal("a polled descriptor still makes kqueue calls or looks of its own")
	}
	m.change(true, false, false, false)
	h.settle(t)
	if len(h.waiters) != 2 || h.collects != 0 {
		t.Fatalf("readable, no waiter for POLLIN: %d waiting, %d collected", len(h.waiters), h.collects)
	}
	m.change(true, false, true, false)
	h.settle(t)
	if len(h.waiters) != 0 {
		t.Fatal("waiters of a polled descriptor not collected when ready")
	}

	m = newKQModel(t, kqmStream, 7)
	m.untrusted = true
	h = &kqHarness{m: m}
	h.add(unix.POLLIN)
	if !h.s.polled || m.adds != 0 {
		t.Fatalf("untrusted descriptor: state %+v after %d knotes", h.s, m.adds)
	}

	m = newKQModel(t, kqmStream, 6)
	m.failAdd = unix.ENOMEM
	h = &kqHarness{m: m}
	h.add(unix.POLLIN)
	if !errors.Is(h.failed, unix.ENOMEM) {
		t.Fatalf("kqAdd failing with ENOMEM: got %v", h.failed)
	}
}
