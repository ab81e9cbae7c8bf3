package backend

// Files that refuse RWF_NOWAIT, on Linux: how the pool still transfers on
// them without a read(2) or write(2) that only data could end.
//
// After readiness the pool must move the data with a call that cannot block,
// because another reader may have taken the data (or another writer the room)
// between poll(2) and the call. RWF_NOWAIT does that per call, but ttys, named
// pipes, /dev/kmsg, inotify and eventfd writes refuse it (EOPNOTSUPP). For the
// kinds where it is safe, the pool opens the file once more through
// /proc/self/fd, with O_NONBLOCK: a new open file description of the same file
// whose flags are its own, so a plain call on it says EAGAIN instead of
// blocking, and the caller's own description (whose O_NONBLOCK other holders
// share) is never touched. Safe means that opening the file again has no
// effect and reaches the same file: a FIFO (opened with the caller's access
// mode, so the count of readers and writers the FIFO sees is what the caller's
// descriptor already adds), and a terminal that is neither a pty master nor
// one of the redirecting nodes /dev/tty, /dev/console and /dev/ptmx (an open
// of those reaches another terminal or makes a new pty). The reopened file is
// checked against the original (device, inode, rdev) before use. Other
// character devices are never reopened: an open of a device can have effects
// of its own (a watchdog arms, /dev/kmsg starts a new reader at another
// position).

import (
	"bytes"
	"strconv"

	"golang.org/x/sys/unix"
)

// ttyauxMajor is the major number of /dev/tty, /dev/console and /dev/ptmx
// (TTYAUX_MAJOR in include/uapi/linux/major.h).
const ttyauxMajor = 5

// privateNonblock returns a new non-blocking open file description of fd's
// file, or -1 where that is not possible or not safe (see above).
func privateNonblock(fd int) int {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return -1
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
	case unix.S_IFCHR:
		if unix.Major(uint64(st.Rdev)) == ttyauxMajor {
			return -1
		}
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			return -1 // not a terminal
		}
		if _, err := unix.IoctlGetInt(fd, unix.TIOCGPTN); err == nil {
			return -1 // a pty master: an open would make a new pty
		}
	default:
		return -1
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return -1
	}
	nb, err := openRetry("/proc/self/fd/"+strconv.Itoa(fd), fl&unix.O_ACCMODE|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return -1 // no /proc, no permission, no descriptor left, a FIFO with no reader
	}
	var st2 unix.Stat_t
	if unix.Fstat(nb, &st2) != nil || st2.Dev != st.Dev || st2.Ino != st.Ino || st2.Rdev != st.Rdev {
		unix.Close(nb)
		return -1
	}
	return nb
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// plainKey identifies the file a plain transfer works on, so that the pool
// makes one such transfer at a time per file: two requests of one Context
// never race each other for the same data. Files of one inode are one file,
// except pty masters, which all share /dev/ptmx's inode and are told apart by
// their pty number.
func plainKey(fd int) (fileKey, bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return fileKey{}, false
	}
	k := fileKey{dev: uint64(st.Dev), ino: uint64(st.Ino), rdev: uint64(st.Rdev)}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR {
		if n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN); err == nil {
			k.sub = uint64(n) + 1
		}
	}
	if id, ok := eventfdID(fd); ok {
		k.sub = id + 1
		k.eventfd = true
	}
	return k, true
}

// eventfdID reports whether fd is an eventfd and, where the kernel says
// (fdinfo's eventfd-id, Linux 6.2), which one; all eventfds share one
// anonymous inode.
func eventfdID(fd int) (uint64, bool) {
	var b [64]byte
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), b[:])
	if err != nil || string(b[:n]) != "anon_inode:[eventfd]" {
		return 0, false
	}
	info := fdinfo(fd)
	id, _ := fdinfoField(info, "eventfd-id:", 10)
	return id, true
}

// eventfdRoom is how much an eventfd's counter can still take without a
// write blocking (the counter stays below 2^64-1), read from fdinfo; ok is
// false where that cannot be read.
func eventfdRoom(fd int) (room uint64, ok bool) {
	count, ok := fdinfoField(fdinfo(fd), "eventfd-count:", 16)
	if !ok {
		return 0, false
	}
	return (1<<64 - 2) - count, true
}

func fdinfo(fd int) []byte {
	f, err := openRetry("/proc/self/fdinfo/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil
	}
	defer unix.Close(f)
	var b [512]byte
	n, err := unix.Read(f, b[:])
	if err != nil || n < 0 {
		return nil
	}
	return b[:n]
}

func fdinfoField(info []byte, name string, base int) (uint64, bool) {
	i := bytes.Index(info, []byte(name))
	if i < 0 {
		return 0, false
	}
	rest := info[i+len(name):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), base, 64)
	return v, err == nil
}
