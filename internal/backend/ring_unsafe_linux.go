package backend

// This file is where the backends touch memory that the kernel shares with
// them. Everything unsafe in package backend is here.
//
// io_uring: io_uring_setup(2) returns a descriptor and fills io_uring_params with
// the offsets of three regions that we map with mmap(2): the SQ ring (head, tail,
// mask, flags and the index array), the CQ ring (head, tail, mask and the CQE
// array) and the SQE array. With IORING_FEAT_SINGLE_MMAP the SQ and CQ rings share
// one mapping; we map them separately anyway, which the kernel allows, so the
// code has one shape.
//
// Ordering (see the "memory ordering" notes in io_uring(7) and liburing): the
// application is the only writer of the SQ tail and the CQ head; the kernel the
// only writer of the SQ head and the CQ tail. After filling SQEs the tail is
// published with a release store; CQEs are read only after an acquire load of
// the CQ tail, and handed back with a release store of the head. Go's
// sync/atomic operations are sequentially consistent, which is stronger than
// both, so head and tail are *atomic.Uint32 views over the mapping.
//
// Classic AIO: io_setup(2) maps a ring (struct aio_ring followed by io_event
// entries) into our address space and returns its address as the context id.
// The kernel writes events then the tail (smp_wmb in aio_complete); the consumer
// advances head. fio's libaio engine reads it directly ("userspace_reap"); so do
// we, and only from the one goroutine that holds aio's reaper role, so the
// kernel's own io_getevents never runs concurrently with our head store. We read
// it only when magic and incompat_features say the layout is the one we know.
//
// None of these mappings is Go memory, so the garbage collector neither scans
// nor moves them, and no Go pointer is ever stored into them: user_data and
// aio_data hold tags (slot index and generation), never addresses.

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uringaio/uringaio/internal/abi"
)

// uringMaps is the mapped state of one io_uring instance.
type uringMaps struct {
	sqRing, cqRing, sqeMem []byte

	sqHead, sqTail *atomic.Uint32
	sqFlags        *atomic.Uint32 // IORING_SQ_NEED_WAKEUP, IORING_SQ_TASKRUN
	sqMask         uint32
	sqEntries      uint32
	sqArray        []uint32
	sqes           []abi.SQE

	cqHead, cqTail *atomic.Uint32
	cqMask         uint32
	cqEntries      uint32
	cqes           []abi.CQE
}

func u32At(b []byte, off uint32) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&b[off]))
}

func mapUring(fd int, p *abi.UringParams) (*uringMaps, error) {
	m := &uringMaps{}
	var err error
	sqSize := int(p.SQOff.Array + p.SQEntries*4)
	cqSize := int(p.CQOff.Cqes + p.CQEntries*uint32(unsafe.Sizeof(abi.CQE{})))
	if m.sqRing, err = unix.Mmap(fd, abi.IORING_OFF_SQ_RING, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	if m.cqRing, err = unix.Mmap(fd, abi.IORING_OFF_CQ_RING, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		m.unmap()
		return nil, err
	}
	sqeSize := int(p.SQEntries) * int(unsafe.Sizeof(abi.SQE{}))
	if m.sqeMem, err = unix.Mmap(fd, abi.IORING_OFF_SQES, sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		m.unmap()
		return nil, err
	}
	m.sqHead = u32At(m.sqRing, p.SQOff.Head)
	m.sqTail = u32At(m.sqRing, p.SQOff.Tail)
	m.sqFlags = u32At(m.sqRing, p.SQOff.Flags)
	m.sqMask = *(*uint32)(unsafe.Pointer(&m.sqRing[p.SQOff.RingMask]))
	m.sqEntries = *(*uint32)(unsafe.Pointer(&m.sqRing[p.SQOff.RingEntries]))
	m.sqArray = unsafe.Slice((*uint32)(unsafe.Pointer(&m.sqRing[p.SQOff.Array])), p.SQEntries)
	m.sqes = unsafe.Slice((*abi.SQE)(unsafe.Pointer(&m.sqeMem[0])), p.SQEntries)
	m.cqHead = u32At(m.cqRing, p.CQOff.Head)
	m.cqTail = u32At(m.cqRing, p.CQOff.Tail)
	m.cqMask = *(*uint32)(unsafe.Pointer(&m.cqRing[p.CQOff.RingMask]))
	m.cqEntries = *(*uint32)(unsafe.Pointer(&m.cqRing[p.CQOff.RingEntries]))
	m.cqes = unsafe.Slice((*abi.CQE)(unsafe.Pointer(&m.cqRing[p.CQOff.Cqes])), p.CQEntries)
	// The SQ index array maps ring positions to SQE slots; we always use SQE i
	// for position i, so it is filled once.
	for i := range m.sqArray {
		m.sqArray[i] = uint32(i)
	}
	return m, nil
}

func (m *uringMaps) unmap() {
	for _, b := range [][]byte{m.sqRing, m.cqRing, m.sqeMem} {
		if b != nil {
			_ = unix.Munmap(b)
		}
	}
	m.sqRing, m.cqRing, m.sqeMem = nil, nil, nil
}

// aioRingView reads the completion ring of a classic AIO context.
type aioRingView struct {
	hdr    *abi.AioRing
	head   *atomic.Uint32
	tail   *atomic.Uint32
	events []abi.IOEvent
}

// viewAioRing returns a view of the ring at the context id, or ok == false when
// its header is not the layout we know (then io_getevents is used instead).
func viewAioRing(ctx uint64) (v aioRingView, ok bool) {
	// The context id is the address of the ring the kernel mapped for us.
	hdr := (*abi.AioRing)(unsafe.Add(unsafe.Pointer(nil), uintptr(ctx)))
	if hdr.Magic != abi.AIO_RING_MAGIC || hdr.IncompatFeatures != 0 ||
		hdr.HeaderLength != uint32(unsafe.Sizeof(abi.AioRing{})) || hdr.Nr == 0 {
		return v, false
	}
	v.hdr = hdr
	v.head = (*atomic.Uint32)(unsafe.Pointer(&hdr.Head))
	v.tail = (*atomic.Uint32)(unsafe.Pointer(&hdr.Tail))
	v.events = unsafe.Slice((*abi.IOEvent)(unsafe.Add(unsafe.Pointer(hdr), unsafe.Sizeof(abi.AioRing{}))), hdr.Nr)
	return v, true
}
