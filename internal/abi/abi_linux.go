// Package abi holds the kernel ABI of io_uring and classic AIO: the structures
// the kernel reads and writes, laid out byte for byte as in
// include/uapi/linux/io_uring.h and include/uapi/linux/aio_abi.h, and the
// constants under the kernel's own names (in Go case). abi_test.go pins the sizes
// and offsets.
package abi

// ---- io_uring (include/uapi/linux/io_uring.h) ----

// SQE is struct io_uring_sqe (64 bytes).
type SQE struct {
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64 // also addr2
	Addr        uint64 // also splice_off_in
	Len         uint32
	OpFlags     uint32 // rw_flags, fsync_flags, poll32_events, cancel_flags, …
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	SpliceFdIn  int32
	Addr3       uint64
	_           uint64
}

// CQE is struct io_uring_cqe (16 bytes).
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// SQRingOffsets is struct io_sqring_offsets.
type SQRingOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Flags       uint32
	Dropped     uint32
	Array       uint32
	Resv1       uint32
	UserAddr    uint64
}

// CQRingOffsets is struct io_cqring_offsets.
type CQRingOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Overflow    uint32
	Cqes        uint32
	Flags       uint32
	Resv1       uint32
	UserAddr    uint64
}

// UringParams is struct io_uring_params (120 bytes).
type UringParams struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32
	Features     uint32
	WQFd         uint32
	Resv         [3]uint32
	SQOff        SQRingOffsets
	CQOff        CQRingOffsets
}

// GeteventsArg is struct io_uring_getevents_arg, passed with IORING_ENTER_EXT_ARG.
type GeteventsArg struct {
	Sigmask   uint64
	SigmaskSz uint32
	MinWaitUs uint32
	Ts        uint64 // pointer to a struct __kernel_timespec
}

// Probe is struct io_uring_probe with room for 256 ops.
type Probe struct {
	LastOp uint8
	OpsLen uint8
	Resv   uint16
	Resv2  [3]uint32
	Ops    [256]ProbeOp
}

// ProbeOp is struct io_uring_probe_op.
type ProbeOp struct {
	Op    uint8
	Resv  uint8
	Flags uint16
	Resv2 uint32
}

// io_uring opcodes (enum io_uring_op).
const (
	IORING_OP_NOP             = 0
	IORING_OP_READV           = 1
	IORING_OP_WRITEV          = 2
	IORING_OP_FSYNC           = 3
	IORING_OP_POLL_ADD        = 6
	IORING_OP_POLL_REMOVE     = 7 // addr: the user_data of the POLL_ADD to remove
	IORING_OP_SYNC_FILE_RANGE = 8 // off, len (u32), sync_range_flags
	IORING_OP_ASYNC_CANCEL    = 14
	IORING_OP_FALLOCATE       = 17 // off, addr (the u64 length), len (the mode)
	IORING_OP_READ            = 22
	IORING_OP_WRITE           = 23
	IORING_OP_FADVISE         = 24 // off, len (u32; addr must be 0 before 6.11), fadvise_advice
)

// Setup flags, features, enter flags, register opcodes, mmap offsets.
const (
	IORING_SETUP_CQSIZE     = 1 << 3
	IORING_SETUP_CLAMP      = 1 << 4
	IORING_SETUP_SUBMIT_ALL = 1 << 7

	IORING_FEAT_NODROP  = 1 << 1
	IORING_FEAT_EXT_ARG = 1 << 8

	IORING_ENTER_GETEVENTS = 1 << 0
	IORING_ENTER_EXT_ARG   = 1 << 3

	IORING_REGISTER_PROBE = 8
	IO_URING_OP_SUPPORTED = 1 << 0

	IORING_FSYNC_DATASYNC = 1 << 0

	IORING_OFF_SQ_RING = 0
	IORING_OFF_CQ_RING = 0x8000000
	IORING_OFF_SQES    = 0x10000000

	// IORING_MAX_ENTRIES is the kernel's limit on SQ entries; CQ may be twice it.
	IORING_MAX_ENTRIES = 32768
)

