package backend

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// EnvVar names the environment variable that chooses the backend when the
// caller's option is empty.
const EnvVar = "URINGAIO_BACKEND"

// Names are the valid backend names.
var Names = []string{"auto", "uring", "kaio", "threads"}

// autoOrder is what "auto" tries, in order.
var autoOrder = []string{"uring", "kaio", "threads"}

// Open is OpenWith(name, slots, 0): the threads backend, if it runs, gets the
// default pool size.
func Open(name string, slots int) (Backend, []Probe, error) {
	return OpenWith(name, slots, 0)
}

// OpenWith starts the backend that name asks for, sized for slots outstanding
// requests; workers bounds its pool of worker goroutines (0: DefaultWorkers):
// the threads backend's, and the one uring and kaio start, on first need, for
// the stages their kernel cannot do (stage_linux.go). An empty name
// defers to URINGAIO_BACKEND, and an empty or unset variable means "auto":
// io_uring when it starts and supports every op the library needs
// (IORING_REGISTER_PROBE), else classic AIO, else the threads pool. It returns
// what it tried, with each refusal's reason, in order.
//
// A named backend that cannot start is an error naming it and the reason, and
// matching ErrNotSupported; there is no silent fallback. An unknown name is an
// error (matching EINVAL) that lists the valid ones. The errors read
// "aio: Setup: …", as package aio's own do: Setup is the call that makes them.
func OpenWith(name string, slots, workers int) (Backend, []Probe, error) {
	return OpenConfig(name, slots, Config{Workers: workers})
}

// OpenConfig is OpenWith with the optional features of cfg.
func OpenConfig(name string, slots int, cfg Config) (Backend, []Probe, error) {
	source := "Options.Backend"
	if name == "" {
		name, source = os.Getenv(EnvVar), EnvVar
	}
	switch name {
	case "", "auto":
		return openAuto(slots, cfg)
	case "uring", "kaio", "threads":
		b, err := start(name, slots, cfg)
		if err != nil {
			return nil, []Probe{{name, err}}, fmt.Errorf("aio: Setup: backend %q (from %s) cannot run: %w", name, source, err)
		}
		return b, []Probe{{name, nil}}, nil
	}
	return nil, nil, fmt.Errorf("aio: Setup: unknown backend %q in %s; valid values: \"\", auto, uring, kaio, threads: %w",
		name, source, syscall.EINVAL)
}

// start starts one backend by name (select_linux.go, select_other.go,
// threads.go, threads_other.go).
func start(name string, slots int, cfg Config) (Backend, error) {
	switch name {
	case "uring":
		return startUring(slots, cfg)
	case "kaio":
		return startKaio(slots, cfg.Workers)
	}
	return startThreads(cfg.Workers)
}

func openAuto(slots int, cfg Config) (Backend, []Probe, error) {
	var probes []Probe
	var errs []error
	for _, name := range autoOrder {
		b, err := start(name, slots, cfg)
		if err == nil {
			return b, append(probes, Probe{name, nil}), nil
		}
		probes = append(probes, Probe{name, err})
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return nil, probes, fmt.Errorf("aio: Setup: no backend can run here: %w", errors.Join(errs...))
}

// DefaultWorkers is the pool size when newPool (and OpenWith) is given 0:
// 4×GOMAXPROCS, at least 32 and at most 64. A worker blocked in pread holds a
// device queue slot, so the pool must be as deep as the queue depths storage
// code uses (32 matches gosync at 32 goroutines on O_DIRECT reads; glibc's
// POSIX AIO uses 20 threads); workers start only when needed, and the cap keeps
// a burst of slow fsyncs from taking hundreds of threads.
func DefaultWorkers() int {
	return min(max(4*runtime.GOMAXPROCS(0), 32), 64)
}
