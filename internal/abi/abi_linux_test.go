package abi

import (
	"testing"
	"unsafe"
)

// The kernel reads and writes these structures byte for byte; a wrong size or
// offset corrupts memory silently, so each is pinned here against the uapi
// headers.
func TestSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"io_uring_sqe", unsafe.Sizeof(SQE{}), 64},
		{"io_uring_cqe", unsafe.Sizeof(CQE{}), 16},
		{"io_sqring_offsets", unsafe.Sizeof(SQRingOffsets{}), 40},
		{"io_cqring_offsets", unsafe.Sizeof(CQRingOffsets{}), 40},
		{"io_uring_params", unsafe.Sizeof(UringParams{}), 120},
		{"io_uring_getevents_arg", unsafe.Sizeof(GeteventsArg{}), 24},
		{"io_uring_probe_op", unsafe.Sizeof(ProbeOp{}), 8},
		{"io_uring_probe(256)", unsafe.Sizeof(Probe{}), 16 + 256*8},
		{"iocb", unsafe.Sizeof(IOCB{}), 64},
		{"io_event", unsafe.Sizeof(IOEvent{}), 32},
		{"aio_ring", unsafe.Sizeof(AioRing{}), 32},
		{"io_uring_rsrc_register", unsafe.Sizeof(RsrcRegister{}), 32},
		{"io_uring_rsrc_update2", unsafe.Sizeof(RsrcUpdate2{}), 32},
		{"io_uring_rsrc_update", unsafe.Sizeof(RsrcUpdate{}), 16},
	} {
		if c.got != c.want {
			t.Errorf("sizeof(%s) = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestOffsets(t *testing.T) {
	var s SQE
	var cb IOCB
	var p UringParams
	var rr RsrcRegister
	var ru RsrcUpdate2
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sqe.fd", unsafe.Offsetof(s.Fd), 4},
		{"sqe.off", unsafe.Offsetof(s.Off), 8},
		{"sqe.addr", unsafe.Offsetof(s.Addr), 16},
		{"sqe.len", unsafe.Offsetof(s.Len), 24},
		{"sqe.rw_flags", unsafe.Offsetof(s.OpFlags), 28},
		{"sqe.user_data", unsafe.Offsetof(s.UserData), 32},
		{"sqe.buf_index", unsafe.Offsetof(s.BufIndex), 40},
		{"sqe.addr3", unsafe.Offsetof(s.Addr3), 48},
		{"params.sq_off", unsafe.Offsetof(p.SQOff), 40},
		{"params.cq_off", unsafe.Offsetof(p.CQOff), 80},
		{"rsrc_register.data", unsafe.Offsetof(rr.Data), 16},
		{"rsrc_register.tags", unsafe.Offsetof(rr.Tags), 24},
		{"rsrc_update2.data", unsafe.Offsetof(ru.Data), 8},
		{"rsrc_update2.nr", unsafe.Offsetof(ru.Nr), 24},
		{"iocb.aio_rw_flags", unsafe.Offsetof(cb.RwFlags), 12},
		{"iocb.aio_lio_opcode", unsafe.Offsetof(cb.Opcode), 16},
		{"iocb.aio_fildes", unsafe.Offsetof(cb.Fildes), 20},
		{"iocb.aio_buf", unsafe.Offsetof(cb.Buf), 24},
		{"iocb.aio_offset", unsafe.Offsetof(cb.Offset), 40},
		{"iocb.aio_flags", unsafe.Offsetof(cb.Flags), 56},
	} {
		if c.got != c.want {
			t.Errorf("offsetof(%s) = %d, want %d", c.name, c.got, c.want)
		}
	}
}
