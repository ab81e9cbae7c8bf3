//go:build !unix

package aio

import "syscall"

func mapBuffers(int) ([]byte, error) { return nil, syscall.ENOSYS }

func addrOf([]byte) uint64 { return 0 }

func retireBuffers([]byte) error { return nil }
