//go:build linux

package uringaio_test

// Fault injection (issue 5, "Faults to inject"). The refusals are produced for
// real, in a re-executed copy of this test binary: a seccomp filter makes
// io_uring_setup or io_setup fail the way Docker's default profile or
// kernel.io_uring_disabled do, fs.aio-max-nr is used up by holding contexts,
// and RLIMIT_NOFILE / RLIMIT_MEMLOCK are lowered. A filter or a lowered hard
// limit cannot be undone, hence the child processes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
	"github.com/uringaio/uringaio/internal/seccomp"
)

// relReport is printed by a child in front of a line the parent repeats in its
// own log (the figures for the notes).
const relReport = "rel-report: "

func relChildf(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Log(relReport + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " | "))
}

// relRelay repeats a child's report lines in the parent's log.
func relRelay(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, relReport); i >= 0 {
			t.Log(l[i+len(relReport):])
		}
	}
}

// relDenyUring refuses the three io_uring system calls with errno, as Docker's
// default seccomp profile does (with EPERM).
func relDenyUring(errno unix.Errno) []seccomp.Rule {
	return []seccomp.Rule{
		{Nr: unix.SYS_IO_URING_SETUP, Errno: errno},
		{Nr: unix.SYS_IO_URING_ENTER, Errno: errno},
		{Nr: unix.SYS_IO_URING_REGISTER, Errno: errno},
	}
}

// relExercise checks that c really works: a NOP, a pipe read that waits for
// its data, and a poll that is canceled.
func relExercise(t *testing.T, c *aio.Context) {
	t.Helper()
	p := relNewPipe(t, false)
	nop := &aio.IOCB{Op: aio.OpNop, Data: 1}
	rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 16), Data: 2}
	if n, err := c.Submit(nop, rd); n != 2 || err != nil {
		t.Fatalf("Submit(nop, read) = %d, %v", n, err)
	}
	evs := relCollect(t, c, 1, 5*time.Second)
	if evs[0].IOCB != nop || evs[0].Res != 0 || evs[0].Data != 1 {
		t.Fatalf("nop event %+v", evs[0])
	}
	if err := c.Error(rd); !errors.Is(err, unix.EINPROGRESS) {
		t.Fatalf("Error(waiting read) = %v, want EINPROGRESS", err)
	}
	p.write(t, []byte("exercise"))
	evs = relCollect(t, c, 1, 5*time.Second)
	if evs[0].IOCB != rd || evs[0].Res != 8 || string(rd.Buf[:8]) != "exercise" {
		t.Fatalf("read event %+v buf %q", evs[0], rd.Buf)
	}
	poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: 3}
	if n, err := c.Submit(poll); n != 1 || err != nil {
		t.Fatalf("Submit(poll) = %d, %v", n, err)
	}
	ev, err := c.Cancel(poll)
	if err != nil || ev.Res != -int64(unix.ECANCELED) || ev.IOCB != poll || ev.Data != 3 {
		t.Fatalf("Cancel(waiting poll) = %+v, %v", ev, err)
	}
}

// relSetup is SetupWithOptions that must not panic.
func relSetup(t *testing.T, maxEvents int, be string) (c *aio.Context, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("SetupWithOptions(%d, %q) panicked: %v", maxEvents, be, r)
		}
	}()
	return aio.SetupWithOptions(maxEvents, aio.Options{Backend: be})
}

// relWantRefused checks a named backend's refusal: it matches ErrNotSupported
// and every errno in errnos, names the backend, and comes with no Context.
func relWantRefused(t *testing.T, c *aio.Context, err error, be string, errnos ...unix.Errno) {
	t.Helper()
	if err == nil {
		c.Destroy()
		t.Fatalf("Setup(Backend: %q) worked; want a refusal", be)
	}
	if c != nil {
		t.Fatalf("Setup(Backend: %q) returned a Context with its error %v", be, err)
	}
	if !errors.Is(err, aio.ErrNotSupported) {
		t.Errorf("Setup(Backend: %q): %v does not match ErrNotSupported", be, err)
	}
	for _, e := range errnos {
		if !errors.Is(err, e) {
			t.Errorf("Setup(Backend: %q): %v does not match %v", be, err, e)
		}
	}
	if !strings.Contains(err.Error(), be) {
		t.Errorf("Setup(Backend: %q): %q does not name the backend", be, err)
	}
}

