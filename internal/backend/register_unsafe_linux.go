package backend

// io_uring_register(2) calls of the fixed-file and buffer tables. Each
// passes Go memory (an argument struct, an fd array) for the duration of the
// call only; the kernel copies it. A registered buffer's memory is the
// caller's (package aio maps it with mmap(2), outside the Go heap).

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/abi"
)

func uringRegister(fd int, op uintptr, arg unsafe.Pointer, nr uintptr) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), op, uintptr(arg), nr, 0, 0)
	return int(n), errnoErr(e)
}

// uringRegisterSparse registers an empty table of n entries (files or
// buffers) with IORING_RSRC_REGISTER_SPARSE.
func uringRegisterSparse(fd int, op uintptr, n uint32) error {
	r := abi.RsrcRegister{Nr: n, Flags: abi.IORING_RSRC_REGISTER_SPARSE}
	_, err := uringRegister(fd, op, unsafe.Pointer(&r), unsafe.Sizeof(r))
	return err
}

// uringRegisterFilesEmpty registers a fixed-file table of n entries, each -1
// (empty), with IORING_REGISTER_FILES.
func uringRegisterFilesEmpty(fd int, n int) error {
	fds := make([]int32, n)
	for i := range fds {
		fds[i] = -1
	}
	_, err := uringRegister(fd, 2 /* IORING_REGISTER_FILES */, unsafe.Pointer(&fds[0]), uintptr(n))
	return err
}

// uringUpdateFile sets fixed-file entry idx to file (-1 empties it) with
// IORING_REGISTER_FILES_UPDATE.
func uringUpdateFile(fd int, idx int32, file int32) error {
	one := file
	up := struct {
		Offset uint32
		Resv   uint32
		Fds    uint64
	}{Offset: uint32(idx), Fds: uint64(uintptr(unsafe.Pointer(&one)))}
	n, err := uringRegister(fd, abi.IORING_REGISTER_FILES_UPDATE, unsafe.Pointer(&up), 1)
	if err == nil && n != 1 {
		err = unix.EIO
	}
	return err
}

// uringUpdateBuffer sets buffer entry idx to [addr, addr+n) (n 0 empties it)
// with IORING_REGISTER_BUFFERS_UPDATE.
func uringUpdateBuffer(fd int, idx uint16, addr uintptr, n int) error {
	iov := struct{ Base, Len uint64 }{uint64(addr), uint64(n)} // struct iovec
	up := abi.RsrcUpdate2{Offset: uint32(idx), Data: uint64(uintptr(unsafe.Pointer(&iov))), Nr: 1}
	k, err := uringRegister(fd, abi.IORING_REGISTER_BUFFERS_UPDATE, unsafe.Pointer(&up), unsafe.Sizeof(up))
	if err == nil && k != 1 {
		err = unix.EIO
	}
	return err
}
