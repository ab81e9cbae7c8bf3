package pebblefs_test

import (
	"errors"
	"testing"

	"github.com/uringaio/uringaio/aio"
)

// backends are the mechanisms every test runs on, each skipped (with the
// reason) where it cannot start.
var backends = []string{"uring", "kaio", "threads"}

// setup returns a Context on backend, destroyed when the test ends, or skips
// the test when the backend cannot run on this machine.
func setup(t testing.TB, backend string) *aio.Context {
	t.Helper()
	c, err := aio.SetupWithOptions(128, aio.Options{Backend: backend})
	if errors.Is(err, aio.ErrNotSupported) {
		t.Skipf("backend %s cannot start here: %v", backend, err)
	}
	if err != nil {
		t.Fatalf("SetupWithOptions(%s): %v", backend, err)
	}
	if got := c.Backend(); got != backend {
		t.Fatalf("asked for backend %s, got %s", backend, got)
	}
	t.Cleanup(func() {
		if err := c.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return c
}