// relWantHint checks that a backend's refusal points at that backend's own
// switches (issue 20): io_uring's at kernel.io_uring_disabled and seccomp,
// classic AIO's at seccomp (and, for EAGAIN, fs.aio-max-nr), and neither at
// the other's.
func relWantHint(t *testing.T, err error, be string, errno unix.Errno) {
	t.Helper()
	var want, not []string
	switch be {
	case "uring":
		want, not = []string{"seccomp"}, []string{"aio-max-nr"}
		if errno == unix.EPERM {
			want = append(want, "kernel.io_uring_disabled")
		}
	case "kaio":
		want, not = []string{"seccomp"}, []string{"io_uring"}
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s refused with %v: %q does not mention %q", be, errno, msg, w)
		}
	}
	for _, n := range not {
		if strings.Contains(msg, n) {
			t.Errorf("%s refused with %v: %q mentions %q, which is not %s's", be, errno, msg, n, be)
		}
	}
}

// TestRelFaultUringRefused: io_uring_setup refused by seccomp with EPERM (as
// Docker's default profile and kernel.io_uring_disabled=2 do) and with ENOSYS
// (an old kernel or a stricter filter). Auto picks classic AIO and records
// why; Backend "uring" (option or URINGAIO_BACKEND) fails with ErrNotSupported
// and the reason.
func TestRelFaultUringRefused(t *testing.T) {
	switch relChildRole() {
	case "uring-EPERM":
		relChildUringRefused(t, unix.EPERM)
		return
	case "uring-ENOSYS":
		relChildUringRefused(t, unix.ENOSYS)
		return
	}
	if err := relUnavailable("kaio"); err != nil {
		t.Skipf("classic AIO cannot start here, so auto has nothing to fall back to: %v", err)
	}
	for _, e := range []string{"EPERM", "ENOSYS"} {
		t.Run(e, func(t *testing.T) {
			relRelay(t, relRunChild(t, "TestRelFaultUringRefused", "uring-"+e))
		})
	}
}

func relChildUringRefused(t *testing.T, errno unix.Errno) {
	if err := seccomp.Install(relDenyUring(errno)); err != nil {
		t.Fatal(err)
	}
	for _, opt := range []string{"", "auto"} {
		c, err := relSetup(t, 8, opt)
		if err != nil {
			t.Fatalf("Setup(Backend: %q) with io_uring refused (%v): %v; want classic AIO", opt, errno, err)
		}
		if c.Backend() != "kaio" {
			t.Fatalf("auto ran %q with io_uring refused", c.Backend())
		}
		p := c.Probes()
		if len(p) != 2 || p[0].Backend != "uring" || p[1].Backend != "kaio" || p[1].Err != nil {
			t.Fatalf("Probes() = %v, want [uring: reason, kaio: <nil>]", p)
		}
		if !errors.Is(p[0].Err, errno) || !errors.Is(p[0].Err, aio.ErrNotSupported) {
			t.Fatalf("Probes()[0].Err = %v, want %v and ErrNotSupported", p[0].Err, errno)
		}
		relWantHint(t, p[0].Err, "uring", errno)
		relExercise(t, c)
		if err := c.Destroy(); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		relChildf(t, "io_uring refused with %v: auto (%q) ran kaio; probe reason: %v", errno, opt, p[0].Err)
	}
	c, err := relSetup(t, 8, "uring")
	relWantRefused(t, c, err, "uring", errno)
	relWantHint(t, err, "uring", errno)
	relChildf(t, "io_uring refused with %v: Backend \"uring\": %v", errno, err)

	// The same through the environment variable; the message says where the
	// name came from.
	t.Setenv("URINGAIO_BACKEND", "uring")
	c, err = relSetup(t, 8, "")
	relWantRefused(t, c, err, "uring", errno)
	if !strings.Contains(err.Error(), "URINGAIO_BACKEND") {
		t.Errorf("refusal %q does not say the name came from URINGAIO_BACKEND", err)
	}
	t.Log(relChildOK)
}

