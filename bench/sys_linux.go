package main

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readyFD returns a descriptor that is always readable, for the poll
// workload: an eventfd whose counter is 1 and is never read. done closes it.
func readyFD() (fd int, done func(), err error) {
	efd, err := unix.Eventfd(1, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, nil, fmt.Errorf("eventfd: %w", err)
	}
	return efd, func() { unix.Close(efd) }, nil
}

// procStats: the OS thread count (/proc/self/status) and page-cache
// residency (mincore) are measured here.
const procStats = true

// readyFDKind names readyFD's descriptor in notes and tables.
const readyFDKind = "eventfd"

// fsType names the filesystem holding path (ext4, xfs, tmpfs, ...), best effort.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "unknown"
	}
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs"
	}
	return fmt.Sprintf("0x%x", uint32(st.Type))
}

// adviseWillNeed starts reading the first size bytes of f into the page cache.
func adviseWillNeed(f *os.File, size int64) {
	_ = unix.Fadvise(int(f.Fd()), 0, size, unix.FADV_WILLNEED)
}

// residentFraction is the share of the first size bytes of f that is in the
// page cache (mincore on a read-only mapping); -1 if it cannot be told.
func residentFraction(f *os.File, size int64) float64 {
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return -1
	}
	defer unix.Munmap(m)
	pg := os.Getpagesize()
	vec := make([]byte, (int(size)+pg-1)/pg)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return -1
	}
	in := 0
	for _, v := range vec {
		if v&1 != 0 {
			in++
		}
	}
	return float64(in) / float64(len(vec))
}

// cpuModel is the CPU's model name from /proc/cpuinfo, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.IndexByte(line, ':'); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return ""
}
