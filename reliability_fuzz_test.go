//go:build linux

package uringaio_test

// Model-based fuzzing (issue 5). FuzzModel reads its input as a program of
// operations — Submit (poll, pipe read, file read, NOP, zero-length read,
// POLLOUT poll, a malformed IOCB), Cancel, CancelFD, GetEvents, Error, writes
// to the pipes, Destroy — and runs it on every backend against a small model of
// the states of each IOCB (never submitted / outstanding / delivered,
// docs/contract.md §1.6). Every call's result is checked against what the model
// allows, and so is every event: exactly one per accepted request, with the
// right data.
//
// The model is exact where docs/contract.md is: a poll or read on a pipe that
// has had no data since it was submitted is "certainly waiting", so Cancel must
// stop it and CancelFD must say Canceled; otherwise it may have completed, and
// both outcomes are allowed — but its event must then agree with what the call
// said. Pipe bytes carry their own stream position (byte k of a pipe's stream
// has value k), so every read's bytes are checked to be a run of the stream
// that no other read got, and at the end the delivered runs plus what is left
// in the pipe must be the whole stream.
//
// CI runs the committed corpus (testdata/fuzz/FuzzModel); to search for more:
//   go test -run '^$' -fuzz FuzzModel -fuzztime 60s .

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

const (
	relMaxEvents = 4 // small, so that "full" (EAGAIN) is reached
	relPoolSize  = 6 // IOCBs the program may use
	relFileSize  = 4096
	relPipeCap   = 256 // bytes written per pipe: byte k has value k
	relMaxOps    = 300
)

type relKind uint8

const (
	relKNop relKind = iota
	relKFileRead
	relKPipeRead
	relKPollIn
	relKPollOut
	relKZeroRead
	relKInvalid
	relKinds
)

func (k relKind) String() string {
	return [...]string{"nop", "file-read", "pipe-read", "poll-in", "poll-out", "zero-read", "invalid"}[k]
}

// relMCB is the model of one IOCB.
type relMCB struct {
	cb        *aio.IOCB
	submitted bool // ever accepted by this Context
	out       bool // accepted, event not yet delivered
	kind      relKind
	pipe      int
	sawData   bool // pipe kinds: the pipe may have had data since Submit
	fdSaid    bool // after CancelFD, Error said ECANCELED: the event must carry -ECANCELED
	refused   bool // Cancel said EAGAIN: the event must not carry -ECANCELED
	lastRes   int64
}

// certainlyWaiting: a pipe read or POLLIN poll on a pipe that has had no data
// since it was submitted.
func (m *relMCB) certainlyWaiting() bool {
	return m.out && !m.fdSaid && (m.kind == relKPipeRead || m.kind == relKPollIn) && !m.sawData
}

type relModel struct {
	t        *testing.T
	be       string
	c        *aio.Context
	file     int
	fileData []byte
	pipes    [2]*relPipe
	written  [2]int
	ranges   [2][][2]int // delivered read runs [start, end)
	cbs      []*relMCB
	byCB     map[*aio.IOCB]*relMCB
	seq      uint64
	ops      []string // a trace, for failure messages
	events   int
	accepted int
}