// TestRelFaultKaioRefused: io_setup refused by seccomp with ENOSYS and with
// EPERM. Auto still runs io_uring; Backend "kaio" fails with ErrNotSupported
// and the reason, which points at classic AIO's switches, not io_uring's.
func TestRelFaultKaioRefused(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOSYS, unix.EPERM} {
		if relChildRole() != "kaio-"+unix.ErrnoName(errno) {
			continue
		}
		if err := seccomp.Install([]seccomp.Rule{{Nr: unix.SYS_IO_SETUP, Errno: errno}}); err != nil {
			t.Fatal(err)
		}
		c, err := relSetup(t, 8, "auto")
		if err != nil {
			t.Fatalf("auto with io_setup refused: %v", err)
		}
		if p := c.Probes(); c.Backend() != "uring" || len(p) != 1 || p[0].Backend != "uring" || p[0].Err != nil {
			t.Fatalf("auto ran %q, Probes() = %v; want uring alone", c.Backend(), p)
		}
		relExercise(t, c)
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
		c, err = relSetup(t, 8, "kaio")
		relWantRefused(t, c, err, "kaio", errno)
		relWantHint(t, err, "kaio", errno)
		relChildf(t, "io_setup refused with %s: auto ran uring; Backend \"kaio\": %v", unix.ErrnoName(errno), err)
		t.Log(relChildOK)
		return
	}
	if err := relUnavailable("uring"); err != nil {
		t.Skipf("io_uring cannot start here: %v", err)
	}
	for _, e := range []string{"ENOSYS", "EPERM"} {
		t.Run(e, func(t *testing.T) {
			relRelay(t, relRunChild(t, "TestRelFaultKaioRefused", "kaio-"+e))
		})
	}
}

// TestRelFaultKaioExhausted: fs.aio-max-nr used up by holding classic AIO
// contexts until io_setup fails with EAGAIN. The error names the limit and how
// to raise it; auto still runs (io_uring); and with io_uring refused as well,
// auto's error gives both reasons.
//
// fs.aio-max-nr is system-wide: for the few tens of milliseconds the child
// holds it used up, io_setup fails in every process on the machine. Set
// RELIABILITY_NO_GLOBAL_FAULTS=1 to skip this test on a shared machine.
func TestRelFaultKaioExhausted(t *testing.T) {
	if relChildRole() == "kaio-EAGAIN" {
		relChildKaioExhausted(t)
		return
	}
	if os.Getenv("RELIABILITY_NO_GLOBAL_FAULTS") == "1" {
		t.Skip("RELIABILITY_NO_GLOBAL_FAULTS=1: not using up the system-wide fs.aio-max-nr")
	}
	for _, be := range relBackends {
		if err := relUnavailable(be); err != nil {
			t.Skipf("backend %s cannot start here: %v", be, err)
		}
	}
	relRelay(t, relRunChild(t, "TestRelFaultKaioExhausted", "kaio-EAGAIN"))
}

func relChildKaioExhausted(t *testing.T) {
	// fs.aio-max-nr is system-wide: while this child holds it, io_setup fails
	// for every process on the machine. Hold it as briefly as possible.
	var held []*aio.Context
	var exhausted time.Time
	defer func() {
		// io_destroy gives the budget back at once (then waits for the
		// context to drain), so the window ends when the Destroys start.
		if !exhausted.IsZero() {
			relChildf(t, "fs.aio-max-nr was held used up for %v", time.Since(exhausted).Round(10*time.Microsecond))
		}
		var wg sync.WaitGroup
		for _, c := range held {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Destroy()
			}()
		}
		wg.Wait()
	}()
	// Take contexts sized to what is left (io_setup(n+1) for maxEvents n
	// charges n+1 against fs.aio-max-nr), then a one-request context must be
	// refused: the system-wide budget is gone.
	readInt := func(path string) int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var lastErr error
	for tries := 0; ; tries++ {
		if tries > 100 {
			t.Fatalf("fs.aio-max-nr never ran out after %d contexts", len(held))
		}
		size := min(32768, readInt("/proc/sys/fs/aio-max-nr")-readInt("/proc/sys/fs/aio-nr")-1)
		if size < 1 {
			size = 1
		}
		c, err := relSetup(t, size, "kaio")
		if err == nil {
			held = append(held, c)
			continue
		}
		if !errors.Is(err, unix.EAGAIN) {
			t.Fatalf("Setup(%d, kaio) while using up fs.aio-max-nr: %v; want EAGAIN", size, err)
		}
		if exhausted.IsZero() {
			exhausted = time.Now()
		}
		lastErr = err
		if size == 1 {
			break
		}
	}
	if len(held) == 0 {
		t.Fatalf("not one classic AIO context could be set up: %v", lastErr)
	}
	relWantRefused(t, nil, lastErr, "kaio", unix.EAGAIN)
	msg := lastErr.Error()
	for _, want := range []string{"fs.aio-max-nr", "sysctl -w fs.aio-max-nr="} {
		if !strings.Contains(msg, want) {
			t.Errorf("EAGAIN refusal %q does not mention %q", msg, want)
		}
	}
	nr, _ := os.ReadFile("/proc/sys/fs/aio-nr")
	relChildf(t, "fs.aio-max-nr used up by %d kaio contexts (aio-nr %s); Setup(1, kaio): %v",
		len(held), strings.TrimSpace(string(nr)), lastErr)

	// Auto does not need classic AIO while io_uring runs. (A NOP round trip
	// only: the window must stay short.)
	c, err := relSetup(t, 8, "auto")
	if err != nil {
		t.Fatalf("auto with fs.aio-max-nr used up: %v", err)
	}
	if c.Backend() != "uring" {
		t.Fatalf("auto ran %q", c.Backend())
	}
	nop := &aio.IOCB{Op: aio.OpNop, Data: 9}
	if ev, err := c.Do(context.Background(), nop); err != nil || ev.Res != 0 || ev.Data != 9 {
		t.Fatalf("Do(nop) on auto = %+v, %v", ev, err)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}

	// Now refuse io_uring too: auto must report both reasons.
	if err := seccomp.Install(relDenyUring(unix.EPERM)); err != nil {
		t.Fatal(err)
	}
	// fs.aio-max-nr is system-wide: another process (another test binary
	// run at the same time) may have freed room since it ran out. Take
	// that room too, just before auto looks (seen once in 20 rounds with
	// three suites running at once).
	for {
		c, err := aio.SetupWithOptions(1, aio.Options{Backend: "kaio"})
		if err != nil {
			break
		}
		held = append(held, c)
	}
	c, err = relSetup(t, 8, "auto")
	probes := relWantBoth(t, c, err, unix.EPERM, unix.EAGAIN)
	if len(probes) > 1 && (probes[1].Err == nil || !strings.Contains(probes[1].Err.Error(), "fs.aio-max-nr")) {
		t.Errorf("kaio's probe %v does not mention fs.aio-max-nr", probes[1].Err)
	}
	relChildf(t, "io_uring EPERM + fs.aio-max-nr used up: auto runs threads; probes %v", probes)
	t.Log(relChildOK)
}

