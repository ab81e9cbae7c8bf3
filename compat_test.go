// The compatibility suite: one set of cases, run once per backend that can
// start here, as TestCompat/<backend>/<case>. The same test code must pass on
// every backend; that is the promise that callers cannot tell them apart.
//
// Cases live in compat_*_test.go files and register themselves with
// registerCompat from an init function.
//
// Platforms: this file and compat_smoke_test.go build everywhere, so that off
// Linux (where only threads can start, docs/contract.md §11.3) the package
// still compiles and runs the portable cases. Every other file of this
// package is //go:build linux: its cases use pipe2, eventfd, preadv2, /proc,
// O_DIRECT, seccomp and other Linux-only calls.
package uringaio_test

import (
	"errors"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/uringaio/uringaio/aio"
)

// TestMain checks that no test leaves a goroutine behind: a Context that
// forgets a waiter, a Do whose AfterFunc never stops, a reaper that never
// returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backends is every backend the suite knows.
var backends = []string{"uring", "kaio", "threads"}

type compatCase struct {
	name string
	fn   func(t *testing.T, backend string)
}

var (
	casesMu sync.Mutex
	cases   []compatCase
)

// registerCompat adds a case to the suite. name may contain '/' to group.
func registerCompat(name string, fn func(t *testing.T, backend string)) {
	casesMu.Lock()
	defer casesMu.Unlock()
	for _, c := range cases {
		if c.name == name {
			panic("compat case registered twice: " + name)
		}
	}
	cases = append(cases, compatCase{name, fn})
}

// unavailable says why backend cannot start here, or nil. Only a refusal that
// matches aio.ErrNotSupported counts: any other failure is a test failure.
func unavailable(t *testing.T, backend string) error {
	t.Helper()
	c, err := setupRetry(t, 1, backend)
	if err == nil {
		if got := c.Backend(); got != backend {
			t.Fatalf("Setup(Backend: %q) ran %q", backend, got)
		}
		if err := c.Destroy(); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		return nil
	}
	if errors.Is(err, aio.ErrNotSupported) {
		return err
	}
	t.Fatalf("Setup(Backend: %q): %v (not ErrNotSupported)", backend, err)
	return nil
}

func TestCompat(t *testing.T) {
	casesMu.Lock()
	list := append([]compatCase(nil), cases...)
	casesMu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	if len(list) == 0 {
		t.Fatal("no compat cases registered")
	}
	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			if reason := unavailable(t, be); reason != nil {
				t.Skipf("backend %s cannot start here: %v", be, reason)
			}
			for _, c := range list {
				t.Run(c.name, func(t *testing.T) { c.fn(t, be) })
			}
		})
	}
}

// setupRetry is aio.SetupWithOptions(maxEvents, Options{Backend: backend})
// that waits out one transient refusal: classic AIO's io_setup fails with
// EAGAIN while fs.aio-max-nr, a system-wide budget, is used up — by another
// process on a shared machine, or by TestRelFaultKaioExhausted's child, which
// "go test ./..." may run while another package's tests run. That is not what
// any caller of setupRetry tests, so it retries for up to setupRetryFor and
// logs the wait on tb (when not nil); after that it returns the refusal.
func setupRetry(tb testing.TB, maxEvents int, backend string) (*aio.Context, error) {
	if tb != nil {
		tb.Helper()
	}
	return setupRetryOpts(tb, maxEvents, aio.Options{Backend: backend})
}

// setupRetryOpts is setupRetry with Options.
func setupRetryOpts(tb testing.TB, maxEvents int, opts aio.Options) (*aio.Context, error) {
	if tb != nil {
		tb.Helper()
	}
	deadline := time.Now().Add(setupRetryFor)
	for {
		c, err := aio.SetupWithOptions(maxEvents, opts)
		if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().After(deadline) {
			return c, err
		}
		if tb != nil {
			tb.Logf("waiting for room in fs.aio-max-nr: %v", err)
			tb = nil // once is enough
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setupRetryFor bounds setupRetry's wait.
const setupRetryFor = 20 * time.Second

// newContext sets up a Context on backend and destroys it when the test ends.
func newContext(t *testing.T, backend string, maxEvents int) *aio.Context {
	t.Helper()
	c, err := setupRetry(t, maxEvents, backend)
	if err != nil {
		t.Fatalf("SetupWithOptions(%d, %q): %v", maxEvents, backend, err)
	}
	t.Cleanup(func() {
		// A test may destroy it itself; a second Destroy returns EINVAL.
		_ = c.Destroy()
	})
	return c
}
