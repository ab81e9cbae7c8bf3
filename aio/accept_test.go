package aio

import (
	"math/rand/v2"
	"testing"
)

// TestValidateFastPath: validate settles the usual IOCB with one look at a
// few fields and hands everything else to validateAll. Over IOCBs drawn
// from the values at each rule's edges, the two must give the same answer
// (contract §1: every refusal is the same errno whatever path found it).
func TestValidateFastPath(t *testing.T) {
	ops := []Op{0, OpRead, OpWrite, OpReadv, OpWritev, OpFsync, OpFdsync, OpPoll, OpNop,
		OpSyncFileRange, OpFallocate, OpFadvise, Op(200)}
	offs := []int64{-1, 0, 4096, 1 << 62}
	// int64, converted when drawn: on 32-bit platforms int cannot hold the
	// out-of-range ones, and there every int is an acceptable FD.
	fds := []int64{-1 << 40, -1, 0, 7, 1<<31 - 1, 1 << 31}
	bufs := [][]byte{nil, {}, make([]byte, 16)}
	vecs := [][][]byte{nil, {}, {make([]byte, 8)}}
	events := []uint32{0, 1, 1<<16 - 1, 1 << 16}
	flags := []uint32{0, 1, 1 << 31}
	lens := []int64{-1, 0, 4096}
	rwfs := []int{0, 2, 1 << 30}
	pick := func(r *rand.Rand, n int) int { return r.IntN(n) }
	r := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for i := 0; i < 200000; i++ {
		cb := &IOCB{
			Op:         ops[pick(r, len(ops))],
			FD:         int(fds[pick(r, len(fds))]),
			Buf:        bufs[pick(r, len(bufs))],
			Bufs:       vecs[pick(r, len(vecs))],
			Offset:     offs[pick(r, len(offs))],
			PollEvents: events[pick(r, len(events))],
			Flags:      flags[pick(r, len(flags))],
			Len:        lens[pick(r, len(lens))],
			RWFlags:    rwfs[pick(r, len(rwfs))],
		}
		var c *Context
		got, want := c.validate(cb), validateAll(cb)
		if got != want {
			t.Fatalf("%+v: validate = %v, validateAll = %v", cb, got, want)
		}
		if got == nil {
			fast++
		}
	}
	if fast == 0 {
		t.Fatal("no IOCB was valid: the draw never reached the fast path")
	}
	var c *Context
	if err := c.validate(nil); err != errSubmitNil {
		t.Fatalf("validate(nil) = %v, want %v", err, errSubmitNil)
	}
}