// relWantBoth checks auto's refusal when no backend can run.
func relWantBoth(t *testing.T, c *aio.Context, err error, uringErrno, kaioErrno unix.Errno) []aio.Probe {
	t.Helper()
	// Both kernel mechanisms refused: auto runs the threads backend (contract
	// §9) and Probes keeps both reasons.
	if err != nil {
		t.Fatalf("auto with both kernel mechanisms refused: %v; want the threads backend", err)
	}
	defer c.Destroy()
	if got := c.Backend(); got != "threads" {
		t.Fatalf("auto ran %q with both kernel mechanisms refused, want threads", got)
	}
	probes := c.Probes()
	want := []struct {
		name  string
		errno unix.Errno
	}{{"uring", uringErrno}, {"kaio", kaioErrno}, {"threads", 0}}
	if len(probes) != len(want) {
		t.Fatalf("Probes() = %v, want uring, kaio, threads", probes)
	}
	for i, w := range want {
		p := probes[i]
		if p.Backend != w.name {
			t.Errorf("Probes()[%d] = %v, want %s", i, p, w.name)
			continue
		}
		if w.errno == 0 {
			if p.Err != nil {
				t.Errorf("probe %s: %v, want nil (the one that runs)", p.Backend, p.Err)
			}
			continue
		}
		if !errors.Is(p.Err, aio.ErrNotSupported) || !errors.Is(p.Err, w.errno) {
			t.Errorf("probe %s: %v, want ErrNotSupported and %v", p.Backend, p.Err, w.errno)
		}
	}
	return probes
}

// TestRelFaultBothRefused: io_uring_setup refused with EPERM and io_setup with
// ENOSYS: auto runs the threads backend and Probes gives both reasons; the
// named kernel backends are refused with theirs, never falling back.
func TestRelFaultBothRefused(t *testing.T) {
	if relChildRole() == "both" {
		rules := append(relDenyUring(unix.EPERM), seccomp.Rule{Nr: unix.SYS_IO_SETUP, Errno: unix.ENOSYS})
		if err := seccomp.Install(rules); err != nil {
			t.Fatal(err)
		}
		for _, opt := range []string{"", "auto"} {
			c, err := relSetup(t, 8, opt)
			probes := relWantBoth(t, c, err, unix.EPERM, unix.ENOSYS)
			relChildf(t, "both kernel mechanisms refused: Setup(Backend: %q) runs threads; probes %v", opt, probes)
		}
		c, err := relSetup(t, 8, "uring")
		relWantRefused(t, c, err, "uring", unix.EPERM)
		relWantHint(t, err, "uring", unix.EPERM)
		c, err = relSetup(t, 8, "kaio")
		relWantRefused(t, c, err, "kaio", unix.ENOSYS)
		relWantHint(t, err, "kaio", unix.ENOSYS)
		t.Log(relChildOK)
		return
	}
	relRelay(t, relRunChild(t, "TestRelFaultBothRefused", "both"))
}

