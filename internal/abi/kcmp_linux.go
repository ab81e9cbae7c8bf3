package abi

// kcmp(2)'s comparison types (include/uapi/linux/kcmp.h).
const (
	KCMP_FILE = 0 // are two descriptors the same open file description
)
