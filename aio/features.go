package aio

import "github.com/uringaio/uringaio/internal/backend"

// Feature is one optional kernel feature of the backend in use, and whether
// the Context uses it. Probe.Features lists them for the backend in use;
// kaio and threads have none.
//
// The uring backend reports, in this order (docs/contract.md §12):
//
//   - "coop_taskrun": IORING_SETUP_COOP_TASKRUN|TASKRUN_FLAG (Linux 5.19);
//   - "sqpoll": IORING_SETUP_SQPOLL, when Options.SQPoll asks for it;
//   - "registered_ring": IORING_REGISTER_RING_FDS, always off (Why says why);
//   - "registered_files": the sparse fixed-file table File.Register uses;
//   - "registered_buffers": the buffer table Buffers use (Linux 5.19).
type Feature struct {
	Name string
	On   bool
	// Why says, for a feature that is off, what refused it or why it is not
	// used.
	Why error
}

// String is "name: on", or "name: off (why)".
func (f Feature) String() string {
	if f.On {
		return f.Name + ": on"
	}
	if f.Why == nil {
		return f.Name + ": off"
	}
	return f.Name + ": off (" + f.Why.Error() + ")"
}

// featuresOf is the feature list of be, nil for a backend without any.
func featuresOf(be backend.Backend) []Feature {
	fr, ok := be.(backend.Featurer)
	if !ok {
		return nil
	}
	bf := fr.Features()
	fs := make([]Feature, len(bf))
	for i, f := range bf {
		fs[i] = Feature{Name: f.Name, On: f.On, Why: f.Why}
	}
	return fs
}

// Features returns the optional features of the backend in use (lane 0's;
// every lane is set up alike): the Features of Probes' last entry.
func (c *Context) Features() []Feature { return featuresOf(c.be) }
