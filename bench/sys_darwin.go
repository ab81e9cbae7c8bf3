package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsType names the filesystem holding path (apfs, hfs, ...), best effort.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(st.Fstypename[:])
}

// cpuModel is the CPU's brand string, or "".
func cpuModel() string {
	s, _ := unix.Sysctl("machdep.cpu.brand_string")
	return s
}

// openDirect opens path bypassing the page cache, as fio's direct=1 does on
// macOS: fcntl(F_NOCACHE), which has no open flag.
func openDirect(path string, flags int) (*os.File, error) {
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { _, err = unix.FcntlInt(fd, unix.F_NOCACHE, 1) })
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
