//go:build linux

package uringaio_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/aio"
)

// TestMain is in compat_test.go, which builds on every target.

// ---- helpers shared by the reliability tests (reliability_*_test.go) ----

// relBackends are the backends the reliability tests run on.
var relBackends = []string{"uring", "kaio"}

// relEachBackend runs fn as a subtest per backend, skipping (with the reason)
// a backend that cannot start here. URINGAIO_REL_ONLY=kaio (a comma-separated
// list) narrows it, for debugging one backend.
func relEachBackend(t *testing.T, fn func(t *testing.T, be string)) {
	t.Helper()
	for _, be := range relBackends {
		if only := os.Getenv("URINGAIO_REL_ONLY"); only != "" && !strings.Contains(","+only+",", ","+be+",") {
			continue
		}
		t.Run(be, func(t *testing.T) {
			if err := relUnavailable(be); err != nil {
				t.Skipf("backend %s cannot start here: %v", be, err)
			}
			fn(t, be)
		})
	}
}

// relUnavailable says why backend cannot start, or nil.
func relUnavailable(be string) error {
	c, err := setupRetry(nil, 1, be)
	if err != nil {
		return err
	}
	return c.Destroy()
}

// relCtx sets up a Context on be and destroys it when the test ends.
func relCtx(t testing.TB, be string, maxEvents int) *aio.Context {
	t.Helper()
	c, err := setupRetry(t, maxEvents, be)
	if err != nil {
		t.Fatalf("SetupWithOptions(%d, %q): %v", maxEvents, be, err)
	}
	if c.Backend() != be {
		t.Fatalf("Backend() = %q, want %q", c.Backend(), be)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	return c
}

// relPipe is a pipe made with pipe2(2), both ends raw descriptors.
type relPipe struct{ r, w int }

// relNewPipe makes a pipe (O_NONBLOCK when nonblock) closed when the test ends
// (unless the test closed an end itself and set it to -1).
func relNewPipe(t testing.TB, nonblock bool) *relPipe {
	t.Helper()
	flags := unix.O_CLOEXEC
	if nonblock {
		flags |= unix.O_NONBLOCK
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], flags); err != nil {
		t.Fatalf("pipe2: %v", err)
	}
	p := &relPipe{fds[0], fds[1]}
	t.Cleanup(p.close)
	return p
}

func (p *relPipe) close() {
	if p.r >= 0 {
		unix.Close(p.r)
		p.r = -1
	}
	if p.w >= 0 {
		unix.Close(p.w)
		p.w = -1
	}
}

// write writes all of b to the pipe's write end.
func (p *relPipe) write(t testing.TB, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n, err := unix.Write(p.w, b)
		if err == unix.EINTR || err == unix.EAGAIN {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			t.Fatalf("write pipe: %v", err)
		}
		b = b[n:]
	}
}

// relTimeout is a *time.Duration for GetEvents.
func relTimeout(d time.Duration) *time.Duration { return &d }

// relCollect gathers exactly want events within d, failing the test when fewer
// arrive; it also fails when more arrive within a short grace period.
func relCollect(t testing.TB, c *aio.Context, want int, d time.Duration) []aio.Event {
	t.Helper()
	var got []aio.Event
	buf := make([]aio.Event, max(want, 1)+8)
	deadline := time.Now().Add(d)
	for len(got) < want {
		rem := time.Until(deadline)
		if rem <= 0 {
			t.Fatalf("got %d events within %v, want %d: %+v", len(got), d, want, got)
		}
		n, err := c.GetEvents(1, buf, &rem)
		if err != nil {
			t.Fatalf("GetEvents: %v", err)
		}
		got = append(got, buf[:n]...)
	}
	n, err := c.GetEvents(0, buf, relTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatalf("GetEvents: %v", err)
	}
	if n != 0 || len(got) != want {
		t.Fatalf("more events than requests: %d + %d, want %d: %+v", len(got), n, want, append(got, buf[:n]...))
	}
	return got
}

// relNoEvents checks that nothing arrives within d.
func relNoEvents(t testing.TB, c *aio.Context, d time.Duration) {
	t.Helper()
	buf := make([]aio.Event, 16)
	n, err := c.GetEvents(0, buf, &d)
	if err != nil || n != 0 {
		t.Fatalf("GetEvents = %d, %v (%+v); want no event", n, err, buf[:n])
	}
}

