//go:build unix

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// results.json records which library was measured: the commit of the
// checkout the library's source was built from (the test binary is built
// from this repository), and whether it had uncommitted changes.
func TestMetaLibrary(t *testing.T) {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not in a git checkout:", err)
	}
	want := strings.TrimSpace(string(out))
	lib := libraryInfo()
	if lib.Commit != want {
		t.Errorf("library commit %q, want %q (git rev-parse HEAD)", lib.Commit, want)
	}
	if lib.Module != "github.com/uringaio/uringaio" {
		t.Errorf("library module %q", lib.Module)
	}
	status, err := exec.Command("git", "status", "--porcelain", "--", "..").Output()
	if err == nil && lib.Dirty != (len(strings.TrimSpace(string(status))) > 0) {
		t.Errorf("library dirty = %v, but git status says %q", lib.Dirty, status)
	}
}