func (m *relModel) fail(format string, args ...any) {
	m.t.Helper()
	tail := m.ops
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	m.t.Fatalf("%s: %s\nlast ops:\n  %s", m.be, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
}

func (m *relModel) outstanding() int {
	n := 0
	for _, x := range m.cbs {
		if x.out {
			n++
		}
	}
	return n
}

// prepare sets cb's fields for a new submission of kind k.
func (m *relModel) prepare(x *relMCB, k relKind, a, b byte) {
	cb := x.cb
	m.seq++
	cb.Data = m.seq
	cb.Buf, cb.Bufs, cb.Offset, cb.PollEvents, cb.FD = nil, nil, 0, 0, -1
	x.kind, x.pipe = k, int(a&1)
	p := m.pipes[x.pipe]
	switch k {
	case relKNop:
		cb.Op = aio.OpNop
		if a&2 != 0 {
			cb.FD = m.file
		}
	case relKFileRead:
		cb.Op, cb.FD = aio.OpRead, m.file
		cb.Offset = int64(int(a)*19+int(b)*7) % (relFileSize + 300)
		cb.Buf = make([]byte, 1+int(b)%300)
	case relKPipeRead:
		cb.Op, cb.FD, cb.Buf = aio.OpRead, p.r, make([]byte, 1+int(a>>1)%16)
	case relKPollIn:
		cb.Op, cb.FD, cb.PollEvents = aio.OpPoll, p.r, unix.POLLIN
	case relKPollOut:
		cb.Op, cb.FD, cb.PollEvents = aio.OpPoll, p.w, unix.POLLOUT
	case relKZeroRead:
		cb.Op, cb.FD, cb.Buf = aio.OpRead, p.r, []byte{}
	case relKInvalid:
		cb.Op, cb.FD = 0, p.r
	}
	// data already in the pipe (or possibly so) counts as seen
	x.sawData = m.maybeData(x.pipe)
	x.fdSaid, x.refused = false, false
}

// maybeData: pipe p may hold bytes (some were written that no delivered read
// accounts for).
func (m *relModel) maybeData(p int) bool {
	consumed := 0
	for _, r := range m.ranges[p] {
		consumed += r[1] - r[0]
	}
	return m.written[p] > consumed
}

// submit submits the IOCBs xs (after preparing the idle ones) and checks the
// result against the model.
func (m *relModel) submit(xs []*relMCB, kinds []relKind, a, b byte) {
	cbs := make([]*aio.IOCB, len(xs))
	// expected: the accepted prefix
	wantN, wantErr := 0, unix.Errno(0)
	out := m.outstanding()
	taken := map[*relMCB]bool{}
	prepared := map[*relMCB]bool{}
	for i, x := range xs {
		if !x.out && !prepared[x] {
			m.prepare(x, kinds[i], a+byte(i), b)
			prepared[x] = true
		}
		cbs[i] = x.cb
		if wantErr != 0 {
			continue
		}
		// docs/contract.md §3.3: a malformed IOCB (EINVAL), then an
		// outstanding one (EBUSY), and only then a full Context (EAGAIN).
		switch {
		case !x.out && !taken[x] && x.kind == relKInvalid:
			wantErr = unix.EINVAL
		case x.out || taken[x]:
			wantErr = unix.EBUSY // even when the Context is also full
		case out >= relMaxEvents:
			wantErr = unix.EAGAIN
		default:
			taken[x] = true
			out++
			wantN++
		}
	}
	n, err := m.c.Submit(cbs...)
	m.ops = append(m.ops, fmt.Sprintf("Submit(%s) = %d, %v", m.describe(xs), n, err))
	if n != wantN {
		m.fail("Submit accepted %d, model says %d (then %v)", n, wantN, wantErr)
	}
	switch {
	case wantN > 0 && err != nil:
		m.fail("Submit accepted %d but returned %v", n, err)
	case wantN == 0 && wantErr != 0 && !relIsErrno(err, wantErr):
		m.fail("Submit error %v, model says %v", err, wantErr)
	}
	for _, x := range xs[:n] {
		if !x.out {
			x.out, x.submitted = true, true
			m.accepted++
		}
	}
}

func (m *relModel) describe(xs []*relMCB) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("#%d %s", slices.Index(m.cbs, x), x.kind)
		if x.kind >= relKPipeRead && x.kind <= relKZeroRead {
			s += fmt.Sprintf("@pipe%d", x.pipe)
		}
	}
	return s
}