// TestRelFaultTightLimits: RLIMIT_NOFILE lowered until no descriptor is left,
// then to exactly one free descriptor, and RLIMIT_MEMLOCK set to 0. Setup
// fails with a clear error (EMFILE, naming RLIMIT_NOFILE) or works, never
// panics; when it works, Submit and GetEvents are correct.
func TestRelFaultTightLimits(t *testing.T) {
	if relChildRole() == "limits" {
		relChildLimits(t)
		return
	}
	relRelay(t, relRunChild(t, "TestRelFaultTightLimits", "limits"))
}

func relChildLimits(t *testing.T) {
	var avail []string
	for _, be := range relBackends {
		if relUnavailable(be) == nil {
			avail = append(avail, be)
		}
	}
	if len(avail) == 0 {
		t.Fatal("no backend can start in the child")
	}
	// Everything the checks need later is opened now: the runtime's poller
	// (os.Pipe), the pipes relExercise makes come from this pool.
	warm, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	defer w2.Close()
	type pipe struct{ r, w int }
	var pool []pipe
	for range 16 {
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		pool = append(pool, pipe{fds[0], fds[1]})
	}
	defer func() {
		for _, p := range pool {
			unix.Close(p.r)
			unix.Close(p.w)
		}
	}()
	exercise := func(c *aio.Context) {
		p := pool[0]
		pool = pool[1:]
		rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 8), Data: 7}
		nop := &aio.IOCB{Op: aio.OpNop, Data: 8}
		poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: 9}
		if n, err := c.Submit(rd, nop); n != 2 || err != nil {
			t.Fatalf("Submit = %d, %v", n, err)
		}
		// The read waits for data. A backend that waits in user space
		// (kaio's and threads' pool) holds a duplicate of the descriptor
		// so that the request stays bound to its file; with no descriptor
		// to spare it must end with EMFILE, never go on by number.
		rdDone := false
		evs := make([]aio.Event, 2)
		n, err := c.GetEvents(1, evs, relTimeout(5*time.Second))
		if err != nil || n == 0 {
			t.Fatalf("GetEvents = %d, %v", n, err)
		}
		for _, ev := range evs[:n] {
			switch {
			case ev.IOCB == nop && ev.Res == 0:
			case ev.IOCB == rd && ev.Res == -int64(unix.EMFILE):
				rdDone = true
				relChildf(t, "%s: a pipe read that must wait needs a descriptor of its own: EMFILE", c.Backend())
			default:
				t.Fatalf("event %+v (%v)", ev, ev.Err())
			}
		}
		if n == 1 && evs[0].IOCB != nop {
			if ev := relCollect(t, c, 1, 5*time.Second); ev[0].IOCB != nop || ev[0].Res != 0 {
				t.Fatalf("nop event %+v", ev[0])
			}
		}
		if !rdDone {
			if _, err := unix.Write(p.w, []byte("limits!!")); err != nil {
				t.Fatal(err)
			}
			switch ev := relCollect(t, c, 1, 5*time.Second)[0]; {
			case ev.IOCB == rd && ev.Res == -int64(unix.EMFILE):
				relChildf(t, "%s: a pipe read that must wait needs a descriptor of its own: EMFILE", c.Backend())
			case ev.IOCB != rd || ev.Res != 8 || string(rd.Buf) != "limits!!":
				t.Fatalf("read event %+v %q", ev, rd.Buf)
			}
		}
		if n, err := c.Submit(poll); n != 1 || err != nil {
			t.Fatalf("Submit(poll) = %d, %v", n, err)
		}
		if ev, err := c.Cancel(poll); err != nil || ev.Res != -int64(unix.ECANCELED) {
			t.Fatalf("Cancel(poll) = %+v, %v", ev, err)
		}
	}
	lowest := func() int {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open /dev/null: %v", err)
		}
		unix.Close(fd)
		return fd
	}
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	setNofile := func(cur uint64) {
		t.Helper()
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: cur, Max: orig.Max}); err != nil {
			t.Fatalf("setrlimit(RLIMIT_NOFILE, %d): %v", cur, err)
		}
	}
	free := lowest() // every descriptor below this one is open

	// No descriptor left: every backend must refuse cleanly.
	setNofile(uint64(free))
	for _, be := range avail {
		c, err := relSetup(t, 64, be)
		relWantRefused(t, c, err, be, unix.EMFILE)
		if err != nil && !strings.Contains(err.Error(), "RLIMIT_NOFILE") {
			t.Errorf("EMFILE refusal %q does not name RLIMIT_NOFILE", err)
		}
		relChildf(t, "RLIMIT_NOFILE=%d (none free): Setup(%s): %v", free, be, err)
	}
	c, err := relSetup(t, 64, "auto")
	if err == nil {
		c.Destroy()
		t.Fatal("auto worked with no descriptor left")
	}
	if !errors.Is(err, unix.EMFILE) || !errors.Is(err, aio.ErrNotSupported) {
		t.Errorf("auto with no descriptor left: %v; want EMFILE and ErrNotSupported", err)
	}
	relChildf(t, "RLIMIT_NOFILE=%d (none free): Setup(auto): %v", free, err)

	// Exactly one free descriptor: each backend needs one (the ring, or the
	// eventfd that wakes a classic AIO wait) and must work.
	setNofile(uint64(free + 1))
	for _, be := range avail {
		c, err := relSetup(t, 64, be)
		if err != nil {
			t.Fatalf("Setup(%s) with one free descriptor: %v", be, err)
		}
		exercise(c)
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
		if got := lowest(); got != free {
			t.Fatalf("after Destroy the lowest free descriptor is %d, want %d (a descriptor leaked)", got, free)
		}
		relChildf(t, "RLIMIT_NOFILE=%d (one free): Setup(%s) works, ops correct, descriptor released", free+1, be)
	}
	setNofile(orig.Cur)

	// RLIMIT_MEMLOCK 0 (hard limit too): rings are charged to the memory
	// cgroup since Linux 5.12, so Setup may work; if it does not, the error
	// must say so.
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		t.Fatalf("setrlimit(RLIMIT_MEMLOCK, 0): %v", err)
	}
	for _, be := range avail {
		for _, n := range []int{1, 4096, 32768} {
			c, err := relSetup(t, n, be)
			if err != nil {
				if !errors.Is(err, aio.ErrNotSupported) || !strings.Contains(err.Error(), "RLIMIT_MEMLOCK") {
					t.Errorf("Setup(%d, %s) with RLIMIT_MEMLOCK 0: %v; want a refusal naming RLIMIT_MEMLOCK", n, be, err)
				}
				relChildf(t, "RLIMIT_MEMLOCK=0: Setup(%d, %s) refused: %v", n, be, err)
				continue
			}
			if n == 4096 {
				exercise(c)
			}
			if err := c.Destroy(); err != nil {
				t.Fatal(err)
			}
			relChildf(t, "RLIMIT_MEMLOCK=0: Setup(%d, %s) works", n, be)
		}
	}
	// Both at once.
	setNofile(uint64(free + 1))
	c, err = relSetup(t, 256, "auto")
	if err != nil {
		t.Fatalf("auto with RLIMIT_NOFILE one free and RLIMIT_MEMLOCK 0: %v", err)
	}
	exercise(c)
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	setNofile(orig.Cur)
	t.Log(relChildOK)
}

