package pebblefs_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/aio"
	"github.com/uringaio/uringaio/pebblefs"
)

// TestContextDestroyed: a Context destroyed while a DB still uses the FS
// makes the FS's reads fail with an error that says so, not one that only
// reads like a damaged file ("could not read footer"): it matches
// ErrContextDestroyed (and aio.ErrDestroyed, EINVAL) and its message names
// the destroyed Context.
func TestContextDestroyed(t *testing.T) {
	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			c, err := aio.SetupWithOptions(64, aio.Options{Backend: be})
			if errors.Is(err, aio.ErrNotSupported) {
				t.Skipf("backend %s cannot start here: %v", be, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			opts := func() *pebble.Options {
				return &pebble.Options{FS: pebblefs.New(c, vfs.Default), Logger: quietLogger{}}
			}
			db, err := pebble.Open(dir, opts())
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100; i++ {
				if err := db.Set(dbKey(i), dbValue(i), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			// Reopened, so the table's footer is read by the Get below.
			db, err = pebble.Open(dir, opts())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Destroy(); err != nil {
				t.Fatal(err)
			}
			_, _, err = db.Get(dbKey(5))
			if !errors.Is(err, pebblefs.ErrContextDestroyed) || !errors.Is(err, aio.ErrDestroyed) || !errors.Is(err, syscall.EINVAL) {
				t.Errorf("Get after Destroy: %v; want an error matching ErrContextDestroyed, aio.ErrDestroyed and EINVAL", err)
			}
			if err == nil || !strings.Contains(err.Error(), "aio.Context was destroyed") {
				t.Errorf("Get after Destroy: %v; the message does not name the destroyed Context", err)
			}
			// Closing reads and writes nothing more that would fail (the
			// WAL holds nothing unsynced).
			_ = db.Close()
		})
	}
}