// deliver checks one event against the model and marks it delivered.
func (m *relModel) deliver(ev aio.Event, via string) {
	x := m.byCB[ev.IOCB]
	if x == nil {
		m.fail("%s: event for an unknown IOCB: %+v", via, ev)
	}
	i := slices.Index(m.cbs, x)
	if !x.out {
		m.fail("%s: event for #%d, which is not outstanding (delivered twice?): %+v", via, i, ev)
	}
	if ev.Data != x.cb.Data || ev.Res2 != 0 {
		m.fail("%s: event %+v for #%d (Data %d)", via, ev, i, x.cb.Data)
	}
	m.events++
	x.out = false
	x.lastRes = ev.Res
	canceled := ev.Res == -int64(unix.ECANCELED)
	switch {
	case x.fdSaid && !canceled:
		m.fail("%s: #%d %s: CancelFD canceled it (Error said ECANCELED) but its event has Res %d", via, i, x.kind, ev.Res)
	case canceled && !x.fdSaid && via != "Cancel":
		m.fail("%s: #%d %s ended with -ECANCELED though nothing canceled it (refused %v)", via, i, x.kind, x.refused)
	case canceled:
		return
	}
	switch x.kind {
	case relKNop, relKZeroRead:
		if ev.Res != 0 {
			m.fail("%s: #%d %s: Res %d, want 0", via, i, x.kind, ev.Res)
		}
	case relKFileRead:
		off, n := int(x.cb.Offset), len(x.cb.Buf)
		want := max(0, min(n, relFileSize-off))
		if ev.Res != int64(want) {
			m.fail("%s: #%d file read at %d of %d: Res %d, want %d", via, i, off, n, ev.Res, want)
		}
		if want > 0 && string(x.cb.Buf[:want]) != string(m.fileData[off:off+want]) {
			m.fail("%s: #%d file read at %d: wrong bytes", via, i, off)
		}
	case relKPollIn:
		if ev.Res != unix.POLLIN {
			m.fail("%s: #%d POLLIN poll: Res %#x, want POLLIN", via, i, ev.Res)
		}
		if !x.sawData {
			m.fail("%s: #%d POLLIN poll completed though its pipe never had data", via, i)
		}
	case relKPollOut:
		if ev.Res != unix.POLLOUT {
			m.fail("%s: #%d POLLOUT poll: Res %#x, want POLLOUT", via, i, ev.Res)
		}
	case relKPipeRead:
		if ev.Res <= 0 || ev.Res > int64(len(x.cb.Buf)) {
			m.fail("%s: #%d pipe read of %d: Res %d (%v)", via, i, len(x.cb.Buf), ev.Res, ev.Err())
		}
		if !x.sawData {
			m.fail("%s: #%d pipe read completed though its pipe never had data", via, i)
		}
		b := x.cb.Buf[:ev.Res]
		start := int(b[0])
		for k := range b {
			if int(b[k]) != start+k {
				m.fail("%s: #%d pipe read got %v: not a run of the stream", via, i, b)
			}
		}
		end := start + len(b)
		if end > m.written[x.pipe] {
			m.fail("%s: #%d pipe read got bytes %d..%d, only %d written", via, i, start, end, m.written[x.pipe])
		}
		for _, r := range m.ranges[x.pipe] {
			if start < r[1] && r[0] < end {
				m.fail("%s: #%d pipe read got bytes %d..%d, already delivered to another read (%d..%d)", via, i, start, end, r[0], r[1])
			}
		}
		m.ranges[x.pipe] = append(m.ranges[x.pipe], [2]int{start, end})
	}
}