// TestRelThreadExit: a goroutine locks its OS thread, submits, and returns
// without unlocking, so the thread exits while the request waits. io_uring
// cancels an exiting task's requests; the library must hide that: the request
// completes normally when its data arrives. Reads (blocking and O_NONBLOCK
// pipes) and polls, several rounds; then the same with the thread that reaps
// dying too, and a cancel after the thread's death.
func TestRelThreadExit(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		c := relCtx(t, be, 16)
		deadThreads := 0
		// submitFromDyingThread submits cbs from a thread that then exits, and
		// waits until the kernel has seen the thread go.
		submitFromDyingThread := func(cbs ...*aio.IOCB) {
			t.Helper()
			var n int
			var err error
			relOnDyingThread(t, func() { n, err = c.Submit(cbs...) })
			if n != len(cbs) || err != nil {
				t.Fatalf("Submit from the locked thread = %d, %v", n, err)
			}
			deadThreads++
		}
		for round := range 4 {
			nonblock := round%2 == 1
			p := relNewPipe(t, nonblock)
			want := fmt.Sprintf("round-%d", round)
			rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 64), Data: uint64(round)}
			submitFromDyingThread(rd)
			relNoEvents(t, c, 20*time.Millisecond)
			if err := c.Error(rd); !errors.Is(err, unix.EINPROGRESS) {
				t.Fatalf("round %d: Error(read) after its thread died = %v, want EINPROGRESS", round, err)
			}
			p.write(t, []byte(want))
			evs := relCollect(t, c, 1, 5*time.Second)
			if evs[0].IOCB != rd || evs[0].Res != int64(len(want)) || string(rd.Buf[:len(want)]) != want {
				t.Fatalf("round %d (nonblock %v): read event %+v, buf %q; want %q", round, nonblock, evs[0], rd.Buf[:max(evs[0].Res, 0)], want)
			}

			// A poll and a vectored read together.
			q := relNewPipe(t, nonblock)
			poll := &aio.IOCB{Op: aio.OpPoll, FD: p.r, PollEvents: unix.POLLIN, Data: 100}
			b1, b2 := make([]byte, 3), make([]byte, 5)
			rv := &aio.IOCB{Op: aio.OpReadv, FD: q.r, Bufs: [][]byte{b1, b2}, Data: 101}
			submitFromDyingThread(poll, rv)
			relNoEvents(t, c, 20*time.Millisecond)
			p.write(t, []byte("x"))
			q.write(t, []byte("abcdefgh"))
			evs = relCollect(t, c, 2, 5*time.Second)
			for _, ev := range evs {
				switch ev.IOCB {
				case poll:
					// (the exact mask is checked in TestRelInputPollMask)
					if ev.Res <= 0 || ev.Res&unix.POLLIN == 0 {
						t.Fatalf("round %d: poll event %+v, want POLLIN", round, ev)
					}
				case rv:
					if ev.Res != 8 || string(b1)+string(b2) != "abcdefgh" {
						t.Fatalf("round %d: readv event %+v, bufs %q %q", round, ev, b1, b2)
					}
				default:
					t.Fatalf("unexpected event %+v", ev)
				}
			}
		}

		// A request whose submitting thread died can still be canceled.
		p := relNewPipe(t, false)
		rd := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 8), Data: 55}
		submitFromDyingThread(rd)
		relNoEvents(t, c, 20*time.Millisecond)
		ev, err := c.Cancel(rd)
		if err != nil || ev.Res != -int64(unix.ECANCELED) || ev.IOCB != rd {
			t.Fatalf("Cancel after the submitting thread died = %+v, %v; want -ECANCELED", ev, err)
		}
		relNoEvents(t, c, 20*time.Millisecond)

		// The threads that reap (and so resubmit) die as well, and two reads
		// compete for one pipe: each round one byte arrives, one read wins it
		// and the loser waits again, armed by a thread that then dies. Over 40
		// rounds no read may end with an -ECANCELED nobody asked for.
		p = relNewPipe(t, false)
		r1 := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 1), Data: 1}
		r2 := &aio.IOCB{Op: aio.OpRead, FD: p.r, Buf: make([]byte, 1), Data: 2}
		submitFromDyingThread(r1, r2)
		got := make(map[byte]bool)
		for round := range 40 {
			p.write(t, []byte{byte(round)})
			var ev aio.Event
			var n int
			var err error
			relOnDyingThread(t, func() {
				evs := make([]aio.Event, 2)
				n, err = c.GetEvents(1, evs, relTimeout(5*time.Second))
				ev = evs[0]
			})
			deadThreads++
			if n != 1 || err != nil || ev.Res != 1 {
				t.Fatalf("losing-reader round %d: GetEvents = %d, %v, %+v (%v); want one read of 1 byte", round, n, err, ev, ev.Err())
			}
			b := ev.IOCB.Buf[0]
			if got[b] || b != byte(round) {
				t.Fatalf("losing-reader round %d: read byte %d", round, b)
			}
			got[b] = true
			submitFromDyingThread(ev.IOCB)
		}
		for _, cb := range []*aio.IOCB{r1, r2} {
			if ev, err := c.Cancel(cb); err != nil || ev.Res != -int64(unix.ECANCELED) {
				t.Fatalf("Cancel(waiting read) = %+v, %v", ev, err)
			}
		}
		t.Logf("%s: %d OS threads exited while holding requests; every request completed with its data", be, deadThreads)
	})
}

