package abi

// SQE flags (include/uapi/linux/io_uring.h, enum io_uring_sqe_flags_bit).
const (
	// IOSQE_IO_LINK links this SQE to the next one of the same submission:
	// the next starts only when this one completes without error (a short
	// read or write counts as an error), and otherwise ends with -ECANCELED.
	IOSQE_IO_LINK = 1 << 2
)