func (m *relModel) cancel(x *relMCB) {
	i := slices.Index(m.cbs, x)
	ev, err := m.c.Cancel(x.cb)
	m.ops = append(m.ops, fmt.Sprintf("Cancel(#%d %s) = %d, %v", i, x.kind, ev.Res, err))
	switch {
	case !x.submitted || !x.out:
		if !relIsErrno(err, unix.EINVAL) {
			m.fail("Cancel(#%d, never submitted or delivered) = %+v, %v; want EINVAL", i, ev, err)
		}
	case x.fdSaid || x.kind == relKNop:
		// finished (CancelFD's -ECANCELED event is waiting; a NOP is done at once)
		if !relIsErrno(err, unix.EAGAIN) {
			m.fail("Cancel(#%d %s, finished) = %+v, %v; want EAGAIN", i, x.kind, ev, err)
		}
		x.refused = true
	case err == nil:
		if ev.IOCB != x.cb || ev.Res != -int64(unix.ECANCELED) {
			m.fail("Cancel(#%d) = %+v; want its event with -ECANCELED", i, ev)
		}
		m.deliver(ev, "Cancel")
		if !relIsErrno(m.c.Error(x.cb), unix.ECANCELED) {
			m.fail("Error(#%d) after Cancel = %v", i, m.c.Error(x.cb))
		}
	case x.certainlyWaiting():
		m.fail("Cancel(#%d %s, certainly waiting) = %v; it must be stopped", i, x.kind, err)
	case relIsErrno(err, unix.EAGAIN):
		x.refused = true
	default:
		m.fail("Cancel(#%d) = %v", i, err)
	}
}

func (m *relModel) cancelFD(fd int, x *relMCB) {
	var cb *aio.IOCB
	if x != nil {
		cb = x.cb
	}
	r, err := m.c.CancelFD(fd, cb)
	m.ops = append(m.ops, fmt.Sprintf("CancelFD(%d, %v) = %v, %v", fd, x != nil, r, err))
	if (err != nil) != (r == aio.NoCancelResult) {
		// Contract §6.1: NoCancelResult with every error, and only then.
		m.fail("CancelFD(%d) = %v, %v; want NoCancelResult exactly when there is an error", fd, r, err)
	}
	if fd < 0 {
		if !relIsErrno(err, unix.EBADF) {
			m.fail("CancelFD(-1) = %v, %v; want EBADF", r, err)
		}
		return
	}
	if x != nil && (x.cb.FD != fd || !x.submitted) {
		if !relIsErrno(err, unix.EINVAL) {
			m.fail("CancelFD(%d, cb with FD %d, submitted %v) = %v, %v; want EINVAL", fd, x.cb.FD, x.submitted, r, err)
		}
		return
	}
	if err != nil {
		m.fail("CancelFD(%d) = %v", fd, err)
	}
	var targets []*relMCB
	for _, y := range m.cbs {
		if y.out && !y.fdSaid && y.cb.FD == fd && (x == nil || y == x) {
			targets = append(targets, y)
		}
	}
	allowed := map[aio.CancelResult]bool{}
	certain, uncertain := 0, 0
	for _, y := range targets {
		if y.certainlyWaiting() {
			certain++
		} else {
			uncertain++
		}
	}
	switch {
	case len(targets) == 0:
		allowed[aio.AllDone] = true
	case uncertain == 0:
		allowed[aio.Canceled] = true
	case certain > 0:
		allowed[aio.Canceled], allowed[aio.NotCanceled] = true, true
	default:
		allowed[aio.Canceled], allowed[aio.NotCanceled], allowed[aio.AllDone] = true, true, true
	}
	if !allowed[r] {
		m.fail("CancelFD(%d, one %v) = %v; model allows %v (targets %s)", fd, x != nil, r, allowed, m.describe(targets))
	}
	// A target that had already finished (say, a zero-length read completed
	// at Submit) is not "outstanding" for CancelFD: any answer may leave it
	// as it was. But a waiting one must be canceled, and NotCanceled needs a
	// target that was not.
	notCanceled := 0
	for _, y := range targets {
		e := m.c.Error(y.cb)
		switch {
		case relIsErrno(e, unix.ECANCELED):
			y.fdSaid = true
		case y.certainlyWaiting():
			m.fail("after CancelFD, Error(%s) = %v; a waiting request must be canceled", m.describe([]*relMCB{y}), e)
		default:
			notCanceled++
		}
	}
	if r == aio.NotCanceled && notCanceled == 0 {
		m.fail("CancelFD said NotCanceled but every target reports ECANCELED (%s)", m.describe(targets))
	}
}

