//go:build !linux

package main

import "errors"

// canDropCache: only Linux evicts a file's pages from the page cache without
// privileges (posix_fadvise DONTNEED); elsewhere get-cold is left out.
const canDropCache = false

const noDropCache = "this system has no unprivileged way to drop a file from the page cache"

// onTmpfs reports false: the tmpfs check is Linux's (its statfs magic).
func onTmpfs(string) bool { return false }

func dropCache(string) error { return errors.New(noDropCache) }
