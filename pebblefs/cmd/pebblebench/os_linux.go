package main

import (
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// canDropCache: posix_fadvise(POSIX_FADV_DONTNEED) evicts a file's clean
// pages without privileges, so the get-cold workload runs.
const canDropCache = true

const noDropCache = ""

// onTmpfs reports whether dir is on tmpfs, where nothing is ever cold.
func onTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// dropCache evicts dir's files from the page cache.
func dropCache(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		var ferr error
		if err := rc.Control(func(fd uintptr) {
			ferr = unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED)
		}); err != nil {
			return err
		}
		return ferr
	})
}