// relOnDyingThread runs fn on a goroutine that has locked its OS thread and
// returns without unlocking it, so that the runtime ends the thread; it
// returns once the thread is gone. The process's main thread is never ended
// that way (the runtime parks it instead), so a goroutine that lands on it
// keeps it, locked, until the test ends, and another one is tried.
func relOnDyingThread(t *testing.T, fn func()) {
	t.Helper()
	for range 3 {
		tidc := make(chan int)
		release := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			if unix.Gettid() == unix.Getpid() {
				tidc <- -1
				<-release
				runtime.UnlockOSThread()
				return
			}
			fn()
			tidc <- unix.Gettid()
			// returns locked: the runtime ends this thread
		}()
		tid := <-tidc
		if tid < 0 {
			t.Cleanup(func() { close(release) })
			continue
		}
		path := fmt.Sprintf("/proc/self/task/%d", tid)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := os.Stat(path); os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("thread %d did not exit", tid)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("could not get a goroutine onto a thread other than the main one")
}

// TestRelCloseOutstanding: close(fd) while a request on it waits. No crash;
// the request ends exactly once (with whatever result, but never with another
// file's data); and a later request on a new file that got the same descriptor
// number gets its own data.
func TestRelCloseOutstanding(t *testing.T) {
	relEachBackend(t, func(t *testing.T, be string) {
		for _, nonblock := range []bool{false, true} {
			for _, kind := range []string{"read", "poll"} {
				for _, then := range []string{"write-old", "cancel", "hangup"} {
					name := fmt.Sprintf("%s/nonblock=%v/%s", kind, nonblock, then)
					t.Run(name, func(t *testing.T) { relCloseOutstanding(t, be, nonblock, kind, then) })
				}
			}
		}
	})
}

