package backend

import "golang.org/x/sys/unix"

// What kind of file a descriptor is, and whether a number still names the same
// file: both backends wait for readiness on pipes and sockets (kaio always,
// uring after -EAGAIN on an O_NONBLOCK file) and then move the data by
// descriptor number, which the caller may have closed and reused meanwhile.

// fileKind says whether fd waits for readiness (pollable) or for storage, and
// which file it is. It is one fstat(2) per read or write on this backend; errno
// is fstat's failure (a bad descriptor), which becomes the request's result.
func fileKind(fd int32) (isPollable bool, id fileID, errno unix.Errno) {
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		return false, id, err.(unix.Errno)
	}
	id = fileID{uint64(st.Dev), uint64(st.Ino)} // Dev is a uint32 on mips
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFBLK, unix.S_IFDIR:
		return false, id, 0
	}
	return true, id, 0
}

// fileID tells whether a descriptor number still names the same file.
type fileID struct{ dev, ino uint64 }

func sameFile(fd int32, id fileID) bool {
	var st unix.Stat_t
	return unix.Fstat(int(fd), &st) == nil && uint64(st.Dev) == id.dev && uint64(st.Ino) == id.ino
}

// pollable reports whether fd is a file whose reads and writes wait for
// readiness (pipe, socket, character device, eventfd and other anonymous
// inodes) rather than for storage.
func pollable(fd int32) bool {
	p, _, errno := fileKind(fd)
	return errno == 0 && p
}

func identify(fd int32) (fileID, bool) {
	_, id, errno := fileKind(fd)
	return id, errno == 0
}

// cancelLocked queues an ASYNC_CANCEL for tag. sent is false when the backend
// does not have that request (package aio never asks for one it has not
// submitted; the answer is then CancelRefused, never a wait for an answer that
// cannot come).
