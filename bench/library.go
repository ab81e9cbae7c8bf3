//go:build unix

package main

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/uringaio/uringaio/aio"
)

// LibraryInfo says which library a run measured.
type LibraryInfo struct {
	Module string `json:"module"`
	// Version is the module version built in: "(devel)" for the checkout
	// (bench/go.work), vX.Y.Z for a published one.
	Version string `json:"version,omitempty"`
	// Dir is where the library's source was when the tool was built.
	Dir string `json:"dir,omitempty"`
	// Commit is the git HEAD of the checkout Dir is in, and Dirty whether
	// it had uncommitted changes; empty outside a git checkout.
	Commit string `json:"commit,omitempty"`
	Dirty  bool   `json:"dirty,omitempty"`
}

// libraryInfo finds the library this binary was built with: its module
// version from the build information, its source directory from where
// aio.Setup was compiled, and that directory's git commit.
func libraryInfo() LibraryInfo {
	li := LibraryInfo{Module: "github.com/uringaio/uringaio"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == li.Module {
				li.Version = d.Version
			}
		}
	}
	pc := reflect.ValueOf(aio.Setup).Pointer()
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return li
	}
	file, _ := fn.FileLine(pc)
	if !filepath.IsAbs(file) {
		return li // built with -trimpath: no directory to ask
	}
	li.Dir = filepath.Dir(filepath.Dir(file)) // .../aio/api.go -> the module's root
	head, err := exec.Command("git", "-C", li.Dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return li
	}
	li.Commit = strings.TrimSpace(string(head))
	status, err := exec.Command("git", "-C", li.Dir, "status", "--porcelain", "--", ".").Output()
	li.Dirty = err == nil && len(strings.TrimSpace(string(status))) > 0
	return li
}

// String is the library's one header line: version and commit.
func (li LibraryInfo) String() string {
	s := li.Module + " " + li.Version
	switch {
	case li.Commit == "":
		return s + " (commit unknown)"
	case li.Dirty:
		return s + " at " + li.Commit[:min(12, len(li.Commit))] + " with uncommitted changes"
	}
	return s + " at " + li.Commit[:min(12, len(li.Commit))]
}