func relCloseOutstanding(t *testing.T, be string, nonblock bool, kind, then string) {
	c := relCtx(t, be, 8)
	a := relNewPipe(t, nonblock)
	cbA := &aio.IOCB{Op: aio.OpRead, FD: a.r, Buf: make([]byte, 64), Data: 1}
	if kind == "poll" {
		cbA = &aio.IOCB{Op: aio.OpPoll, FD: a.r, PollEvents: unix.POLLIN, Data: 1}
	}
	if n, err := c.Submit(cbA); n != 1 || err != nil {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	relNoEvents(t, c, 10*time.Millisecond) // it waits (and io_uring has armed its poll)

	num := a.r
	if err := unix.Close(a.r); err != nil {
		t.Fatal(err)
	}
	a.r = -1

	// A new pipe's read end takes the same number.
	b := relNewPipe(t, nonblock)
	if b.r != num {
		if err := unix.Dup3(b.r, num, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		unix.Close(b.r)
		b.r = num
	}
	b.write(t, []byte("BBBB-new-file"))

	endedA := 0
	var evA aio.Event
	take := func(evs []aio.Event) {
		for _, ev := range evs {
			if ev.IOCB != cbA {
				t.Fatalf("unexpected event %+v", ev)
			}
			endedA++
			evA = ev
		}
	}
	switch then {
	case "write-old":
		// The old file becomes readable: the request may complete, but only
		// from the old file.
		a.write(t, []byte("AAAA"))
		take(relCollect(t, c, 1, 5*time.Second))
	case "cancel":
		ev, err := c.Cancel(cbA)
		if err != nil || ev.Res != -int64(unix.ECANCELED) {
			t.Fatalf("Cancel(request on the closed descriptor) = %+v, %v; want -ECANCELED", ev, err)
		}
		endedA++
		evA = ev
	case "hangup":
		// The old file's writer goes away: POLLHUP / EOF on the old file.
		unix.Close(a.w)
		a.w = -1
		take(relCollect(t, c, 1, 5*time.Second))
	}
	if endedA != 1 {
		t.Fatalf("request ended %d times", endedA)
	}
	switch {
	case kind == "read" && evA.Res > 0:
		if got := string(cbA.Buf[:evA.Res]); then != "write-old" || got != "AAAA"[:min(evA.Res, 4)] {
			t.Fatalf("the request on the closed descriptor read %q (Res %d): another file's data", got, evA.Res)
		}
	case kind == "poll" && evA.Res > 0:
		const pollRDNORM = 0x40
		if evA.Res&^int64(unix.POLLIN|pollRDNORM|unix.POLLHUP|unix.POLLERR) != 0 {
			t.Fatalf("poll on the closed descriptor: mask %#x", evA.Res)
		}
	}
	t.Logf("request on the closed descriptor ended once with Res %d (%v)", evA.Res, evA.Err())

	// The new file under the old number is unaffected.
	cbB := &aio.IOCB{Op: aio.OpRead, FD: num, Buf: make([]byte, 64), Data: 2}
	if n, err := c.Submit(cbB); n != 1 || err != nil {
		t.Fatalf("Submit(new file) = %d, %v", n, err)
	}
	evs := relCollect(t, c, 1, 5*time.Second)
	if evs[0].IOCB != cbB || evs[0].Res != 13 || !bytes.Equal(cbB.Buf[:13], []byte("BBBB-new-file")) {
		t.Fatalf("read on the reused descriptor: %+v (%v) %q; want its own 13 bytes", evs[0], evs[0].Err(), cbB.Buf[:max(evs[0].Res, 0)])
	}
	relNoEvents(t, c, 10*time.Millisecond)
}