func (m *relModel) getEvents(minNr, n int, timeout time.Duration) {
	evs := make([]aio.Event, n)
	k, err := m.c.GetEvents(minNr, evs, &timeout)
	m.ops = append(m.ops, fmt.Sprintf("GetEvents(%d, %d, %v) = %d, %v", minNr, n, timeout, k, err))
	if minNr > n {
		if k != 0 || !relIsErrno(err, unix.EINVAL) {
			m.fail("GetEvents(min %d > len %d) = %d, %v; want EINVAL", minNr, n, k, err)
		}
		return
	}
	if err != nil || k < 0 || k > n {
		m.fail("GetEvents = %d, %v", k, err)
	}
	for _, ev := range evs[:k] {
		m.deliver(ev, "GetEvents")
	}
}

func (m *relModel) checkError(x *relMCB) {
	i := slices.Index(m.cbs, x)
	e := m.c.Error(x.cb)
	m.ops = append(m.ops, fmt.Sprintf("Error(#%d) = %v", i, e))
	switch {
	case !x.submitted:
		if !relIsErrno(e, unix.EINVAL) {
			m.fail("Error(#%d never submitted) = %v", i, e)
		}
	case !x.out:
		if x.lastRes >= 0 && e != nil || x.lastRes < 0 && !relIsErrno(e, unix.Errno(-x.lastRes)) {
			m.fail("Error(#%d delivered with %d) = %v", i, x.lastRes, e)
		}
	case x.fdSaid:
		if !relIsErrno(e, unix.ECANCELED) {
			m.fail("Error(#%d canceled by CancelFD) = %v", i, e)
		}
	case x.certainlyWaiting():
		if !errors.Is(e, unix.EINPROGRESS) {
			m.fail("Error(#%d certainly waiting) = %v; want EINPROGRESS", i, e)
		}
	default:
		if e != nil && !errors.Is(e, unix.EINPROGRESS) {
			m.fail("Error(#%d) = %v; want EINPROGRESS or nil", i, e)
		}
	}
}

func (m *relModel) write(p, k int) {
	k = min(k, relPipeCap-m.written[p])
	if k <= 0 {
		return
	}
	b := make([]byte, k)
	for i := range b {
		b[i] = byte(m.written[p] + i)
	}
	m.pipes[p].write(m.t, b)
	m.written[p] += k
	m.ops = append(m.ops, fmt.Sprintf("write(pipe%d, %d bytes)", p, k))
	for _, x := range m.cbs {
		if x.out && x.pipe == p && (x.kind == relKPipeRead || x.kind == relKPollIn) {
			x.sawData = true
		}
	}
}

// leftovers reads what is still in pipe p, without blocking.
func (m *relModel) leftovers(p int) []byte {
	fd := m.pipes[p].r
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		m.fail("fcntl: %v", err)
	}
	var all []byte
	buf := make([]byte, 512)
	for {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			return all
		}
		all = append(all, buf[:n]...)
	}
}

// checkStream: the delivered runs and the leftover bytes are disjoint pieces
// of what was written; when exact, they are all of it.
func (m *relModel) checkStream(exact bool) {
	for p := range 2 {
		left := m.leftovers(p)
		seen := make([]bool, m.written[p])
		for _, r := range m.ranges[p] {
			for k := r[0]; k < r[1]; k++ {
				seen[k] = true
			}
		}
		for i, b := range left {
			k := int(b)
			if k >= len(seen) || seen[k] || (i > 0 && k != int(left[i-1])+1) {
				m.fail("pipe%d: leftover bytes %v do not fit the stream (written %d, delivered %v)", p, left, m.written[p], m.ranges[p])
			}
			seen[k] = true
		}
		if len(left) > 0 && int(left[len(left)-1]) != m.written[p]-1 {
			m.fail("pipe%d: leftover bytes %v do not end the stream (written %d)", p, left, m.written[p])
		}
		if exact {
			for k, ok := range seen {
				if !ok {
					m.fail("pipe%d: byte %d of %d was lost (delivered %v, left %v)", p, k, m.written[p], m.ranges[p], left)
				}
			}
		}
	}
}

