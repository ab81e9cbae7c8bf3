// The compatibility suite: one set of cases, run once per backend that can
// start here, as TestCompat/<backend>/<case>. The same test code must pass on
// every backend; that is the promise that callers cannot tell them apart.
//
// Cases live in compat_*_test.go files and register themselves with
// registerCompat from an init function.
package uringaio_test

import (
	"errors"
	"sort"
	"sync"
	"testing"

	"github.com/uringaio/uringaio/aio"
)

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
	c, err := aio.SetupWithOptions(1, aio.Options{Backend: backend})
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

// newContext sets up a Context on backend and destroys it when the test ends.
func newContext(t *testing.T, backend string, maxEvents int) *aio.Context {
	t.Helper()
	c, err := aio.SetupWithOptions(maxEvents, aio.Options{Backend: backend})
	if err != nil {
		t.Fatalf("SetupWithOptions(%d, %q): %v", maxEvents, backend, err)
	}
	t.Cleanup(func() {
		// A test may destroy it itself; a second Destroy returns EINVAL.
		_ = c.Destroy()
	})
	return c
}
