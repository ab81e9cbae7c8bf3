// Command releasecheck checks, before a release is tagged, that the
// repository's modules can be got the way a published copy is got. It is a
// module of its own, outside the library's import graph, and runs from .ci/run:
//
//	GOWORK=off go -C .ci/releasecheck run .
//
// It makes two checks.
//
// Workspace: go.work (and bench/go.work) make pebblefs and bench build
// against the library in this checkout. Every other module a workspace module
// builds with, its tests included, must be at the version that module's own
// go.mod requires, so that what CI tests is what importers get.
//
// Import: it builds the module zips of the library and of pebblefs from the
// repository's HEAD with golang.org/x/mod/zip, lays them out as a file://
// module proxy (list, .info, .mod, .zip) at the version pebblefs/go.mod
// requires of the library, and, in a scratch module in a temporary directory,
// requires pebblefs at that version with nothing but GOFLAGS=-mod=mod and that
// proxy in front of the usual one (go env GOPROXY), GONOSUMDB for the
// unpublished modules. The scratch module must tidy, build, and run a Pebble
// open, set, get and close through the library. Its module cache is a
// temporary one, so the unpublished versions never reach the machine's.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

const (
	rootPath     = "github.com/uringaio/uringaio"
	pebblefsPath = rootPath + "/pebblefs"
)

func main() {
	repo := flag.String("repo", "../..", "the repository's root directory")
	keep := flag.Bool("keep", false, "keep the temporary directory and print its path")
	flag.Parse()
	root, err := filepath.Abs(*repo)
	if err == nil {
		err = checkWorkspace(root)
	}
	if err == nil {
		err = checkImport(root, *keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "releasecheck:", err)
		os.Exit(1)
	}
}

// checkWorkspace compares, for each module of the repository, the versions
// its packages and tests build with in the workspace against its go.mod.
func checkWorkspace(root string) error {
	for _, dir := range []string{".", "pebblefs", "bench"} {
		mdir := filepath.Join(root, dir)
		mf, err := parseModFile(filepath.Join(mdir, "go.mod"))
		if err != nil {
			return err
		}
		required := map[string]string{}
		for _, r := range mf.Require {
			required[r.Mod.Path] = r.Mod.Version
		}
		// GOWORK= (empty): the workspace file the go command finds from
		// the module's directory, as a developer's go test uses.
		out, err := goCmd(mdir, []string{"GOWORK="}, "list", "-deps", "-test",
			"-f", "{{with .Module}}{{.Path}} {{.Version}} {{.Main}}{{end}}", "./...")
		if err != nil {
			return fmt.Errorf("workspace: module %s: %w", mf.Module.Mod.Path, err)
		}
		seen := map[string]bool{}
		var bad []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || f[2] == "true" || seen[f[0]] {
				continue // a workspace module: the checkout itself
			}
			seen[f[0]] = true
			switch want, ok := required[f[0]]; {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s %s is built but not required by %s/go.mod (only the workspace provides it)", f[0], f[1], dir))
			case want != f[1]:
				bad = append(bad, fmt.Sprintf("%s is built at %s in the workspace, but %s/go.mod (and so importers) select %s", f[0], f[1], dir, want))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("workspace: module %s:\n\t%s", mf.Module.Mod.Path, strings.Join(bad, "\n\t"))
		}
		fmt.Printf("workspace: %s builds with the versions its go.mod requires (%d modules)\n", mf.Module.Mod.Path, len(seen))
	}
	return nil
}

// checkImport proves that a module outside the repository can require
// pebblefs as a published copy would be fetched.
func checkImport(root string, keep bool) (err error) {
	tmp, err := os.MkdirTemp("", "releasecheck-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("import: temporary directory", tmp)
	} else {
		defer func() {
			// The module cache's files are read-only; go clean removes them.
			_, _ = goCmd(tmp, []string{"GOMODCACHE=" + filepath.Join(tmp, "modcache")}, "clean", "-modcache")
			if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}

	// HEAD as a published tag would have it: git archive, so that only
	// committed files count, exported to a directory.
	export := filepath.Join(tmp, "export")
	if err := exportHEAD(root, export); err != nil {
		return err
	}
	if dirty, _ := run(root, nil, "git", "status", "--porcelain"); strings.TrimSpace(dirty) != "" {
		fmt.Println("import: note: the checkout has uncommitted changes; the check uses HEAD")
	}
	pmf, err := parseModFile(filepath.Join(export, "pebblefs", "go.mod"))
	if err != nil {
		return err
	}
	version := ""
	for _, r := range pmf.Require {
		if r.Mod.Path == rootPath {
			version = r.Mod.Version
		}
	}
	if version == "" || module.IsPseudoVersion(version) || strings.HasPrefix(version, "v0.0.0") {
		return fmt.Errorf("import: pebblefs/go.mod requires %s at %q; a published pebblefs needs a released version of it", rootPath, version)
	}
	for _, r := range pmf.Replace {
		return fmt.Errorf("import: pebblefs/go.mod replaces %s; go ignores a dependency's replace directives, so importers would not get it", r.Old.Path)
	}
	when, err := run(root, nil, "git", "log", "-1", "--format=%cI", "HEAD")
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(when))
	if err != nil {
		return err
	}
	proxy := filepath.Join(tmp, "proxy")
	for _, m := range []struct{ path, dir string }{{rootPath, "."}, {pebblefsPath, "pebblefs"}} {
		if err := addToProxy(proxy, module.Version{Path: m.path, Version: version}, filepath.Join(export, m.dir), t); err != nil {
			return err
		}
	}

	importer := filepath.Join(tmp, "importer")
	if err := os.MkdirAll(importer, 0o755); err != nil {
		return err
	}
	gomod := "module example.com/importer\n\ngo 1.23.0\n\nrequire " + pebblefsPath + " " + version + "\n"
	if err := os.WriteFile(filepath.Join(importer, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(importer, "main.go"), []byte(importerMain), 0o644); err != nil {
		return err
	}
	upstream, err := goCmd(root, nil, "env", "GOPROXY")
	if err != nil {
		return err
	}
	modcache, err := goCmd(root, nil, "env", "GOMODCACHE")
	if err != nil {
		return err
	}
	proxies := []string{"file://" + filepath.ToSlash(proxy)}
	if mc := strings.TrimSpace(modcache); mc != "" {
		// The machine's module cache serves what it already holds (Pebble
		// and its dependencies), checked against the checksum database as
		// any download is.
		proxies = append(proxies, "file://"+filepath.ToSlash(filepath.Join(mc, "cache", "download")))
	}
	if u := strings.TrimSpace(upstream); u != "" {
		proxies = append(proxies, u)
	}
	env := []string{
		"GOWORK=off",
		"GOFLAGS=-mod=mod",
		"GOPROXY=" + strings.Join(proxies, ","),
		"GONOSUMDB=" + rootPath,
		"GOMODCACHE=" + filepath.Join(tmp, "modcache"),
	}
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "importer", "."}} {
		if _, err := goCmd(importer, env, args...); err != nil {
			return fmt.Errorf("import: in a module requiring %s %s: %w", pebblefsPath, version, err)
		}
	}
	out, err := run(importer, nil, filepath.Join(importer, "importer"), filepath.Join(tmp, "db"))
	if err != nil {
		return fmt.Errorf("import: the program built against %s %s: %w", pebblefsPath, version, err)
	}
	fmt.Printf("import: %s %s from a file:// proxy of HEAD: tidy, build and run: %s", pebblefsPath, version, out)
	sum, err := os.ReadFile(filepath.Join(importer, "go.sum"))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(sum), "\n") {
		if strings.HasPrefix(line, "go.uber.org/goleak ") {
			fmt.Printf("import: the importer's go.sum holds %q (the library's test dependency; see README)\n", line)
		}
	}
	return nil
}