// finish ends a run that did not Destroy early: cancel what waits, collect
// everything, check the streams, Destroy.
func (m *relModel) finish() {
	for _, x := range m.cbs {
		if x.out && !x.fdSaid && x.kind != relKNop {
			m.cancel(x)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.outstanding() > 0 {
		if time.Now().After(deadline) {
			var left []*relMCB
			for _, x := range m.cbs {
				if x.out {
					left = append(left, x)
				}
			}
			m.fail("requests never ended: %s", m.describe(left))
		}
		m.getEvents(1, relPoolSize, 50*time.Millisecond)
	}
	m.getEvents(0, relPoolSize, 5*time.Millisecond)
	m.checkStream(true)
	if err := m.c.Destroy(); err != nil {
		m.fail("Destroy = %v", err)
	}
	if err := m.c.Destroy(); !relIsErrno(err, unix.EINVAL) {
		m.fail("second Destroy = %v", err)
	}
}

// destroyNow ends a run with requests possibly outstanding.
func (m *relModel) destroyNow() {
	m.ops = append(m.ops, "Destroy")
	if err := m.c.Destroy(); err != nil {
		m.fail("Destroy = %v", err)
	}
	if n, err := m.c.Submit(&aio.IOCB{Op: aio.OpNop}); n != 0 || !relIsErrno(err, unix.EINVAL) {
		m.fail("Submit after Destroy = %d, %v", n, err)
	}
	if _, err := m.c.GetEvents(0, make([]aio.Event, 2), relTimeout(0)); !relIsErrno(err, unix.EINVAL) {
		m.fail("GetEvents after Destroy = %v", err)
	}
	for _, x := range m.cbs {
		if _, err := m.c.Cancel(x.cb); !relIsErrno(err, unix.EINVAL) {
			m.fail("Cancel after Destroy = %v", err)
		}
		if x.submitted && errors.Is(m.c.Error(x.cb), unix.EINPROGRESS) {
			m.fail("Error after Destroy = EINPROGRESS")
		}
		x.out = false
	}
	if _, err := m.c.CancelFD(m.pipes[0].r, nil); !relIsErrno(err, unix.EINVAL) {
		m.fail("CancelFD after Destroy = %v", err)
	}
	if err := m.c.Destroy(); !relIsErrno(err, unix.EINVAL) {
		m.fail("second Destroy = %v", err)
	}
	m.checkStream(false)
}

// summary counts what a program did, for the log.
func (m *relModel) summary() string {
	count := map[string]int{}
	for _, op := range m.ops {
		name, _, _ := strings.Cut(op, "(")
		switch {
		case name == "Cancel" && strings.Contains(op, "= -125, <nil>"):
			name = "Cancel-stopped"
		case name == "CancelFD" && strings.Contains(op, "= Canceled"):
			name = "CancelFD-Canceled"
		case name == "Submit" && strings.Contains(op, "= 0,"):
			name = "Submit-refused"
		}
		count[name]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := fmt.Sprintf("%d accepted, %d events;", m.accepted, m.events)
	for _, k := range keys {
		s += fmt.Sprintf(" %s %d", k, count[k])
	}
	return s
}

// relRunModel interprets data on backend be.
func relRunModel(t *testing.T, be string, file int, fileData []byte, data []byte) (events, accepted int) {
	c, err := setupRetry(t, relMaxEvents, be)
	if err != nil {
		t.Fatalf("Setup(%s): %v", be, err)
	}
	m := &relModel{t: t, be: be, c: c, file: file, fileData: fileData, byCB: map[*aio.IOCB]*relMCB{}}
	m.pipes[0] = relNewPipe(t, false)
	m.pipes[1] = relNewPipe(t, true)
	defer m.pipes[0].close()
	defer m.pipes[1].close()
	defer c.Destroy()
	for range relPoolSize {
		x := &relMCB{cb: &aio.IOCB{FD: -1}}
		m.cbs = append(m.cbs, x)
		m.byCB[x.cb] = x
	}
	pos := 0
	next := func() byte {
		if pos >= len(data) {
			return 0
		}
		pos++
		return data[pos-1]
	}
	defer func() {
		if !t.Failed() {
			t.Logf("%s: %s", be, m.summary())
		}
	}()
	for ops := 0; pos < len(data) && ops < relMaxOps; ops++ {
		switch next() % 9 {
		case 0, 1:
			x, k, a, b := next(), next(), next(), next()
			m.submit([]*relMCB{m.cbs[int(x)%relPoolSize]}, []relKind{relKind(k % byte(relKinds))}, a, b)
		case 2:
			x, y, k, a := next(), next(), next(), next()
			m.submit([]*relMCB{m.cbs[int(x)%relPoolSize], m.cbs[int(y)%relPoolSize]},
				[]relKind{relKind(k % byte(relKinds)), relKind((k / 8) % byte(relKinds))}, a, a/3)
		case 3:
			m.cancel(m.cbs[int(next())%relPoolSize])
		case 4:
			sel, x := next(), m.cbs[int(next())%relPoolSize]
			switch sel % 6 {
			case 0:
				m.cancelFD(m.pipes[0].r, nil)
			case 1:
				m.cancelFD(m.pipes[1].r, nil)
			case 2:
				m.cancelFD(m.file, nil)
			case 3:
				fd := x.cb.FD
				if fd < 0 {
					fd = m.pipes[0].r
				}
				m.cancelFD(fd, x)
			case 4:
				fd := m.pipes[0].r
				if x.cb.FD == fd {
					fd = m.pipes[1].r
				}
				m.cancelFD(fd, x)
			default:
				m.cancelFD(-1, nil)
			}
		case 5, 6:
			a := next()
			n := 1 + int(a)%relPoolSize
			minNr := int(a/8) % (n + 2)
			m.getEvents(minNr, n, time.Duration(a%3)*time.Millisecond)
		case 7:
			a := next()
			m.write(int(a&1), 1+int(a>>1)%8)
		default:
			a := next()
			if a == 0xFF {
				m.destroyNow()
				return m.events, m.accepted
			}
			m.checkError(m.cbs[int(a)%relPoolSize])
		}
	}
	m.finish()
	return m.events, m.accepted
}

// relModelFile is the regular file the programs read.
func relModelFile(tb testing.TB) (int, []byte) {
	data := make([]byte, relFileSize)
	for i := range data {
		data[i] = byte(i*7 + 3 + i/256)
	}
	name := filepath.Join(tb.TempDir(), "model-file")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	return fd, data
}

func FuzzModel(f *testing.F) {
	// A few hand-written programs; the committed corpus adds more.
	f.Add([]byte{})
	f.Add([]byte{0, 0, 3, 0, 0, 3, 0, 5, 0xc8})       // poll, cancel it, GetEvents
	f.Add([]byte{0, 1, 2, 0, 0, 7, 0, 5, 0x09, 3, 1}) // pipe read, write, GetEvents, cancel
	f.Add([]byte{2, 0, 1, 0x18, 4, 4, 0, 0, 5, 0x0a, 8, 0xFF})
	file, fileData := relModelFile(f)
	var avail []string
	for _, be := range relBackends {
		if err := relUnavailable(be); err != nil {
			f.Logf("backend %s cannot start here: %v", be, err)
			continue
		}
		avail = append(avail, be)
	}
	if len(avail) == 0 {
		f.Skip("no backend can start here")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, be := range avail {
			relRunModel(t, be, file, fileData, data)
		}
	})
}
