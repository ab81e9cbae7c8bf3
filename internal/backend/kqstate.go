//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package backend

// The decisions of the kqueue poller (poller_kqueue.go), in plain Go with the
// system calls behind an interface (kqSys), so that they build and are tested
// on Linux too (kqstate_test.go drives them against a model of kqueue and
// poll(2)). poller_kqueue.go only makes the calls.
//
// kqueue watches a descriptor through filters: EVFILT_READ and EVFILT_WRITE
// here. A waiter waits for poll(2) events, which the filters report only
// coarsely (POLLPRI and POLLRDBAND ride on the read filter; POLLHUP on
// either, as EV_EOF; a regular file's read filter fires only before its end,
// where poll(2) says always ready). So the filters are used to learn *when*
// to look, and poll(2) without waiting (pollNow) says *what* is ready:
//
//   - Each descriptor with waiters has one knote per filter its waiters need
//     (kqFilters), added with EV_CLEAR and kept until no waiter needs it: a
//     knote reports once per change of its file that leaves the filter true,
//     not again and again while it stays true. A level-triggered knote would
//     report at once, forever, for a waiter whose events the filter only
//     approximates (POLLPRI on a socket that has ordinary data), and the
//     poller would spin.
//   - Because an EV_CLEAR knote does not report a state that was already
//     reported, a waiter that arrives later asks poll(2) itself (kqArm),
//     unless poll(2) found its events not ready and nothing was reported since
//     (kqState.quiet): one non-blocking poll(2) per new waiter at most, none
//     for the thousandth poll on a quiet pipe.
//   - When a knote reports, the poller asks poll(2) once for the union of the
//     events of that descriptor's waiters (kqCheck) and hands the mask to
//     collectLocked, as epoll's event mask is handed on Linux. A knote that
//     no waiter needs any more is deleted when it next reports (kqFired):
//     a cancel makes no system call (but see kqDisarm).
//
//   - A descriptor kqueue refuses a knote for (a device without a filter),
//     or does not report faithfully (kqWatches: darwin's FIFOs), is
//     watched by poll(2) instead (kqState.polled), in the poller's own
//     poll(2) array beside the kqueue descriptor.
//
// The cost of an event or a cancel is therefore that of the descriptor's own
// waiters, never of the waiting set (except for polled descriptors, which
// cost what they cost under poll(2)).

import "golang.org/x/sys/unix"

// kqSet is a set of kqueue filters.
type kqSet uint8

const (
	kqRead  kqSet = 1 << iota // EVFILT_READ
	kqWrite                   // EVFILT_WRITE
)

// kqEvents is which poll(2) events each filter stands for on this system
// (kqPollEvents in poller_kqueue.go).
type kqEvents struct{ read, write uint32 }

// kqFilters is the set of filters that report the events in want, the union
// of the events of n waiters. Waiters that want neither reading nor writing
// (a poll for POLLHUP or POLLERR alone, which poll(2) reports whatever was
// asked) need both: EV_EOF comes with either filter, and only one of them
// may ever report on a given descriptor (the read filter of a pipe's write
// end never does). No waiters, no filters.
func kqFilters(want uint32, n int, ev kqEvents) kqSet {
	if n == 0 {
		return 0
	}
	var s kqSet
	if want&ev.read != 0 {
		s |= kqRead
	}
	if want&ev.write != 0 {
		s |= kqWrite
	}
	if s == 0 {
		s = kqRead | kqWrite
	}
	return s
}

// kqState is what the poller keeps per descriptor (pollerFile).
type kqState struct {
	reg kqSet // filters with a knote (EV_ADD|EV_CLEAR) on the descriptor
	// quiet: poll(2) last found nothing ready for the events quietEv (no
	// error or hang-up either), while every filter they need had a knote,
	// and no knote has reported since. A waiter wanting only these needs no
	// look of its own: the knotes will report the change that makes it
	// ready. (A flag of its own: a waiter may want no events at all, only
	// the POLLERR/POLLHUP that poll(2) always reports.)
	quiet   bool
	quietEv uint32
	// polled: kqueue refused a knote on the descriptor, or kqWatches said
	// no: it has no knotes, and the poller asks poll(2) about it with its
	// every wait (the cost of the waiting set comes back, but only for such
	// descriptors). Kept until the descriptor is forgotten.
	polled bool
	typed  bool // kqWatches was asked
}

