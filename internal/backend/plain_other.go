//go:build unix && !linux

package backend

import "golang.org/x/sys/unix"

// Outside Linux there is no RWF_NOWAIT and no /proc/self/fd to open a file
// again (on the BSDs and darwin /dev/fd/N duplicates the descriptor, sharing
// its flags), so every transfer after readiness is a plain call on a worker,
// made one at a time per file and only while poll(2) says the file is still
// ready (pool.go, plainTransfer): the library's own requests never race each
// other, and a reader outside the library that takes the data in between is
// the one case left that blocks a worker (docs/contract.md §3.11).

func privateNonblock(fd int) int { return -1 }

func plainKey(fd int) (fileKey, bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(st.Dev), ino: uint64(st.Ino), rdev: uint64(st.Rdev)}, true
}

func eventfdRoom(fd int) (uint64, bool) { return 0, false }