// relIsErrno reports errors.Is(err, want) and that err is not nil.
func relIsErrno(err error, want unix.Errno) bool { return err != nil && errors.Is(err, want) }

// relTmpfsMagic is TMPFS_MAGIC from statfs(2).
const relTmpfsMagic = 0x01021994

// relDiskDir is a fresh directory on a real (block-backed) filesystem, for
// O_DIRECT: os.TempDir when it is not tmpfs, else /var/tmp, else the
// repository. It is removed when the test ends. When none qualifies the test
// is skipped with the reason.
func relDiskDir(t testing.TB) string {
	t.Helper()
	dir, reason := relTryDiskDir(t)
	if dir == "" {
		t.Skipf("no directory on a block filesystem with O_DIRECT: %s", reason)
	}
	return dir
}

// relTryDiskDir is relDiskDir that returns the reason instead of skipping.
func relTryDiskDir(t testing.TB) (dir, reason string) {
	t.Helper()
	wd, _ := os.Getwd()
	var tried []string
	for _, base := range []string{os.TempDir(), "/var/tmp", wd} {
		var st unix.Statfs_t
		if err := unix.Statfs(base, &st); err != nil {
			tried = append(tried, base+": "+err.Error())
			continue
		}
		if m := fsMagic(&st); m == relTmpfsMagic || m == unix.RAMFS_MAGIC || m == unix.OVERLAYFS_SUPER_MAGIC {
			tried = append(tried, base+": not a block filesystem")
			continue
		}
		dir, err := os.MkdirTemp(base, "uringaio-rel-")
		if err != nil {
			tried = append(tried, base+": "+err.Error())
			continue
		}
		// O_DIRECT must really work there.
		probe := filepath.Join(dir, "probe")
		fd, err := unix.Open(probe, unix.O_CREAT|unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			os.RemoveAll(dir)
			tried = append(tried, base+": O_DIRECT: "+err.Error())
			continue
		}
		unix.Close(fd)
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir, ""
	}
	return "", strings.Join(tried, "; ")
}

// relCountFDs counts the open descriptors of this process.
func relCountFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory's own descriptor
}

// relMaps returns the lines of /proc/self/maps.
func relMaps(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// relKernelMaps counts the mappings that belong to a kernel AIO object: an
// io_uring's rings ("anon_inode:[io_uring]") or an AIO context's ring ("/[aio]").
func relKernelMaps(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "io_uring") || strings.Contains(l, "[aio]") {
			n++
		}
	}
	return n
}

// ---- child processes ----

// relChildEnv is the environment variable that tells a re-executed test
// binary which child role to play.
const relChildEnv = "URINGAIO_REL_CHILD"

// relChildOK is printed by a child that ran all its checks.
const relChildOK = "REL-CHILD-CHECKS-PASSED"

// relRunChild re-executes this test binary to run only test name with
// relChildEnv=role (and extra environment), and fails unless the child passed
// and printed relChildOK. It returns the child's output.
func relRunChild(t *testing.T, name, role string, env ...string) string {
	t.Helper()
	return relRunChildTimeout(t, name, role, 120*time.Second, env...)
}

// relRunChildTimeout is relRunChild with the child's -test.timeout: a child
// that hangs dies with its goroutine dump, which the failure shows.
func relRunChildTimeout(t *testing.T, name, role string, timeout time.Duration, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1",
		"-test.timeout="+timeout.String())
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, relChildEnv+"=") || strings.HasPrefix(e, "URINGAIO_BACKEND=") || strings.HasPrefix(e, "GORACE=") {
			continue
		}
		cmd.Env = append(cmd.Env, e)
	}
	// The race detector sleeps a second at exit by default; children need not.
	g := os.Getenv("GORACE")
	if !strings.Contains(g, "atexit_sleep_ms") {
		g = strings.TrimSpace(g + " atexit_sleep_ms=0")
	}
	cmd.Env = append(cmd.Env, "GORACE="+g)
	cmd.Env = append(cmd.Env, relChildEnv+"="+role)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), relChildOK) {
		s := string(out)
		if len(s) > 16000 {
			s = s[:16000] + "\n… (cut)"
		}
		t.Fatalf("child %s (%s): %v\n%s", name, role, err, s)
	}
	return string(out)
}

// relChildRole is the role this process plays, or "" in the parent.
func relChildRole() string { return os.Getenv(relChildEnv) }