// kqSys is the system calls the decisions need: poller_kqueue.go's pool, or
// the model in kqstate_test.go.
type kqSys interface {
	kqAdd(fd int, f kqSet) error         // EV_ADD|EV_CLEAR of one filter
	kqDel(fd int, f kqSet)               // EV_DELETE of the filters in f
	kqPoll(fd int, events uint32) uint32 // pollNow
	// kqWatches reports whether kqueue reports this descriptor's changes
	// faithfully, asked once per descriptor before its first knote (darwin:
	// not for a FIFO, whose last writer's close no knote reports).
	kqWatches(fd int) bool
}

// kqRefused reports whether err, from adding a knote, means that kqueue does
// not watch this descriptor for that filter: the descriptor is then watched
// by poll(2) (kqState.polled). A
// device without a kqueue filter gives EINVAL or ENODEV (EOPNOTSUPP on some
// systems), a descriptor that is not open EBADF, and FreeBSD refuses the
// write filter of a pipe whose reader is gone with EPIPE (poll(2) then says
// POLLHUP).
func kqRefused(err error) bool {
	switch err {
	case unix.EBADF, unix.EPIPE, unix.EINVAL, unix.ENODEV, unix.EOPNOTSUPP, unix.EPERM:
		return true
	}
	return false
}

// kqArm is armLocked's work for the descriptor fd, whose waiters want want
// and need the filters need: it adds the knotes missing, and asks poll(2)
// when a waiter may be ready already. It returns poll(2)'s mask (not 0: the
// caller has the poller collect the descriptor now), or an error other than
// a refusal from adding a knote (the caller ends the waiters with it). A
// descriptor that is or becomes polled is left to the poller's poll(2)
// (mask 0, no error; the caller has the poller rebuild its array).
func kqArm(sys kqSys, s *kqState, fd int, want uint32, need kqSet) (uint32, error) {
	if !s.typed {
		s.typed = true
		s.polled = !sys.kqWatches(fd)
	}
	if s.polled {
		return 0, nil
	}
	add := need &^ s.reg
	check := add != 0 || !s.quiet || want&^s.quietEv != 0
	for _, f := range [...]kqSet{kqRead, kqWrite} {
		if add&f == 0 {
			continue
		}
		err := sys.kqAdd(fd, f)
		switch {
		case err == nil:
			s.reg |= f
		case kqRefused(err):
			if s.reg != 0 {
				sys.kqDel(fd, s.reg)
			}
			*s = kqState{typed: true, polled: true}
			return 0, nil
		default:
			return 0, err
		}
	}
	if !check {
		return 0, nil
	}
	return kqCheck(sys, s, fd, want, need), nil
}

// kqDisarm is disarmLocked's work: a waiter left fd, whose remaining waiters
// want want and need need. Nothing to do (no system call) unless need has
// grown, which happens only when every waiter left wants neither reading nor
// writing (kqFilters): they need both filters, and may have lost one to
// kqFired while the others did not need it. Then it is kqArm.
func kqDisarm(sys kqSys, s *kqState, fd int, want uint32, need kqSet) (uint32, error) {
	if s.polled || need&^s.reg == 0 {
		return 0, nil
	}
	return kqArm(sys, s, fd, want, need)
}

// kqCheck asks poll(2) about want now, after kqArm added a waiter or after a
// knote of fd reported, and records the answer.
func kqCheck(sys kqSys, s *kqState, fd int, want uint32, need kqSet) uint32 {
	mask := sys.kqPoll(fd, want)
	s.quiet = mask == 0 && need&^s.reg == 0
	s.quietEv = want
	return mask
}

// kqFired records that fd's knote for filter f reported, while its waiters
// need the filters need: what poll(2) said before is no longer known
// (quiet), and a knote no waiter needs is deleted now, so that it reports
// nothing more (one report for nobody per knote left behind by cancels).
func kqFired(sys kqSys, s *kqState, fd int, f, need kqSet) {
	s.quiet = false
	if del := f & s.reg &^ need; del != 0 {
		s.reg &^= del
		sys.kqDel(fd, del)
	}
}

// kqForget deletes fd's knotes before the pool closes it (close would remove
// them too, but the descriptor may be one the pool does not own and does
// not close).
func kqForget(sys kqSys, s *kqState, fd int) {
	if s.reg != 0 {
		sys.kqDel(fd, s.reg)
	}
	*s = kqState{}
}