// ---- classic AIO (include/uapi/linux/aio_abi.h) ----

// IOCB is struct iocb (64 bytes; little-endian field order).
type IOCB struct {
	Data      uint64 // aio_data
	Key       uint32 // aio_key
	RwFlags   int32  // aio_rw_flags
	Opcode    uint16 // aio_lio_opcode
	Reqprio   int16
	Fildes    uint32
	Buf       uint64
	Nbytes    uint64
	Offset    int64
	Reserved2 uint64
	Flags     uint32
	Resfd     uint32
}

// IOEvent is struct io_event (32 bytes).
type IOEvent struct {
	Data uint64
	Obj  uint64
	Res  int64
	Res2 int64
}

// AioRing is the header of the completion ring the kernel maps at the address
// io_setup returns (struct aio_ring in fs/aio.c); io_event entries follow it.
type AioRing struct {
	ID               uint32
	Nr               uint32
	Head             uint32
	Tail             uint32
	Magic            uint32
	CompatFeatures   uint32
	IncompatFeatures uint32
	HeaderLength     uint32
}

// Classic AIO commands and constants.
const (
	IOCB_CMD_PREAD   = 0
	IOCB_CMD_PWRITE  = 1
	IOCB_CMD_FSYNC   = 2
	IOCB_CMD_FDSYNC  = 3
	IOCB_CMD_POLL    = 5
	IOCB_CMD_NOOP    = 6
	IOCB_CMD_PREADV  = 7
	IOCB_CMD_PWRITEV = 8

	AIO_RING_MAGIC = 0xa10a10a1
)

// ---- io_uring ring features, registered files and buffers ----

// RsrcRegister is struct io_uring_rsrc_register (IORING_REGISTER_FILES2,
// IORING_REGISTER_BUFFERS2): nr entries of data (an fd or iovec array), or a
// sparse table of nr empty entries with IORING_RSRC_REGISTER_SPARSE.
type RsrcRegister struct {
	Nr    uint32
	Flags uint32
	Resv2 uint64
	Data  uint64
	Tags  uint64
}

// RsrcUpdate2 is struct io_uring_rsrc_update2 (IORING_REGISTER_FILES_UPDATE2,
// IORING_REGISTER_BUFFERS_UPDATE): nr entries of data installed from offset.
type RsrcUpdate2 struct {
	Offset uint32
	Resv   uint32
	Data   uint64
	Tags   uint64
	Nr     uint32
	Resv2  uint32
}

// RsrcUpdate is struct io_uring_rsrc_update (IORING_REGISTER_RING_FDS).
type RsrcUpdate struct {
	Offset uint32
	Resv   uint32
	Data   uint64
}

// Opcodes, setup and enter flags, SQE flags and register opcodes of the
// optional features.
const (
	IORING_OP_READ_FIXED  = 4
	IORING_OP_WRITE_FIXED = 5

	IORING_SETUP_SQPOLL       = 1 << 1
	IORING_SETUP_COOP_TASKRUN = 1 << 8
	IORING_SETUP_TASKRUN_FLAG = 1 << 9

	// The SQ ring's flags word.
	IORING_SQ_NEED_WAKEUP = 1 << 0
	IORING_SQ_TASKRUN     = 1 << 2

	IORING_ENTER_SQ_WAKEUP       = 1 << 1
	IORING_ENTER_SQ_WAIT         = 1 << 2
	IORING_ENTER_REGISTERED_RING = 1 << 4

	IOSQE_FIXED_FILE = 1 << 0

	IORING_REGISTER_FILES_UPDATE   = 6
	IORING_REGISTER_FILES2         = 13
	IORING_REGISTER_BUFFERS2       = 15
	IORING_REGISTER_BUFFERS_UPDATE = 16
	IORING_REGISTER_RING_FDS       = 20

	IORING_RSRC_REGISTER_SPARSE = 1 << 0
)
