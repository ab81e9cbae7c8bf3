package backend

import "fmt"

// The fixed-file and buffer tables (Registrar). Entries are handed out from a
// free list under regMu. An entry is given back only after the kernel has
// emptied it (IORING_REGISTER_FILES_UPDATE with -1, or a zero-length buffer
// update): a request already submitted with the old entry keeps the old file
// or buffer (the kernel holds them by reference until such requests end), and
// one submitted later would find the entry empty (EBADF, EFAULT) — never
// another file — until package aio has stopped using the index, which it does
// before unregistering.

// RegisterFile wraps IORING_REGISTER_FILES_UPDATE on a free entry.
func (u *uring) RegisterFile(fd int) (int32, error) {
	u.regMu.Lock()
	defer u.regMu.Unlock()
	if u.regClosed || u.nFiles == 0 {
		return -1, fmt.Errorf("no fixed-file table: %w", ErrNotSupported)
	}
	n := len(u.fileFree)
	if n == 0 {
		return -1, ErrTableFull
	}
	idx := u.fileFree[n-1]
	if err := uringUpdateFile(u.fd, idx, int32(fd)); err != nil {
		return -1, fmt.Errorf("IORING_REGISTER_FILES_UPDATE: %w", err)
	}
	u.fileFree = u.fileFree[:n-1]
	return idx, nil
}

// UnregisterFile empties entry idx and frees it.
func (u *uring) UnregisterFile(idx int32) error {
	u.regMu.Lock()
	defer u.regMu.Unlock()
	if u.regClosed {
		return nil // the table went with the ring
	}
	if err := uringUpdateFile(u.fd, idx, -1); err != nil {
		return fmt.Errorf("IORING_REGISTER_FILES_UPDATE: %w", err)
	}
	u.fileFree = append(u.fileFree, idx)
	return nil
}

// RegisterBuffer wraps IORING_REGISTER_BUFFERS_UPDATE on a free entry. The
// kernel pins the pages (counted against RLIMIT_MEMLOCK without
// CAP_IPC_LOCK: ENOMEM past it).
func (u *uring) RegisterBuffer(addr uintptr, n int) (uint16, error) {
	u.regMu.Lock()
	defer u.regMu.Unlock()
	if u.regClosed || u.nBufs == 0 {
		return 0, fmt.Errorf("no buffer table: %w", ErrNotSupported)
	}
	k := len(u.bufFree)
	if k == 0 {
		return 0, ErrTableFull
	}
	idx := u.bufFree[k-1]
	if err := uringUpdateBuffer(u.fd, idx, addr, n); err != nil {
		return 0, fmt.Errorf("IORING_REGISTER_BUFFERS_UPDATE: %w", err)
	}
	u.bufFree = u.bufFree[:k-1]
	return idx, nil
}

// UnregisterBuffer empties buffer entry idx and frees it.
func (u *uring) UnregisterBuffer(idx uint16) error {
	u.regMu.Lock()
	defer u.regMu.Unlock()
	if u.regClosed {
		return nil
	}
	if err := uringUpdateBuffer(u.fd, idx, 0, 0); err != nil {
		return fmt.Errorf("IORING_REGISTER_BUFFERS_UPDATE: %w", err)
	}
	u.bufFree = append(u.bufFree, idx)
	return nil
}

// closeTables marks the tables gone: closing the ring releases every entry
// (io_ring_ctx_free drops the files and unpins the buffers).
func (u *uring) closeTables() {
	u.regMu.Lock()
	u.regClosed = true
	u.regMu.Unlock()
}