// exportHEAD writes the files of HEAD into dir, as git archive gives them.
func exportHEAD(root, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var tarball bytes.Buffer
	cmd := exec.Command("git", "-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=tar", "HEAD")
	cmd.Dir = root
	cmd.Stdout = &tarball
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git archive HEAD: %w: %s", err, stderr.String())
	}
	untar := exec.Command("tar", "-x", "-f", "-", "-C", dir)
	untar.Stdin = &tarball
	if out, err := untar.CombinedOutput(); err != nil {
		return fmt.Errorf("tar -x: %w: %s", err, out)
	}
	return nil
}

// addToProxy lays out module m, whose files are in dir, in the module proxy
// directory proxy, as GOPROXY=file:// reads it.
func addToProxy(proxy string, m module.Version, dir string, t time.Time) error {
	esc, err := module.EscapePath(m.Path)
	if err != nil {
		return err
	}
	at := filepath.Join(proxy, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "LICENSE")); errors.Is(err, os.ErrNotExist) {
		// As the go command does for a module in a subdirectory without a
		// LICENSE of its own: the repository's goes into its zip.
		if lic, err := os.ReadFile(filepath.Join(dir, "..", "LICENSE")); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "LICENSE"), lic, 0o644); err != nil {
				return err
			}
		}
	}
	var z bytes.Buffer
	if err := zip.CreateFromDir(&z, m, dir); err != nil {
		return fmt.Errorf("zip of %s: %w", m, err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.Version, t.UTC()})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"list":              []byte(m.Version + "\n"),
		m.Version + ".info": info,
		m.Version + ".mod":  gomod,
		m.Version + ".zip":  z.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("import: %s: %d-byte zip in the file:// proxy\n", m, z.Len())
	return nil
}

func parseModFile(path string) (*modfile.File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(path, data, nil)
}

// goCmd runs the go command in dir with env added to this process's.
func goCmd(dir string, env []string, args ...string) (string, error) {
	return run(dir, env, "go", args...)
}

func run(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// importerMain is the scratch module's program: a Pebble DB on pebblefs,
// one key written, synced, read back, everything closed.
const importerMain = `package main

import (
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/aio"
	"github.com/uringaio/uringaio/pebblefs"
)

type quiet struct{}

func (quiet) Infof(string, ...interface{})          {}
func (quiet) Errorf(f string, args ...interface{}) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (quiet) Fatalf(f string, args ...interface{}) { fmt.Fprintf(os.Stderr, f+"\n", args...); os.Exit(1) }

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir string) error {
	c, err := aio.Setup(64)
	if err != nil {
		return err
	}
	defer c.Destroy()
	fs := pebblefs.New(c, vfs.Default)
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: quiet{}})
	if err != nil {
		return err
	}
	if err := db.Set([]byte("key"), []byte("value"), pebble.Sync); err != nil {
		return err
	}
	v, closer, err := db.Get([]byte("key"))
	if err != nil {
		return err
	}
	got := string(v)
	if err := closer.Close(); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	if got != "value" {
		return fmt.Errorf("Get = %q, want %q", got, "value")
	}
	if fs.Stats().Routed == 0 || c.Stats().Requests+c.Stats().Inline == 0 {
		return fmt.Errorf("nothing went through the library: %+v, %+v", fs.Stats(), c.Stats())
	}
	fmt.Printf("Pebble open/set/get/close on backend %s, %d files through the Context\n", c.Backend(), fs.Stats().Routed)
	return nil
}
`
